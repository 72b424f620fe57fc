"""Pre-check a wave end to end: gather facts read-only through Ansible, judge them, record it.

This is what `overflyt precheck` and the `precheck-wave` flow call. Bad input (unknown wave or
site, a credential that resolves to nothing) is refused before anything is contacted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from overflyt.ansible.runner import AnsibleEvent
from overflyt.ansible.step import StepContext
from overflyt.plan import load
from overflyt.plan.ahead import read_sites
from overflyt.plan.credentials import resolve_all
from overflyt.plan.select import select_sites
from overflyt.precheck import fingerprint
from overflyt.precheck.engine import run_checks
from overflyt.precheck.findings import PrecheckReport
from overflyt.precheck.gather import gather_estate
from overflyt.precheck.registry import CheckContext, Mode
from overflyt.precheck.report import render
from overflyt.precheck.waivers import apply_waivers, in_force, today
from overflyt.record import Run
from overflyt.reports import labels

log = logging.getLogger(__name__)

# Every pre-check run leaves these files in its run directory.
REPORT_FILES = {"json": "report.json", "junit": "report.junit.xml", "ctrf": "report.ctrf.json", "markdown": "report.md"}


@dataclass(frozen=True)
class PrecheckOutcome:
    report: PrecheckReport
    run_dir: Path


def precheck_wave(
    plan_path: Path,
    wave: int,
    sites: Sequence[str] = (),
    *,
    mode: Mode = "precheck",
    now: datetime | None = None,
    on_event: Callable[[AnsibleEvent], None] | None = None,
    lang: str | None = None,
) -> PrecheckOutcome:
    """Gather the wave's facts (read-only), run every rule, and write the reports into the run record
    (report.md in ``lang``, default :func:`overflyt.reports.default_lang`)."""
    if lang is not None:
        labels(lang)  # an unknown language is refused before anything runs
    loaded = load(plan_path)
    plan = loaded.plan
    chosen = select_sites(plan, wave, sites)
    credentials = resolve_all(plan, loaded.directory)
    run = Run.create("precheck", plan.municipality.code, wave, chosen, dry_run=True, base=loaded.state)
    log.info("pre-checking wave %d (%s) into %s", wave, ", ".join(chosen), run.dir)
    with run.step("gather", f"wave {wave}"):
        ctx = StepContext(loaded, wave, run, credentials, on_event=on_event)
        read = read_sites(plan, wave, chosen)  # and the sites of subnets moving ahead: their gateways
        facts, result = gather_estate(ctx, read, timeout_s=plan.timeouts.precheck_s)
    # What this pre-check saw (and the waivers in force) is the baseline a later cutover compares against.
    moment = now or datetime.now(UTC)
    waivers = in_force(loaded.waivers, today(plan, wave, moment))
    seen = fingerprint.take(plan, wave, read, facts, waivers)
    taken_at = datetime.now(UTC).isoformat()
    fingerprint.save(run.dir, seen, run.record.run_id, taken_at)
    fingerprint.save(run.dir.parents[1], seen, run.record.run_id, taken_at)
    with run.step("judge", f"wave {wave}"):
        report = run_checks(CheckContext(plan=plan, wave=wave, facts=facts, now=moment, sites=tuple(chosen), mode=mode))
        report = apply_waivers(report, loaded.waivers, plan, moment)
    for fmt, name in REPORT_FILES.items():
        run.write(name, render(report, fmt, lang))
    run.record.notes["counts"] = {str(k): v for k, v in report.counts.items()}
    run.record.notes["blocked"] = report.blocked
    run.record.notes["playbook_status"] = result.status
    run.finish("failed" if report.blocked else "succeeded")
    return PrecheckOutcome(report=report, run_dir=run.dir)
