#!/usr/bin/python
# ruff: noqa: E402  (Ansible modules put DOCUMENTATION, EXAMPLES and RETURN before the imports)
"""overflyt.vsphere.vm_power: bring a VM to a power state."""

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_power
short_description: Bring a VM to a power state
description:
  - Powers VM O(vm) on, off or suspends it; does nothing when it already is in O(state).
  - Powering off shuts the guest down when VMware Tools run and O(graceful=true) (hard power-off
    after O(timeout)), else powers off hard.
  - Used to restore a VM's recorded power state in a rollback.
version_added: 0.1.0
author: overflyt engineers
extends_documentation_fragment: overflyt.vsphere.vcenter
options:
  vm:
    description: Name of the VM.
    type: str
    required: true
  datacenter:
    description: Datacenter to look for the VM in; omitted, every datacenter (the name must be unique).
    type: str
  state:
    description: Power state wanted.
    type: str
    required: true
    choices: [powered_on, powered_off, suspended]
  graceful:
    description: Shut the guest down instead of a hard power-off when its tools run.
    type: bool
    default: true
  timeout:
    description: Seconds the power operation may take.
    type: int
    default: 600
attributes:
  check_mode:
    support: full
    description: Reports the change it would make; changes nothing.
  diff_mode:
    support: full
    description: Shows the power state before and after.
"""

EXAMPLES = r"""
- name: Restore the recorded power state
  overflyt.vsphere.vm_power:
    vcenter: "{{ overflyt_vcenters.source }}"
    vm: ndj-print01
    datacenter: NDJ-DC
    state: powered_on
  no_log: true
"""

RETURN = r"""
overflyt_reason:
  description:
    - On failure, the reason (also C(msg)) with every secret value removed. The task runs with no_log,
      so its role reads it with C(overflyt.vsphere.failure_reason) and says it in a task of its own.
  returned: failure
  type: str
before:
  description: Power state before.
  returned: always
  type: str
  sample: powered_off
after:
  description: Power state after (in check mode, the one it would have).
  returned: always
  type: str
  sample: powered_on
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
    "datacenter": {"type": "str"},
    "state": {"type": "str", "required": True, "choices": ["powered_on", "powered_off", "suspended"]},
    "graceful": {"type": "bool", "default": True},
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
    try:
        with vsphere.connect(endpoint) as session:
            result = vsphere.set_power(
                session,
                params["vm"],
                params["state"],
                datacenter=params["datacenter"],
                dry_run=module.check_mode,
                graceful=params["graceful"],
                timeout_s=float(params["timeout"]),
            )
    except OverflytError as exc:
        fail(module, str(exc))
    out = {"changed": result.changed, "before": result.before, "after": result.after, "msg": result.message}
    if module._diff:
        out["diff"] = {"before": f"power: {result.before}\n", "after": f"power: {result.after}\n"}
    module.exit_json(**out)


def main() -> None:
    run(AnsibleModule(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True))


if __name__ == "__main__":
    main()
