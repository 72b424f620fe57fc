"""vCenter discovery: read a municipality's source vCenter as the estate's as-is VMs.

:func:`read_source` connects to the plan's source vCenter with the plan's own credentials
reference and trust settings and reads the source datacenter in bulk (the vSphere provider's
PropertyCollector reads: one paged RetrievePropertiesEx per object type, never one call per
property); :func:`discovered` gives each VM's as-is fields: host, datastore, folder, CPU, memory,
disks, portgroups, power and tools state. :func:`merge` updates an estate file's VMs with them,
keeping what a vCenter cannot know (role, tags, application group, criticality, dependencies,
address); :func:`compare` lists where the plan's ``vms`` differ from what vCenter holds.

The command line (``overflyt discover vcenter``) is :mod:`overflyt.cli.discover`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from overflyt.errors import ProviderUnreachable

if TYPE_CHECKING:  # the vSphere provider (pyVmomi) is imported when a command needs it
    from overflyt.plan import Plan
    from overflyt.precheck.facts import VCenterFacts, VMFacts
    from overflyt.providers.vsphere import VCenterConnection

# The fields discovery owns; everything else of an estate VM is a person's to write.
AS_IS = ("uuid", "host", "datastore", "folder", "cpu", "memory_mb", "disks_gb", "portgroups", "power", "tools")
# What the plan's `vms` holds of those (the plan has no uuid)
COMPARED = ("host", "datastore", "cpu", "memory_mb", "disks_gb", "portgroups", "power", "tools")


def source_connection(plan: Plan, plan_path: Path) -> VCenterConnection:
    """The plan's source vCenter as a connection, its credentials reference resolved."""
    from overflyt.ansible.inventory import vcenter_connection
    from overflyt.plan.credentials import resolve
    from overflyt.providers.vsphere import VCenterConnection

    endpoint = plan.source.vcenter
    credential = resolve(plan, endpoint.credentials, plan_path.parent)
    return VCenterConnection(**vcenter_connection(endpoint, plan_path.parent, credential.username, credential.secret))


def read_source(plan: Plan, plan_path: Path) -> VCenterFacts:
    """The source datacenter's facts; ProviderUnreachable naming the endpoint and the reason."""
    from overflyt.providers.vsphere import collect_facts

    facts = collect_facts(source_connection(plan, plan_path), [plan.source.datacenter])
    if not facts.reachable or facts.login_failed:
        raise ProviderUnreachable(f"vCenter {facts.name} ({facts.url}): {facts.error}")
    return facts


def as_is(vm: VMFacts) -> dict[str, Any]:
    """One VM's as-is fields, in the estate file's shape."""
    return {
        "name": vm.name,
        "uuid": vm.uuid,
        "host": vm.host,
        "datastore": vm.datastores[0] if vm.datastores else "",
        "folder": vm.folder,
        "cpu": vm.cpu,
        "memory_mb": vm.memory_mb,
        "disks_gb": list(vm.disks_gb),
        "portgroups": list(vm.portgroups),
        "power": vm.power,
        "tools": vm.tools,
    }


def discovered(facts: VCenterFacts, datacenter: str) -> list[dict[str, Any]]:
    """Every VM of ``datacenter``, by name (templates and VMs of other datacenters left out)."""
    return sorted((as_is(vm) for vm in facts.vms.values() if vm.datacenter == datacenter), key=lambda v: v["name"])


def merge(existing: Iterable[Mapping[str, Any]], found: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The estate's VMs updated with what was found: as-is fields replaced, a person's fields kept,
    new VMs added, VMs vCenter no longer has dropped. Returns (VMs, one line per change)."""
    before = {str(vm["name"]): dict(vm) for vm in existing}
    out: list[dict[str, Any]] = []
    changes: list[str] = []
    for vm in found:
        old = before.pop(vm["name"], None)
        if old is None:
            changes.append(f"new: {vm['name']}")
            out.append(vm)
            continue
        merged = {**old, **{k: vm[k] for k in AS_IS if vm.get(k) is not None}}
        changed = [k for k in AS_IS if old.get(k) != merged.get(k)]
        if changed:
            changes.append(f"changed: {vm['name']}: {', '.join(changed)}")
        out.append(merged)
    changes += [f"gone: {name} (vCenter no longer has it)" for name in sorted(before)]
    return out, changes


def merge_estate(estate: Mapping[str, Any], found: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """An estate file's data with its VMs merged with what was found (:func:`merge`); the rest kept.
    Returns (the new data, one line per change)."""
    vms, changes = merge(estate.get("vms") or [], found)
    return {**estate, "vms": vms}, changes


@dataclass(frozen=True)
class Difference:
    vm: str
    field: str
    plan: Any
    vcenter: Any

    def __str__(self) -> str:
        return f"vm {self.vm}: {self.field}: plan says {self.plan!r}, vCenter has {self.vcenter!r}"


def compare(plan: Plan, found: list[dict[str, Any]]) -> list[Difference]:
    """Where the plan's ``vms`` differ from vCenter: each compared field, and VMs only one side has."""
    have = {vm["name"]: vm for vm in found}
    out: list[Difference] = []
    for vm in plan.vms:
        there = have.pop(vm.name, None)
        if there is None:
            out.append(Difference(vm.name, "presence", "in the plan", "no such VM"))
            continue
        planned = vm.model_dump(mode="json")
        out += [Difference(vm.name, f, planned.get(f), there[f]) for f in COMPARED if planned.get(f) != there[f]]
    out += [Difference(name, "presence", "not in the plan", "present") for name in sorted(have)]
    return out
