"""``overflyt report PLAN``: the municipality's evidence pack, from its run records only."""

from __future__ import annotations

import argparse
from pathlib import Path

from overflyt.cli.common import EPILOG, Commands, add_lang


def add_parser(commands: Commands) -> None:
    """Register ``overflyt report``."""
    report = commands.add_parser(
        "report",
        help="write the municipality's evidence pack (HTML, markdown or PDF) from its run records",
        description="Write the evidence pack of the plan's municipality: a summary (waves done, sites, VMs "
        "moved, devices changed, rollbacks), then per wave and site the pre-check findings and waivers, the "
        "approval (who, when, ticket), every VM move (from host/datastore/portgroup to, with its duration), "
        "every device change (the lines pushed, the backup's sha256 before and the configuration's after, "
        "verified or not), post-checks, rollbacks, overrides and timings, and last what is still pending. "
        "Built only from the run records and wave states under $OVERFLYT_STATE_DIR (default "
        ".overflyt/state in the plan's project): no vCenter or device is contacted, and a municipality with "
        "no runs yet gets a pack with everything pending. A wave state written from another version of the "
        "plan (its wave's sites, VMs or devices changed since) is refused. Times are Europe/Copenhagen with "
        "their offset. "
        "The file is <output>/evidence-<kommunekode>.<html|md|pdf>; a PDF is printed from the HTML (kept "
        "beside it) by headless Chromium ($OVERFLYT_CHROMIUM, else chromium on PATH).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("plan", metavar="PLAN")
    report.add_argument("--output", metavar="DIR", default=".", help="the directory to write into (default: .)")
    report.add_argument("--format", choices=("html", "md", "pdf"), default="html", help="default: html")
    add_lang(report, "the pack")
    report.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from overflyt import reports
    from overflyt.cutover.evidence import write_evidence
    from overflyt.plan import load_plan
    from overflyt.record import state_dir

    lang = args.lang or reports.default_lang()
    reports.labels(lang)  # an unknown language is refused before anything is read
    plan = load_plan(Path(args.plan))
    path = write_evidence(plan, Path(args.output), args.format, lang, state_dir(Path(args.plan).parent))
    print(path)
    return 0
