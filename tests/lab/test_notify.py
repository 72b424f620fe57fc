"""Notifications from real runs, against the lab: `overflyt serve --notify` with two municipalities
that are not the sample — Djursland (707's estate; wave 1 is the school alone, whose router rejects a
line of its push) and Syddjurs (706; its target folder does not exist, so its pre-check is blocked).
Prefect's automations and its Custom Webhook block send to a real HTTP receiver on loopback: the
cutover paused for approval, then — approved — failing its verification and rolled back, and the
blocked nightly pre-check, each within 60 s, naming municipality, wave and site. A second URL nobody
answers on is logged by the server and changes nothing else. The runs have readable names and the
wave its progress and site table artifacts.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.flow_runs import resume_flow_run
from prefect.settings import PREFECT_API_URL, temporary_settings

from .labtools import estate, free_port, light_plan, serving

pytestmark = [pytest.mark.lab, pytest.mark.timeout(1500)]  # includes waiting for the lab lock

BAD = "ip route 10.70.99.0/33 10.255.70.9"  # vtysh answers "% Unknown command": verification fails


class Receiver:
    """An HTTP server on loopback keeping every JSON body POSTed to it, with when it came."""

    def __init__(self) -> None:
        self.got: list[tuple[float, str, dict[str, Any]]] = []
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got.append((time.monotonic(), self.path, json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, subject: str, since: float, timeout_s: float = 60) -> dict[str, Any]:
        """The first notification whose subject has SUBJECT, within TIMEOUT_S of SINCE."""
        while time.monotonic() < since + timeout_s:
            for _, _, body in list(self.got):
                if subject in body["subject"]:
                    return body
            time.sleep(0.5)
        raise AssertionError(f"no notification {subject!r} within {timeout_s} s: {[b for _, _, b in self.got]}")


@pytest.fixture(scope="module")
def inventories(lab: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("inventories")
    plan = light_plan(lab, tmp_path_factory.mktemp("light"))
    text = plan.read_text().replace("  name: Norddjurs Kommune\n", "  name: Djursland Testkommune\n", 1)
    text = text.replace("sites: [grenaa-raadhus]", "sites: [kattegatskolen]", 1)
    text = text.replace(
        "sites: [auning-adm, kattegatskolen, auning-skole]", "sites: [grenaa-raadhus, auning-adm, auning-skole]"
    )
    djursland = where / "djursland"
    shutil.copytree(plan.parent, djursland)
    (djursland / "plan.yml").write_text(text)
    (djursland / "host_vars" / "ndj-kattegat-rtr-01.yml").write_text(f"net_configure_extra_lines: [{BAD!r}]\n")
    syddjurs = where / "syddjurs"
    shutil.copytree(plan.parent, syddjurs)
    blocked = plan.read_text().replace(
        '  code: "707"\n  name: Norddjurs Kommune', '  code: "706"\n  name: Syddjurs Kommune'
    )
    blocked = blocked.replace("vm_folder: Kommuner/707-Norddjurs", "vm_folder: Kommuner/706-Syddjurs")
    assert "Syddjurs Kommune" in blocked
    assert "706-Syddjurs" in blocked
    (syddjurs / "plan.yml").write_text(blocked)
    return where


@pytest.fixture(scope="module")
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture(scope="module")
def served(
    lab: dict[str, Any], inventories: Path, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path, Path]]:
    """`overflyt serve --notify RECEIVER --notify DEAD`: (API URL, state dir, Prefect home)."""
    home = tmp_path_factory.mktemp("served")
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    args = ["--inventories", str(inventories), "--notify", f"{receiver.url}/ops", "--notify", dead]
    with serving(lab, home, args) as (url, state):
        yield f"{url}/api", state, home / "prefect"


def start(api_url: str, name: str, params: dict[str, Any]) -> UUID:
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        run = run_deployment(name, parameters={"params": params}, timeout=0)
    assert isinstance(run, FlowRun)
    return run.id


def wait_for(api_url: str, run_id: UUID, *types: StateType, timeout_s: float = 420) -> FlowRun:
    deadline = time.monotonic() + timeout_s
    while True:
        with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
            run = client.read_flow_run(run_id)
        if run.state is not None and run.state.type in types:
            return run
        assert run.state is None or not run.state.is_final(), f"the run ended {run.state}"
        assert time.monotonic() < deadline, f"the run never reached {types}: {run.state}"
        time.sleep(1)


def artifacts(api_url: str, key: str) -> list[dict[str, Any]]:
    query = {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 50}
    found: list[dict[str, Any]] = httpx.post(f"{api_url}/artifacts/filter", json=query, timeout=30).json()
    return found


def test_a_paused_failed_cutover_and_a_blocked_precheck_are_told_through_prefect(
    served: tuple[str, Path, Path], receiver: Receiver, inventories: Path, si: Any, lab: dict[str, Any]
) -> None:
    api_url, state, home = served
    ui = api_url.removesuffix("/api")
    before = estate(si, lab)
    precheck = start(api_url, "precheck-wave/syddjurs", {"plan": str(inventories / "syddjurs" / "plan.yml"), "wave": 1})
    cutover = start(
        api_url,
        "migrate-wave/djursland",
        {
            "plan": str(inventories / "djursland" / "plan.yml"),
            "wave": 1,
            "dry_run": False,
            "outside_window": True,
            "ask_approval": True,
            "approval_timeout_s": 600,
        },
    )
    # 1. paused for approval
    paused = wait_for(api_url, cutover, StateType.PAUSED)
    assert paused.name == "707-djursland-wave-1"
    told = receiver.wait("Djursland Testkommune (707): wave 1 waits for approval", time.monotonic())
    assert "Djursland Testkommune (707), wave 1 (sites: kattegatskolen): " in told["text"]
    assert "resume it with who approves it and the change ticket within 600 s" in told["text"]
    assert told["text"].endswith(f"Flow run: {ui}/runs/flow-run/{cutover}")
    # 2. approved, the school's verification fails: rolled back, the run Failed
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        resume_flow_run(cutover, run_input={"approved_by": "Jens Jensen", "ticket": "CHG-7"})
    failed = wait_for(api_url, cutover, StateType.FAILED, StateType.COMPLETED, StateType.CRASHED)
    assert failed.state is not None
    assert failed.state.type == StateType.FAILED, failed.state
    told = receiver.wait("overflyt: Djursland Testkommune (707): migrate-wave failed", time.monotonic())
    assert told["text"].startswith(
        "Djursland Testkommune (707): the migrate-wave run 707-djursland-wave-1 ended Failed."
    )
    assert "Wave: 1; sites: all of the wave's" in told["text"]
    assert "kattegatskolen: rolled_back — configure: " in told["text"]
    assert f"missing: {BAD}" in told["text"]
    assert told["text"].endswith(f"Flow run: {ui}/runs/flow-run/{cutover}")
    # 3. the blocked pre-check of the other municipality
    blocked = wait_for(api_url, precheck, StateType.FAILED, StateType.COMPLETED, StateType.CRASHED)
    assert blocked.name == "706-syddjurs-precheck-wave-1"
    assert blocked.state is not None
    assert blocked.state.message == "wave 1 is blocked by critical findings"
    told = receiver.wait("overflyt: Syddjurs Kommune (706): wave 1 is blocked by the pre-check", time.monotonic())
    assert "Syddjurs Kommune (706), wave 1 (sites: grenaa-raadhus): " in told["text"]
    assert "target.folder (" in told["text"]
    assert told["text"].endswith(f"Flow run: {ui}/runs/flow-run/{precheck}")
    (home.parent / "notifications.json").write_text(json.dumps([b for _, _, b in receiver.got], indent=2))
    # only what happened was told: no pre-check of Djursland, no failure of Syddjurs's run as a cutover
    subjects = sorted(body["subject"] for _, path, body in receiver.got if path == "/ops")
    assert subjects == [
        "overflyt: Djursland Testkommune (707): migrate-wave failed",
        "overflyt: Djursland Testkommune (707): wave 1 waits for approval",
        "overflyt: Syddjurs Kommune (706): wave 1 is blocked by the pre-check",
    ], subjects
    # the URL nobody answers on: the server logged it; the runs ended as they would have anyway
    log = home / "overflyt-server.log"
    deadline = time.monotonic() + 60
    while "will be moved to the dead letter queue" not in log.read_text():
        assert time.monotonic() < deadline, "the failed send is not in the server's log"
        time.sleep(1)
    assert "httpx.ConnectError" in log.read_text()
    record = json.loads((state / "707" / "wave-1" / "state.json").read_text())
    assert record["sites"]["kattegatskolen"]["status"] == "rolled_back"
    assert estate(si, lab) == before
    # the wave's progress and site table, as the UI shows them
    [progress, *_] = artifacts(api_url, "progress-707-wave-1")
    assert progress["type"] == "progress"
    assert progress["data"] == 0.0
    assert progress["description"] == "Djursland Testkommune (707), wave 1: 0 of 1 sites and 0 of 0 VMs done"
    [table, *earlier] = artifacts(api_url, "sites-707")
    assert table["type"] == "table"
    assert json.loads(table["data"]) == [
        {"wave": "1", "site": "kattegatskolen", "name": "Kattegatskolen", "state": "rolled_back", "vms": "0 of 0"}
    ]
    assert any('"running"' in e["data"] for e in earlier), earlier  # while the site ran
