"""The approval gate of the migrate-wave deployment, served by `overflyt serve`, against the lab.

A real cutover started from the deployment without ``approved_by`` pre-checks the wave, then
pauses before the first cutover step and waits for who approves it and the change ticket —
Prefect run input, the form the UI shows on a paused run. The test plays the engineer: it resumes
the run through the API the UI uses. Unanswered, the run ends at its approval timeout with nothing
changed.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.flow_runs import resume_flow_run
from prefect.settings import PREFECT_API_URL, temporary_settings

from overflyt.cutover.wave import rollback_site

from .labtools import estate, light_plan, serving

pytestmark = [pytest.mark.lab, pytest.mark.timeout(1500)]  # includes waiting for the lab lock

SITE = "grenaa-raadhus"  # wave 1's only site


@pytest.fixture(scope="module")
def served(lab: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`overflyt serve` (server, deployments, one worker); (API URL, state dir)."""
    with serving(lab, tmp_path_factory.mktemp("served")) as (url, state):
        yield f"{url}/api", state


@pytest.fixture
def lab_env(lab: dict[str, Any], served: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """This process sees the served runs' state dir and the lab's credentials (to roll back, to compare)."""
    for name, value in lab["env"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(served[1]))
    return lab


@pytest.fixture(scope="module")
def plan(lab: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample with a lighter wave 1 (three of the town hall's VMs, still two batches)."""
    return light_plan(lab, tmp_path_factory.mktemp("plan"))


def start_cutover(api_url: str, plan: Path, timeout_s: int) -> UUID:
    """The migrate-wave deployment, wave 1 for real (outside its window), no approved_by: as from the UI."""
    params = {
        "plan": str(plan),
        "wave": 1,
        "dry_run": False,
        "outside_window": True,
        "ask_approval": True,
        "approval_timeout_s": timeout_s,
    }
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        run = run_deployment("migrate-wave/norddjurs", parameters={"params": params}, timeout=0)
    assert isinstance(run, FlowRun)
    return run.id


def read_run(api_url: str, run_id: UUID) -> FlowRun:
    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        return client.read_flow_run(run_id)


def wait_for(api_url: str, run_id: UUID, *types: StateType, timeout_s: float = 420) -> FlowRun:
    deadline = time.monotonic() + timeout_s
    while True:
        run = read_run(api_url, run_id)
        if run.state is not None and run.state.type in types:
            return run
        assert run.state is None or not run.state.is_final(), f"the run ended {run.state}"
        assert time.monotonic() < deadline, f"the run never reached {types}: {run.state}"
        time.sleep(1)


def wave_record(state: Path) -> Path:
    [run_dir] = [p for p in state.glob("707/wave-1/wave/*/") if not p.name.startswith("done-")]
    return run_dir


def site_status(state: Path) -> str:
    path = state / "707" / "wave-1" / "state.json"
    if not path.exists():
        return "pending"
    status: str = json.loads(path.read_text())["sites"].get(SITE, {}).get("status", "pending")
    return status


def test_an_unanswered_approval_ends_the_run_with_nothing_changed(
    served: tuple[str, Path], lab_env: dict[str, Any], si: Any, plan: Path
) -> None:
    api_url, state = served
    before = estate(si, lab_env)
    run_id = start_cutover(api_url, plan, timeout_s=5)
    wait_for(api_url, run_id, StateType.PAUSED)
    run = wait_for(api_url, run_id, StateType.FAILED, StateType.COMPLETED, StateType.CRASHED, timeout_s=120)
    assert run.state is not None
    assert run.state.type == StateType.FAILED
    # Once a pause has timed out, Prefect's server itself fails the run with its own message (it
    # rejects the flow's final state); what overflyt says is in the run's log the UI shows.
    assert run.state.message in (
        "wave 1: approval not given within 5 s: nothing was changed",
        "The flow was failed and never resumed.",
        "The flow was paused and never resumed.",
    ), run.state.message
    query = {"logs": {"flow_run_id": {"any_": [str(run_id)]}}, "limit": 200}
    deadline = time.monotonic() + 30  # the flow's process sends its last log lines as it ends
    while True:
        request = urllib.request.Request(
            f"{api_url}/logs/filter", data=json.dumps(query).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            said = [entry["message"] for entry in json.loads(answer.read())]
        if "approval not given within 5 s: nothing was changed" in said or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert "approval not given within 5 s: nothing was changed" in said, said
    # the pre-check's Ansible task events are in the run's log too, as the UI shows them
    assert "task: Read each vCenter's estate" in said, said
    record = json.loads((wave_record(state) / "record.json").read_text())
    assert record["notes"]["approval"] == "not given: nothing was changed"
    assert [s["name"] for s in record["steps"]] == ["precheck"]
    assert site_status(state) == "pending"
    assert estate(si, lab_env) == before


def test_an_approved_cutover_records_who_approved_it_when_and_with_which_ticket(
    served: tuple[str, Path], lab_env: dict[str, Any], si: Any, plan: Path
) -> None:
    api_url, state = served
    for old in state.glob("707/wave-1/wave/*/"):  # the previous test's record
        old.rename(old.with_name("done-" + old.name))
    before = estate(si, lab_env)
    run_id = start_cutover(api_url, plan, timeout_s=600)
    try:
        wait_for(api_url, run_id, StateType.PAUSED)
        assert site_status(state) == "pending"  # paused before the first cutover step
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            resume_flow_run(run_id, run_input={"approved_by": "Jens Jensen", "ticket": "CHG-42"})
        run = wait_for(api_url, run_id, StateType.COMPLETED, StateType.FAILED, StateType.CRASHED)
        assert run.state is not None
        assert run.state.type == StateType.COMPLETED, run.state
        assert site_status(state) == "done"
        run_dir = wave_record(state)
        report = json.loads((run_dir / "report.json").read_text())
        assert [(s["site"], s["status"]) for s in report["sites"]] == [(SITE, "done")]
        assert report["approval"]["approved_by"] == "Jens Jensen"
        assert report["approval"]["ticket"] == "CHG-42"
        assert report["approval"]["at"]
        assert report["approval"]["principal"] == "no credential (the Prefect API asks for none)"  # serve's default
        record = json.loads((run_dir / "record.json").read_text())
        assert record["notes"]["approval"] == report["approval"]
        assert "Godkendt af **Jens Jensen**" in (run_dir / "report.md").read_text()  # Danish by default
        # the artifact the UI shows under its stable key, read through the same REST API
        query = {"artifacts": {"key": {"any_": ["wave-report-707-wave-1"]}}, "sort": "CREATED_DESC", "limit": 5}
        request = urllib.request.Request(
            f"{api_url}/artifacts/filter",
            data=json.dumps(query).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            wave_report = json.loads(answer.read())[0]
        assert wave_report["flow_run_id"] == str(run_id)
        assert "Godkendt af **Jens Jensen**" in str(wave_report["data"])
        assert "sag CHG-42" in str(wave_report["data"])
    finally:
        if site_status(state) not in ("pending", "rolled_back"):
            assert rollback_site(plan, SITE).exit_code == 0  # leave the lab as `lab up` built it
    assert estate(si, lab_env) == before
