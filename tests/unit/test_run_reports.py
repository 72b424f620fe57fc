"""A wave run for CI: one test case per site step (and one for the wave's pre-check) in JUnit and
CTRF, the CTRF valid against the CTRF project's own JSON schema (tests/unit/data/ctrf.schema.json,
vendored with its source noted), and the dry run's planned moves and diffs as a reviewer reads them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from test_precheck_report import BLOCKED, READY

from overflyt.cli import main
from overflyt.cutover.runreport import cases, diff_line, plan_lines, render
from overflyt.errors import UsageError
from overflyt.precheck import render as render_precheck

SCHEMA = json.loads((Path(__file__).parent / "data" / "ctrf.schema.json").read_text())
PLACE = {"host": "esx-1", "datastore": "ds-a", "portgroups": ["VLAN-10"]}
TARGET = {"host": "mj-esx02", "datastore": "mj-ds1", "portgroups": ["NDJ-707-Faelles"]}


def dry_run() -> dict[str, Any]:
    return {
        "municipality": "707",
        "wave": 1,
        "dry_run": True,
        "run_id": "r-1",
        "run_dir": "/nowhere",
        "blocked_by_prechecks": False,
        "exit_code": 1,
        "sites": [
            {
                "site": "grenaa-raadhus",
                "status": "dry_run",
                "error": None,
                "steps": {"backup": 1.5, "migrate": 4.25, "configure": 2.0},
                "vms": {"vms": {"ndj-dc01": {"status": "would_move", "before": PLACE, "after": TARGET}}},
                "devices": {
                    "devices": {
                        "ndj-core-01": {
                            "pending_lines": ["ip route 10.70.10.0/24 10.255.70.1", "no ip route 1.2.3.0/24 9.9.9.9"]
                        },
                        "ndj-fw-01": {"pending_lines": []},
                    }
                },
            },
            {
                "site": "kattegat",
                "status": "failed",
                "error": "migrate: ndj-web01 could not be moved",
                "steps": {"backup": 1.0},
                "vms": {},
                "devices": {},
            },
        ],
    }


def test_one_case_per_site_step_failing_where_the_step_failed() -> None:
    found = [(c["site"], c["step"], c["status"]) for c in cases(dry_run())]
    assert found == [
        ("wave-wide", "precheck", "passed"),
        ("grenaa-raadhus", "backup", "passed"),
        ("grenaa-raadhus", "migrate", "passed"),
        ("grenaa-raadhus", "configure", "passed"),
        ("kattegat", "backup", "passed"),
        ("kattegat", "migrate", "failed"),
        ("kattegat", "configure", "skipped"),
    ]


def test_junit_lists_the_cases_per_site_suite() -> None:
    root = ET.fromstring(render(dry_run(), "junit"))
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("7", "1", "1")
    suites = {s.get("name", "").rsplit(" / ", 1)[1]: s for s in root.iter("testsuite")}
    assert list(suites) == ["wave-wide", "grenaa-raadhus", "kattegat"]
    migrate = next(c for c in suites["kattegat"].iter("testcase") if c.get("name") == "migrate")
    failure = migrate.find("failure")
    assert failure is not None
    assert failure.get("message") == "migrate: ndj-web01 could not be moved"
    assert [c.get("time") for c in suites["grenaa-raadhus"].iter("testcase")] == ["1.50", "4.25", "2.00"]


def test_a_wave_blocked_by_its_prechecks_fails_its_precheck_case() -> None:
    data = {**dry_run(), "blocked_by_prechecks": True, "sites": []}
    root = ET.fromstring(render(data, "junit"))
    assert root.get("failures") == "1"
    assert [c["status"] for c in cases(data)] == ["failed"]


@pytest.mark.parametrize("document", ["dry run", "precheck blocked", "precheck ready"])
def test_ctrf_is_valid_against_the_ctrf_schema_with_a_real_spec_version(document: str) -> None:
    text = {
        "dry run": lambda: render(dry_run(), "ctrf"),
        "precheck blocked": lambda: render_precheck(BLOCKED, "ctrf"),
        "precheck ready": lambda: render_precheck(READY, "ctrf"),
    }[document]()
    data = json.loads(text)
    jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER).validate(data)
    assert data["specVersion"] == "1.0.0"


def test_the_ctrf_schema_is_the_real_one_and_refuses_what_it_should() -> None:
    data = json.loads(render(dry_run(), "ctrf"))
    for bad in ({**data, "specVersion": "0.0"}, {**data, "unknown": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, SCHEMA)
    data["results"]["tests"][0]["status"] = "warning"
    with pytest.raises(jsonschema.ValidationError, match="warning"):
        jsonschema.validate(data, SCHEMA)


def test_the_dry_run_shows_each_vms_move_and_each_devices_diff() -> None:
    assert plan_lines(dry_run()) == [
        "grenaa-raadhus:",
        "  VM ndj-dc01 (would_move): esx-1 / ds-a / VLAN-10 -> mj-esx02 / mj-ds1 / NDJ-707-Faelles",
        "  device ndj-core-01: 2 line(s)",
        "    + ip route 10.70.10.0/24 10.255.70.1",
        "    - ip route 1.2.3.0/24 9.9.9.9",
        "  device ndj-fw-01: no change",
    ]
    assert diff_line("no ntp server 10.0.0.1\x1b[2J") == "- ntp server 10.0.0.1\ufffd[2J"


def test_json_is_the_report_data_and_markdown_the_run_records_report(tmp_path: Path) -> None:
    assert json.loads(render(dry_run(), "json")) == dry_run()
    (tmp_path / "report.md").write_text("# the run's report\n")
    assert render({**dry_run(), "run_dir": str(tmp_path)}, "markdown") == "# the run's report\n"
    with pytest.raises(UsageError, match="unknown format 'xml'"):
        render(dry_run(), "xml")


SAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs" / "plan.yml"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--output", "x.xml"],
            "--output writes the report of --format junit, ctrf, json or markdown: give --format too",
        ),
        (["--format", "junit", "--output", "/nowhere/x.xml"], "--output /nowhere/x.xml: no directory /nowhere"),
    ],
)
def test_a_report_file_the_run_cannot_write_is_refused_before_anything_runs(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(tmp_path / "state"))
    assert main(["wave", "run", str(SAMPLE), "--wave", "1", "--dry-run", *extra]) == 2
    assert capsys.readouterr().err == f"overflyt: {message}\n"
    assert not (tmp_path / "state").exists()
