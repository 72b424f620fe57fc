"""The units of work a cutover runs, each one playbook run through ``overflyt.ansible.step.run_step``.

Owns: :mod:`.network` (device backup, configure + verify, verify, restore, post-check),
:mod:`.device_changes` (each device's desired state, rendered from the plan), :mod:`.vms`
(record placements, migrate, roll back VMs), :mod:`.vm_results` (reading the VM roles' reports),
:mod:`.slots` (move slots shared across concurrent runs) and :mod:`.context` (the one
``StepContext`` a step gets).
May import: ``plan``, ``ansible``, ``planning.batches``, ``providers.vsphere.models``,
``precheck.facts``, ``overflyt.record``/``errors``. Never imports the cutover or Prefect.
"""
