"""`overflyt status` from run records alone (tests/unit/data/records: a failed-and-rolled-back attempt,
an approved cutover and an on-demand rollback of wave 1), and the state home: the same from every
working directory, named wherever nothing was found."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_evidence import RECORDS, plan_of_records

from overflyt import reports
from overflyt.cli import main
from overflyt.cutover.admission import admit_rollback
from overflyt.cutover.status import plan_status
from overflyt.errors import UsageError
from overflyt.plan import load_plan
from overflyt.project import find_project, state_home

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(plan, state dir) of the recorded runs; OVERFLYT_STATE_DIR names the state dir."""
    state = tmp_path / "state"
    shutil.copytree(RECORDS / "state", state)
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(state))
    return plan_of_records(tmp_path), state


def test_status_of_a_rolled_back_wave_from_its_records(
    recorded: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    plan, state = recorded
    assert main(["status", str(plan), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["municipality"] == {"code": "707", "name": "Norddjurs Kommune"}
    assert data["state_dir"] == str(state / "707")
    assert [(w["wave"], w["state"]) for w in data["waves"]] == [(1, "rolled back"), (2, "pending"), (3, "pending")]
    [town_hall] = data["waves"][0]["units"]
    assert town_hall == {
        "kind": "site", "id": "grenaa-raadhus", "name": "Grenå Rådhus og Borgerservice", "state": "rolled back",
        "when": town_hall["when"], "run": {"id": "20261206T100037Z-40d9fd", "kind": "rollback", "operator": "root@vm"},
        "approved_by": "Mette Holm (lab)", "ticket": "CHG-2027-0306", "vms_moved": [], "vms": 3,
        "devices_changed": [], "devices": 3, "error": None,
    }  # fmt: skip
    assert datetime.fromisoformat(town_hall["when"]) < datetime(2026, 12, 7, tzinfo=UTC)
    assert data["next_window"]["wave"] == 1  # its window (March 2027) is still ahead and the wave not done
    assert data["last_precheck"] is None
    assert main(["status", str(plan)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == f"Norddjurs Kommune (707) — state in {state / '707'}"
    assert (
        "  site grenaa-raadhus: rolled back 2026-12-06 11:00 (rollback 20261206T100037Z-40d9fd by root@vm), approved "
        "by Mette Holm (lab) (CHG-2027-0306); VMs moved 0/3, devices changed 0/3\n"
    ) in text
    assert f"last pre-check: none recorded in {state / '707'}\n" in text


def test_status_shows_a_done_site_with_its_moves_and_a_failed_one_needing_attention(
    recorded: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    plan_path, state = recorded
    # the state as it was after the approved cutover (the on-demand rollback's run not yet there)
    shutil.rmtree(state / "707" / "wave-1" / "rollback")
    path = state / "707" / "wave-1" / "state.json"
    wave_state = json.loads(path.read_text())
    site = wave_state["sites"]["grenaa-raadhus"]
    site.update(status="done", moved=["ndj-dc01", "ndj-dc02", "ndj-dhcp01"])
    path.write_text(json.dumps(wave_state))
    data = plan_status(load_plan(plan_path), state)
    [town_hall] = data["waves"][0]["units"]
    assert (town_hall["state"], town_hall["run"]["kind"]) == ("done", "cutover")
    assert town_hall["vms_moved"] == ["ndj-dc01", "ndj-dc02", "ndj-dhcp01"]
    assert town_hall["devices_changed"] == ["ndj-core-01"]  # the routes; the others had nothing to change
    assert data["waves"][0]["state"] == "done"
    assert data["next_window"]["wave"] == 2
    for status, said in (("failed", "failed"), ("rollback_failed", "rollback failed")):
        site["status"] = status
        path.write_text(json.dumps(wave_state))
        inventories = plan_path.parent.parent
        assert main(["status", "--inventories", str(inventories)]) == 0
        assert capsys.readouterr().out == (
            f"707 Norddjurs Kommune: waves 0/3 done, sites 0/8 done; ATTENTION: grenaa-raadhus {said}; next window: "
            "wave 1 2027-03-06 18:00 to 2027-03-07 06:00 (Europe/Copenhagen); no pre-check recorded\n"
        )


def test_status_names_where_it_looked_and_refuses_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(tmp_path / "empty"))
    sample = REPO / "inventories" / "norddjurs" / "plan.yml"
    assert main(["status", str(sample)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f"Norddjurs Kommune (707) — state in {tmp_path / 'empty' / '707'} (nothing recorded there yet: every site "
        "pending)\n"
    )
    assert not (tmp_path / "empty").exists()  # status writes nothing
    assert main(["status"]) == 2
    assert capsys.readouterr().err == "overflyt: status: give either a PLAN or --inventories DIR\n"
    assert main(["status", "--inventories", str(tmp_path)]) == 2
    assert (
        capsys.readouterr().err
        == f"overflyt: --inventories {tmp_path}: no plans found as {tmp_path}/<kommune>/plan.yml\n"
    )


def project_with_plan(tmp_path: Path) -> Path:
    """A project of its own (playbooks/ and roles/ of this one) holding a copy of the sample plan."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("playbooks", "roles", "collections", "templates"):
        (project / name).symlink_to(REPO / name)
    shutil.copytree(REPO / "inventories" / "norddjurs", project / "inventories" / "norddjurs")
    text = (project / "inventories" / "norddjurs" / "plan.yml").read_text()
    (project / "inventories" / "norddjurs" / "plan.yml").write_text(
        text.replace("../../lab/.state/", f"{REPO}/lab/.state/")
    )
    return project / "inventories" / "norddjurs" / "plan.yml"


def test_the_state_home_is_the_plans_project_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = project_with_plan(tmp_path)
    monkeypatch.delenv("OVERFLYT_STATE_DIR", raising=False)
    monkeypatch.delenv("OVERFLYT_PROJECT_DIR", raising=False)
    homes = set()
    for cwd in (tmp_path, plan.parent, Path("/")):
        monkeypatch.chdir(cwd)
        homes.add(state_home(plan.parent))
    assert homes == {tmp_path / "project" / ".overflyt" / "state"}
    # nothing recorded: a rollback says where it looked
    monkeypatch.chdir("/")
    with pytest.raises(UsageError) as refused:
        admit_rollback(plan, "grenaa-raadhus")
    where = tmp_path / "project" / ".overflyt" / "state" / "707" / "wave-1" / "state.json"
    assert str(refused.value) == (
        f"site grenaa-raadhus has no recorded cutover in wave 1 (looked in {where}): there is nothing to roll back"
    )
    # what looks the project up without a plan (the report templates) finds the plan's, not "/"'s
    assert find_project() == tmp_path / "project"
    assert reports.labels("da")["waived"] == "Dispenseret"
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(tmp_path / "elsewhere"))
    assert state_home(plan.parent) == tmp_path / "elsewhere"
    assert os.getcwd() == "/"


def test_the_last_precheck_verdict_is_the_newest_precheck_of_any_wave(
    recorded: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from overflyt.record import Run

    plan, state = recorded
    older = Run.create("precheck", "707", 1, ["grenaa-raadhus"], dry_run=True, base=state)
    older.record.notes.update(counts={"critical": 0, "warning": 1, "info": 4}, blocked=False)
    older.finish("succeeded")
    newer = Run.create("precheck", "707", 2, ["auning-adm"], dry_run=True, base=state)
    newer.record.notes.update(counts={"critical": 2, "warning": 0, "info": 3}, blocked=True)
    newer.finish("failed")
    assert main(["status", str(plan), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["last_precheck"] == {
        "wave": 2, "run_id": newer.record.run_id, "at": newer.record.started_at.isoformat(),
        "operator": newer.record.operator, "verdict": "blocked", "critical": 2, "warning": 0,
    }  # fmt: skip
    assert main(["status", str(plan)]) == 0
    assert "last pre-check: wave 2, " in capsys.readouterr().out


def test_locks_and_move_slots_of_two_working_directories_see_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from overflyt.plan import load
    from overflyt.record import RunLocked, municipality_lock
    from overflyt.steps.slots import Need, SlotsUnavailable, hold

    plan = project_with_plan(tmp_path)
    monkeypatch.delenv("OVERFLYT_STATE_DIR", raising=False)
    monkeypatch.delenv("OVERFLYT_PROJECT_DIR", raising=False)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    first = load(plan)
    holder = {"municipality": "707", "wave": 1, "site": "grenaa-raadhus"}
    with (
        municipality_lock("707", "wave 1 cutover", first.state),
        hold([Need("datastore:x", 1, 1)], holder, timeout_s=0, base=first.state),
    ):
        monkeypatch.chdir(tmp_path / "b")
        second = load(plan)
        assert second.state == first.state
        with (
            pytest.raises(RunLocked, match="municipality 707 is busy: wave 1 cutover by "),
            municipality_lock("707", "rollback", second.state),
        ):
            pytest.fail("a second lock of the municipality was granted")
        with (
            pytest.raises(SlotsUnavailable, match="grenaa-raadhus"),
            hold([Need("datastore:x", 1, 1)], {"site": "other"}, timeout_s=0, base=second.state),
        ):
            pytest.fail("a full slot was granted")


def test_a_command_from_another_directory_works_in_the_plans_project(tmp_path: Path) -> None:
    """Without OVERFLYT_PROJECT_DIR, from a directory outside any project: the plan's project is used
    from the start (the report languages are checked in it), so the command gets to its own answer."""
    import subprocess
    import sys

    plan = project_with_plan(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("OVERFLYT_PROJECT_DIR", "OVERFLYT_STATE_DIR")}
    for command in (["wave", "run", str(plan), "--wave", "9", "--dry-run"], ["precheck", str(plan), "--wave", "9"]):
        done = subprocess.run(
            [sys.executable, "-m", "overflyt", *command], cwd="/", env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.endswith("overflyt: wave 9 is not in the plan (its waves: 1, 2, 3)\n"), done.stderr
