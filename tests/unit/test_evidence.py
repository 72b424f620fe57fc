"""The evidence pack from run records alone: every template renders with StrictUndefined from the
lab's recorded runs (tests/unit/data/records: a failed-and-rolled-back attempt, an approved cutover
and an on-demand rollback of wave 1), a field the data lacks is an error, a municipality with no runs
is all pending, a wave state from another version of the plan is refused, and the labels of every
language have the same keys (a third language is a file)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from flows.logs import publish_evidence
from prefect import flow
from prefect.client.orchestration import get_client

from overflyt import reports
from overflyt.cli import main
from overflyt.cutover.evidence import EvidenceRefused, evidence_view, write_evidence
from overflyt.cutover.outcome import Approval, SiteOutcome, WaveOutcome
from overflyt.cutover.report import markdown_view, names_of, report_markdown, rollback_view
from overflyt.cutover.state import WaveState, plan_version
from overflyt.plan import load_plan
from overflyt.precheck import PrecheckReport
from overflyt.precheck.report import markdown_view as precheck_view

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "inventories" / "norddjurs" / "plan.yml"
TEMPLATES = REPO / "templates"
RECORDS = Path(__file__).parent / "data" / "records"
SITE_NAME = "Grenå Rådhus og Borgerservice"


def plan_of_records(tmp_path: Path) -> Path:
    """The plan the records were made with (tests/lab/test_evidence.py): the sample without five of the
    town hall's VMs (tests/lab/labtools.py's light plan) and the town hall renamed."""
    plan_dir = tmp_path / "plan"
    shutil.copytree(SAMPLE.parent, plan_dir)
    text = (plan_dir / "plan.yml").read_text()
    text = re.sub(r"\n  - \{name: ndj-(pki01|radius01|wsus01|mgmt01|print01),[^\n]*", "", text)
    text = text.replace("    name: Grenaa Rådhus\n", f"    name: {SITE_NAME}\n", 1)
    (plan_dir / "plan.yml").write_text(text)
    return plan_dir / "plan.yml"


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, Path]:
    """(plan, state dir) of the recorded runs."""
    state = tmp_path / "state"
    shutil.copytree(RECORDS / "state", state)
    return plan_of_records(tmp_path), state


def _runs(state: Path, kind: str) -> list[Path]:
    return sorted(state.glob(f"707/wave-1/{kind}/*/"))


# -------------------------------------------------------------------------------- every template


# What each language's per-run reports say, where the tests below look.
WORDS = {
    "da": {"run": "Kørsel", "yes": "ja", "restored": "gendannet", "approved": "Godkendt af", "window": "vindue",
           "precheck": "# overflyt forhåndstjek: Norddjurs Kommune (707), bølge 1", "wave_wide": "## hele bølgen"},
    "en": {"run": "Run", "yes": "yes", "restored": "restored", "approved": "Approved by", "window": "window",
           "precheck": "# overflyt pre-check: Norddjurs Kommune (707), wave 1", "wave_wide": "## wave-wide"},
}  # fmt: skip


@pytest.mark.parametrize("lang", ["da", "en"])
def test_the_wave_report_renders_from_each_recorded_run(recorded: tuple[Path, Path], lang: str) -> None:
    plan_path, state = recorded
    plan, words = load_plan(plan_path), WORDS[lang]
    runs = _runs(state, "wave") + _runs(state, "rollback")
    assert len(runs) >= 3
    approved = 0
    for run in runs:
        data = json.loads((run / "report.json").read_text())
        kind = run.parent.name
        outcome = WaveOutcome(
            data["municipality"], data["wave"], data["dry_run"], data["run_id"], Path(data["run_dir"]),
            blocked=data["blocked_by_prechecks"], precheck=data["precheck"], overrides=data["overrides"],
            approval=Approval(**data["approval"]) if data.get("approval") else None,
            window=data["window"], sites=[SiteOutcome(**s) for s in data["sites"]], kind=kind,
            names=names_of(plan, data["wave"]), lang=lang,
        )  # fmt: skip
        if kind == "rollback":
            view = rollback_view(outcome)
            text = reports.render("rollback.md.j2", TEMPLATES, r=view, l=view["l"])
            assert f"\n| ndj-core-01 | {words['yes']} | `" in text
            assert f"\n| ndj-dc01 | {words['restored']} | ndj-esx01 / ndj-ds-grenaa-01 / VM-Faelles-10 |\n" in text
        else:
            view = markdown_view(outcome)
            text = reports.render("wave.md.j2", TEMPLATES, r=view, l=view["l"])
        assert text == report_markdown(outcome)
        assert text.startswith("# ")
        assert "Norddjurs Kommune (707)" in text.splitlines()[0]
        window = plan.wave(1).window
        assert f"{plan.wave(1).name}: {words['window']} {reports.local_time(window.start)} " in text
        assert f"\n## {SITE_NAME} (grenaa-raadhus): {view['l']['statuses'][data['sites'][0]['status']]}\n" in text
        assert f"{words['run']} `{data['run_id']}`" in text
        if outcome.approval is not None:
            approved += 1
            assert f"{words['approved']} **{outcome.approval.approved_by}** " in text
            assert reports.local_time(outcome.approval.at) in text
        assert "\n\n\n" not in text
    assert approved >= 1


@pytest.mark.parametrize("lang", ["da", "en"])
def test_the_precheck_report_renders_from_a_recorded_precheck(recorded: tuple[Path, Path], lang: str) -> None:
    plan_path, state = recorded
    plan = load_plan(plan_path)
    run = _runs(state, "wave")[0]
    data = json.loads((run / "precheck.json").read_text())
    for computed in ("counts", "blocked"):  # written by the report, derived when read
        del data[computed]
    for result in data["results"]:
        del result["status"]
    # recorded before reports named sites: the ids stand alone
    old = precheck_view(PrecheckReport.model_validate(data), lang)
    text = reports.render("precheck.md.j2", TEMPLATES, r=old, l=old["l"])
    assert text.startswith(WORDS[lang]["precheck"])
    assert "\n## grenaa-raadhus\n" in text
    # as a pre-check records it now: with the sites' names and the wave's window
    window = plan.wave(1).window
    data.update(site_names={s.id: s.name for s in plan.sites}, window_start=window.start, window_end=window.end)
    view = precheck_view(PrecheckReport.model_validate(data), lang)
    text = reports.render("precheck.md.j2", TEMPLATES, r=view, l=view["l"])
    assert text.startswith(WORDS[lang]["precheck"])
    assert f"\n## {SITE_NAME} (grenaa-raadhus)\n" in text
    assert f"{SITE_NAME} (grenaa-raadhus)" in text.splitlines()[4]  # the sites checked
    assert f" {reports.local_time(window.start)} " in text
    assert f"\n{WORDS[lang]['wave_wide']}\n" in text
    assert "\n\n\n" not in text


@pytest.mark.parametrize("lang", ["da", "en"])
@pytest.mark.parametrize("template", ["evidence.html.j2", "evidence.md.j2"])
def test_the_evidence_pack_renders_from_the_recorded_runs(
    recorded: tuple[Path, Path], template: str, lang: str
) -> None:
    plan, state = recorded
    view = evidence_view(load_plan(plan), lang, base=state)
    text = reports.render(template, TEMPLATES, r=view, l=view["l"])
    labels = view["l"]
    site = view["waves"][0]["sites"][0]
    assert site["name"] in text
    assert [e["kind"] for e in site["entries"]] == ["wave", "wave", "rollback"]
    assert [e["status"] for e in site["entries"]] == ["rolled_back", "done", "rolled_back"]
    done = site["entries"][1]
    assert done["approval"]["approved_by"] in text
    assert done["approval"]["ticket"] in text
    assert reports.local_time(done["approval"]["at"]) in text
    assert any(d["pushed"] for d in done["devices"])
    for line in next(d["pushed"] for d in done["devices"] if d["pushed"]):
        assert line in text
    assert all(d["backup_sha"] and d["after_sha"] for d in done["devices"])
    moved = done["vms"][0]
    assert moved["status"] == "moved"
    assert f"{moved['from']['host']} / {moved['from']['datastore']} / {moved['from']['portgroups']}" in text
    assert f"{moved['to']['host']} / {moved['to']['datastore']} / {moved['to']['portgroups']}" in text
    assert labels["rollback"] in text
    assert labels["statuses"]["rolled_back"] in text
    summary = view["summary"]
    assert (summary["waves"], summary["sites"], summary["rollbacks"]) == (3, 8, 2)
    assert summary["vms_moved"] == 0  # the on-demand rollback put them back
    assert next(p["site"] for p in view["pending"]) == site["name"]


def _without(data: Any, path: tuple[str, ...]) -> Any:
    copy = json.loads(json.dumps(data, default=str))
    node = copy
    for key in path[:-1]:
        node = node[key] if isinstance(node, dict) else node[int(key)]
    del node[path[-1]]
    return copy


@pytest.mark.parametrize("template", ["evidence.html.j2", "evidence.md.j2"])
@pytest.mark.parametrize(
    "path",
    [
        ("municipality", "name"),
        ("summary", "rollbacks"),
        ("waves", "0", "window"),
        ("waves", "0", "sites", "0", "name"),
        ("waves", "0", "sites", "0", "entries", "1", "approval"),
        ("waves", "0", "sites", "0", "entries", "1", "vms", "0", "to"),
        ("waves", "0", "sites", "0", "entries", "1", "devices", "0", "pushed"),
        ("waves", "0", "sites", "0", "entries", "0", "rollback"),
        ("pending",),
    ],
)
def test_a_field_the_records_lack_is_an_error_not_an_empty_line(
    recorded: tuple[Path, Path], template: str, path: tuple[str, ...]
) -> None:
    plan, state = recorded
    view = evidence_view(load_plan(plan), "da", base=state)
    broken = _without({k: v for k, v in view.items() if k != "l"}, path)
    with pytest.raises(jinja2.UndefinedError):
        reports.render(template, TEMPLATES, r=broken, l=view["l"])


@pytest.mark.parametrize("template", ["evidence.html.j2", "evidence.md.j2"])
def test_a_label_missing_from_a_language_file_is_an_error(recorded: tuple[Path, Path], template: str) -> None:
    plan, state = recorded
    view = evidence_view(load_plan(plan), "da", base=state)
    labels = {k: v for k, v in view["l"].items() if k != "approved_by"}
    with pytest.raises(jinja2.UndefinedError, match="approved_by"):
        reports.render(template, TEMPLATES, r=view, l=labels)


# ------------------------------------------------------------------------- no runs, other version


def test_a_municipality_with_no_runs_is_all_pending(tmp_path: Path) -> None:
    plan = load_plan(SAMPLE)
    path = write_evidence(plan, tmp_path / "out", "md", "da", base=tmp_path / "state")
    text = path.read_text()
    assert path.name == "evidence-707.md"
    assert "| 0 af 3 | 0 af 8 | 0 | 0 | 0 |" in text
    assert "### Grenaa Rådhus (grenaa-raadhus): afventer\n\nIngen kørsler endnu.\n" in text
    assert text.count("| afventer |") == 8 + 8  # per wave table and in the pending section
    assert not (tmp_path / "state").exists()  # reading never creates anything


def test_a_state_from_another_plan_version_is_refused(recorded: tuple[Path, Path]) -> None:
    plan, state = recorded
    assert evidence_view(load_plan(plan), base=state)["waves"][0]["sites"][0]["name"] == SITE_NAME
    plan.write_text(plan.read_text().replace(f"    name: {SITE_NAME}\n", "    name: Grenaa Rådhus\n", 1))
    with pytest.raises(EvidenceRefused) as refused:
        evidence_view(load_plan(plan), base=state)
    message = str(refused.value)
    assert message.startswith(f"{state / '707' / 'wave-1' / 'state.json'}: wave 1's state was written from another")
    assert message.endswith("changed since the wave ran; report from the plan version that ran it")


def test_the_plan_version_covers_the_wave_and_nothing_after_it() -> None:
    plan = load_plan(SAMPLE)
    base = plan_version(plan, 1)
    assert base == plan_version(load_plan(SAMPLE), 1)
    later = plan.model_copy(update={"waves": [*plan.waves[:2], plan.waves[2].model_copy(update={"name": "x"})]})
    assert plan_version(later, 1) == base
    renamed = plan.model_copy(update={"waves": [plan.waves[0].model_copy(update={"name": "x"}), *plan.waves[1:]]})
    assert plan_version(renamed, 1) != base
    moved = plan.model_copy(update={"vms": [plan.vms[0].model_copy(update={"datastore": "other"}), *plan.vms[1:]]})
    assert plan.vms[0].name in {vm.name for vm in plan.vms_of_wave(1)}
    assert plan_version(moved, 1) != base


def test_an_older_state_without_a_plan_version_is_reported(tmp_path: Path) -> None:
    plan = load_plan(SAMPLE)
    path = tmp_path / "707" / "wave-1" / "state.json"
    path.parent.mkdir(parents=True)
    path.write_text(WaveState(municipality="707", wave=1, sites={}).model_dump_json())
    assert evidence_view(plan, base=tmp_path)["waves"][0]["sites"][0]["status"] == "pending"


# ------------------------------------------------------------------------------ labels and times


def test_every_language_has_every_label() -> None:
    files = sorted((TEMPLATES / "i18n").glob("*.yml"))
    assert [f.stem for f in files] == ["da", "en"]

    def paths(data: dict[str, Any], prefix: str = "") -> set[str]:
        """Every key, nested ones as ``run_report.parts.devices``."""
        found = set()
        for key, value in data.items():
            found.add(prefix + str(key))
            if isinstance(value, dict):
                found |= paths(value, f"{prefix}{key}.")
        return found

    keys = [paths(yaml.safe_load(f.read_text())) for f in files]
    assert {"statuses.rolled_back", "run_report.wave_title", "precheck_report.kinds.device"} <= keys[0]
    assert all(k == keys[0] for k in keys)


def test_times_are_europe_copenhagen_with_their_offset() -> None:
    assert reports.local_time("2026-12-05T23:10:00+00:00") == "2026-12-06 00:10:00 +01:00"
    assert reports.local_time(datetime.fromisoformat("2027-07-01T10:00:00")) == "2027-07-01 12:00:00 +02:00"
    assert reports.local_time(None) == "\u2013"
    assert reports.seconds_text(42.25) == "42.2 s"
    assert reports.seconds_text(185) == "3 min 05 s"
    assert reports.seconds_text(3725) == "1 h 02 min"


def test_bad_input_to_report_is_refused_with_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(tmp_path / "state"))
    assert main(["report", str(SAMPLE), "--lang", "fr", "--output", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == "overflyt: unknown language 'fr': reports are written in da, en\n"
    assert main(["report", str(tmp_path / "missing.yml"), "--output", str(tmp_path / "o")]) == 2
    assert "file not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert main(["report", str(SAMPLE), "--output", str(tmp_path / "o"), "--format", "md", "--lang", "en"]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'o' / 'evidence-707.md'}\n"


# ---------------------------------------------------------------------------- the Prefect artifact


@flow(name="publish-evidence")
def _publish(plan: str) -> None:
    publish_evidence(Path(plan))


@pytest.mark.timeout(300)
def test_the_flows_publish_the_pack_under_one_key_per_municipality(
    recorded: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prefect itself is under test: the flow runs on Prefect's temporary local API."""
    plan, state = recorded
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(state))
    before = asyncio.run(_count("evidence-707"))  # Prefect's database may hold earlier ones
    _publish(str(plan))
    _publish(str(plan))
    assert asyncio.run(_count("evidence-707")) == before + 2  # one key, a new version after every run
    newest = asyncio.run(_artifacts("evidence-707"))[0]
    assert newest.startswith("# Dokumentation af migreringen: Norddjurs Kommune (kommune 707)\n")
    assert SITE_NAME in newest
    # a pack that cannot be built is a warning, never the run's failure: nothing new is published
    plan.write_text(plan.read_text().replace(f"    name: {SITE_NAME}\n", "    name: Grenaa Rådhus\n", 1))
    _publish(str(plan))
    assert asyncio.run(_count("evidence-707")) == before + 2


async def _count(key: str) -> int:
    """How many artifacts there are under ``key`` (not capped by a page's limit: a whole test run's
    lab tests publish many under the sample's key into the same Prefect database)."""
    async with get_client() as client:
        response = await client._client.post("/artifacts/count", json={"artifacts": {"key": {"any_": [key]}}})
    response.raise_for_status()
    return int(response.json())


async def _artifacts(key: str) -> list[str]:
    """The data of the newest 50 artifacts under ``key``, newest first (the REST call the UI makes;
    the typed client's filter joins task runs, which a flow-level artifact has none of)."""
    async with get_client() as client:
        query = {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 50, "offset": 0}
        response = await client._client.post("/artifacts/filter", json=query)
    response.raise_for_status()
    return [str(a["data"]) for a in response.json()]


def test_an_output_that_is_not_a_directory_is_refused_with_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "a-file").write_text("")
    assert main(["report", str(SAMPLE), "--output", str(tmp_path / "a-file")]) == 2
    assert capsys.readouterr().err == (
        f"overflyt: --output {tmp_path / 'a-file'}: cannot write evidence-707.html there (File exists)\n"
    )
