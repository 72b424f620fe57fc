"""Render a :class:`PrecheckReport` for people (table, markdown), scripts (json) and CI (junit, ctrf).

Findings are grouped by site, in the order the report lists its sites, then any other site (a VM
pulled forward from a later wave's site), then ``wave-wide`` (vCenter, target, capacity, window).

JUnit and CTRF show every check as a test case: a critical finding fails it, a warning or info
finding leaves it passed with the finding attached (JUnit ``system-out`` and a ``severity``
property; CTRF ``message``, ``rawStatus: "warning"`` and ``extra.severity``), and a check that could
not be evaluated because of another check's critical finding is skipped. Warnings are "passed"
because only critical findings block a wave — as in Forklift's VM validation, which reports
passed/failed only.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from typing import Any

from overflyt import __version__, reports
from overflyt.errors import UsageError
from overflyt.precheck.findings import SEVERITIES, CheckResult, Finding, PrecheckReport, Severity

FORMATS = ("table", "json", "junit", "ctrf", "markdown")
# The CTRF specification version the documents follow: that of ctrf-io/ctrf's schema and examples
# (tests/unit/data/ctrf.schema.json validates them).
CTRF_SPEC_VERSION = "1.0.0"
WAVE_WIDE = "wave-wide"

# Characters XML 1.0 cannot carry at all (control characters a device's banner may contain).
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render(report: PrecheckReport, fmt: str, lang: str | None = None) -> str:
    """The report as text in ``fmt``: table, json, junit, ctrf or markdown. Unknown format: UsageError.
    ``lang`` is the markdown report's language (default :func:`overflyt.reports.default_lang`); the
    table is the console's and stays English, the data formats have no words of their own."""
    if fmt == "markdown":
        view = markdown_view(report, lang or reports.default_lang())
        return reports.render("precheck.md.j2", r=view, l=view["l"])
    renderer = _RENDERERS.get(fmt)
    if renderer is None:
        raise UsageError(f"unknown format {fmt!r} (one of: {', '.join(FORMATS)})")
    return renderer(report)


# ----------------------------------------------------------------------------------------------- shared


def _groups(report: PrecheckReport) -> list[tuple[str, list[CheckResult]]]:
    """(site id or wave-wide, its results), sites of the report first, wave-wide last; empty groups kept
    for the report's own sites so every checked site appears."""
    by_site: dict[str | None, list[CheckResult]] = {site: [] for site in report.sites}
    for result in report.results:
        by_site.setdefault(result.site, []).append(result)
    others = sorted(site for site in by_site if site is not None and site not in report.sites)
    order: list[str | None] = [*report.sites, *others]
    if None in by_site:
        order.append(None)
    return [(site or WAVE_WIDE, by_site[site]) for site in order]


def _findings(results: Iterable[CheckResult]) -> list[tuple[CheckResult, Finding]]:
    """Every finding with its check, most severe first, in check order within a severity."""
    pairs = [(r, f) for r in results for f in r.findings]
    return sorted(pairs, key=lambda pair: -pair[1].severity.rank)


def _count(results: Iterable[CheckResult]) -> dict[str, int]:
    counted = {"passed": 0, "warning": 0, "failed": 0, "skipped": 0}
    for result in results:
        counted[result.status] += 1
    return counted


def _severity_counts(results: Iterable[CheckResult]) -> dict[Severity, int]:
    counted = dict.fromkeys(SEVERITIES, 0)
    for result in results:
        for finding in result.findings:
            counted[finding.severity] += 1
    return counted


def _summary(report: PrecheckReport) -> str:
    counts = report.counts
    verdict = "BLOCKED" if report.blocked else "ready"
    return (
        f"wave {report.wave}: {counts[Severity.critical]} critical, {counts[Severity.warning]} warning, "
        f"{counts[Severity.info]} info — {verdict}"
    )


def _checks_line(results: list[CheckResult]) -> str:
    c = _count(results)
    return (
        f"{len(results)} checks: {c['passed']} passed, {c['warning']} passed with warnings, {c['failed']} failed, "
        f"{c['skipped']} skipped"
    )


def _title(report: PrecheckReport) -> str:
    m = report.municipality
    return f"{m.name} ({m.code}), wave {report.wave} — {report.wave_name}"


def _severity_label(finding: Finding) -> str:
    """``WARNING``, or ``WARNING (WAIVED)`` for a waived finding."""
    return finding.severity.value.upper() + (" (WAIVED)" if finding.waiver is not None else "")


def _message(finding: Finding) -> str:
    """The finding's message on one line, and the waiver that accepted it (who, until, why)."""
    waived = f" [{reports.one_line(finding.waiver.text())}]" if finding.waiver is not None else ""
    return reports.one_line(finding.message) + waived


def _evidence(finding: Finding) -> str:
    return json.dumps(finding.evidence, ensure_ascii=False, sort_keys=True)


# ------------------------------------------------------------------------------------------------ table


def _table(report: PrecheckReport) -> str:
    lines = [
        f"overflyt precheck: {_title(report)} ({report.mode}); sites: {', '.join(report.sites)}",
    ]
    groups = _groups(report)
    rows = [
        (
            _severity_label(finding),
            finding.id,
            f"{finding.subject_kind} {finding.subject}",
            _message(finding),
        )
        for _, results in groups
        for _, finding in _findings(results)
    ]
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(3)]
    for label, results in groups:
        counts = _severity_counts(results)
        lines.append("")
        lines.append(
            f"{label}: {counts[Severity.critical]} critical, {counts[Severity.warning]} warning, "
            f"{counts[Severity.info]} info ({_checks_line(results)})"
        )
        for _, finding in _findings(results):
            severity, rule_id, subject = (
                _severity_label(finding),
                finding.id,
                f"{finding.subject_kind} {finding.subject}",
            )
            lines.append(
                f"  {severity:<{widths[0]}}  {rule_id:<{widths[1]}}  {subject:<{widths[2]}}  "
                f"{_message(finding)}".rstrip()
            )
    lines.append("")
    lines.append(_checks_line(list(report.results)))
    lines.append(_summary(report))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------- json


def _json(report: PrecheckReport) -> str:
    return json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------------------------------------ junit


def _xml(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _suite_name(report: PrecheckReport, label: str) -> str:
    return f"overflyt precheck wave {report.wave} / {label}"


def _testcase(parent: ET.Element, result: CheckResult) -> None:
    case = ET.SubElement(
        parent,
        "testcase",
        classname=result.rule_id,
        name=_xml(f"{result.subject_kind} {result.subject}"),
        time="0",
    )
    worst = result.severity
    properties = ET.SubElement(case, "properties")
    ET.SubElement(properties, "property", name="title", value=_xml(result.title))
    ET.SubElement(properties, "property", name="site", value=result.site or WAVE_WIDE)
    if worst is not None:
        ET.SubElement(properties, "property", name="severity", value=worst.value)
    for f in result.findings:
        if f.waiver is not None:
            ET.SubElement(properties, "property", name="waiver", value=_xml(f"{f.waiver.text()} ({f.waiver.where})"))
    critical = [f for f in result.findings if f.severity is Severity.critical]
    if critical:
        failure = ET.SubElement(
            case, "failure", message=_xml("; ".join(f.message for f in critical)), type=Severity.critical.value
        )
        failure.text = _xml("\n\n".join(f"{f.message}\nevidence: {_evidence(f)}" for f in critical))
    if result.skipped is not None:
        ET.SubElement(case, "skipped", message=_xml(result.skipped))
    other = [f for f in result.findings if f.severity is not Severity.critical]
    if other:
        out = ET.SubElement(case, "system-out")
        out.text = _xml(
            "\n".join(
                f"{_severity_label(f)}: {f.message}\n  evidence: {_evidence(f)}"
                + (f"\n  {f.waiver.text()} ({f.waiver.where})" if f.waiver is not None else "")
                for f in other
            )
        )


def _junit(report: PrecheckReport) -> str:
    seconds = f"{(report.finished - report.started).total_seconds():.3f}"
    counts = _count(report.results)
    root = ET.Element(
        "testsuites",
        name=_xml(f"overflyt precheck {_title(report)}"),
        tests=str(len(report.results)),
        failures=str(counts["failed"]),
        errors="0",
        skipped=str(counts["skipped"]),
        time=seconds,
    )
    for label, results in _groups(report):
        c = _count(results)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=_suite_name(report, label),
            tests=str(len(results)),
            failures=str(c["failed"]),
            errors="0",
            skipped=str(c["skipped"]),
            timestamp=report.started.isoformat(),
            time=seconds,
        )
        for result in results:
            _testcase(suite, result)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ------------------------------------------------------------------------------------------------- ctrf


def _ms(report: PrecheckReport, which: str) -> int:
    moment = report.started if which == "start" else report.finished
    return int(moment.timestamp() * 1000)


def _ctrf_test(report: PrecheckReport, label: str, result: CheckResult) -> dict[str, Any]:
    status = {"passed": "passed", "warning": "passed", "failed": "failed", "skipped": "skipped"}[result.status]
    worst = result.severity
    ordered = sorted(result.findings, key=lambda f: -f.severity.rank)
    test: dict[str, Any] = {
        "name": f"{result.rule_id}: {result.subject_kind} {result.subject}",
        "status": status,
        "duration": 0,
        "suite": [f"overflyt precheck wave {report.wave}", label],
        "rawStatus": result.status,
        "tags": list(dict.fromkeys([f.severity.value for f in ordered] + ["waived" for f in ordered if f.waiver])),
        "extra": {
            "rule": result.rule_id,
            "title": result.title,
            "subject_kind": result.subject_kind,
            "subject": result.subject,
            "site": result.site,
            "severity": worst.value if worst else None,
            "evidence": ordered[0].evidence if ordered else {},
            "findings": [
                f.model_dump(mode="json", include={"severity", "message", "evidence", "waiver"}) for f in ordered
            ],
        },
    }
    if ordered:
        test["message"] = "; ".join(f"{_severity_label(f)}: {_message(f)}" for f in ordered)
    elif result.skipped is not None:
        test["message"] = f"skipped: {result.skipped}"
    return test


def _ctrf(report: PrecheckReport) -> str:
    tests = [_ctrf_test(report, label, r) for label, results in _groups(report) for r in results]
    summary = {status: sum(1 for t in tests if t["status"] == status) for status in ("passed", "failed", "skipped")}
    document = {
        "reportFormat": "CTRF",
        "specVersion": CTRF_SPEC_VERSION,
        "generatedBy": "overflyt",
        "timestamp": report.finished.isoformat(),
        "results": {
            "tool": {"name": "overflyt", "version": __version__},
            "summary": {
                "tests": len(tests),
                "passed": summary["passed"],
                "failed": summary["failed"],
                "pending": 0,
                "skipped": summary["skipped"],
                "other": 0,
                "suites": len(_groups(report)),
                "start": _ms(report, "start"),
                "stop": _ms(report, "stop"),
                "duration": _ms(report, "stop") - _ms(report, "start"),
            },
            "tests": tests,
            "extra": {
                "municipality": report.municipality.model_dump(mode="json"),
                "wave": report.wave,
                "wave_name": report.wave_name,
                "mode": report.mode,
                "sites": list(report.sites),
                "blocked": report.blocked,
                "counts": {severity.value: n for severity, n in report.counts.items()},
            },
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------- markdown


def markdown_view(report: PrecheckReport, lang: str = reports.DEFAULT_LANG) -> dict[str, Any]:
    """What the markdown report (``templates/precheck.md.j2``) shows, as plain data; its words are
    ``l`` (``templates/i18n/<lang>.yml``). Sites are shown by name and id; a group's label is None
    for the wave-wide checks."""
    names = report.site_names
    window = None
    if report.window_start is not None and report.window_end is not None:
        window = {"start": report.window_start.isoformat(), "end": report.window_end.isoformat()}
    return {
        "l": reports.labels(lang),
        "municipality": {"name": report.municipality.name, "code": report.municipality.code},
        "wave": report.wave,
        "wave_name": report.wave_name,
        "window": window,
        "blocked": report.blocked,
        "critical": report.counts[Severity.critical],
        "mode": report.mode,
        "sites": [reports.named(names.get(site), site) for site in report.sites],
        "started": report.started.isoformat(),
        "severities": [(severity.value, report.counts[severity]) for severity in SEVERITIES],
        "checks": _check_counts(list(report.results)),
        "groups": [
            {
                "label": None if label == WAVE_WIDE else reports.named(names.get(label), label),
                "findings": [
                    {
                        "severity": f.severity.value,
                        "id": f.id,
                        "subject_kind": f.subject_kind,
                        "subject": f.subject,
                        "message": f.message,
                        "waiver": None if f.waiver is None else f.waiver.model_dump(mode="json"),
                    }
                    for _, f in _findings(results)
                ],
                "checks": _check_counts(results),
            }
            for label, results in _groups(report)
        ],
    }


def _check_counts(results: list[CheckResult]) -> dict[str, int]:
    return {"total": len(results), **_count(results)}


_RENDERERS: dict[str, Callable[[PrecheckReport], str]] = {
    "table": _table,
    "json": _json,
    "junit": _junit,
    "ctrf": _ctrf,
}  # markdown: a template, rendered by render() itself in the report's language
