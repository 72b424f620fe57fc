"""``overflyt wave run`` and ``overflyt rollback``: a wave's cutover (or dry run), a site's rollback."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from overflyt.cli.common import EPILOG, Commands, Parser, add_lang
from overflyt.cutover.outcome import shown_status
from overflyt.errors import OverflytError, UsageError


def add_parser(commands: Commands) -> None:
    """Register ``overflyt wave run`` and ``overflyt rollback``."""
    wave = commands.add_parser("wave", help="run a wave: cut its sites over (or dry-run it)")
    wave_commands = wave.add_subparsers(dest="wave_command", metavar="SUBCOMMAND", parser_class=Parser)
    wave_commands.required = True
    wave_run = wave_commands.add_parser(
        "run",
        help="pre-check, then cut each site over: VMs and network together, rolled back on failure",
        description="Pre-check the wave (anything critical stops it before any change), then cut each "
        "site over: back up its devices, record where its VMs stand, move the VMs, push and verify "
        "the network change, and check real traffic from the site. A site that fails is rolled back "
        "(devices restored byte-equal, VMs back where they stood) per the plan's policy. Rerunning "
        "a wave resumes it: done sites are skipped, a half-done site is finished. With --dry-run the "
        "same playbooks run under --check --diff and nothing changes. No site starts after the wave's "
        "window has closed, or when what is left of it is shorter than the site's estimate plus the plan's "
        "margin (window_policy): such a site is reported not_started, untouched, and a rerun in the next "
        "window (or with --outside-window) carries on with it. A server subnet the wave moves ahead of its "
        "site (waves[].vms: whole subnets only) is cut over after the wave's sites as a unit of its own, "
        "SITE:NETWORK-PREFIXLEN: its site's gateway and the upstream core backed up, its VMs moved, only its "
        "route changed, traffic checked from its site; a failure restores that unit alone. A site's own "
        "wave then moves the rest of it (refused while a subnet of it that moves ahead has not moved). "
        "It runs as the Prefect flow migrate-wave on the server PREFECT_API_URL names, when one is configured "
        "(it must answer its health probe within 5 s, else nothing runs), else on the server `overflyt serve` "
        "runs on the same PREFECT_HOME (it says so; nothing is started), otherwise on a temporary local API "
        "the run starts and ends. Ctrl-C or SIGTERM (how Prefect cancels a run) stops the running step "
        "within a second, starts no further VM move or site, rolls back each site under way (a relocation vCenter "
        "carries on is cancelled) and exits 1.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    wave_run.add_argument("plan", metavar="PLAN")
    wave_run.add_argument("--wave", type=int, required=True, metavar="N")
    wave_run.add_argument(
        "--site",
        action="append",
        default=[],
        metavar="ID",
        help="only this site, or this subnet ahead of its site (SITE:NETWORK-PREFIXLEN; a site of another wave "
        "selects its subnets moving ahead in this one); repeatable",
    )
    wave_run.add_argument("--dry-run", action="store_true", help="show what would move and change; change nothing")
    wave_run.add_argument("--approved-by", metavar="NAME", help="who approved the cutover (plans that need approval)")
    wave_run.add_argument("--ticket", metavar="REF", help="the change ticket of the approval")
    wave_run.add_argument(
        "--outside-window",
        action="store_true",
        help="run although the wave's window is not open, or has ended: no site is held back by it (recorded "
        "as an override in the report, with who ran it and --reason)",
    )
    wave_run.add_argument(
        "--reason", metavar="TEXT", help="why the wave runs outside its window (with --outside-window; recorded)"
    )
    wave_run.add_argument(
        "--format",
        choices=("table", "json", "junit", "ctrf", "markdown"),
        default="table",
        help="the run's report: table (default: per site its outcome, and with --dry-run each VM's planned move "
        "and each device's diff), or for CI junit/ctrf (one test case per site step, failed where a step "
        "failed), json or markdown",
    )
    wave_run.add_argument("--output", metavar="FILE", help="write the --format report here (the table still prints)")
    add_lang(wave_run, "the run's report.md and precheck.md (and --format markdown)")
    wave_run.add_argument("-q", "--quiet", action="store_true", help="no progress on standard error")
    wave_run.set_defaults(func=_wave_run)

    rollback = commands.add_parser(
        "rollback",
        help="roll back on demand everything of a site moved so far",
        description="Restore a site to what was recorded before anything of it changed: its own cutover and "
        "every subnet of it moved ahead in an earlier wave, latest first, each unit's devices to its own "
        "backups (verified byte-equal) and its VMs to their host, datastore, folder, portgroups and power "
        "state. Refused, naming it, when another site's cutover changed one of those devices later (roll "
        "that site back first). Exit 3 when the rollback cannot finish: a human must act.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rollback.add_argument("plan", metavar="PLAN")
    rollback.add_argument("--site", required=True, metavar="ID")
    add_lang(rollback, "the rollback's report.md")
    rollback.add_argument("-q", "--quiet", action="store_true", help="no progress on standard error")
    rollback.set_defaults(func=_rollback)


def _flow_result(state: Any, what: str) -> dict[str, Any]:
    """The report a flow returned, also from a Failed state; an exception inside the flow is re-raised
    as what it was (an OverflytError keeps its exit code)."""
    data = state.result(raise_on_failure=False)
    if isinstance(data, BaseException):
        raise data
    if not isinstance(data, dict):
        raise OverflytError(f"{what}: the flow ended {state.type.value.lower()} without a report")
    return data


def _print_wave(data: dict[str, Any], quiet: bool, fmt: str = "table", output: str | None = None) -> int:
    from overflyt.cutover.runreport import plan_lines, render

    if fmt != "table":
        text = render(data, fmt)
        if output is None:
            print(text, end="")
            return int(data["exit_code"])
        Path(output).write_text(text, encoding="utf-8")
    if data.get("dry_run"):
        for line in plan_lines(data):
            print(line)
    for site in data.get("sites", []):
        status = "no proof" if shown_status(site["status"], site.get("postcheck")) == "no_proof" else site["status"]
        print(f"{site['site']}: {status}" + (f" — {site['error']}" if site.get("error") else ""))
        if site.get("window") and site["window"] != site.get("error"):
            print(f"{site['site']}: window — {site['window']}")
    if data.get("blocked_by_prechecks"):
        print(f"wave {data['wave']}: blocked before any change, by:")
        for line in data.get("blocked_by") or ["(see the run record)"]:
            print(f"  {line}")
    held_back = [s["site"] for s in data.get("sites", []) if s.get("status") == "not_started"]
    if held_back:
        print(
            f"wave {data['wave']}: not started because of the window: {', '.join(held_back)} (untouched); rerun in "
            "the next window, or with --outside-window"
        )
    if not quiet:
        for override in data.get("overrides") or []:
            print(f"overflyt: override: {override}", file=sys.stderr)
        print(f"overflyt: run record: {data.get('run_dir', '')}", file=sys.stderr)
    return int(data["exit_code"])


def _lang(asked: str | None) -> str:
    """The reports' language: ``--lang``, else $OVERFLYT_LANG, else da; an unknown one is a UsageError."""
    from overflyt import reports

    lang = asked or reports.default_lang()
    reports.labels(lang)
    return lang


def _wave_run(args: argparse.Namespace) -> int:
    from overflyt.cutover.admission import admit, handed

    if args.output is not None and args.format == "table":
        raise UsageError("--output writes the report of --format junit, ctrf, json or markdown: give --format too")
    if args.output is not None and not Path(args.output).resolve().parent.is_dir():
        raise UsageError(f"--output {args.output}: no directory {Path(args.output).resolve().parent}")
    if args.reason is not None and not args.outside_window:
        raise UsageError("--reason says why a wave runs outside its window: give it with --outside-window")
    lang = _lang(args.lang)
    # Refuse bad input here, before Prefect starts: unknown wave or site, unresolvable secrets, no
    # approval, a busy municipality. The flow run below uses this admission (no second load).
    admission = admit(
        Path(args.plan), args.wave, args.site, dry_run=args.dry_run, approval_given=bool(args.approved_by),
        can_ask=False,
    )  # fmt: skip
    from flows import MigrateWaveParams, migrate_wave

    from overflyt.ansible.cancel import install_cancel_handlers
    from overflyt.orchestration.local import prepare_local_database

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
        outside_window_reason=args.reason,
        lang=lang,
    )
    api = prepare_local_database(say=None if args.quiet else _say)
    install_cancel_handlers()  # Ctrl-C / SIGTERM: stop the running step, roll the site back, exit
    with api, handed(admission):
        state = migrate_wave(params, return_state=True)
    return _print_wave(_flow_result(state, "migrate-wave"), args.quiet, args.format, args.output)


def _rollback(args: argparse.Namespace) -> int:
    from overflyt.cutover.admission import admit_rollback, handed

    # Refuse bad input before Prefect starts: unknown language or site, nothing recorded, secrets, a busy
    # municipality.
    lang = _lang(args.lang)
    admission = admit_rollback(Path(args.plan), args.site)
    from flows import RollbackSiteParams, rollback_site

    from overflyt.ansible.cancel import install_cancel_handlers
    from overflyt.orchestration.local import prepare_local_database

    install_cancel_handlers()
    api = prepare_local_database(say=None if args.quiet else _say)
    with api, handed(admission):
        state = rollback_site(RollbackSiteParams(plan=args.plan, site=args.site, lang=lang), return_state=True)
    return _print_wave(_flow_result(state, "rollback-site"), args.quiet)


def _say(line: str) -> None:
    print(f"overflyt: {line}", file=sys.stderr)
