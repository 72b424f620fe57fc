#!/usr/bin/python
# ruff: noqa: E402  (Ansible modules put DOCUMENTATION, EXAMPLES and RETURN before the imports)
"""overflyt.vsphere.vm_report: check a VM after a migration or rollback and build its report."""

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_report
short_description: Check a VM after its move and build the report its role hands overflyt
description:
  - Builds the entry that the role C(vm_migrate) or C(vm_rollback) hands overflyt through
    C(ansible.builtin.set_stats) as C(overflyt_result.vms[<vm>]), from what the role's tasks
    registered and the facts C(overflyt.vsphere.estate_facts) read after the batch's moves.
    Connects to nothing and never fails for the VM; the role fails the VM after reporting it
    when the report says C(failed).
  - Given O(facts) and no O(error), it first checks the VM there. For O(purpose=migrate), exactly
    one VM of its name in the target datacenter, at the target's cluster, host, datastore and
    folder, each NIC where the move put it, in the power state it had before the move, and with
    VMware Tools running when it is on and the plan says its tools are ok (O(tools)). For
    O(purpose=rollback), exactly one in its recorded datacenter, exactly at O(recorded) with the
    recorded power state, and none left in O(target_datacenter) of O(moved_from_facts). What is
    wrong makes the report the failed one.
  - For O(purpose=migrate) the report is C({status, before, after, seconds, error}), status one of
    C(moved), C(unchanged), C(would_move) (check mode), C(failed). For O(purpose=rollback) it is
    C({status, before, after, seconds, leftover_removed, error}), status one of C(restored),
    C(unchanged), C(would_restore) (check mode), C(failed). C(before) and C(after) have the shape
    of C(overflyt.providers.vsphere.Placement).
  - The checks and reports are C(overflyt.providers.vsphere.placement.report_migration) and
    C(report_rollback).
version_added: 0.2.0
author: overflyt engineers
options:
  vm:
    description: Name of the VM.
    type: str
    required: true
  purpose:
    description: The role reported for, C(migrate) (vm_migrate) or C(rollback) (vm_rollback).
    type: str
    required: true
    choices: [migrate, rollback]
  placement:
    description: Where C(overflyt.vsphere.vm_locate) found the VM (its C(placement)); null when it was not found.
    type: dict
  relocation:
    description: The registered result of C(overflyt.vsphere.vm_relocate); empty when it did not run.
    type: dict
    default: {}
  power:
    description: The registered result of C(overflyt.vsphere.vm_power); empty when it did not run.
    type: dict
    default: {}
  leftover:
    description: (rollback) The registered result of C(overflyt.vsphere.vm_remove_leftover); empty when it did not run.
    type: dict
    default: {}
  facts:
    description:
      - Facts read after the moves of the vCenter the VM should now be in (C(vcenter_facts) of
        C(overflyt.vsphere.estate_facts)); null when not read (check mode, verification off, a
        failure before), and then nothing is checked.
    type: dict
  moved_from_facts:
    description: (rollback) Facts read after the moves of the target vCenter, where no VM of its name may be left.
    type: dict
  target:
    description: (migrate) Where the VM goes, the C(target) given to C(overflyt.vsphere.vm_relocate).
    type: dict
  tools:
    description: (migrate) The VMware Tools status the plan records; C(ok) means they must run in a powered-on VM.
    type: str
    choices: [ok, not_running, not_installed, old]
  recorded:
    description: (rollback) The VM's recorded placement, the one it is put back to.
    type: dict
  target_datacenter:
    description: (rollback) The datacenter the migration moved the VM to.
    type: str
  error:
    description:
      - Why the role failed for the VM (from its rescue, C(ansible_failed_result.msg)); makes the report the failed one.
    type: str
attributes:
  check_mode:
    support: full
    description:
      - Changes nothing; in check mode a VM the role would change is reported C(would_move) or C(would_restore).
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
notes:
  - Give the task C(no_log=true) in a role; its arguments are whole datacenters' facts and results of no_log tasks.
"""

EXAMPLES = r"""
- name: Check the VM and build its report
  overflyt.vsphere.vm_report:
    vm: "{{ overflyt_vm_name }}"
    purpose: migrate
    placement: "{{ found.placement | default(none) }}"
    relocation: "{{ move | default({}) }}"
    power: "{{ power | default({}) }}"
    facts: "{{ after_read.vcenter_facts | default(none) }}"
    target: "{{ overflyt_vm_target }}"
    tools: "{{ overflyt_vm_tools }}"
    error: "{{ failure | default(omit) }}"
  register: report
  no_log: true

- name: Report the VM
  ansible.builtin.set_stats:
    data:
      overflyt_result:
        vms: "{{ {inventory_hostname: report.report} }}"
    per_host: false
"""

RETURN = r"""
report:
  description: The VM's report, for C(overflyt_result.vms[<vm>]).
  returned: always
  type: dict
  sample:
    status: moved
    before: {vm: ndj-print01, moid: vm-52, datacenter: NDJ-DC, cluster: NDJ-Cluster-01, host: ndj-esx02,
             datastore: ndj-ds-grenaa-01, folder: Servere, portgroups: [VM-Faelles-10], power: powered_on}
    after: {vm: ndj-print01, moid: vm-1043, datacenter: MJ-DC1, cluster: MJ-Kommuner-01, host: mj-esx01,
            datastore: mj-ds-gold-01, folder: Kommuner/707-Norddjurs, portgroups: [NDJ-707-Faelles],
            power: powered_on}
    seconds: 2.417
    error: null
msg:
  description: The report's error, or its status.
  returned: always
  type: str
  sample: "vm ndj-print01 is not as it should be after its move: host is mj-esx02, not mj-esx01"
"""

import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.overflyt.vsphere.plugins.module_utils.common import validation_message

try:
    from overflyt.precheck.facts import VCenterFacts
    from overflyt.providers import vsphere

    IMPORT_ERROR = None
except ImportError:
    vsphere = None
    IMPORT_ERROR = traceback.format_exc()


ARGUMENT_SPEC = {
    "vm": {"type": "str", "required": True},
    "purpose": {"type": "str", "required": True, "choices": ["migrate", "rollback"]},
    "placement": {"type": "dict"},
    "relocation": {"type": "dict", "default": {}},
    "power": {"type": "dict", "default": {}},
    "leftover": {"type": "dict", "default": {}},
    "facts": {"type": "dict"},
    "moved_from_facts": {"type": "dict"},
    "target": {"type": "dict"},
    "tools": {"type": "str", "choices": ["ok", "not_running", "not_installed", "old"]},
    "recorded": {"type": "dict"},
    "target_datacenter": {"type": "str"},
    "error": {"type": "str"},
}
REQUIRED_IF = [
    ("purpose", "migrate", ["target", "tools"]),
    ("purpose", "rollback", ["recorded", "target_datacenter"]),
]


def run(module: Any) -> None:
    """The module's work on ``module``: an AnsibleModule, or the facade the collection's action
    plugin of this name gives it (the same params, check_mode, _diff, exit_json, fail_json)."""
    if vsphere is None:
        module.fail_json(msg=missing_required_lib("overflyt"), exception=IMPORT_ERROR)
    params = module.params
    if params["purpose"] == "rollback" and (params["facts"] is None) != (params["moved_from_facts"] is None):
        module.fail_json(msg="purpose is rollback: give facts and moved_from_facts together, or neither")
    models = {
        "placement": vsphere.Placement,
        "recorded": vsphere.Placement,
        "target": vsphere.RelocationTarget,
        "facts": VCenterFacts,
        "moved_from_facts": VCenterFacts,
    }
    given = {}
    for option, model in models.items():
        try:
            given[option] = model.model_validate(params[option]) if params[option] is not None else None
        except ValueError as exc:
            module.fail_json(msg=validation_message(exc, option))
    located = given["placement"]
    moved = vsphere.relocation_of(params["relocation"], located.moid if located is not None else "")
    power_changed = bool(params["power"].get("changed"))
    try:
        if params["purpose"] == "migrate":
            report = vsphere.report_migration(
                params["vm"],
                given["target"],
                params["tools"],
                located,
                moved,
                power_changed=power_changed,
                after=given["facts"],
                check_mode=module.check_mode,
                error=params["error"],
            )
        else:
            after = (given["facts"], given["moved_from_facts"]) if given["facts"] is not None else None
            report = vsphere.report_rollback(
                params["vm"],
                given["recorded"],
                params["target_datacenter"],
                located,
                moved,
                power_changed=power_changed,
                leftover_removed=bool(params["leftover"].get("changed")),
                after=after,
                check_mode=module.check_mode,
                error=params["error"],
            )
    except ValueError as exc:
        module.fail_json(msg=f"cannot report vm {params['vm']}: {exc}")
    module.exit_json(changed=False, report=report.model_dump(mode="json"), msg=report.error or report.status)


def main() -> None:
    run(AnsibleModule(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True))


if __name__ == "__main__":
    main()
