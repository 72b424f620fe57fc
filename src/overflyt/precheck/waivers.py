"""Apply the plan's waivers (``waivers.yml``, :mod:`overflyt.plan.waivers`) to a pre-check's report.

A waiver names a finding (the rule's id) and its item (the finding's subject). On a matching
finding it applies until the end of its ``expires`` day (the wave's time zone):

- a waived finding no longer blocks: a critical one becomes a warning; every waived finding keeps
  its message and carries the waiver (who, why, until, where) that every report format shows;
- an expired waiver does not apply (the finding blocks as before) and is itself a warning
  (``waiver.expired``);
- a waiver that matches no finding of the report is a warning (``waiver.unused``) when its item is
  a subject this pre-check looked at, or is no VM, device or site of the plan at all (a waiver for
  another wave's VM is not this pre-check's business).

Pure: no I/O. The waivers in force are also part of the pre-check's fingerprint
(:mod:`overflyt.precheck.fingerprint`), so one added or removed after a pre-check is seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from overflyt.plan import Plan
from overflyt.plan.waivers import PlacedWaiver
from overflyt.precheck.findings import CheckResult, Finding, PrecheckReport, Severity, WaiverMark

EXPIRED = "waiver.expired"
UNUSED = "waiver.unused"
TITLES = {EXPIRED: "A waiver has expired", UNUSED: "A waiver matches no finding"}


def today(plan: Plan, wave: int, now: datetime) -> date:
    """The day it is in the wave's time zone: a waiver applies to the end of its ``expires`` day."""
    return now.astimezone(ZoneInfo(plan.wave(wave).window.timezone)).date()


def in_force(waivers: Sequence[PlacedWaiver], day: date) -> list[PlacedWaiver]:
    return [w for w in waivers if w.waiver.expires >= day]


def apply_waivers(report: PrecheckReport, waivers: Sequence[PlacedWaiver], plan: Plan, now: datetime) -> PrecheckReport:
    """``report`` with ``waivers`` applied (see the module's docstring); unchanged without waivers."""
    if not waivers:
        return report
    day = today(plan, report.wave, now)
    by_key = {w.key: w for w in waivers}
    used: set[tuple[str, str]] = set()
    results: list[CheckResult] = []
    for result in report.results:
        findings = []
        for finding in result.findings:
            placed = by_key.get((finding.id, finding.subject))
            if placed is not None:
                used.add(placed.key)
                if placed.waiver.expires >= day:
                    finding = _waive(finding, placed)
            findings.append(finding)
        results.append(result.model_copy(update={"findings": tuple(findings)}))
    looked_at = {r.subject for r in report.results}
    known = {vm.name for vm in plan.vms} | {d.hostname for d in plan.devices} | {s.id for s in plan.sites}
    for placed in waivers:
        w = placed.waiver
        expired = w.expires < day
        relevant = placed.key in used or w.item in looked_at or w.item not in known
        if not relevant:
            continue
        if expired:
            message = (
                f"The waiver of {w.finding} for {w.item} ({placed.where}, by {w.approved_by}: {w.reason}) expired on "
                f"{w.expires.isoformat()} and no longer applies; renew it in waivers.yml or fix the finding"
            )
            results.append(_note(EXPIRED, placed, message, _site_of(report, w.item)))
        elif placed.key not in used:
            message = (
                f"The waiver of {w.finding} for {w.item} ({placed.where}, by {w.approved_by}) matches no finding of "
                "this pre-check; remove it from waivers.yml if the finding is gone, or correct its finding or item"
            )
            results.append(_note(UNUSED, placed, message, _site_of(report, w.item)))
    return report.model_copy(update={"results": tuple(results)})


def _waive(finding: Finding, placed: PlacedWaiver) -> Finding:
    w = placed.waiver
    mark = WaiverMark(
        approved_by=w.approved_by, reason=w.reason, expires=w.expires, severity=finding.severity, where=placed.where
    )
    severity = Severity.warning if finding.severity is Severity.critical else finding.severity
    return finding.model_copy(update={"severity": severity, "waiver": mark})


def _note(rule_id: str, placed: PlacedWaiver, message: str, site: str | None) -> CheckResult:
    w = placed.waiver
    subject = f"{w.finding} {w.item}"
    finding = Finding(
        id=rule_id,
        severity=Severity.warning,
        subject_kind="waiver",
        subject=subject,
        site=site,
        message=message,
        evidence={"where": placed.where, "finding": w.finding, "item": w.item, "expires": w.expires.isoformat()},
    )
    return CheckResult(
        rule_id=rule_id, title=TITLES[rule_id], subject_kind="waiver", subject=subject, site=site, findings=(finding,)
    )


def _site_of(report: PrecheckReport, item: str) -> str | None:
    return next((r.site for r in report.results if r.subject == item), None)
