"""``overflyt plan validate | show | schema | waves``: plan files checked, shown, described, proposed."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from overflyt.cli.common import EPILOG, Commands, Parser, count
from overflyt.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from overflyt.plan import Plan


def add_parser(commands: Commands) -> None:
    """Register ``overflyt plan`` and its subcommands."""
    plan = commands.add_parser("plan", help="validate, show and describe plan files")
    plan_commands = plan.add_subparsers(dest="plan_command", metavar="SUBCOMMAND", parser_class=Parser)
    plan_commands.required = True

    validate = plan_commands.add_parser(
        "validate",
        help="check a plan and its inventory; list every error",
        description="Check a plan file and the Ansible inventory beside it (read by Ansible itself: "
        "host_vars/ and group_vars/ files or directories, inline !vault values decrypted with "
        "ANSIBLE_VAULT_PASSWORD_FILE or vault ids). Exit 0 when valid; exit 2 "
        "with every error listed as FILE:LINE: FIELD: REASON (value: ...).",
    )
    validate.add_argument("plan", metavar="PLAN", help="plan file, e.g. inventories/norddjurs/plan.yml")
    validate.add_argument(
        "--credentials",
        action="store_true",
        help="also resolve every credentials reference (environment, vault, Prefect block)",
    )
    validate.set_defaults(func=_plan_validate)

    _add_plan_waves(plan_commands)

    show = plan_commands.add_parser(
        "show",
        help="waves, sites, VMs and devices of a plan",
        description="Show waves -> sites -> VMs and devices.",
    )
    show.add_argument("plan", metavar="PLAN")
    show.add_argument("--json", action="store_true", help="machine-readable output for scripts")
    show.set_defaults(func=_plan_show)

    schema = plan_commands.add_parser(
        "schema",
        help="JSON Schema of the plan file (or of waivers.yml)",
        description="Print the JSON Schema of plan files; with --waivers, that of waivers.yml, the accepted "
        "pre-check findings beside a plan (README, 'Waivers').",
    )
    schema.add_argument("--waivers", action="store_true", help="the schema of waivers.yml instead")
    schema.set_defaults(func=_plan_schema)


def _add_plan_waves(plan_commands: Commands) -> None:
    from overflyt.planning.waves import SHARED_ROLES

    waves = plan_commands.add_parser(
        "waves",
        help="propose waves from an estate file: a plan to edit",
        description="""Propose waves from an estate file (the as-is data) and write them as a plan file
that `overflyt plan validate` accepts and an engineer edits (the target datacentre and the
credentials are placeholders marked CHANGE-ME).

VMs that share a portgroup or an app group move in one wave; nothing moves after what it
depends on; shared services (VMs whose role or a tag is ad, dns, dhcp or ntp) go first, and
what needs them from another site goes in a later wave. A site's cutover moves its VMs; VMs
move ahead of their site when a dependency or the window's size needs it. Each wave fits its
window: sites are cut over one after another (--site-minutes each, and as much for each server
subnet a wave moves ahead of its site: it is a cutover of its own; with --sites N the estimate
lays them out N at once, the waves are filled as if one ran at a time), VMs move in batches that
respect the concurrency limits (--vm-minutes per batch), and disks cross --bandwidth-mbps.

Windows: the first starts at --first-window (local time, Europe/Copenhagen; default: the next
Saturday 18:00), the next ones --waves-per-week a week at the same time of day, each lasting
--window-hours.

An estate that cannot be planned (a dependency cycle, a group too big for a window, ...) is
refused with one message naming the VMs and the reason, exit 2, and no file is written.""",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    waves.add_argument("estate", metavar="ESTATE", help="estate file (YAML), e.g. written by discovery")
    waves.add_argument("-o", "--output", metavar="FILE", help="write the plan here (default: standard output)")
    waves.add_argument("-q", "--quiet", action="store_true", help="no summary on standard error")
    windows = waves.add_argument_group("windows")
    windows.add_argument(
        "--first-window",
        type=_local_time,
        metavar="'YYYY-MM-DD HH:MM'",
        help="when the first wave's window opens, local time (default: the next Saturday 18:00)",
    )
    windows.add_argument(
        "--window-hours", type=_number(0.5, 168), default=12.0, metavar="H", help="how long each window lasts (12)"
    )
    windows.add_argument(
        "--waves-per-week", type=_number(1, 7, whole=True), default=1, metavar="N", help="windows per week, 1-7 (1)"
    )
    timing = waves.add_argument_group("how long a wave takes")
    timing.add_argument(
        "--bandwidth-mbps",
        type=_number(1, 1_000_000, whole=True),
        default=1000,
        metavar="N",
        help="declared replication bandwidth into the datacentre, Mbit/s (1000)",
    )
    timing.add_argument(
        "--site-minutes", type=_number(0, 1440), default=15.0, metavar="M", help="one site's cutover (15)"
    )
    timing.add_argument(
        "--vm-minutes",
        type=_number(0, 1440),
        default=5.0,
        metavar="M",
        help="one batch of VM moves, besides copying (5)",
    )
    limits = waves.add_argument_group("concurrency limits (written to the plan)")
    for flag, dest, most, default, what in (
        ("--global", "global_", 256, 4, "VM moves at once"),
        ("--per-host", "per_host", 64, 2, "moves from one source host at once"),
        ("--per-datastore", "per_datastore", 64, 2, "moves on one datastore at once"),
        ("--per-site", "per_site", 64, 2, "moves of one site at once"),
        ("--sites", "sites", 16, 1, "sites of a wave cut over at once"),
    ):
        limits.add_argument(
            flag, dest=dest, type=_number(1, most, whole=True), default=default, metavar="N", help=f"{what} ({default})"
        )
    target = waves.add_argument_group("target and roles")
    target.add_argument(
        "--target-datastore",
        action="append",
        default=[],
        metavar="NAME",
        help="target datastore (repeatable; source datastores are mapped to them in turn; default: a placeholder)",
    )
    target.add_argument(
        "--shared-role",
        action="append",
        default=[],
        metavar="ROLE",
        help=f"role or tag of a shared service (repeatable; default: {', '.join(sorted(SHARED_ROLES))})",
    )
    waves.set_defaults(func=_plan_waves)


def _local_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'YYYY-MM-DD HH:MM' (local time), not {text!r}") from None


def _number(low: float, high: float, whole: bool = False) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {'whole ' if whole else ''}number, not {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low:g} to {high:g}, not {text}")
        return value

    return parse


def _plan_waves(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from overflyt.discovery.estate import load_estate
    from overflyt.plan.model import Concurrency
    from overflyt.planning.waves import (
        SHARED_ROLES,
        TIMEZONE,
        PlanningOptions,
        default_first_window,
        plan_waves,
        render_plan,
    )

    estate = load_estate(args.estate)
    first = args.first_window or default_first_window(datetime.now(ZoneInfo(TIMEZONE)))
    limits = Concurrency(
        global_=args.global_, per_host=args.per_host, per_datastore=args.per_datastore, per_site=args.per_site,
        sites=args.sites,
    )  # fmt: skip
    options = PlanningOptions(
        first_window=first,
        window_hours=args.window_hours,
        waves_per_week=args.waves_per_week,
        bandwidth_mbps=args.bandwidth_mbps,
        site_minutes=args.site_minutes,
        vm_minutes=args.vm_minutes,
        concurrency=limits,
        target_datastores=tuple(args.target_datastore) or PlanningOptions.target_datastores,
        shared_roles=frozenset(r.lower() for r in args.shared_role) or SHARED_ROLES,
    )
    result = plan_waves(estate, options)
    text = render_plan(result, Path(args.estate).name)
    if args.output:
        out = Path(args.output)
        partial = out.with_name(f".{out.name}.partial")
        try:
            partial.write_text(text, encoding="utf-8")
            partial.replace(out)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror}") from exc
    else:
        sys.stdout.write(text)
    if not args.quiet:
        plan = result.plan
        where = args.output or "standard output"
        counts = f"{count(len(plan.sites), 'site')}, {count(len(plan.vms), 'VM')}"
        print(
            f"overflyt: {count(len(plan.waves), 'wave')} proposed for {plan.municipality.name} "
            f"({plan.municipality.code}): {counts} -> {where}",
            file=sys.stderr,
        )
        print(
            f"  {'wave':<5}{'window opens':<18}{'sites':>6}{'VMs':>6}{'ahead':>7}{'disk GB':>10}  estimate",
            file=sys.stderr,
        )
        for e in result.estimates:
            print(
                f"  {e.number:<5}{e.start:%Y-%m-%d %H:%M}  {len(e.sites):>6}{len(e.vms):>6}{len(e.ahead):>7}"
                f"{e.disk_gb:>10,}  {e.minutes / 60:.1f} of {e.window_minutes / 60:g} h",
                file=sys.stderr,
            )
        if args.output:
            print(f"overflyt: replace every CHANGE-ME, then: overflyt plan validate {args.output}", file=sys.stderr)
    return EXIT_OK


def _plan_validate(args: argparse.Namespace) -> int:
    from overflyt.plan import load_plan

    plan = load_plan(args.plan)
    if args.credentials:
        from overflyt.plan.credentials import resolve_all

        resolve_all(plan, Path(args.plan).parent)
    waves = len(plan.waves)
    print(
        f"{args.plan}: valid — {plan.municipality.name} ({plan.municipality.code}), {waves} wave"
        f"{'s' if waves != 1 else ''}, {len(plan.sites)} sites, {len(plan.vms)} VMs, {len(plan.devices)} devices"
        + (", every credential resolves" if args.credentials else "")
    )
    return EXIT_OK


def plan_summary(plan: Plan) -> dict[str, object]:
    """Waves -> sites -> VM and device names, as `plan show --json` prints it."""
    return {
        "municipality": {"code": plan.municipality.code, "name": plan.municipality.name},
        "target": plan.target.name,
        "waves": [
            {
                "wave": wave.number,
                "name": wave.name,
                "window": {
                    "start": wave.window.start.isoformat(),
                    "end": wave.window.end.isoformat(),
                    "timezone": wave.window.timezone,
                },
                "sites": [
                    {
                        "id": site_id,
                        "name": plan.site(site_id).name,
                        "kind": plan.site(site_id).kind.value,
                        "vms": [vm.name for vm in plan.vms_of_wave(wave.number) if vm.site == site_id],
                        "devices": [d.hostname for d in plan.devices_of_site(site_id)],
                    }
                    for site_id in wave.sites
                ],
                "vms_ahead_of_their_site": list(wave.vms),
            }
            for wave in plan.waves
        ],
    }


def _plan_show(args: argparse.Namespace) -> int:
    from overflyt.plan import load_plan

    plan = load_plan(args.plan)
    if args.json:
        print(json.dumps(plan_summary(plan), indent=2, ensure_ascii=False))
        return EXIT_OK
    print(f"{plan.municipality.name} ({plan.municipality.code}) -> {plan.target.name}")
    for wave in plan.waves:
        vms = plan.vms_of_wave(wave.number)
        devices = [d for s in wave.sites for d in plan.devices_of_site(s)]
        fmt = "%Y-%m-%d %H:%M"
        print(
            f"\nWave {wave.number}: {wave.name}  [{wave.window.start.strftime(fmt)} -> "
            f"{wave.window.end.strftime(fmt)} {wave.window.timezone}]  "
            f"{len(wave.sites)} site{'s' if len(wave.sites) != 1 else ''}, {len(vms)} VMs, {len(devices)} devices"
        )
        for site_id in wave.sites:
            site = plan.site(site_id)
            print(f"  {site.id}  {site.name} ({site.kind.value}, {site.address_block})")
            site_vms = [vm for vm in vms if vm.site == site_id]
            if site_vms:
                print(f"    {'VM':<22}{'vCPU':>5}{'GiB':>6}{'disk GB':>9}  {'power':<12}{'host':<11}depends on")
            for vm in site_vms:
                print(
                    f"    {vm.name:<22}{vm.cpu:>5}{vm.memory_mb / 1024:>6.0f}{sum(vm.disks_gb):>9}  "
                    f"{vm.power.value:<12}{vm.host:<11}{', '.join(vm.depends_on) or '-'}"
                )
            for d in plan.devices_of_site(site_id):
                print(f"    device {d.hostname:<24} {d.role.value:<13}{d.platform.value:<6}{d.management}:{d.port}")
        for name in wave.vms:
            print(f"  (ahead of its site) {name}")
    return EXIT_OK


def _plan_schema(args: argparse.Namespace) -> int:
    from overflyt.plan.model import Plan as PlanModel
    from overflyt.plan.waivers import WaiversFile

    schema = (WaiversFile if getattr(args, "waivers", False) else PlanModel).model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "overflyt waivers" if getattr(args, "waivers", False) else "overflyt plan"
    print(json.dumps(schema, indent=2, ensure_ascii=False))
    return EXIT_OK
