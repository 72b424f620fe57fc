"""Discovery: read what a municipality has — its vCenter's VMs, its network devices — as the as-is estate.

``overflyt discover vcenter PLAN`` connects to the plan's source vCenter with the plan's own
credentials reference and trust settings, reads the source datacenter in bulk (the vSphere
provider's PropertyCollector reads: one paged RetrievePropertiesEx per object type, never one call
per property) and prints — or writes into an estate file — each VM's as-is fields: host,
datastore, folder, CPU, memory, disks, portgroups, power and tools state. What a vCenter cannot
know (role, tags, application group, criticality, dependencies, address) is kept from the estate
file being updated. ``--compare`` lists where the plan's ``vms`` differ from what vCenter holds,
and exits 1 when they do.

``overflyt discover devices PLAN`` reads every device of the plan over SSH (paramiko, several at
a time, the plan's credentials references, strict host keys against the plan's known_hosts, only
``show`` commands: :mod:`overflyt.discovery.devices`) and prints a table of what each one is:
hostname, platform, version, interfaces, config hash. ``--estate FILE`` updates that file's
``devices`` (as-is fields replaced, site and role kept; plan devices the file lacks added with the
plan's site and role) — and leaves the file untouched when any device could not be read.
``--compare`` lists where the plan's devices differ (hostname, platform) and exits 1 when they do.
A device that cannot be read (unreachable, host key unknown or changed, login refused, an answer
not understood) gets one line naming it and the reason, and the command exits 1.

An estate file is only ever replaced whole: written beside it, then renamed over it.
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

# Devices `discover devices` reads at once unless told otherwise (here, not in discover_devices,
# so that building the command line does not import paramiko).
WORKERS = 16

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
    from overflyt.discovery.estate import EstateInvalid
    from overflyt.errors import UsageError
    from overflyt.plan.loader import read_yaml

    data = read_yaml(path, "an estate file", EstateInvalid).data or {}
    if not isinstance(data, dict) or not isinstance(data.get("vms") or [], list):
        raise UsageError(f"{path}: an estate file is a mapping whose vms is a list")
    if any(not isinstance(vm, dict) or "name" not in vm for vm in data.get("vms") or []):
        raise UsageError(f"{path}: every entry of vms needs a name")
    if not isinstance(data.get("devices") or [], list):
        raise UsageError(f"{path}: an estate file's devices is a list")
    if any(not isinstance(d, dict) or "hostname" not in d for d in data.get("devices") or []):
        raise UsageError(f"{path}: every entry of devices needs a hostname")
    if not isinstance(data.get("sites") or [], list) or any(
        not isinstance(s, dict) or "id" not in s for s in data.get("sites") or []
    ):
        raise UsageError(f"{path}: an estate file's sites is a list of entries with an id")
    return data


def _write_estate_file(path: Path, data: dict[str, Any]) -> None:
    """Replace the estate file whole: the new text is written and synced beside it, then renamed
    over it, so a reader sees the old file or the new one, never half of one."""
    import os
    import shutil

    import yaml

    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "w", encoding="utf-8") as out:
        out.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        out.flush()
        os.fsync(out.fileno())
    shutil.copymode(path, partial)
    partial.replace(path)


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
        _write_estate_file(path, estate)
        for line in changes:
            print(line, file=sys.stderr)
        print(f"overflyt: {path}: {len(vms)} VMs, {len(changes)} change(s)", file=sys.stderr)
        return 0
    sys.stdout.write(yaml.safe_dump({"vms": found}, sort_keys=False, allow_unicode=True))
    return 0


def _discover_devices(args: Any) -> int:
    import logging
    import sys

    from overflyt.discovery import devices as dd
    from overflyt.errors import UsageError
    from overflyt.plan import load_plan

    plan_path = Path(args.plan)
    plan = load_plan(plan_path)
    path = Path(args.estate) if args.estate else None
    estate = _read_estate_file(path) if path else None
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, not {args.workers}")
    credentials = dd.device_credentials(plan, plan_path.parent)  # bad input is refused before any device is contacted
    known_hosts = dd.known_hosts_file(plan, plan_path.parent)
    if not args.verbose:  # paramiko logs a failed connection's traceback; each failure gets its own line here
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    print(
        f"overflyt: reading {len(plan.devices)} devices of {plan_path} over SSH, {args.workers} at a time",
        file=sys.stderr,
        flush=True,
    )

    def progress(read: dd.DeviceRead) -> None:
        if read.error:
            print(f"overflyt: {read.where}: not read: {read.error}", file=sys.stderr, flush=True)
            return
        interfaces = "interfaces not read" if read.interfaces is None else f"{len(read.interfaces)} interfaces"
        insecure = "; host key NOT verified (ssh.insecure_host_keys)" if read.host_key == "insecure_override" else ""
        print(
            f"overflyt: {read.where}: {read.platform or 'unknown platform'} {read.version or ''}, {interfaces}, "
            f"config {(read.config_sha256 or '')[:12]} ({read.duration_s:.1f} s){insecure}",
            file=sys.stderr,
            flush=True,
        )

    reads = dd.read_devices(plan, credentials, known_hosts, workers=args.workers, on_read=progress)
    failed = [r for r in reads if r.error]
    summary = f"{len(failed)} of {len(reads)} devices could not be read"
    if args.compare:
        differences = dd.compare(plan, reads)
        for d in differences:
            print(str(d))
        print(
            f"overflyt: {len(reads) - len(failed)} devices read; {len(differences)} difference(s) from {plan_path}"
            + (f"; {summary}" if failed else ""),
            file=sys.stderr,
        )
        return 1 if differences or failed else 0
    if estate is not None and path is not None:
        misnamed = [r for r in reads if not r.error and r.name != r.hostname]
        for r in misnamed:
            print(f"overflyt: {r.where}: the device calls itself {r.name!r}, not {r.hostname!r}", file=sys.stderr)
        if failed or misnamed:
            why = summary if failed else f"{len(misnamed)} device(s) answer under another name"
            print(f"overflyt: {why}; {path} not changed", file=sys.stderr)
            return 1
        sites = {str(s["id"]) for s in estate.get("sites") or []} or None
        devices, changes = dd.merge(estate.get("devices") or [], reads, plan, sites)
        estate["devices"] = devices
        _write_estate_file(path, estate)
        for line in changes:
            print(line, file=sys.stderr)
        print(f"overflyt: {path}: {len(devices)} devices, {len(changes)} change(s)", file=sys.stderr)
        return 0
    rows = [("HOSTNAME", "MANAGEMENT", "PLATFORM", "VERSION", "INTERFACES", "CONFIG SHA256")]
    rows += [
        (
            r.name or "?",
            f"{r.address}:{r.port}",
            r.platform or "?",
            r.version or "?",
            "?" if r.interfaces is None else str(len(r.interfaces)),
            (r.config_sha256 or "")[:12],
        )
        for r in reads
        if not r.error
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if failed:
        print(f"overflyt: {summary}", file=sys.stderr)
        return 1
    return 0


def add_parser(commands: Any) -> None:
    """`overflyt discover vcenter` and `overflyt discover devices`."""
    discover = commands.add_parser(
        "discover", help="read the as-is estate: the source vCenter's VMs, the network devices"
    )
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
    what.add_argument(
        "--estate",
        metavar="FILE",
        help="update the VMs of this estate file (rewritten whole as plain YAML: its comments are not kept)",
    )
    what.add_argument("--compare", action="store_true", help="list differences from the plan's vms; exit 1 if any")
    vcenter.set_defaults(func=_discover_vcenter)

    devices = sub.add_parser(
        "devices",
        help="every network device of the plan, read over SSH (show commands only)",
        description=(
            "Read every network device of the plan over SSH, several at a time, with the plan's credentials "
            "references and its known_hosts (an unknown or changed host key fails that device), sending only "
            "show commands (show version, show interface brief on FRR, show running-config), and print each "
            "one's hostname, management address, platform, version, interface count and config hash (sha256 of "
            "the running config without its volatile lines, as the net_backup role saves it). With --estate FILE "
            "update that file's devices (as-is fields replaced, site and role kept; devices it lacks added with "
            "the plan's site and role), leaving it untouched when any device could not be read; with --compare "
            "list where the plan's devices differ (hostname, platform). Exit 1 when a device could not be read "
            "or differs, 2 on bad input (plan, estate file, credentials)."
        ),
    )
    devices.add_argument("plan", metavar="PLAN")
    what = devices.add_mutually_exclusive_group()
    what.add_argument(
        "--estate",
        metavar="FILE",
        help="update the devices of this estate file (rewritten whole as plain YAML: its comments are not kept)",
    )
    what.add_argument("--compare", action="store_true", help="list differences from the plan's devices; exit 1 if any")
    devices.add_argument(
        "--workers", type=int, default=WORKERS, metavar="N", help=f"devices read at once (default {WORKERS})"
    )
    devices.set_defaults(func=_discover_devices)
