"""Every report format: structure, counts, and escaping of messages with <&>" (and worse) in them."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import jsonschema
import pytest
from test_precheck_facts import CLEAN, PLAN, check, with_device, with_target_item, with_vm

from overflyt.errors import UsageError
from overflyt.precheck import FORMATS, PrecheckReport, render

# A device error as a gatherer might pass it on: markup characters, quotes, a pipe, a newline and a
# control character (BEL) that XML cannot carry at all.
NASTY = 'banner <motd> & "welcome" | it\'s\nover\x07'


def blocked_report() -> PrecheckReport:
    """Wave 1 with one of each: critical (two), warning, info, and skipped checks."""
    facts = with_vm(CLEAN, "ndj-dc01", snapshots=["før patch"], cpu=4)
    facts = with_device(facts, "ndj-fw-01", reachable=False, error=NASTY)
    return check(facts, 1)


BLOCKED = blocked_report()
READY = check(CLEAN, 2)


# ------------------------------------------------------------------------------------------------ table


def test_table_groups_by_site_then_wave_wide_and_ends_with_the_verdict() -> None:
    text = render(BLOCKED, "table")
    lines = text.splitlines()
    assert lines[0] == (
        "overflyt precheck: Norddjurs Kommune (707), wave 1 — Fælles tjenester (precheck); sites: grenaa-raadhus"
    )
    assert lines[-1] == "wave 1: 2 critical, 1 warning, 4 info — BLOCKED"
    site_header = lines.index(
        "grenaa-raadhus: 2 critical, 1 warning, 0 info "
        "(96 checks: 89 passed, 1 passed with warnings, 2 failed, 4 skipped)"
    )
    wave_header = next(i for i, line in enumerate(lines) if line.startswith("wave-wide: "))
    assert site_header < wave_header
    site_lines = lines[site_header + 1 : wave_header - 1]
    assert [line.split()[:3] for line in site_lines] == [
        ["CRITICAL", "vm.snapshots", "vm"],
        ["CRITICAL", "device.reachable", "device"],
        ["WARNING", "vm.drift", "vm"],
    ]
    # one line per finding, even when the gatherer's error has a newline in it
    assert "it's over\ufffd;" in site_lines[1]  # and the BEL is not sent to the terminal
    # 113: plan.traffic_proof passes the wave (every site has a probe)
    assert lines[-2] == "113 checks: 106 passed, 1 passed with warnings, 2 failed, 4 skipped"
    # passed checks are counted, not listed
    assert "vm.media" not in text


def test_table_of_a_clean_wave_says_ready() -> None:
    text = render(READY, "table")
    assert text.endswith("wave 2: 0 critical, 0 warning, 5 info — ready\n")
    for site in ("auning-adm", "kattegatskolen", "auning-skole"):
        assert any(line.startswith(f"{site}: 0 critical, 0 warning, 0 info (") for line in text.splitlines()), site


def test_table_shows_a_pulled_forward_vms_site_after_the_waves_sites() -> None:
    waves = [w.model_copy(update={"vms": ["ndj-sql01"]}) if w.number == 1 else w for w in PLAN.waves]
    report = check(with_vm(CLEAN, "ndj-sql01", snapshots=["s"]), 1, plan=PLAN.model_copy(update={"waves": waves}))
    headers = [
        line.split(":")[0] for line in render(report, "table").splitlines() if ": " in line and not line.startswith(" ")
    ]
    assert headers[1:4] == ["grenaa-raadhus", "auning-adm", "wave-wide"]


# ------------------------------------------------------------------------------------------------- json


def test_json_is_the_whole_report() -> None:
    data = json.loads(render(BLOCKED, "json"))
    assert data["blocked"] is True
    assert data["counts"] == {"critical": 2, "warning": 1, "info": 4}
    assert data["wave"] == 1
    assert data["municipality"] == {"code": "707", "name": "Norddjurs Kommune"}
    assert len(data["results"]) == len(BLOCKED.results)
    statuses = [r["status"] for r in data["results"]]
    assert statuses.count("failed") == 2
    assert statuses.count("skipped") == 4  # the unreachable device's later checks
    snapshot = next(r for r in data["results"] if r["rule_id"] == "vm.snapshots" and r["subject"] == "ndj-dc01")
    assert snapshot["findings"] == [
        {
            "id": "vm.snapshots",
            "severity": "critical",
            "subject_kind": "vm",
            "subject": "ndj-dc01",
            "site": "grenaa-raadhus",
            "message": "ndj-dc01 has 1 snapshot (før patch); delete or consolidate them before the wave",
            "evidence": {"snapshots": ["før patch"]},
            "waiver": None,
        }
    ]


# ------------------------------------------------------------------------------------------------ junit


def test_junit_has_every_check_as_a_test_case_with_right_counts() -> None:
    text = render(BLOCKED, "junit")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(BLOCKED.results) == int(root.attrib["tests"])
    assert root.attrib["failures"] == "2"
    assert root.attrib["skipped"] == "4"
    assert root.attrib["errors"] == "0"
    suites = root.findall("testsuite")
    assert [s.attrib["name"] for s in suites] == [
        "overflyt precheck wave 1 / grenaa-raadhus",
        "overflyt precheck wave 1 / wave-wide",
    ]
    for suite in suites:
        own = suite.findall("testcase")
        assert int(suite.attrib["tests"]) == len(own)
        assert int(suite.attrib["failures"]) == sum(1 for c in own if c.find("failure") is not None)
        assert int(suite.attrib["skipped"]) == sum(1 for c in own if c.find("skipped") is not None)
    names = {(c.attrib["classname"], c.attrib["name"]) for c in cases}
    assert ("vm.media", "vm ndj-dc01") in names  # passed checks are test cases too
    assert ("plan.window", "wave 1") in names


def _case(root: ET.Element, classname: str, name: str) -> ET.Element:
    found = [c for c in root.iter("testcase") if c.attrib["classname"] == classname and c.attrib["name"] == name]
    assert len(found) == 1
    return found[0]


def test_junit_failure_warning_skip_and_escaping() -> None:
    root = ET.fromstring(render(BLOCKED, "junit").encode("utf-8"))
    failure = _case(root, "vm.snapshots", "vm ndj-dc01").find("failure")
    assert failure is not None
    assert failure.attrib["type"] == "critical"
    assert (
        failure.attrib["message"] == "ndj-dc01 has 1 snapshot (før patch); delete or consolidate them before the wave"
    )
    assert failure.text is not None
    assert 'evidence: {"snapshots": ["før patch"]}' in failure.text

    unreachable = _case(root, "device.reachable", "device ndj-fw-01").find("failure")
    assert unreachable is not None
    expected = NASTY.replace("\x07", "\ufffd")  # XML cannot carry BEL; everything else survives exactly
    assert unreachable.attrib["message"] == (
        f"Device ndj-fw-01 is not reachable over SSH at 127.0.70.2:2222: {expected}; check its management address, "
        "port and ACLs, then run the pre-check again"
    )

    drift = _case(root, "vm.drift", "vm ndj-dc01")
    assert drift.find("failure") is None
    out = drift.find("system-out")
    assert out is not None
    assert out.text is not None
    assert out.text.startswith("WARNING: ndj-dc01 differs from the plan (cpu: plan 2, actual 4)")
    properties = {p.attrib["name"]: p.attrib["value"] for p in drift.iter("property")}
    assert properties == {"title": "VM matches the plan", "site": "grenaa-raadhus", "severity": "warning"}

    skipped = _case(root, "device.login", "device ndj-fw-01").find("skipped")
    assert skipped is not None
    assert skipped.attrib["message"] == "ndj-fw-01 is not reachable (see device.reachable)"

    window = _case(root, "plan.window", "wave 1")
    assert window.find("failure") is None
    info = window.find("system-out")
    assert info is not None
    assert info.text is not None
    assert info.text.startswith("INFO: Wave 1's window opens at")


def test_junit_of_a_clean_wave_has_no_failures() -> None:
    root = ET.fromstring(render(READY, "junit").encode("utf-8"))
    assert root.attrib["failures"] == "0"
    assert root.findall(".//failure") == []
    assert int(root.attrib["tests"]) == len(READY.results)


# ------------------------------------------------------------------------------------------------- ctrf

# The parts of the CTRF JSON schema (https://ctrf.io, schema/ctrf.schema.json) this report uses,
# with additionalProperties false where the spec has it: a key the spec does not know fails.
_STATUS = {"enum": ["passed", "failed", "skipped", "pending", "other"]}
CTRF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["results", "reportFormat", "specVersion"],
    "additionalProperties": False,
    "properties": {
        "reportFormat": {"const": "CTRF"},
        "specVersion": {"type": "string", "pattern": r"^[0-9]+\.[0-9]+\.[0-9]+$"},
        "timestamp": {"type": "string"},
        "generatedBy": {"type": "string"},
        "results": {
            "type": "object",
            "required": ["tool", "summary", "tests"],
            "additionalProperties": False,
            "properties": {
                "tool": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {"name": {"type": "string", "minLength": 1}, "version": {"type": "string"}},
                },
                "summary": {
                    "type": "object",
                    "required": ["tests", "passed", "failed", "skipped", "pending", "other", "start", "stop"],
                    "additionalProperties": False,
                    "properties": {
                        key: {"type": "integer"}
                        for key in (
                            "tests",
                            "passed",
                            "failed",
                            "skipped",
                            "pending",
                            "other",
                            "suites",
                            "start",
                            "stop",
                            "duration",
                        )
                    },
                },
                "tests": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "status", "duration"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "status": _STATUS,
                            "duration": {"type": "integer"},
                            "suite": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                            "message": {"type": "string"},
                            "rawStatus": {"type": "string"},
                            "tags": {"type": "array", "items": {"type": "string"}},
                            "extra": {"type": "object"},
                        },
                    },
                },
                "extra": {"type": "object"},
            },
        },
    },
}


@pytest.mark.parametrize("report", [BLOCKED, READY], ids=["blocked", "ready"])
def test_ctrf_is_valid_and_counts_add_up(report: PrecheckReport) -> None:
    data = json.loads(render(report, "ctrf"))
    jsonschema.validate(data, CTRF_SCHEMA)
    summary, tests = data["results"]["summary"], data["results"]["tests"]
    assert summary["tests"] == len(tests) == len(report.results)
    for status in ("passed", "failed", "skipped", "pending", "other"):
        assert summary[status] == sum(1 for t in tests if t["status"] == status), status
    assert summary["failed"] == sum(1 for r in report.results if r.status == "failed")
    assert summary["start"] <= summary["stop"]
    assert summary["start"] == int(report.started.timestamp() * 1000)
    assert data["results"]["extra"]["blocked"] is report.blocked


def test_ctrf_tests_carry_rule_subject_severity_and_evidence() -> None:
    tests = {t["name"]: t for t in json.loads(render(BLOCKED, "ctrf"))["results"]["tests"]}
    snapshot = tests["vm.snapshots: vm ndj-dc01"]
    assert snapshot["status"] == "failed"
    assert snapshot["suite"] == ["overflyt precheck wave 1", "grenaa-raadhus"]
    assert snapshot["tags"] == ["critical"]
    assert snapshot["message"] == (
        "CRITICAL: ndj-dc01 has 1 snapshot (før patch); delete or consolidate them before the wave"
    )
    assert {k: snapshot["extra"][k] for k in ("rule", "subject_kind", "subject", "site", "severity", "evidence")} == {
        "rule": "vm.snapshots",
        "subject_kind": "vm",
        "subject": "ndj-dc01",
        "site": "grenaa-raadhus",
        "severity": "critical",
        "evidence": {"snapshots": ["før patch"]},
    }
    drift = tests["vm.drift: vm ndj-dc01"]
    assert (drift["status"], drift["rawStatus"], drift["extra"]["severity"], drift["tags"]) == (
        "passed",
        "warning",
        "warning",
        ["warning"],
    )
    passed = tests["vm.media: vm ndj-dc01"]
    assert (passed["status"], passed["tags"], passed["extra"]["severity"]) == ("passed", [], None)
    assert "message" not in passed
    skipped = tests["device.backup: device ndj-fw-01"]
    assert (skipped["status"], skipped["message"]) == (
        "skipped",
        "skipped: ndj-fw-01 is not reachable (see device.reachable)",
    )
    window = tests["plan.window: wave 1"]
    assert window["suite"] == ["overflyt precheck wave 1", "wave-wide"]
    assert (window["status"], window["tags"]) == ("passed", ["info"])


# --------------------------------------------------------------------------------------------- markdown


def test_markdown_has_summary_and_a_table_per_site_with_escaping() -> None:
    text = render(BLOCKED, "markdown")  # Danish by default
    lines = text.splitlines()
    assert lines[0] == "# overflyt forhåndstjek: Norddjurs Kommune (707), bølge 1 — Fælles tjenester"
    assert "**STANDSET** — 2 kritiske fund skal rettes før bølgen." in lines
    assert [line for line in lines if re.match(r"^\| (kritisk|advarsel|info) \| \d+ \|$", line)] == [
        "| kritisk | 2 |",
        "| advarsel | 1 |",
        "| info | 4 |",
    ]
    assert lines.index("## Grenaa Rådhus (grenaa-raadhus)") < lines.index("## hele bølgen")
    assert "Vindue 2027-03-06 18:00:00 +01:00 til 2027-03-07 06:00:00 +01:00." in lines
    row = next(line for line in lines if line.startswith("| kritisk | device.reachable |"))
    assert row == (
        "| kritisk | device.reachable | enhed ndj-fw-01 | Device ndj-fw-01 is not reachable over SSH at "
        '127.0.70.2:2222: banner &lt;motd&gt; &amp; "welcome" \\| it\'s over\ufffd; check its management address, '
        "port and ACLs, then run the pre-check again |"
    )
    # every finding row has exactly four cells (escaped pipes do not split cells)
    rows = [line for line in lines if re.match(r"^\| (kritisk|advarsel|info) \| [a-z_]+\.[a-z_]+ \|", line)]
    assert len(rows) == 7
    for line in rows:
        assert len(re.split(r"(?<!\\)\|", line)) == 6, line


def test_markdown_in_english_keeps_its_wording() -> None:
    lines = render(BLOCKED, "markdown", "en").splitlines()
    assert lines[0] == "# overflyt pre-check: Norddjurs Kommune (707), wave 1 — Fælles tjenester"
    assert "**BLOCKED** — 2 critical finding(s) must be fixed before the wave." in lines
    assert "| critical | 2 |" in lines
    assert lines.index("## Grenaa Rådhus (grenaa-raadhus)") < lines.index("## wave-wide")
    assert any(
        line.startswith("| critical | device.reachable | device ndj-fw-01 | Device ndj-fw-01 ") for line in lines
    )
    assert "Window 2027-03-06 18:00:00 +01:00 to 2027-03-07 06:00:00 +01:00." in lines


def test_markdown_of_a_clean_wave_says_ready() -> None:
    text = render(READY, "markdown")
    assert "**Klar** — intet kritisk fund." in text
    assert "## Kattegatskolen (kattegatskolen)" in text
    assert "**Ready** — no critical finding." in render(READY, "markdown", "en")


# ----------------------------------------------------------------------------------------------- errors


def test_every_format_renders_and_unknown_is_a_usage_error() -> None:
    assert FORMATS == ("table", "json", "junit", "ctrf", "markdown")
    for fmt in FORMATS:
        assert render(READY, fmt).endswith("\n")
    with pytest.raises(UsageError, match=r"unknown format 'yaml' \(one of: table, json, junit, ctrf, markdown\)"):
        render(READY, "yaml")


def test_capacity_numbers_never_use_exponent_notation() -> None:
    report = check(with_target_item(CLEAN, "clusters", "MJ-Kommuner-01", allocated_memory_mb=0), 2)
    text = render(report, "table")
    assert "e+0" not in text
    assert "MJ-Kommuner-01 has room for wave 2's memory: needs 372736 MB, 1677721 MB available" in text
