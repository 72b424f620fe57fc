"""Progress at a glance and what the flows tell people, without the lab: readable flow-run names, the
wave's progress and site table artifacts as Prefect stores them, slot waits in the run's log, the
messages of flows/notify.py, and what a notification URL becomes. Prefect itself is under test, so
the flows run on Prefect's temporary local API."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from flows.logs import SLOT_WAIT_LOGGER, slot_waits_in_run_log
from flows.notify import approval_waiting, precheck_blocked, rollback_failed
from flows.params import MigrateWaveParams, PrecheckWaveParams, RollbackSiteParams
from flows.progress import WaveProgress, migrate_wave_name, precheck_wave_name, rollback_site_name
from prefect import flow
from prefect.blocks.notifications import CustomWebhookNotificationBlock, MicrosoftTeamsWebhook, SendgridEmail
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.client.schemas.objects import Artifact

from overflyt.cutover.outcome import SiteOutcome
from overflyt.errors import UsageError
from overflyt.orchestration.notify import Target, automations, notification_block

pytestmark = pytest.mark.timeout(300)

PLAN = str(Path(__file__).resolve().parents[2] / "inventories" / "norddjurs" / "plan.yml")


@flow(name="migrate-wave", flow_run_name=migrate_wave_name)
def named_wave(params: MigrateWaveParams) -> str:
    return "ok"


@flow(name="precheck-wave", flow_run_name=precheck_wave_name)
def named_precheck(params: PrecheckWaveParams) -> str:
    return "ok"


@flow(name="rollback-site", flow_run_name=rollback_site_name)
def named_rollback(params: RollbackSiteParams) -> str:
    return "ok"


async def _run_name(flow_run_id: UUID) -> str:
    async with get_client() as client:
        return (await client.read_flow_run(flow_run_id)).name


def test_flow_runs_have_readable_names() -> None:
    for state, name in [
        (named_wave(MigrateWaveParams(plan=PLAN, wave=2), return_state=True), "707-norddjurs-wave-2-dry-run"),
        (named_wave(MigrateWaveParams(plan=PLAN, wave=1, dry_run=False), return_state=True), "707-norddjurs-wave-1"),
        (named_precheck(PrecheckWaveParams(plan=PLAN, wave=3), return_state=True), "707-norddjurs-precheck-wave-3"),
        (named_precheck(PrecheckWaveParams(plan=PLAN), return_state=True), "707-norddjurs-precheck-next-wave"),
        (
            named_rollback(RollbackSiteParams(plan=PLAN, site="grenaa-raadhus"), return_state=True),
            "707-norddjurs-rollback-grenaa-raadhus",
        ),
    ]:
        assert asyncio.run(_run_name(state.state_details.flow_run_id)) == name


@flow(name="fake-wave-progress")
def fake_wave_progress() -> str:
    progress = WaveProgress(PLAN, 2, [], dry_run=True)
    run = progress.site_runner(lambda site, cut: cut())
    run("auning-adm", lambda: SiteOutcome("auning-adm", "dry_run"))
    run("kattegatskolen", lambda: SiteOutcome("kattegatskolen", "rolled_back", "configure: refused"))
    with slot_waits_in_run_log():
        logging.getLogger(SLOT_WAIT_LOGGER).info("site auning-skole: waiting for move slots: datastore X held by 706")
    return progress.description()


async def _artifacts(key: str) -> list[Any]:
    """Every version of the artifact KEY, newest first (the client's own filter sends nulls the API refuses)."""
    query = {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 50, "offset": 0}
    async with get_client() as client:
        answer = await client._client.post("/artifacts/filter", json=query)
        answer.raise_for_status()
        return [Artifact.model_validate(a) for a in answer.json()]


async def _logs(flow_run_id: UUID) -> list[Any]:
    async with get_client() as client:
        return await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200, offset=0
        )


def test_a_wave_shows_its_progress_and_its_sites_as_artifacts_and_its_slot_waits_in_its_log() -> None:
    state = fake_wave_progress(return_state=True)
    assert state.result() == "Norddjurs Kommune (707), wave 2 (dry run): 1 of 3 sites and 27 of 27 VMs done"
    run_id = state.state_details.flow_run_id
    progress = [a for a in asyncio.run(_artifacts("progress-707-wave-2")) if a.flow_run_id == run_id]
    assert [(a.type, a.data) for a in progress] == [("progress", 100.0)]  # one artifact, updated in place
    assert progress[0].description == state.result()
    tables = [a for a in asyncio.run(_artifacts("sites-707")) if a.flow_run_id == run_id]
    assert [a.type for a in tables] == ["table"] * 5  # at the start, and as each of two sites starts and ends
    assert json.loads(str(tables[0].data)) == [
        {
            "wave": "2",
            "site": "auning-adm",
            "name": "Administrationscenter Auning",
            "state": "dry_run",
            "vms": "27 of 27",
        },
        {"wave": "2", "site": "kattegatskolen", "name": "Kattegatskolen", "state": "rolled_back", "vms": "0 of 0"},
        {"wave": "2", "site": "auning-skole", "name": "Auning Skole", "state": "pending", "vms": "0 of 0"},
    ]
    wanted = (logging.WARNING, "site auning-skole: waiting for move slots: datastore X held by 706")
    deadline = time.monotonic() + 30  # Prefect ships run logs in the background, in batches
    said = [(log.level, log.message) for log in asyncio.run(_logs(run_id))]
    while wanted not in said and time.monotonic() < deadline:
        time.sleep(0.5)
        said = [(log.level, log.message) for log in asyncio.run(_logs(run_id))]
    assert (logging.WARNING, "site auning-skole: waiting for move slots: datastore X held by 706") in said
    assert logging.getLogger(SLOT_WAIT_LOGGER).propagate  # as it was outside the flow


def test_the_flows_messages_name_municipality_wave_site_what_happened_and_what_next() -> None:
    failed = rollback_failed(PLAN, None, "kattegatskolen", "ndj-kattegat-rtr-01: not restored")
    assert failed.event == "overflyt.rollback.failed"
    assert failed.slug == "norddjurs"
    assert failed.subject == "A HUMAN MUST ACT: Norddjurs Kommune (707): the rollback of site kattegatskolen failed"
    assert failed.body.startswith("A HUMAN MUST ACT. Norddjurs Kommune (707), wave 2, site kattegatskolen: ")
    assert "What is left: ndj-kattegat-rtr-01: not restored\nWhat to do next: " in failed.body
    blocked = precheck_blocked(PLAN, 1, ["grenaa-raadhus"], ["target.folder (folder X): missing"])
    assert blocked.subject == "overflyt: Norddjurs Kommune (707): wave 1 is blocked by the pre-check"
    assert "Norddjurs Kommune (707), wave 1 (sites: grenaa-raadhus): the pre-check found 1 critical" in blocked.body
    assert "\n- target.folder (folder X): missing\nWhat to do next: " in blocked.body
    waiting = approval_waiting(PLAN, 1, ["grenaa-raadhus"], 3600)
    assert waiting.subject == "overflyt: Norddjurs Kommune (707): wave 1 waits for approval"
    assert "within 3600 s" in waiting.body


def test_a_municipality_gets_four_automations_and_each_url_its_block(monkeypatch: pytest.MonkeyPatch) -> None:
    target = Target("norddjurs", "707", "Norddjurs Kommune", ("http://127.0.0.1:9/hook",))
    made = automations(target, [UUID(int=1), UUID(int=2)])
    assert [a.name for a in made] == [
        "overflyt/norddjurs: run failed",
        "overflyt/norddjurs: rollback failed",
        "overflyt/norddjurs: pre-check blocked",
        "overflyt/norddjurs: approval waiting",
    ]
    assert all(len(a.actions) == 2 and "overflyt" in a.tags for a in made)
    assert isinstance(notification_block("https://hooks.example.org/x"), CustomWebhookNotificationBlock)
    teams = "https://prod-00.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=x"
    assert isinstance(notification_block(f"msteams+{teams}"), MicrosoftTeamsWebhook)
    monkeypatch.delenv("OVERFLYT_SENDGRID_API_KEY", raising=False)
    with pytest.raises(UsageError, match="set OVERFLYT_SENDGRID_API_KEY"):
        notification_block("mailto:drift@example.dk")
    monkeypatch.setenv("OVERFLYT_SENDGRID_API_KEY", "SG.x")
    mail = notification_block("mailto:drift@example.dk,vagt@example.dk")
    assert isinstance(mail, SendgridEmail)
    assert mail.to_emails == ["drift@example.dk", "vagt@example.dk"]
