"""The Ansible side: the runner adapter, the per-run inventory, cancellation.

Owns: :mod:`.runner` (the only importer of ``ansible_runner``: scrubbed environment, secrets as
files, results from ``set_stats``), :mod:`.inventory` (each run's generated inventory, never
``inventories/``), :mod:`.cancel` (stopping a playbook on request, shielding rollbacks),
:mod:`.step` (``run_step``: inventory → runner → result, the one way a step runs a playbook),
:mod:`.guard` (the process ansible-playbook runs under: nothing it starts outlives the run),
:mod:`.processes` (processes by pid and start time, as run records hold them) and
:mod:`.leftovers` (stopping what dead runs of a municipality left, before a run touches it).
May import: ``overflyt.errors``, ``overflyt.record``, ``overflyt.project``, ``overflyt.plan``.
Never imports Prefect, pyVmomi or the cutover.
"""
