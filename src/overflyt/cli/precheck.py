"""``overflyt precheck PLAN --wave N``: what would block a wave, touching nothing."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from overflyt.cli.common import EPILOG, Commands, add_lang

if TYPE_CHECKING:
    from overflyt.ansible.runner import AnsibleEvent


def add_parser(commands: Commands) -> None:
    """Register ``overflyt precheck``."""
    precheck = commands.add_parser(
        "precheck",
        help="check what would block a wave, touching nothing",
        description="Read both vCenters and the wave's devices (read-only, through Ansible in check mode), "
        "judge them against the plan and report every finding. Exit 0 when nothing critical was found, "
        "1 when the wave is blocked, 2 on bad input. Every run leaves report.{json,junit.xml,ctrf.json,md} "
        "in its run record under $OVERFLYT_STATE_DIR (default .overflyt/state in the plan's project).",
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
    add_lang(precheck, "the markdown report (report.md, --format markdown)")
    precheck.add_argument("-q", "--quiet", action="store_true", help="no progress on standard error")
    precheck.set_defaults(func=_precheck)


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
    from overflyt import reports
    from overflyt.precheck import exit_code, render
    from overflyt.precheck.wave import precheck_wave

    lang = args.lang or reports.default_lang()
    reports.labels(lang)  # an unknown language is refused before anything runs
    if not args.quiet:
        print(f"overflyt: pre-checking wave {args.wave} of {args.plan}", file=sys.stderr)
    outcome = precheck_wave(
        Path(args.plan), args.wave, args.site, mode=args.mode, on_event=progress_printer(args.quiet), lang=lang
    )
    text = render(outcome.report, args.format, lang)
    if args.output:
        Path(args.output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    else:
        print(text)
    if not args.quiet:
        verdict = "BLOCKED" if outcome.report.blocked else "ready"
        print(f"overflyt: wave {args.wave} {verdict}; run record: {outcome.run_dir}", file=sys.stderr)
    return exit_code(outcome.report)
