"""The cutover: a wave's phases and each site's itinerary, with its durable state.

Owns: :mod:`.itinerary` (the site itinerary as data: named steps, the dry run a filter of it),
:mod:`.site` (one site's cutover and rollback, run step by step from the itinerary),
:mod:`.wave` (the wave's phases: admit → precheck → approve → stale check → sites → finish),
:mod:`.admission` (what both the CLI and the flows call before anything is contacted),
:mod:`.window` (the wave's maintenance window held while its sites run),
:mod:`.state` (the durable wave state across attempts), :mod:`.outcome` and :mod:`.report` (what a
run came to, and its report), :mod:`.evidence` (the evidence pack) and :mod:`.status` (where each wave
and site stands, for `overflyt status`), both from the run records and wave states alone.
May import: ``plan``, ``precheck``, ``steps``, ``ansible``, ``planning`` (the estimate a site's window
is judged with), ``overflyt.record``/``errors``.
Never imports Prefect: the flows in ``flows/`` wrap it.
"""
