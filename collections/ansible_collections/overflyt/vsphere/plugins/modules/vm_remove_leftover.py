#!/usr/bin/python
# ruff: noqa: E402  (Ansible modules put DOCUMENTATION, EXAMPLES and RETURN before the imports)
"""overflyt.vsphere.vm_remove_leftover: delete a half-done move's copy of a VM from the target folder."""

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_remove_leftover
short_description: Delete a leftover copy of a VM from the target VM folder
description:
  - Deletes VM O(vm) from datacenter O(datacenter) of O(vcenter), guarded as
    C(overflyt.providers.vsphere.destroy_vm) is, that is only a VM of exactly that name directly in
    folder O(folder) and never a powered-on one. Does nothing when there is no VM of that name.
  - The caller proves that it is a leftover. The role vm_rollback does so with
    C(overflyt.vsphere.vm_locate), which holds it for one when the VM itself is in the source
    datacenter with its recorded managed object id.
version_added: 0.2.0
author: overflyt engineers
extends_documentation_fragment: overflyt.vsphere.vcenter
options:
  vm:
    description: Name of the VM.
    type: str
    required: true
  datacenter:
    description: Datacenter of the leftover (the target datacenter).
    type: str
    required: true
  folder:
    description: VM folder path below the datacenter's vm folder the leftover must be in.
    type: str
    required: true
  timeout:
    description: Seconds the deletion may take.
    type: int
    default: 600
attributes:
  check_mode:
    support: full
    description: Reports whether it would delete; deletes nothing.
  diff_mode:
    support: none
    description: Nothing to diff.
"""

EXAMPLES = r"""
- name: Remove the half-created copy of ndj-print01 from the target folder
  overflyt.vsphere.vm_remove_leftover:
    vcenter: "{{ overflyt_vcenters.target }}"
    vm: ndj-print01
    datacenter: MJ-DC1
    folder: Kommuner/707-Norddjurs
  no_log: true
"""

RETURN = r"""
overflyt_reason:
  description:
    - On failure, the reason (also C(msg)) with every secret value removed. The task runs with no_log,
      so its role reads it with C(overflyt.vsphere.failure_reason) and says it in a task of its own.
  returned: failure
  type: str
msg:
  description: What was done, or would be done.
  returned: always
  type: str
"""

import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.overflyt.vsphere.plugins.module_utils.common import (
    VCENTER_SPEC,
    connection_args,
    fail,
    validation_message,
)

try:
    from overflyt.errors import OverflytError
    from overflyt.providers import vsphere

    IMPORT_ERROR = None
except ImportError:
    vsphere = None
    OverflytError = Exception
    IMPORT_ERROR = traceback.format_exc()


ARGUMENT_SPEC = {
    "vcenter": VCENTER_SPEC,
    "vm": {"type": "str", "required": True},
    "datacenter": {"type": "str", "required": True},
    "folder": {"type": "str", "required": True},
    "timeout": {"type": "int", "default": 600},
}
REQUIRED_IF = []


def run(module: Any) -> None:
    """The module's work on ``module``: an AnsibleModule, or the facade the collection's action
    plugin of this name gives it (the same params, check_mode, _diff, exit_json, fail_json)."""
    if vsphere is None:
        module.fail_json(msg=missing_required_lib("overflyt"), exception=IMPORT_ERROR)
    params = module.params
    try:
        endpoint = vsphere.VCenterConnection(**connection_args(params["vcenter"]))
    except ValueError as exc:
        module.fail_json(msg=validation_message(exc))
    where = f"{params['datacenter']}/{params['folder']}"
    try:
        with vsphere.connect(endpoint) as session:
            removed = vsphere.destroy_vm(
                session,
                params["vm"],
                datacenter=params["datacenter"],
                folder=params["folder"],
                dry_run=module.check_mode,
                timeout_s=float(params["timeout"]),
            )
    except OverflytError as exc:
        fail(module, str(exc))
    if not removed:
        msg = f"no vm {params['vm']} in {where}"
    elif module.check_mode:
        msg = f"would delete leftover vm {params['vm']} from {where}"
    else:
        msg = f"deleted leftover vm {params['vm']} from {where}"
    module.exit_json(changed=removed, msg=msg)


def main() -> None:
    run(AnsibleModule(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True))


if __name__ == "__main__":
    main()
