#!/usr/bin/python
# ruff: noqa: E402  (Ansible modules put DOCUMENTATION, EXAMPLES and RETURN before the imports)
"""overflyt.vsphere.estate_facts: read-only facts of a vCenter."""

from __future__ import annotations

DOCUMENTATION = r"""
module: estate_facts
short_description: Read-only facts of a vCenter's datacenters
description:
  - Reads VMs, hosts, clusters, datastores, portgroups and VM folders of the given datacenters in a
    fixed number of PropertyCollector calls, and returns them as overflyt's C(VCenterFacts).
    With O(vms), only the VMs of those names are read in full (one call more).
  - An unreachable vCenter or a refused login is not a task failure by default; the facts then say
    C(reachable=false) or C(login_failed=true) with the reason in C(error), for the pre-check rules
    to judge. Set O(fail_on_error=true) to fail instead.
  - Runs on the controller with the overflyt venv's python.
version_added: 0.1.0
author: overflyt engineers
extends_documentation_fragment: overflyt.vsphere.vcenter
options:
  datacenters:
    description: Datacenters to read; empty reads every datacenter.
    type: list
    elements: str
    default: []
  vms:
    description:
      - Read only the VMs of these names (as people see them), every VM of each name, so a
        duplicate still shows. The other VMs are not read and not in the facts, and the clusters'
        allocated CPU and memory count only these. Hosts, clusters, datastores, portgroups and
        folders are read as without it.
      - Omitted, every VM of the datacenters is read.
    type: list
    elements: str
  fail_on_error:
    description: Fail the task when the vCenter is unreachable or refuses the login.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
"""

EXAMPLES = r"""
- name: Gather the source vCenter's facts
  overflyt.vsphere.estate_facts:
    vcenter: "{{ overflyt_vcenters.source }}"
    datacenters: [NDJ-DC]
  register: source_facts

- name: Read only the two VMs a step moves (and every VM of their names)
  overflyt.vsphere.estate_facts:
    vcenter: "{{ overflyt_vcenters.source }}"
    datacenters: [NDJ-DC]
    vms: [ndj-dc01, ndj-dc02]
  register: two_vms

- name: Show one VM
  ansible.builtin.debug:
    var: source_facts.vcenter_facts.vms['ndj-dc01']
"""

RETURN = r"""
overflyt_reason:
  description:
    - On failure, the reason (also C(msg)) with every secret value removed. The task runs with no_log,
      so its role reads it with C(overflyt.vsphere.failure_reason) and says it in a task of its own.
  returned: failure
  type: str
vcenter_facts:
  description: overflyt.precheck.facts.VCenterFacts as JSON.
  returned: always
  type: dict
  sample:
    name: ndj-vcenter
    url: https://127.0.0.1:18443/sdk
    reachable: true
    login_failed: false
    tls: verified
    version: 6.5.0
    vms: {ndj-dc01: {name: ndj-dc01, host: ndj-esx01, cpu: 2, power: powered_on}}
    folders: {NDJ-DC: [Servere]}
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
    from overflyt.providers import vsphere

    IMPORT_ERROR = None
except ImportError:
    vsphere = None
    IMPORT_ERROR = traceback.format_exc()


ARGUMENT_SPEC = {
    "vcenter": VCENTER_SPEC,
    "datacenters": {"type": "list", "elements": "str", "default": []},
    "vms": {"type": "list", "elements": "str"},
    "fail_on_error": {"type": "bool", "default": False},
}
REQUIRED_IF = []


def run(module: Any) -> None:
    """The module's work on ``module``: an AnsibleModule, or the facade the collection's action
    plugin of this name gives it (the same params, check_mode, _diff, exit_json, fail_json)."""
    if vsphere is None:
        module.fail_json(msg=missing_required_lib("overflyt"), exception=IMPORT_ERROR)
    try:
        endpoint = vsphere.VCenterConnection(**connection_args(module.params["vcenter"]))
    except ValueError as exc:
        module.fail_json(msg=validation_message(exc))
    facts = vsphere.collect_facts(endpoint, module.params["datacenters"], module.params["vms"])
    result = {"changed": False, "vcenter_facts": facts.model_dump(mode="json")}
    if facts.error and module.params["fail_on_error"]:
        fail(module, facts.error, **result)
    module.exit_json(**result)


def main() -> None:
    run(AnsibleModule(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True))


if __name__ == "__main__":
    main()
