"""The Prefect side of a site's cutover, without the lab: the hooks flows/site_cutover.py gives the
library make the site a ``site-cutover`` subflow run and each itinerary step a task run named
``<site>: <step>``, a failed step ends its task Failed and reaches the cutover as the error it raised
(for the rollback), and an admission made by the CLI is used by the flow run instead of a second one.

Prefect itself is under test here, so these run flows on Prefect's temporary local API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from flows.site_cutover import run_site_as_subflow, run_step_as_task
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
)
from prefect.client.schemas.sorting import FlowRunSort, TaskRunSort

from overflyt.cutover import admission
from overflyt.cutover.itinerary import ITINERARY, STEP_NAMES, dry_run_itinerary
from overflyt.cutover.outcome import SiteOutcome
from overflyt.cutover.state import SiteState, WaveState
from overflyt.errors import PlaybookFailed

pytestmark = pytest.mark.timeout(300)

PLAN = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs" / "plan.yml"


def test_the_itinerary_is_data_and_the_dry_run_a_filter_of_it() -> None:
    assert STEP_NAMES == ("backup", "placements", "migrate", "configure", "postcheck")
    assert [s.name for s in dry_run_itinerary()] == ["backup", "migrate", "configure"]
    assert all(s.title and callable(s.action) for s in ITINERARY)
    # every step is bounded by one of the plan's timeouts
    from overflyt.plan.model import Timeouts

    assert all(s.timeout in Timeouts.model_fields for s in ITINERARY)
    # the wave state keeps step names as the itinerary names them
    state = WaveState.model_validate({"municipality": "707", "wave": 1, "sites": {"a": {"done": list(STEP_NAMES)}}})
    assert state.sites["a"].done == list(STEP_NAMES)
    assert SiteState().current is None


@flow(name="fake-wave")
def fake_wave(fail_at: str | None) -> list[Any]:
    seen: list[Any] = []

    def cut() -> SiteOutcome:
        outcome = SiteOutcome("skole-a", "done")
        for name in ("backup", "migrate", "configure"):
            try:
                run_step_as_task("skole-a", name, lambda n=name: _step(n, fail_at))
                seen.append((name, "ok"))
            except PlaybookFailed as exc:
                seen.append((name, str(exc)))
                outcome.status, outcome.error = "rolled_back", str(exc)
                break
        return outcome

    outcome = run_site_as_subflow("skole-a", cut)
    return [seen, outcome.status, outcome.error]


def _step(name: str, fail_at: str | None) -> None:
    if name == fail_at:
        raise PlaybookFailed(f"configure of site skole-a failed (failed): rtr-1: Push: {name} refused", ["rtr-1"])


async def _tree(flow_run_id: Any) -> dict[str, Any]:
    async with get_client() as client:
        subflows = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])),
            sort=FlowRunSort.START_TIME_ASC,
            limit=50,
        )
        out: dict[str, Any] = {}
        for sub in subflows:
            tasks = await client.read_task_runs(
                task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[sub.id])),
                sort=TaskRunSort.EXPECTED_START_TIME_ASC,
                limit=50,
            )
            out[sub.name] = {t.name: (t.state.type.value if t.state else None) for t in tasks}
            out[sub.name]["__state__"] = sub.state.type.value if sub.state else None
        return out


def test_each_step_is_a_task_run_of_the_site_subflow_and_a_failure_reaches_the_cutover() -> None:
    state = fake_wave(None, return_state=True)
    seen, status, error = state.result()
    assert seen == [("backup", "ok"), ("migrate", "ok"), ("configure", "ok")]
    assert (status, error) == ("done", None)
    tree = asyncio.run(_tree(state.state_details.flow_run_id))
    assert tree == {
        "skole-a": {
            "skole-a: backup": "COMPLETED",
            "skole-a: migrate": "COMPLETED",
            "skole-a: configure": "COMPLETED",
            "__state__": "COMPLETED",
        }
    }

    state = fake_wave("configure", return_state=True)
    seen, status, error = state.result()
    assert seen[-1] == ("configure", "configure of site skole-a failed (failed): rtr-1: Push: configure refused")
    assert status == "rolled_back"
    tree = asyncio.run(_tree(state.state_details.flow_run_id))
    assert tree["skole-a"]["skole-a: configure"] == "FAILED"
    assert tree["skole-a"]["skole-a: backup"] == "COMPLETED"
    assert tree["skole-a"]["__state__"] == "FAILED"


def test_a_flow_run_in_the_same_process_uses_the_cli_s_admission(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[Path] = []
    real_load = admission.load

    def counting_load(path: Path) -> Any:
        loads.append(Path(path))
        return real_load(path)

    monkeypatch.setattr(admission, "load", counting_load)
    monkeypatch.setattr(admission, "_refuse_busy", lambda code, home: None)
    for name in ("NDJ_NETWORK", "NDJ_VCENTER", "MJ_VCENTER"):
        monkeypatch.setenv(f"OVERFLYT_{name}_PASSWORD", "x")
    first = admission.admit(PLAN, 1, dry_run=True, approval_given=False, can_ask=False)
    assert len(loads) == 1
    with admission.handed(first):
        again = admission.admit(PLAN, 1, (), dry_run=True, approval_given=False, can_ask=False)
        other_wave = admission.admit(PLAN, 2, (), dry_run=True, approval_given=False, can_ask=False)
    assert again is first
    assert other_wave is not first
    assert other_wave.wave == 2
    assert len(loads) == 2  # only the other wave loaded the plan again
