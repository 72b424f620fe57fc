"""The Prefect flows of overflyt: ``migrate-wave`` → ``site-cutover`` (one task per itinerary step),
``precheck-wave`` and ``rollback-site``.

Thin: each flow calls the library (``overflyt.cutover``, ``overflyt.precheck``) and shows its
results in Prefect (logs, artifacts, states). The deployments (``overflyt serve``,
:mod:`overflyt.orchestration.serve`) point at these entrypoints.
"""
