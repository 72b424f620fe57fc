"""Waivers (waivers.yml beside the plan): read and refused with file and line; a waived finding no
longer blocks and says who, why and until in every report format; an expired waiver does not apply
and is a warning; a waiver that matches nothing is a warning; the waivers in force are part of the
pre-check's fingerprint."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pytest
from test_precheck_facts import CLEAN, NOW, PLAN, SAMPLE, check, with_vm

from overflyt import reports
from overflyt.cli import main
from overflyt.errors import PlanInvalid
from overflyt.plan import load
from overflyt.plan.waivers import PlacedWaiver, Waiver
from overflyt.precheck import PrecheckReport, Severity, render
from overflyt.precheck.fingerprint import stale, waiver_prints
from overflyt.precheck.waivers import EXPIRED, UNUSED, apply_waivers, in_force

REASON = "kommunen beholder snapshot til arkivet er kopieret (SAG-4411)"
TODAY = NOW.date()  # 2027-03-01 in Europe/Copenhagen


def waiver(item: str = "ndj-dc01", expires: date = date(2027, 3, 31), finding: str = "vm.snapshots") -> PlacedWaiver:
    return PlacedWaiver(
        Waiver(finding=finding, item=item, reason=REASON, approved_by="Mette Holm", expires=expires),
        "waivers.yml:2",
    )


def snapshot_report() -> PrecheckReport:
    """Wave 1 with one critical finding: ndj-dc01 has a snapshot."""
    report = check(with_vm(CLEAN, "ndj-dc01", snapshots=["før patch"]), 1)
    assert report.blocked
    return report


def findings(report: PrecheckReport, rule_id: str) -> list[tuple[str, Severity, str]]:
    return [(f.subject, f.severity, f.message) for f in report.findings if f.id == rule_id]


# ------------------------------------------------------------------------------------------------ file


def plan_with(tmp_path: Path, waivers: str) -> Path:
    directory = tmp_path / "plan"
    shutil.copytree(SAMPLE.parent, directory)
    (directory / "waivers.yml").write_text(waivers)
    return directory / "plan.yml"


GOOD = f"""waivers:
  - finding: vm.snapshots
    item: ndj-dc01
    reason: {REASON}
    approved_by: Mette Holm
    expires: 2027-03-31
"""


def test_waivers_beside_the_plan_are_read_with_where_they_are(tmp_path: Path) -> None:
    loaded = load(plan_with(tmp_path, GOOD))
    [placed] = loaded.waivers
    assert placed.waiver == Waiver(
        finding="vm.snapshots", item="ndj-dc01", reason=REASON, approved_by="Mette Holm", expires=date(2027, 3, 31)
    )
    assert placed.where.endswith("waivers.yml:2")
    assert load(SAMPLE).waivers == ()  # no file: no waivers


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (GOOD.replace(f"    reason: {REASON}\n", ""), "waivers.yml:2: waivers[0].reason: required field is missing"),
        (GOOD.replace("2027-03-31", "31.03.2027"), "waivers.yml:6: waivers[0].expires: Input should be a valid date"),
        (GOOD.replace("    item: ndj-dc01\n", "    item: ndj-dc01\n    until: soon\n"), "waivers.yml:4: "
         "waivers[0].until: unknown field (see `overflyt plan schema` for the fields a plan may have)"),
        (GOOD.replace("approved_by: Mette Holm", "approved_by: '  '"), "waivers.yml:2: waivers[0]: approved_by "
         "must not be blank"),
        (GOOD.replace("finding: vm.snapshots", "finding: snapshots"), "waivers.yml:2: waivers[0].finding: String "
         "should match pattern"),
        (GOOD + GOOD.removeprefix("waivers:\n"), "waivers.yml:7: waivers[1]: waiver of vm.snapshots for 'ndj-dc01' "
         "given twice (first at line 2)"),
        ("- finding: vm.snapshots\n", "waivers.yml:1: a waivers file must be a mapping with the key `waivers`"),
    ],
)  # fmt: skip
def test_a_bad_waivers_file_is_refused_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: str
) -> None:
    plan = plan_with(tmp_path, text)
    with pytest.raises(PlanInvalid) as refused:
        load(plan)
    assert line in str(refused.value), str(refused.value)
    assert main(["plan", "validate", str(plan)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("overflyt: plan invalid: 1 error\n")
    assert line in err


def test_the_waivers_schema_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "schema", "--waivers"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "overflyt waivers"
    fields = schema["$defs"]["Waiver"]
    assert sorted(fields["required"]) == ["approved_by", "expires", "finding", "item", "reason"]
    assert fields["additionalProperties"] is False


# ----------------------------------------------------------------------------------------------- rules


def test_a_waived_finding_no_longer_blocks_and_says_who_why_and_until() -> None:
    report = apply_waivers(snapshot_report(), [waiver()], PLAN, NOW)
    assert not report.blocked
    [finding] = [f for f in report.findings if f.id == "vm.snapshots"]
    assert finding.severity is Severity.warning
    assert finding.waiver is not None
    assert (finding.waiver.approved_by, finding.waiver.reason, finding.waiver.expires) == (
        "Mette Holm",
        REASON,
        date(2027, 3, 31),
    )
    assert finding.waiver.severity is Severity.critical
    assert finding.waiver.text() == f"waived by Mette Holm until 2027-03-31: {REASON}"
    assert not findings(report, EXPIRED)
    assert not findings(report, UNUSED)


def test_a_waiver_applies_to_the_end_of_its_day_and_an_expired_one_is_a_warning() -> None:
    on_the_day = apply_waivers(snapshot_report(), [waiver(expires=TODAY)], PLAN, NOW)
    assert not on_the_day.blocked
    expired = apply_waivers(snapshot_report(), [waiver(expires=date(2027, 2, 28))], PLAN, NOW)
    assert expired.blocked  # the finding blocks as before
    [snapshot] = [f for f in expired.findings if f.id == "vm.snapshots"]
    assert (snapshot.severity, snapshot.waiver) == (Severity.critical, None)
    assert findings(expired, EXPIRED) == [
        (
            "vm.snapshots ndj-dc01",
            Severity.warning,
            f"The waiver of vm.snapshots for ndj-dc01 (waivers.yml:2, by Mette Holm: {REASON}) expired on 2027-02-28 "
            "and no longer applies; renew it in waivers.yml or fix the finding",
        )
    ]


def test_a_waiver_matching_nothing_is_a_warning_unless_it_is_another_waves_business() -> None:
    clean = check(CLEAN, 1)
    unused = apply_waivers(clean, [waiver()], PLAN, NOW)  # ndj-dc01 has no snapshot: nothing to waive
    assert findings(unused, UNUSED) == [
        (
            "vm.snapshots ndj-dc01",
            Severity.warning,
            "The waiver of vm.snapshots for ndj-dc01 (waivers.yml:2, by Mette Holm) matches no finding of this "
            "pre-check; remove it from waivers.yml if the finding is gone, or correct its finding or item",
        )
    ]
    assert not unused.blocked
    typo = apply_waivers(clean, [waiver(item="ndj-dc1")], PLAN, NOW)  # in no wave of the plan at all
    assert [s for s, _, _ in findings(typo, UNUSED)] == ["vm.snapshots ndj-dc1"]
    later = apply_waivers(clean, [waiver(item="ndj-sql01")], PLAN, NOW)  # wave 2's VM, pre-checked then
    assert later == clean


# --------------------------------------------------------------------------------------- every format


def test_every_report_format_shows_the_waiver() -> None:
    report = apply_waivers(snapshot_report(), [waiver()], PLAN, NOW)
    said = f"waived by Mette Holm until 2027-03-31: {REASON}"
    table = render(report, "table")
    [line] = [x for x in table.splitlines() if "vm.snapshots" in x]
    assert line.split()[:4] == ["WARNING", "(WAIVED)", "vm.snapshots", "vm"]
    assert line.endswith(f"[{said}]")
    assert table.endswith("— ready\n")
    data = json.loads(render(report, "json"))
    [waived] = [f for r in data["results"] for f in r["findings"] if f["waiver"]]
    assert waived["waiver"] == {
        "approved_by": "Mette Holm", "reason": REASON, "expires": "2027-03-31", "severity": "critical",
        "where": "waivers.yml:2",
    }  # fmt: skip
    assert data["blocked"] is False
    root = ET.fromstring(render(report, "junit"))
    case = next(
        c for c in root.iter("testcase") if c.get("classname") == "vm.snapshots" and "ndj-dc01" in c.get("name")
    )
    assert case.find("failure") is None
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["waiver"] == f"{said} (waivers.yml:2)"
    assert f"{said} (waivers.yml:2)" in (case.findtext("system-out") or "")
    ctrf = json.loads(render(report, "ctrf"))
    test = next(t for t in ctrf["results"]["tests"] if t["name"] == "vm.snapshots: vm ndj-dc01")
    assert test["status"] == "passed"
    assert "waived" in test["tags"]
    assert said in test["message"]
    assert test["extra"]["findings"][0]["waiver"]["approved_by"] == "Mette Holm"
    danish = render(report, "markdown", "da")
    assert "| advarsel (dispenseret) | vm.snapshots | VM ndj-dc01 |" in danish
    assert f"dispenseret af Mette Holm til og med 2027-03-31: {REASON} |" in danish
    english = render(report, "markdown", "en")
    assert f"— {said} |" in english


def test_the_evidence_pack_shows_the_waiver(tmp_path: Path) -> None:
    from test_evidence import RECORDS, plan_of_records

    from overflyt.cutover.evidence import evidence_markdown
    from overflyt.plan import load_plan

    state = tmp_path / "state"
    shutil.copytree(RECORDS / "state", state)
    first = sorted(state.glob("707/wave-1/wave/*/precheck.json"))[-1]
    data = json.loads(first.read_text())
    finding = {
        "id": "vm.snapshots", "severity": "warning", "subject_kind": "vm", "subject": "ndj-dc01",
        "site": "grenaa-raadhus", "message": "ndj-dc01 has 1 snapshot (arkiv)", "evidence": {},
        "waiver": {"approved_by": "Mette Holm", "reason": REASON, "expires": "2027-03-31", "severity": "critical",
                   "where": "waivers.yml:2"},
    }  # fmt: skip
    data["results"].append({"rule_id": "vm.snapshots", "findings": [finding]})
    first.write_text(json.dumps(data))
    plan = load_plan(plan_of_records(tmp_path))
    for lang, said in (("da", "dispenseret af Mette Holm til og med 2027-03-31"), ("en", "waived by Mette Holm")):
        text = evidence_markdown(plan, lang, state)
        [row] = [line for line in text.splitlines() if "ndj-dc01 has 1 snapshot (arkiv)" in line]
        assert f"({reports.labels(lang)['waived'].lower()})" in row
        assert said in row
        assert REASON in row


# -------------------------------------------------------------------------------------- fingerprint


def test_the_waivers_in_force_are_part_of_the_fingerprint() -> None:
    dc01, wave_wide = waiver(), waiver(item="mj-ds-01", finding="capacity.datastore")
    saved = {"run_id": "p1", "taken_at": "t", "vms": {}, "devices": {}, "sites": ["grenaa-raadhus"], "waivers": []}
    now = {**saved, "waivers": waiver_prints([dc01])}
    assert stale(PLAN, saved, now) == {
        "grenaa-raadhus": ["waiver of vm.snapshots for ndj-dc01 added since the pre-check p1 (t)"]
    }
    assert stale(PLAN, now, saved) == {
        "grenaa-raadhus": ["waiver of vm.snapshots for ndj-dc01 removed or expired since the pre-check p1 (t)"]
    }
    assert stale(PLAN, now, now) == {}
    # a waiver of a wave-wide item concerns every site of the cutover; one of another wave's VM none
    both = {**saved, "sites": ["grenaa-raadhus", "kattegatskolen"]}
    assert stale(PLAN, both, {**both, "waivers": waiver_prints([wave_wide])}) == {
        site: ["waiver of capacity.datastore for mj-ds-01 added since the pre-check p1 (t)"]
        for site in ("grenaa-raadhus", "kattegatskolen")
    }
    assert stale(PLAN, saved, {**saved, "waivers": waiver_prints([waiver(item="ndj-sql01")])}) == {}
    # an older fingerprint (no waivers in it) and no waivers now: nothing changed
    older = {k: v for k, v in saved.items() if k not in ("waivers", "sites")}
    assert stale(PLAN, older, saved) == {}
    assert in_force([dc01, waiver(expires=date(2027, 2, 28))], TODAY) == [dc01]
