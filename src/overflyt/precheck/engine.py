"""Run every registered rule against one wave's facts and collect the report."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from overflyt.errors import EXIT_FAILED, EXIT_OK
from overflyt.precheck import rules as _rules  # noqa: F401  (importing registers the rules)
from overflyt.precheck.findings import CheckResult, Finding, PrecheckReport, Severity
from overflyt.precheck.registry import RULES, CheckContext, Outcome, Rule

log = logging.getLogger(__name__)


def run_checks(ctx: CheckContext) -> PrecheckReport:
    """Evaluate every rule in :data:`RULES` for the context's wave and sites. Pure: no I/O."""
    started = datetime.now(UTC)
    results: list[CheckResult] = []
    for registered in RULES.values():
        outcomes = list(registered.check(ctx))
        results.extend(_result(registered, outcome) for outcome in outcomes)
        log.debug("rule %s: %d subjects checked", registered.id, len(outcomes))
    report = PrecheckReport(
        municipality=ctx.plan.municipality,
        wave=ctx.wave,
        wave_name=ctx.wave_plan.name,
        mode=ctx.mode,
        sites=ctx.sites,
        started=started,
        finished=datetime.now(UTC),
        results=tuple(results),
        site_names={site.id: site.name for site in ctx.plan.sites},
        window_start=ctx.wave_plan.window.start,
        window_end=ctx.wave_plan.window.end,
    )
    counts = report.counts
    log.info(
        "pre-check wave %d: %d checks, %d critical, %d warning, %d info%s",
        ctx.wave,
        len(results),
        counts[Severity.critical],
        counts[Severity.warning],
        counts[Severity.info],
        " — blocked" if report.blocked else "",
    )
    return report


def exit_code(report: PrecheckReport) -> int:
    """0 when nothing critical was found, 1 when the wave is blocked."""
    return EXIT_FAILED if report.blocked else EXIT_OK


def _result(registered: Rule, outcome: Outcome) -> CheckResult:
    subject = outcome.subject
    findings = tuple(
        Finding(
            id=registered.id,
            severity=note.severity or registered.severity,
            subject_kind=subject.kind,
            subject=subject.name,
            site=subject.site,
            message=note.message,
            evidence=note.evidence,
        )
        for note in outcome.notes
    )
    return CheckResult(
        rule_id=registered.id,
        title=registered.title,
        subject_kind=subject.kind,
        subject=subject.name,
        site=subject.site,
        findings=findings,
        skipped=outcome.skipped,
    )
