"""Generates the per-run Ansible inventory from the plan and the connection settings beside it.

The generated inventory lives in the run record, never in ``inventories/``. A device's
``ansible_password`` set in the inventory beside the plan (e.g. an inline ``!vault`` value) is used
instead of its credentials reference's secret; the username is always the plan's. Desired state reaches
roles as inventory variables prefixed ``overflyt_``; secrets appear only as lookups of files the
runner adapter writes outside the run record (see :func:`overflyt.ansible.runner.secret_lookup`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from overflyt.ansible.runner import secret_lookup
from overflyt.errors import UsageError
from overflyt.plan import Inventory, Plan
from overflyt.plan.credentials import ResolvedCredential
from overflyt.plan.model import ProbeSSH, VCenterEndpoint

CONTROLLER = "overflyt-controller"


def group_name(kind: str, value: str) -> str:
    return f"{kind}_{re.sub(r'[^A-Za-z0-9_]', '_', value)}"


def build_inventory(
    plan: Plan,
    connections: Inventory,
    plan_dir: Path,
    *,
    sites: list[str],
    hosts: list[str] | None = None,
    credentials: Mapping[str, ResolvedCredential],
    device_vars: Mapping[str, Mapping[str, Any]] | None = None,
    controller_vars: Mapping[str, Any] | None = None,
    vm_hosts: Mapping[str, Mapping[str, Any]] | None = None,
    vcenters: bool = True,
    probe_hosts: Mapping[str, ProbeSSH] | None = None,
) -> tuple[dict[str, Any], dict[str, SecretStr]]:
    """The inventory for a run over ``sites`` (only the devices ``hosts`` names, when given), and the
    secrets it refers to by name.

    ``device_vars`` adds per-device desired state (``overflyt_*``) and ``controller_vars`` adds
    variables of the controller host (which runs the vSphere tasks). ``vm_hosts`` (VM name →
    its ``overflyt_vm_*`` variables) adds the group ``vms``: one host per VM, in the order given,
    run on the controller's python (``ansible_connection: local``) with the same
    ``overflyt_vcenters`` as the controller, so a play over ``vms`` moves VMs ``forks`` at a time.
    Without ``vcenters`` (a step that talks to devices only) no vCenter connection or secret is in it.
    ``probe_hosts`` (inventory name → plan ``probe.ssh``) adds the group ``probes``: Linux hosts
    reached over SSH (paramiko, password from the credentials, host key checked like a device's).
    """
    secrets: dict[str, SecretStr] = {}

    def password(reference: str) -> str:
        secrets[reference] = credentials[reference].secret
        return secret_lookup(reference)

    children: dict[str, Any] = {}
    network_hosts: dict[str, Any] = {}
    for device in plan.devices:
        if device.site not in sites or (hosts is not None and device.hostname not in hosts):
            continue
        values: dict[str, Any] = dict(connections.host_vars.get(device.hostname, {}))
        for key in sorted(connections.secrets.get(device.hostname, frozenset())):
            # a vault value of the inventory: a secret file at run time, never the run record's text
            name = f"inventory/{device.hostname}/{key}"
            value = values[key]
            secrets[name] = value if isinstance(value, SecretStr) else SecretStr(str(value))
            values[key] = secret_lookup(name)
        values.setdefault("ansible_host", str(device.management))
        values.setdefault("ansible_port", device.port)
        values.setdefault("ansible_connection", "ansible.netcommon.network_cli")
        values.setdefault("ansible_network_os", "cisco.ios.ios")
        values["ansible_user"] = credentials[device.credentials].username
        if "ansible_password" not in values:  # the inventory's own (an inline !vault value) wins
            values["ansible_password"] = password(device.credentials)
            values["overflyt_credentials"] = f"credentials entry {device.credentials}"
        else:
            values["overflyt_credentials"] = f"the inventory's ansible_password of {device.hostname}"
        values["overflyt_site"] = device.site
        values["overflyt_role"] = device.role.value
        values["overflyt_platform"] = device.platform.value
        values["overflyt_host_key_insecure"] = device.hostname in plan.ssh.insecure_host_keys
        values.update((device_vars or {}).get(device.hostname, {}))
        network_hosts[device.hostname] = values
        for group in (group_name("platform", device.platform.value), group_name("site", device.site)):
            children.setdefault(group, {"hosts": {}})["hosts"][device.hostname] = None

    controller: dict[str, Any] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    if vcenters:
        controller["overflyt_vcenters"] = {
            "source": _vcenter(plan.source.vcenter, plan_dir, credentials, password),
            "target": _vcenter(plan.target.vcenter, plan_dir, credentials, password),
        }
    controller.update(controller_vars or {})
    groups: dict[str, Any] = {
        "controller": {"hosts": {CONTROLLER: controller}},
        "network": {"hosts": network_hosts, "children": children},
    }
    if probe_hosts:
        groups["probes"] = {
            "hosts": {
                name: {
                    "ansible_host": p.host,
                    "ansible_port": p.port,
                    "ansible_connection": "ansible.builtin.paramiko_ssh",
                    "ansible_user": credentials[p.credentials].username,
                    "ansible_password": password(p.credentials),
                    "ansible_python_interpreter": "auto_silent",
                }
                for name, p in probe_hosts.items()
            }
        }
    if vm_hosts is not None:
        clash = sorted(set(vm_hosts) & ({CONTROLLER} | set(network_hosts)))
        if clash:
            raise UsageError(f"VM names clash with other inventory hosts: {', '.join(clash)}")
        groups["vms"] = {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "overflyt_vcenters": controller.get("overflyt_vcenters", {}),
            },
            "hosts": {name: dict(values) for name, values in vm_hosts.items()},
        }
    inventory: dict[str, Any] = {
        "all": {
            "vars": {
                "overflyt_municipality": plan.municipality.code,
                "overflyt_municipality_name": plan.municipality.name,
            },
            "children": groups,
        }
    }
    return inventory, secrets


def _vcenter(
    endpoint: VCenterEndpoint,
    plan_dir: Path,
    credentials: Mapping[str, ResolvedCredential],
    password: Any,
) -> dict[str, Any]:
    username = credentials[endpoint.credentials].username
    return vcenter_connection(endpoint, plan_dir, username, password(endpoint.credentials))


def vcenter_connection(endpoint: VCenterEndpoint, plan_dir: Path, username: str, password: Any) -> dict[str, Any]:
    """The fields of ``providers.vsphere.VCenterConnection`` for a plan's vCenter endpoint: host
    and port from its url, its CA file resolved next to the plan, its trust settings."""
    host, _, port = endpoint.hostport.partition(":")
    ca_file = str((plan_dir / endpoint.tls.ca_file).resolve()) if endpoint.tls.ca_file else None
    return {
        "name": endpoint.name,
        "hostname": host,
        "port": int(port or 443),
        "username": username,
        "password": password,
        "ca_file": ca_file,
        "thumbprint": endpoint.tls.thumbprint,
        "insecure": endpoint.tls.insecure,
    }
