"""``overflyt discover vcenter | devices``: read what a municipality has as the as-is estate.

``overflyt discover vcenter PLAN`` reads the plan's source vCenter in bulk
(:mod:`overflyt.discovery.vcenter`) and prints — or writes into an estate file — each VM's as-is
fields: host, datastore, folder, CPU, memory, disks, portgroups, power and tools state. What a
vCenter cannot know (role, tags, application group, criticality, dependencies, address) is kept
from the estate file being updated. ``--compare`` lists where the plan's ``vms`` differ from what
vCenter holds, and exits 1 when they do.

``overflyt discover devices PLAN`` checks every device of the plan over SSH (paramiko, several at
a time, the plan's credentials references, strict host keys against the plan's known_hosts) and
reads those that pass through the ``net_facts`` role (only ``show`` commands, interfaces parsed by
``ansible.utils.cli_parse``: :mod:`overflyt.discovery.devices`) and prints a table of what each one is:
hostname, platform, version, interfaces, config hash. ``--estate FILE`` updates that file's
``devices`` (as-is fields replaced, site and role kept; plan devices the file lacks added with the
plan's site and role) — and leaves the file untouched when any device could not be read.
``--compare`` lists where the plan's devices differ (hostname, platform) and exits 1 when they do.
A device that cannot be read (unreachable, host key unknown or changed, login refused, an answer
not understood) gets one line naming it and the reason, and the command exits 1.

An estate file is only ever replaced whole, its comments and layout kept (ruamel.yaml,
:mod:`overflyt.discovery.roundtrip`): written beside it, then renamed over it
(:mod:`overflyt.discovery.common`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from overflyt.cli.common import Commands
from overflyt.discovery.common import WORKERS, read_estate_file, write_estate_file
from overflyt.errors import UsageError

if TYPE_CHECKING:
    from overflyt.discovery.devices import DeviceRead


def add_parser(commands: Commands) -> None:
    """Register ``overflyt discover vcenter`` and ``overflyt discover devices``."""
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
        help="update the VMs of this estate file (rewritten whole, its comments and layout kept)",
    )
    what.add_argument("--compare", action="store_true", help="list differences from the plan's vms; exit 1 if any")
    vcenter.set_defaults(func=_discover_vcenter)

    devices = sub.add_parser(
        "devices",
        help="every network device of the plan, read over SSH (show commands only)",
        description=(
            "Check every network device of the plan over SSH, several at a time, with the plan's credentials "
            "references and its known_hosts (an unknown or changed host key fails that device), read those that "
            "pass through the net_facts role sending only show commands (show version, show running-config, the "
            "interface listing parsed by ansible.utils.cli_parse: FRR, IOS, AOS-CX), and print each "
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
        help="update the devices of this estate file (rewritten whole, its comments and layout kept)",
    )
    what.add_argument("--compare", action="store_true", help="list differences from the plan's devices; exit 1 if any")
    devices.add_argument(
        "--workers", type=int, default=WORKERS, metavar="N", help=f"devices read at once (default {WORKERS})"
    )
    devices.set_defaults(func=_discover_devices)


def _discover_vcenter(args: argparse.Namespace) -> int:
    import yaml

    from overflyt.discovery.vcenter import compare, discovered, merge_estate, read_source
    from overflyt.plan import load_plan

    plan_path = Path(args.plan)
    plan = load_plan(plan_path)
    estate = read_estate_file(Path(args.estate)) if args.estate else None  # refused before connecting
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
        estate, changes = merge_estate(estate, found)
        write_estate_file(path, estate)
        for line in changes:
            print(line, file=sys.stderr)
        print(f"overflyt: {path}: {len(estate['vms'])} VMs, {len(changes)} change(s)", file=sys.stderr)
        return 0
    sys.stdout.write(yaml.safe_dump({"vms": found}, sort_keys=False, allow_unicode=True))
    return 0


def _device_progress(read: DeviceRead) -> None:
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


def _discover_devices(args: argparse.Namespace) -> int:
    from overflyt.discovery import devices as dd
    from overflyt.plan import load_plan

    plan_path = Path(args.plan)
    plan = load_plan(plan_path)
    path = Path(args.estate) if args.estate else None
    estate = read_estate_file(path) if path else None
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
    reads = dd.read_devices(
        plan, credentials, known_hosts, plan_path=plan_path, workers=args.workers, on_read=_device_progress
    )
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
        misnamed = dd.misnamed(reads)
        for r in misnamed:
            print(f"overflyt: {r.where}: the device calls itself {r.name!r}, not {r.hostname!r}", file=sys.stderr)
        if failed or misnamed:
            why = summary if failed else f"{len(misnamed)} device(s) answer under another name"
            print(f"overflyt: {why}; {path} not changed", file=sys.stderr)
            return 1
        estate, changes = dd.merge_estate(estate, reads, plan)
        write_estate_file(path, estate)
        for line in changes:
            print(line, file=sys.stderr)
        print(f"overflyt: {path}: {len(estate['devices'])} devices, {len(changes)} change(s)", file=sys.stderr)
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
