"""Discovery: read what a municipality's vCenter holds and write it as the estate's as-is VMs.

``overflyt discover vcenter PLAN`` connects to the plan's source vCenter with the plan's own
credentials reference and trust settings, reads the source datacenter in bulk (the vSphere
provider's PropertyCollector reads: one paged RetrievePropertiesEx per object type, never one call
per property) and prints — or writes into an estate file — each VM's as-is fields: host,
datastore, folder, CPU, memory, disks, portgroups, power and tools state. What a vCenter cannot
know (role, tags, application group, criticality, dependencies, address) is kept from the estate
file being updated. ``--compare`` lists where the plan's ``vms`` differ from what vCenter holds,
and exits 1 when they do.

Devices (``discover devices``: SSH facts) are not built yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from overflyt.errors import ProviderUnreachable

if TYPE_CHECKING:  # the vSphere provider (pyVmomi) is imported when a command needs it
    from overflyt.facts import VCenterFacts, VMFacts
    from overflyt.plan import Plan
    from overflyt.providers.vsphere import VCenterConnection

# The fields discovery owns; everything else of an estate VM is a person's to write.
AS_IS = ("uuid", "host", "datastore", "folder", "cpu", "memory_mb", "disks_gb", "portgroups", "power", "tools")
# What the plan's `vms` holds of those (the plan has no uuid)
COMPARED = ("host", "datastore", "cpu", "memory_mb", "disks_gb", "portgroups", "power", "tools")


def source_connection(plan: Plan, plan_path: Path) -> VCenterConnection:
    """The plan's source vCenter as a connection, its credentials reference resolved."""
    from overflyt.credentials import resolve
    from overflyt.inventory import vcenter_connection
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


# -- command line ---------------------------------------------------------------------------------


def _read_estate_file(path: Path) -> dict[str, Any]:
    """The estate file's data, read by the plan loader's reader (errors name the file and line)."""
    from overflyt.errors import UsageError
    from overflyt.estate import EstateInvalid
    from overflyt.plan.loader import read_yaml

    data = read_yaml(path, "an estate file", EstateInvalid).data or {}
    if not isinstance(data, dict) or not isinstance(data.get("vms") or [], list):
        raise UsageError(f"{path}: an estate file is a mapping whose vms is a list")
    if any(not isinstance(vm, dict) or "name" not in vm for vm in data.get("vms") or []):
        raise UsageError(f"{path}: every entry of vms needs a name")
    return data


def _discover_vcenter(args: Any) -> int:
    import sys

    import yaml

    from overflyt.plan import load_plan

    plan_path = Path(args.plan)
    plan = load_plan(plan_path)
    estate = _read_estate_file(Path(args.estate)) if args.estate else None  # refused before connecting
    facts = read_source(plan, plan_path)
    found = discovered(facts, plan.source.datacenter)
    if args.compare:
        differences = compare(plan, found)
        for d in differences:
            print(str(d))
        print(
            f"overflyt: {len(found)} VMs in {plan.source.datacenter} of {facts.name}; "
            f"{len(differences)} difference(s) from {plan_path}",
            file=sys.stderr,
        )
        return 1 if differences else 0
    if estate is not None:
        path = Path(args.estate)
        vms, changes = merge(estate.get("vms") or [], found)
        estate["vms"] = vms
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(yaml.safe_dump(estate, sort_keys=False, allow_unicode=True), encoding="utf-8")
        partial.replace(path)
        for line in changes:
            print(line, file=sys.stderr)
        print(f"overflyt: {path}: {len(vms)} VMs, {len(changes)} change(s)", file=sys.stderr)
        return 0
    sys.stdout.write(yaml.safe_dump({"vms": found}, sort_keys=False, allow_unicode=True))
    return 0


def add_parser(commands: Any) -> None:
    """`overflyt discover vcenter`."""
    discover = commands.add_parser("discover", help="read the as-is estate from vCenter")
    sub = discover.add_subparsers(dest="what", required=True, metavar="WHAT")
    vcenter = sub.add_parser(
        "vcenter",
        help="the source vCenter's VMs, read in bulk",
        description=(
            "Read the plan's source vCenter (its credentials reference and trust settings) in bulk and print "
            "its datacenter's VMs as estate entries; with --estate FILE update that file's VMs (as-is fields "
            "replaced, a person's fields kept); with --compare list where the plan's vms differ (exit 1)."
        ),
    )
    vcenter.add_argument("plan", metavar="PLAN")
    what = vcenter.add_mutually_exclusive_group()
    what.add_argument("--estate", metavar="FILE", help="update the VMs of this estate file")
    what.add_argument("--compare", action="store_true", help="list differences from the plan's vms; exit 1 if any")
    vcenter.set_defaults(func=_discover_vcenter)
