#!/usr/bin/python
# ruff: noqa: E402  (Ansible modules put DOCUMENTATION, EXAMPLES and RETURN before the imports)
"""overflyt.vsphere.vm_locate: find a VM in facts already read, and refuse one not to be moved."""

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_locate
short_description: Find a VM in its source or target datacenter and refuse one that must not be moved
description:
  - Looks for VM O(vm) in the facts of both vCenters that C(overflyt.vsphere.estate_facts) read
    (once per batch) and reports where it is; connects to nothing.
  - Fails, with the reason as C(msg), when the VM must be left alone. For O(purpose=migrate) that
    is when it is in neither datacenter, when the source holds more than one VM of its name, when
    the target holds one while the VM is still in the source (a leftover of an earlier attempt,
    never moved onto), or when the target holds more than one; the first of these that applies
    is the reason.
  - For O(purpose=rollback), a VM of its name in the target is a provable leftover (C(leftover))
    only when the VM itself is in its recorded datacenter with its recorded managed object id and
    the copy is the only one, directly in O(target_folder) and not powered on. It fails when the
    VM is in neither datacenter, when either holds more than one of its name, or when both hold
    one that is not such a leftover.
  - The decisions are C(overflyt.providers.vsphere.placement.locate_for_migration) and
    C(locate_for_rollback).
version_added: 0.2.0
author: overflyt engineers
options:
  vm:
    description: Name of the VM.
    type: str
    required: true
  purpose:
    description: Whether the VM is about to be moved into the target (C(migrate)) or put back (C(rollback)).
    type: str
    required: true
    choices: [migrate, rollback]
  source_facts:
    description: The source vCenter's facts, C(vcenter_facts) of C(overflyt.vsphere.estate_facts).
    type: dict
    required: true
  target_facts:
    description: The target vCenter's facts, C(vcenter_facts) of C(overflyt.vsphere.estate_facts).
    type: dict
    required: true
  source_datacenter:
    description: The datacenter the VM is moved from; required for O(purpose=migrate).
    type: str
  target_datacenter:
    description: The datacenter the migration moves VMs to.
    type: str
    required: true
  recorded:
    description:
      - The VM's recorded placement (C(overflyt.providers.vsphere.Placement) as JSON), required for
        O(purpose=rollback); its C(datacenter) is the source datacenter.
    type: dict
  target_folder:
    description: The VM folder the migration moves VMs to (where a leftover may be); required for O(purpose=rollback).
    type: str
attributes:
  check_mode:
    support: full
    description: Reads nothing and changes nothing; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
notes:
  - Give the task C(no_log=true) in a role, as its arguments are whole datacenters' facts.
"""

EXAMPLES = r"""
- name: Find ndj-print01 before its move
  overflyt.vsphere.vm_locate:
    vm: ndj-print01
    purpose: migrate
    source_facts: "{{ read.results[0].vcenter_facts }}"
    target_facts: "{{ read.results[1].vcenter_facts }}"
    source_datacenter: NDJ-DC
    target_datacenter: MJ-DC1
  register: found
  no_log: true

- name: Find it to put it back where it was recorded
  overflyt.vsphere.vm_locate:
    vm: ndj-print01
    purpose: rollback
    source_facts: "{{ read.results[0].vcenter_facts }}"
    target_facts: "{{ read.results[1].vcenter_facts }}"
    target_datacenter: MJ-DC1
    recorded: "{{ overflyt_vm_placement }}"
    target_folder: Kommuner/707-Norddjurs
  register: found
  no_log: true
"""

RETURN = r"""
placement:
  description:
    - Where the VM is (C(overflyt.providers.vsphere.Placement) as JSON, with its moid), in the source
      datacenter, else in the target one; null when in neither. Also returned when the task fails.
  returned: always
  type: dict
  sample: {vm: ndj-print01, moid: vm-52, datacenter: NDJ-DC, cluster: NDJ-Cluster-01, host: ndj-esx02,
           datastore: ndj-ds-grenaa-01, folder: Servere, portgroups: [VM-Faelles-10], power: powered_on}
side:
  description: Where the VM is, C(source) or C(target); null when in neither.
  returned: always
  type: str
  sample: source
datacenter:
  description: The datacenter the VM is in; null when in neither.
  returned: always
  type: str
  sample: NDJ-DC
leftover:
  description: (rollback) Whether the VM of its name in the target folder is a provable leftover to delete.
  returned: always
  type: bool
msg:
  description: Where the VM is, or why it is left alone.
  returned: always
  type: str
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
    "source_facts": {"type": "dict", "required": True},
    "target_facts": {"type": "dict", "required": True},
    "source_datacenter": {"type": "str"},
    "target_datacenter": {"type": "str", "required": True},
    "recorded": {"type": "dict"},
    "target_folder": {"type": "str"},
}
REQUIRED_IF = [
    ("purpose", "migrate", ["source_datacenter"]),
    ("purpose", "rollback", ["recorded", "target_folder"]),
]


def run(module: Any) -> None:
    """The module's work on ``module``: an AnsibleModule, or the facade the collection's action
    plugin of this name gives it (the same params, check_mode, _diff, exit_json, fail_json)."""
    if vsphere is None:
        module.fail_json(msg=missing_required_lib("overflyt"), exception=IMPORT_ERROR)
    params = module.params
    parsed = {}
    models = {"source_facts": VCenterFacts, "target_facts": VCenterFacts, "recorded": vsphere.Placement}
    for option, model in models.items():
        try:
            parsed[option] = model.model_validate(params[option]) if params[option] is not None else None
        except ValueError as exc:
            module.fail_json(msg=validation_message(exc, option))
    if params["purpose"] == "migrate":
        located = vsphere.locate_for_migration(
            params["vm"],
            parsed["source_facts"],
            parsed["target_facts"],
            params["source_datacenter"],
            params["target_datacenter"],
        )
    else:
        located = vsphere.locate_for_rollback(
            params["vm"],
            parsed["source_facts"],
            parsed["target_facts"],
            parsed["recorded"],
            params["target_datacenter"],
            params["target_folder"],
        )
    out = located.model_dump(mode="json", include={"placement", "side", "datacenter", "leftover"})
    if located.refusal is not None:
        module.fail_json(msg=located.refusal, **out)
    where = f"in {located.side} datacenter {located.datacenter}"
    module.exit_json(changed=False, msg=f"vm {params['vm']} is {where}", **out)


def main() -> None:
    run(AnsibleModule(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True))


if __name__ == "__main__":
    main()
