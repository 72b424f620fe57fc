"""The `overflyt` command.

Exit codes, across every command: 0 ok; 1 checks or migration failed (and were rolled back);
2 bad input or usage; 3 rollback itself failed (a human must act).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from overflyt import __version__
from overflyt.ansible.cancel import install_cancel_handlers
from overflyt.ansible.runner import AnsibleEvent
from overflyt.errors import EXIT_BAD_INPUT, EXIT_OK, OverflytError, UsageError
from overflyt.plan import Plan, load_plan
from overflyt.plan.model import Plan as PlanModel

EPILOG = """exit codes: 0 ok; 1 checks or migration failed (and were rolled back);
2 bad input or usage; 3 rollback itself failed (a human must act)"""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors say which command they belong to and exit 2 with one message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="overflyt",
        description="Move a municipality's virtual servers and network configuration into a shared "
        "datacentre, wave by wave, with pre-checks and rollback per site.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"overflyt {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens in detail")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    plan = commands.add_parser("plan", help="validate, show and describe plan files")
    plan_commands = plan.add_subparsers(dest="plan_command", metavar="SUBCOMMAND", parser_class=_Parser)
    plan_commands.required = True

    validate = plan_commands.add_parser(
        "validate",
        help="check a plan and its inventory; list every error",
        description="Check a plan file and the Ansible inventory beside it. Exit 0 when valid; exit 2 "
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
        "schema", help="JSON Schema of the plan file", description="Print the JSON Schema of plan files."
    )
    schema.set_defaults(func=_plan_schema)

    precheck = commands.add_parser(
        "precheck",
        help="check what would block a wave, touching nothing",
        description="Read both vCenters and the wave's devices (read-only, through Ansible in check mode), "
        "judge them against the plan and report every finding. Exit 0 when nothing critical was found, "
        "1 when the wave is blocked, 2 on bad input. Every run leaves report.{json,junit.xml,ctrf.json,md} "
        "in its run record under $OVERFLYT_STATE_DIR (default .overflyt/state).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    precheck.add_argument("plan", metavar="PLAN")
    precheck.add_argument("--wave", type=int, required=True, metavar="N", help="the wave to check")
    precheck.add_argument(
        "--site", action="append", default=[], metavar="ID", help="only this site of the wave (repeatable)"
    )
    precheck.add_argument(
        "--format", choices=("table", "json", "junit", "ctrf", "markdown"), default="table", help="report format"
    )
    precheck.add_argument("--output", metavar="FILE", help="write the report here instead of standard output")
    precheck.add_argument(
        "--mode",
        choices=("precheck", "run"),
        default="precheck",
        help="precheck: ahead of the window (default); run: right before the wave, the window must be open",
    )
    precheck.add_argument("-q", "--quiet", action="store_true", help="no progress on standard error")
    precheck.set_defaults(func=_precheck)

    wave = commands.add_parser("wave", help="run a wave: cut its sites over (or dry-run it)")
    wave_commands = wave.add_subparsers(dest="wave_command", metavar="SUBCOMMAND", parser_class=_Parser)
    wave_commands.required = True
    wave_run = wave_commands.add_parser(
        "run",
        help="pre-check, then cut each site over: VMs and network together, rolled back on failure",
        description="Pre-check the wave (anything critical stops it before any change), then cut each "
        "site over: back up its devices, record where its VMs stand, move the VMs, push and verify "
        "the network change, and check real traffic from the site. A site that fails is rolled back "
        "(devices restored byte-equal, VMs back where they stood) per the plan's policy. Rerunning "
        "a wave resumes it: done sites are skipped, a half-done site is finished. With --dry-run the "
        "same playbooks run under --check --diff and nothing changes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    wave_run.add_argument("plan", metavar="PLAN")
    wave_run.add_argument("--wave", type=int, required=True, metavar="N")
    wave_run.add_argument("--site", action="append", default=[], metavar="ID", help="only this site (repeatable)")
    wave_run.add_argument("--dry-run", action="store_true", help="show what would move and change; change nothing")
    wave_run.add_argument("--approved-by", metavar="NAME", help="who approved the cutover (plans that need approval)")
    wave_run.add_argument("--ticket", metavar="REF", help="the change ticket of the approval")
    wave_run.add_argument(
        "--outside-window",
        action="store_true",
        help="run although the wave's window is not open (recorded as an override in the report)",
    )
    wave_run.add_argument("-q", "--quiet", action="store_true", help="no progress on standard error")
    wave_run.set_defaults(func=_wave_run)

    rollback = commands.add_parser(
        "rollback",
        help="roll a site's cutover back on demand",
        description="Restore a site to what its cutover recorded before it changed anything: devices "
        "to their backups (verified byte-equal), VMs to their host, datastore, folder, portgroups "
        "and power state. Exit 3 when the rollback cannot finish: a human must act.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rollback.add_argument("plan", metavar="PLAN")
    rollback.add_argument("--site", required=True, metavar="ID")
    rollback.add_argument("-q", "--quiet", action="store_true", help="no progress on standard error")
    rollback.set_defaults(func=_rollback)

    _add_optional_commands(commands)
    return parser


def _add_plan_waves(plan_commands: argparse._SubParsersAction[_Parser]) -> None:
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
window: sites are cut over one after another (--site-minutes each), VMs move in batches that
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
        global_=args.global_, per_host=args.per_host, per_datastore=args.per_datastore, per_site=args.per_site
    )
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
        counts = f"{_count(len(plan.sites), 'site')}, {_count(len(plan.vms), 'VM')}"
        print(
            f"overflyt: {_count(len(plan.waves), 'wave')} proposed for {plan.municipality.name} "
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


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _add_optional_commands(commands: argparse._SubParsersAction[_Parser]) -> None:
    """Commands that live in their own packages register themselves here."""
    from overflyt.lab.cli import add_parser as add_lab

    add_lab(commands)
    __import__("overflyt.orchestration.serve", fromlist=["add_parser"]).add_parser(commands)  # `overflyt serve`
    __import__("overflyt.discovery.vcenter", fromlist=["add_parser"]).add_parser(commands)  # `overflyt discover`


def _plan_validate(args: argparse.Namespace) -> int:
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
    schema = PlanModel.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "overflyt plan"
    print(json.dumps(schema, indent=2, ensure_ascii=False))
    return EXIT_OK


def progress_printer(quiet: bool) -> Callable[[AnsibleEvent], None] | None:
    """Progress a person can follow on standard error: each task once, and every failure."""
    if quiet:
        return None
    seen: set[str] = set()

    def show(event: AnsibleEvent) -> None:
        if event.status == "start" and event.task and event.task not in seen:
            seen.add(event.task)
            print(f"  - {event.task}", file=sys.stderr, flush=True)
        elif event.status in ("failed", "unreachable"):
            print(f"    {event.status}: {event.host}: {event.message}", file=sys.stderr, flush=True)

    return show


def _precheck(args: argparse.Namespace) -> int:
    from overflyt.precheck import exit_code, render
    from overflyt.precheck.wave import precheck_wave

    if not args.quiet:
        print(f"overflyt: pre-checking wave {args.wave} of {args.plan}", file=sys.stderr)
    outcome = precheck_wave(
        Path(args.plan), args.wave, args.site, mode=args.mode, on_event=progress_printer(args.quiet)
    )
    text = render(outcome.report, args.format)
    if args.output:
        Path(args.output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    else:
        print(text)
    if not args.quiet:
        verdict = "BLOCKED" if outcome.report.blocked else "ready"
        print(f"overflyt: wave {args.wave} {verdict}; run record: {outcome.run_dir}", file=sys.stderr)
    return exit_code(outcome.report)


def _flow_result(state: Any, what: str) -> dict[str, Any]:
    """The report a flow returned, also from a Failed state; an exception inside the flow is re-raised
    as what it was (an OverflytError keeps its exit code)."""
    data = state.result(raise_on_failure=False)
    if isinstance(data, BaseException):
        raise data
    if not isinstance(data, dict):
        raise OverflytError(f"{what}: the flow ended {state.type.value.lower()} without a report")
    return data


def _print_wave(data: dict[str, Any], quiet: bool) -> int:
    for site in data.get("sites", []):
        print(f"{site['site']}: {site['status']}" + (f" — {site['error']}" if site.get("error") else ""))
    if data.get("blocked_by_prechecks"):
        print(f"wave {data['wave']}: blocked before any change (pre-checks or approval); see the run record")
    if not quiet:
        print(f"overflyt: run record: {data.get('run_dir', '')}", file=sys.stderr)
    return int(data["exit_code"])


def _wave_run(args: argparse.Namespace) -> int:
    from flows.wave import MigrateWaveParams, migrate_wave, prepare_local_database

    from overflyt.plan.credentials import resolve_all
    from overflyt.plan.select import refuse_vms_ahead_of_their_site, select_sites
    from overflyt.record import municipality_lock

    # Refuse bad input here, before Prefect starts: unknown wave or site, unresolvable secrets, no approval.
    plan = load_plan(args.plan)
    select_sites(plan, args.wave, args.site)
    refuse_vms_ahead_of_their_site(plan)
    resolve_all(plan, Path(args.plan).parent)
    if not args.dry_run and plan.approval_required and not args.approved_by:
        raise UsageError(
            f"wave {args.wave} of {plan.municipality.name} needs approval before its cutover: "
            "give --approved-by NAME (and --ticket REF), or run it with --dry-run"
        )
    with municipality_lock(plan.municipality.code, "checking that no other run is active"):
        pass  # a busy municipality is refused here, before Prefect starts (the flow takes the lock again)
    if not args.quiet:
        kind = "dry run" if args.dry_run else "cutover"
        print(f"overflyt: wave {args.wave} {kind} of {args.plan} (Prefect flow migrate-wave)", file=sys.stderr)
    params = MigrateWaveParams(
        plan=args.plan,
        wave=args.wave,
        sites=args.site,
        dry_run=args.dry_run,
        approved_by=args.approved_by,
        ticket=args.ticket,
        outside_window=args.outside_window,
    )
    prepare_local_database()
    install_cancel_handlers()  # Ctrl-C / SIGTERM: stop the running step, roll the site back, exit
    state = migrate_wave(params, return_state=True)
    return _print_wave(_flow_result(state, "migrate-wave"), args.quiet)


def _rollback(args: argparse.Namespace) -> int:
    from flows.wave import RollbackSiteParams, prepare_local_database, rollback_site

    from overflyt.cutover.wave import rollback_target
    from overflyt.plan.credentials import resolve_all
    from overflyt.record import municipality_lock

    # Refuse bad input before Prefect starts: unknown site, nothing recorded, secrets, a busy municipality.
    plan, _ = rollback_target(Path(args.plan), args.site)
    resolve_all(plan, Path(args.plan).parent)
    with municipality_lock(plan.municipality.code, "checking that no other run is active"):
        pass
    install_cancel_handlers()
    prepare_local_database()
    state = rollback_site(RollbackSiteParams(plan=args.plan, site=args.site), return_state=True)
    return _print_wave(_flow_result(state, "rollback-site"), args.quiet)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.func(args)
    except OverflytError as exc:
        print(f"overflyt: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("overflyt: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    return code


if __name__ == "__main__":
    sys.exit(main())
