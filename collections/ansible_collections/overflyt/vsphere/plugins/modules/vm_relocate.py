#!/usr/bin/python
# ruff: noqa: E402  (Ansible modules put DOCUMENTATION, EXAMPLES and RETURN before the imports)
"""overflyt.vsphere.vm_relocate: move a VM to a target placement (also across vCenters)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: vm_relocate
short_description: Move a VM to a host, datastore, folder and portgroups
description:
  - Moves VM O(vm) from datacenter O(source_datacenter) of O(vcenter) to the placement O(target),
    that is host and the target cluster's resource pool, datastore, VM folder, and each NIC to its
    mapped portgroup (standard or distributed), in one RelocateVM_Task; a cross-vCenter vMotion
    when O(target_vcenter) is another vCenter.
  - Idempotent. A VM already at the target is left alone (C(changed=false)); a VM no longer in the
    source datacenter is looked up in the target datacenter, so a rerun after a move is a no-op.
  - After the move the placement is read again and compared with the target; a difference fails
    the task.
  - In check mode nothing changes; the result says the move it would make (C(before), C(after)).
  - To put a VM back (rollback) give O(target.nics), the portgroup of each NIC from its recorded
    placement, instead of O(target.portgroups).
version_added: 0.1.0
author: overflyt engineers
extends_documentation_fragment: overflyt.vsphere.vcenter
options:
  vm:
    description: Name of the VM.
    type: str
    required: true
  source_datacenter:
    description: Datacenter the VM is in now (in O(vcenter)).
    type: str
    required: true
  target_vcenter:
    description:
      - The vCenter to move to, same shape as O(vcenter). Omitted, the move stays in O(vcenter).
    type: dict
  target:
    description: Where the VM goes.
    type: dict
    required: true
    suboptions:
      datacenter:
        description: Target datacenter.
        type: str
        required: true
      cluster:
        description: Target cluster; the VM goes into its root resource pool.
        type: str
        required: true
      host:
        description: Target ESXi host, a member of O(target.cluster).
        type: str
        required: true
      datastore:
        description: Target datastore for the VM's files and disks.
        type: str
        required: true
      folder:
        description: VM folder path below the datacenter's vm folder; empty for its root.
        type: str
        default: ""
      portgroups:
        description: Network map, current portgroup -> target portgroup.
        type: dict
        default: {}
      nics:
        description: Target portgroup of each NIC in device order; overrides O(target.portgroups).
        type: list
        elements: str
  create_folder:
    description: Create O(target.folder) (and its parents) when it does not exist.
    type: bool
    default: false
  timeout:
    description: Seconds the move may take before it is cancelled and the task fails.
    type: int
    default: 3600
  in_flight:
    description:
      - What to do first when a relocation of the VM is still under way in vCenter (one a killed or
        cancelled run left, since vCenter carries a task on when its caller dies).
      - V(wait) waits for it to end (it may be the very move wanted), V(cancel) cancels it and waits
        for it to end (a rollback must not have it land later). Either way the VM is then looked up again.
    type: str
    choices: [wait, cancel]
    default: wait
attributes:
  check_mode:
    support: full
    description: Resolves the target and reports the move it would make; changes nothing.
  diff_mode:
    support: full
    description: Shows the placement before and after.
"""

EXAMPLES = r"""
- name: Move ndj-print01 to the shared datacentre
  overflyt.vsphere.vm_relocate:
    vcenter: "{{ overflyt_vcenters.source }}"
    target_vcenter: "{{ overflyt_vcenters.target }}"
    vm: ndj-print01
    source_datacenter: NDJ-DC
    target:
      datacenter: MJ-DC1
      cluster: MJ-Kommuner-01
      host: mj-esx01
      datastore: mj-ds-gold-01
      folder: Kommuner/707-Norddjurs
      portgroups: {VM-Faelles-10: NDJ-707-Faelles}
    create_folder: true
  no_log: true

- name: Put it back where it was (rollback)
  overflyt.vsphere.vm_relocate:
    vcenter: "{{ overflyt_vcenters.target }}"
    target_vcenter: "{{ overflyt_vcenters.source }}"
    vm: ndj-print01
    source_datacenter: MJ-DC1
    target:
      datacenter: NDJ-DC
      cluster: NDJ-Cluster-01
      host: ndj-esx02
      datastore: ndj-ds-grenaa-01
      folder: Servere
      nics: [VM-Faelles-10]
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
  description: Placement before the move (datacenter, cluster, host, datastore, folder, portgroups, power).
  returned: always
  type: dict
  sample: {vm: ndj-print01, datacenter: NDJ-DC, cluster: NDJ-Cluster-01, host: ndj-esx02,
           datastore: ndj-ds-grenaa-01, folder: Servere, portgroups: [VM-Faelles-10], power: powered_on}
after:
  description: Placement after the move; in check mode, the placement it would have.
  returned: always
  type: dict
cross_vcenter:
  description: Whether the move went (or would go) to another vCenter.
  returned: always
  type: bool
duration_s:
  description: Seconds the move took (0 when nothing was done).
  returned: always
  type: float
msg:
  description: What was done, or would be done.
  returned: always
  type: str
  sample: "vm ndj-print01 moved from NDJ-DC/NDJ-Cluster-01/ndj-esx02, ... to MJ-DC1/MJ-Kommuner-01/mj-esx01, ..."
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

TARGET_SPEC = {
    "datacenter": {"type": "str", "required": True},
    "cluster": {"type": "str", "required": True},
    "host": {"type": "str", "required": True},
    "datastore": {"type": "str", "required": True},
    "folder": {"type": "str", "default": ""},
    "portgroups": {"type": "dict", "default": {}},
    "nics": {"type": "list", "elements": "str"},
}


def _placement(placement):
    return placement.model_dump(mode="json", exclude={"moid"})


ARGUMENT_SPEC = {
    "vcenter": VCENTER_SPEC,
    "target_vcenter": {**VCENTER_SPEC, "required": False},
    "vm": {"type": "str", "required": True},
    "source_datacenter": {"type": "str", "required": True},
    "target": {"type": "dict", "required": True, "options": TARGET_SPEC},
    "create_folder": {"type": "bool", "default": False},
    "timeout": {"type": "int", "default": 3600},
    "in_flight": {"type": "str", "choices": ["wait", "cancel"], "default": "wait"},
}
REQUIRED_IF = []


def run(module: Any) -> None:
    """The module's work on ``module``: an AnsibleModule, or the facade the collection's action
    plugin of this name gives it (the same params, check_mode, _diff, exit_json, fail_json)."""
    if vsphere is None:
        module.fail_json(msg=missing_required_lib("overflyt"), exception=IMPORT_ERROR)
    params = module.params
    try:
        source = vsphere.VCenterConnection(**connection_args(params["vcenter"]))
        dest = (
            vsphere.VCenterConnection(**connection_args(params["target_vcenter"])) if params["target_vcenter"] else None
        )
        target = vsphere.RelocationTarget(**params["target"])
    except ValueError as exc:
        module.fail_json(msg=validation_message(exc))
    check = module.check_mode
    try:
        with vsphere.connect(source) as session:
            dest_session = vsphere.connect(dest) if dest is not None else session
            try:
                folder_created = False
                if params["create_folder"] and target.folder:
                    folder_created = vsphere.ensure_folder(
                        dest_session, target.datacenter, target.folder, dry_run=check
                    )
                if folder_created and check:
                    # the folder does not exist yet, so the move cannot be resolved further
                    before = vsphere.vm_placement(session, params["vm"], datacenter=params["source_datacenter"])
                    after = before.model_copy(update={
                        "datacenter": target.datacenter, "cluster": target.cluster, "host": target.host,
                        "datastore": target.datastore, "folder": target.folder,
                        "portgroups": target.nics or [target.portgroups.get(p, p) for p in before.portgroups],
                    })  # fmt: skip
                    result = vsphere.RelocationResult(
                        vm=params["vm"], changed=True, dry_run=True, before=before, after=after,
                        message=f"would create folder {target.folder} and move vm {params['vm']} to {after.describe()}",
                    )  # fmt: skip
                else:
                    result = vsphere.relocate_vm(
                        session,
                        params["vm"],
                        params["source_datacenter"],
                        target,
                        target_session=dest_session,
                        dry_run=check,
                        timeout_s=float(params["timeout"]),
                        in_flight=params["in_flight"],
                    )
            finally:
                if dest_session is not session:
                    vsphere.disconnect(dest_session)
    except OverflytError as exc:
        fail(module, str(exc))
    out = {
        "changed": result.changed,
        "before": _placement(result.before),
        "after": _placement(result.after),
        "cross_vcenter": result.cross_vcenter,
        "duration_s": result.duration_s,
        "msg": result.message,
    }
    if module._diff:
        out["diff"] = {"before": _placement(result.before), "after": _placement(result.after)}
    module.exit_json(**out)


def main() -> None:
    run(AnsibleModule(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True))


if __name__ == "__main__":
    main()
