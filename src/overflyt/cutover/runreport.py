"""A wave run (a dry run above all) for CI and for a reviewer's terminal, from its report data
(:func:`overflyt.cutover.report.report_data`, what the migrate-wave flow returns).

:func:`plan_lines` is what ``overflyt wave run --dry-run`` prints per site: each VM's planned move
(from → to: host, datastore, portgroups) and each device's diff (``+`` a line added, ``-`` a line
removed: the ``no …`` form the device is sent). :func:`render` writes the run as JUnit, CTRF or JSON
(data writers) or markdown (the run's own ``report.md``, ``templates/wave.md.j2``): one test case per
site and itinerary step, failed where the step failed, skipped where it was not reached.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from overflyt import __version__
from overflyt.cutover.itinerary import ITINERARY, dry_run_itinerary
from overflyt.errors import UsageError
from overflyt.precheck.report import CTRF_SPEC_VERSION
from overflyt.reports import one_line

FORMATS = ("table", "json", "junit", "ctrf", "markdown")


def _where(p: dict[str, Any] | None) -> str:
    if not p:
        return "?"
    return f"{p.get('host', '?')} / {p.get('datastore', '?')} / {', '.join(p.get('portgroups') or []) or '?'}"


def diff_line(line: str) -> str:
    """A device line as a diff line: ``- x`` for ``no x`` (a line removed), ``+ x`` otherwise."""
    text = one_line(line)
    return f"- {text[3:]}" if text.startswith("no ") else f"+ {text}"


def plan_lines(data: dict[str, Any]) -> list[str]:
    """Per site: each VM's planned (or done) move and each device's diff, for a terminal or a CI log."""
    lines: list[str] = []
    for site in data.get("sites") or []:
        vms = (site.get("vms") or {}).get("vms") or {}
        devices = (site.get("devices") or {}).get("devices") or {}
        if not vms and not devices:
            continue
        lines.append(f"{site['site']}:")
        for name, vm in sorted(vms.items()):
            lines.append(
                f"  VM {name} ({vm.get('status', '?')}): {_where(vm.get('before'))} -> {_where(vm.get('after'))}"
            )
        for host, dev in sorted(devices.items()):
            pending = list(dev.get("pending_lines") or [])
            lines.append(f"  device {host}: {len(pending)} line(s)" if pending else f"  device {host}: no change")
            lines.extend(f"    {diff_line(line)}" for line in pending)
    return lines


def _steps(data: dict[str, Any]) -> list[str]:
    return [s.name for s in (dry_run_itinerary() if data.get("dry_run") else ITINERARY)]


def cases(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One case per site and step (and one for the wave's pre-check): name, site, step, status
    (passed/failed/skipped), seconds, message."""
    blocked = bool(data.get("blocked_by_prechecks"))
    out: list[dict[str, Any]] = [
        {"name": "wave-wide / precheck", "site": "wave-wide", "step": "precheck", "seconds": 0.0,
         "status": "failed" if blocked else "passed",
         "message": "blocked before any change: critical pre-check findings, or no approval" if blocked else None}
    ]  # fmt: skip
    for site in data.get("sites") or []:
        done: dict[str, float] = dict(site.get("steps") or {})
        error, status = site.get("error"), site.get("status", "")
        failing = status in ("failed", "rolled_back", "rollback_failed")
        failed_step = next((s for s in _steps(data) if s not in done), None) if failing else None
        if failing and error and error.split(":", 1)[0] in _steps(data):
            failed_step = error.split(":", 1)[0]
        for step in _steps(data):
            case = {"name": f"{site['site']} / {step}", "site": site["site"], "step": step, "seconds": 0.0}
            if step == failed_step:
                case.update(status="failed", message=error or f"{step} failed", seconds=done.get(step, 0.0))
            elif step in done:
                case.update(status="passed", message=None, seconds=done[step])
            else:
                why = error or ("done in an earlier run" if status == "skipped" else "not reached")
                case.update(status="skipped", message=f"{status}: {why}")
            out.append(case)
        if "rollback" in done:
            rolled = status == "rolled_back"
            out.append(
                {"name": f"{site['site']} / rollback", "site": site["site"], "step": "rollback",
                 "seconds": done["rollback"], "status": "passed" if rolled else "failed",
                 "message": None if rolled else error}
            )  # fmt: skip
    return out


def _title(data: dict[str, Any]) -> str:
    kind = "dry run" if data.get("dry_run") else data.get("kind", "cutover")
    return f"overflyt wave {data['wave']} {kind} of municipality {data['municipality']}"


def _junit(data: dict[str, Any]) -> str:
    found = cases(data)
    count = {s: sum(1 for c in found if c["status"] == s) for s in ("failed", "skipped")}
    root = ET.Element("testsuites", name=_title(data), tests=str(len(found)), failures=str(count["failed"]),
                      errors="0", skipped=str(count["skipped"]))  # fmt: skip
    for site in dict.fromkeys(c["site"] for c in found):
        mine = [c for c in found if c["site"] == site]
        suite = ET.SubElement(
            root, "testsuite", name=f"{_title(data)} / {site}", tests=str(len(mine)),
            failures=str(sum(1 for c in mine if c["status"] == "failed")), errors="0",
            skipped=str(sum(1 for c in mine if c["status"] == "skipped")),
            time=f"{sum(c['seconds'] for c in mine):.2f}",
        )  # fmt: skip
        for c in mine:
            case = ET.SubElement(suite, "testcase", classname=f"overflyt.wave{data['wave']}.{site}", name=c["step"],
                                 time=f"{c['seconds']:.2f}")  # fmt: skip
            if c["status"] == "failed":
                ET.SubElement(case, "failure", message=one_line(c["message"] or ""), type="step").text = c["message"]
            elif c["status"] == "skipped":
                ET.SubElement(case, "skipped", message=one_line(c["message"] or ""))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _ctrf(data: dict[str, Any]) -> str:
    found = cases(data)
    stop = int(datetime.now(UTC).timestamp() * 1000)
    start = stop - int(sum(c["seconds"] for c in found) * 1000)
    tests = []
    for c in found:
        test: dict[str, Any] = {
            "name": c["name"],
            "status": c["status"],
            "duration": int(c["seconds"] * 1000),
            "suite": [_title(data), c["site"]],
            "extra": {"site": c["site"], "step": c["step"]},
        }
        if c["message"]:
            test["message"] = c["message"]
        tests.append(test)
    summary = {s: sum(1 for t in tests if t["status"] == s) for s in ("passed", "failed", "skipped")}
    document = {
        "reportFormat": "CTRF",
        "specVersion": CTRF_SPEC_VERSION,
        "generatedBy": "overflyt",
        "timestamp": datetime.now(UTC).isoformat(),
        "results": {
            "tool": {"name": "overflyt", "version": __version__},
            "summary": {
                "tests": len(tests),
                **summary,
                "pending": 0,
                "other": 0,
                "suites": len({c["site"] for c in found}),
                "start": start,
                "stop": stop,
                "duration": stop - start,
            },
            "tests": tests,
            "extra": {
                "municipality": data["municipality"],
                "wave": data["wave"],
                "dry_run": data.get("dry_run"),
                "run_id": data.get("run_id"),
                "blocked": data.get("blocked_by_prechecks"),
            },
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render(data: dict[str, Any], fmt: str) -> str:
    """The run as ``fmt``: json, junit, ctrf or markdown (the run record's report.md)."""
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    if fmt == "junit":
        return _junit(data)
    if fmt == "ctrf":
        return _ctrf(data)
    if fmt == "markdown":
        return (Path(str(data["run_dir"])) / "report.md").read_text(encoding="utf-8")
    raise UsageError(f"unknown format {fmt!r} (one of: {', '.join(FORMATS)})")
