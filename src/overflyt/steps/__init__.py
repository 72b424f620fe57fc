"""The units of work a cutover runs, each one playbook run through ``overflyt.ansible.step.run_step``.

Owns: :mod:`.network` (device backup, configure + verify, verify, restore, post-check),
:mod:`.device_changes` (each device's desired state, rendered from the plan), :mod:`.vms`
(record placements, migrate, roll back VMs), :mod:`.vm_batches` (which VMs move, to which hosts,
under which move slots, started as a pool), :mod:`.vm_results` (reading the VM roles' reports),
:mod:`.slots` (move slots shared across concurrent runs) and :mod:`.config_text` (the one
normaliser and hash of device configurations, which the roles use through the ``overflyt.network``
filters). Each step takes the run's ``overflyt.ansible.step.StepContext``.
May import: ``plan``, ``ansible``, ``planning.batches``, ``providers.vsphere`` (its models and pure
placement functions), ``precheck.facts``, ``overflyt.record``/``errors``. Never imports the cutover or
Prefect.
"""
