"""The plan's window settings (`window_policy`): defaults equal to the planner's, described in the
schema, bad values refused with one exact message and exit 2; and the pre-check's `plan.window`
finding overridden on purpose by `--outside-window` (a warning naming who and why). No lab."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from overflyt.cli import main
from overflyt.plan import load_plan
from overflyt.plan.model import WindowPolicy
from overflyt.planning.options import PlanningOptions
from overflyt.precheck import CheckContext, run_checks
from overflyt.precheck.facts import EstateFacts
from overflyt.precheck.findings import Severity
from overflyt.precheck.rules.plan import waive_window

SAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs"
CPH = ZoneInfo("Europe/Copenhagen")


def test_the_defaults_are_the_planners_and_the_schema_describes_every_setting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    planner = PlanningOptions(first_window=datetime(2027, 3, 6, 18, 0))
    policy = WindowPolicy()
    assert (policy.bandwidth_mbps, policy.site_minutes, policy.vm_minutes) == (
        planner.bandwidth_mbps,
        planner.site_minutes,
        planner.vm_minutes,
    )
    assert (policy.margin_min, policy.on_window_end) == (15, "finish")
    assert load_plan(SAMPLE / "plan.yml").window_policy == policy  # the sample sets none: the defaults

    assert main(["plan", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["properties"]["window_policy"]["$ref"] == "#/$defs/WindowPolicy"
    fields = schema["$defs"]["WindowPolicy"]["properties"]
    assert set(fields) == {"margin_min", "bandwidth_mbps", "site_minutes", "vm_minutes", "on_window_end"}
    assert all(f.get("description") for f in fields.values()), fields
    assert fields["on_window_end"]["enum"] == ["finish", "rollback"]
    assert "A rollback is always allowed outside the window" in " ".join(
        schema["$defs"]["WindowPolicy"]["description"].split()
    )


def _validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], policy: str):
    monkeypatch.chdir(tmp_path)
    text = (SAMPLE / "plan.yml").read_text(encoding="utf-8")
    text = text.replace("approval_required: true\n", f"approval_required: true\nwindow_policy: {policy}\n", 1)
    (tmp_path / "plan.yml").write_text(text, encoding="utf-8")
    line = next(n for n, t in enumerate(text.splitlines(), 1) if t.startswith("window_policy:"))
    code = main(["plan", "validate", "plan.yml"])
    out, err = capsys.readouterr()
    return code, out, err, line, text


def test_bad_window_settings_are_refused_one_line_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err, line, _ = _validate(
        tmp_path, monkeypatch, capsys, "{margin_min: -5, on_window_end: abandon, bandwidth_mbps: 0, overtime: 1}"
    )
    assert (code, out) == (2, "")
    assert err == (
        "overflyt: plan invalid: 4 errors\n"
        f"  plan.yml:{line}: window_policy.bandwidth_mbps: Input should be greater than 0 (value: 0)\n"
        f"  plan.yml:{line}: window_policy.margin_min: Input should be greater than or equal to 0 (value: -5)\n"
        f"  plan.yml:{line}: window_policy.on_window_end: Input should be 'finish' or 'rollback' (value: 'abandon')\n"
        f"  plan.yml:{line}: window_policy.overtime: unknown field (see `overflyt plan schema` for the fields a plan may "
        "have)\n"
    )


def test_a_window_no_site_could_start_in_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Wave 1 and 3's windows last 12 h, wave 2's 18 h: 20 + 700 minutes leave room in wave 2 only."""
    code, out, err, _, text = _validate(tmp_path, monkeypatch, capsys, "{margin_min: 700, site_minutes: 20}")
    lines = text.splitlines()
    at = [n for n, t in enumerate(lines, 1) if "window: {start:" in t]
    assert (code, out) == (2, "")
    assert err == "overflyt: plan invalid: 2 errors\n" + "".join(
        f"  plan.yml:{at[i]}: waves[{i}].window: the window lasts 720 min, not more than window_policy's "
        f"site_minutes (20) + margin_min (700): no site could start in it; lengthen the window or lower them "
        f"(value: '{start} - {end}')\n"
        for i, start, end in (
            (0, "2027-03-06T18:00:00+01:00", "2027-03-07T06:00:00+01:00"),
            (2, "2027-04-03T18:00:00+02:00", "2027-04-04T06:00:00+02:00"),
        )
    )
    # One minute less margin and every window holds a site (of the settings alone; the run checks each site).
    code, _, err, _, _ = _validate(tmp_path, monkeypatch, capsys, "{margin_min: 699, site_minutes: 20}")
    assert code == 0, err


def test_an_ended_window_overridden_on_purpose_is_a_warning_naming_who_and_why(tmp_path: Path) -> None:
    plan_dir = tmp_path / "norddjurs"
    shutil.copytree(SAMPLE, plan_dir)
    plan = load_plan(plan_dir / "plan.yml")
    after = datetime(2027, 3, 7, 6, 0, tzinfo=CPH) + timedelta(hours=3)
    report = run_checks(CheckContext(plan=plan, wave=1, facts=EstateFacts(), now=after))
    [ended] = [f for f in report.findings if f.id == "plan.window"]
    assert ended.severity is Severity.critical

    waived = waive_window(report, "--outside-window by mette@ofl: the school asked for Sunday morning")
    [finding] = [f for f in waived.findings if f.id == "plan.window"]
    assert finding.severity is Severity.warning
    assert finding.message == (
        "Wave 1's window ended at 2027-03-07 06:00 CET; set a new window for wave 1 in the plan — overridden: "
        "--outside-window by mette@ofl: the school asked for Sunday morning"
    )
    assert finding.evidence["override"] == "--outside-window by mette@ofl: the school asked for Sunday morning"
    assert finding.evidence["end"] == ended.evidence["end"]
    # Nothing else changed: every other finding is the same one, and the window no longer blocks.
    others = [f for f in report.findings if f.id != "plan.window"]
    assert [f for f in waived.findings if f.id != "plan.window"] == others
    assert waived.blocked == any(f.severity is Severity.critical for f in others)
    assert waived.counts[Severity.critical] == report.counts[Severity.critical] - 1
    assert waived.counts[Severity.warning] == report.counts[Severity.warning] + 1
