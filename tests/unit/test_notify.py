"""Notifications through Prefect's own machinery, without the lab: `overflyt serve --notify` on a real
Prefect server makes per municipality the automations and notification blocks; the server's own
automation services send to a real HTTP receiver on loopback when a flow run of the municipality
fails (Prefect's event) or a flow says a pre-check is blocked (overflyt's event); a URL nobody
answers on fails that action only; a second serve without --notify and without one of the plans
leaves no automation, block or deployment of theirs behind. (The flows emitting their events for
real, against the lab: tests/lab/test_notify.py.)"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.sorting import AutomationSort, DeploymentSort
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Failed

from overflyt.cli import main
from overflyt.errors import UsageError
from overflyt.orchestration import notify as notifications
from overflyt.orchestration.notify import PRECHECK_BLOCKED, block_name, check_url
from overflyt.orchestration.serve import start_server, stop, wait_healthy

pytestmark = pytest.mark.timeout(400)

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "inventories" / "norddjurs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Receiver:
    """An HTTP server on loopback that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got.append((self.path, json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, path: str, text: str, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for p, body in list(self.got):
                if p == path and text in body.get("text", ""):
                    return body
            time.sleep(0.5)
        raise AssertionError(f"no notification to {path} saying {text!r} within {timeout_s} s: {self.got}")


def municipality(inventories: Path, slug: str, name: str, code: str, notify: list[str]) -> Path:
    shutil.copytree(SAMPLE, inventories / slug)
    plan = inventories / slug / "plan.yml"
    text = plan.read_text().replace("../../lab/.state/", f"{REPO}/lab/.state/")
    text = text.replace('  code: "707"\n  name: Norddjurs Kommune', f'  code: "{code}"\n  name: {name}', 1)
    assert f"name: {name}" in text
    plan.write_text(text + (f"notify: {json.dumps(notify)}\n" if notify else ""))
    return plan


@contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    """A Prefect server with its services (automations included), as `overflyt serve` starts it: its URL."""
    port = free_port()
    server = start_server(port, home / "overflyt-server.log", home=home)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{url}/api", server)
        with temporary_settings(updates={PREFECT_API_URL: f"{url}/api"}):
            yield url
    finally:
        stop(server)


def serve(url: str, home: Path, inventories: Path, *notify: str) -> str:
    """`overflyt serve --api-url URL --workers 0` (registers, then returns): what it said."""
    env = dict(os.environ, PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    args = ["--api-url", f"{url}/api", "--workers", "0", "--inventories", str(inventories)]
    for address in notify:
        args += ["--notify", address]
    done = subprocess.run(
        [sys.executable, "-m", "overflyt.cli", "serve", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stderr


def ours() -> dict[str, int]:
    """overflyt's automations on the server: name -> how many notifications each sends."""
    with get_client(sync_client=True) as client:
        automations = client.read_automations(sort=AutomationSort.NAME_ASC, limit=200)
    return {a.name: len(a.actions) for a in automations if "overflyt" in a.tags}


def test_notifications_are_sent_by_prefects_automations_and_removed_with_their_urls_and_plans(tmp_path: Path) -> None:
    receiver = Receiver()
    dead = f"http://127.0.0.1:{free_port()}/nobody"  # nothing listens there
    inventories = tmp_path / "inventories"
    syddjurs = municipality(inventories, "syddjurs", "Syddjurs Kommune", "706", [f"{receiver.url}/syddjurs"])
    municipality(inventories, "favrskov", "Favrskov Kommune", "710", [])
    home = tmp_path / "home"
    with prefect_server(home) as url:
        print(serve(url, home, inventories, f"{receiver.url}/ops", dead))
        assert ours() == {
            "overflyt/favrskov: run failed": 2,
            "overflyt/favrskov: rollback failed": 2,
            "overflyt/favrskov: pre-check blocked": 2,
            "overflyt/favrskov: approval waiting": 2,
            "overflyt/syddjurs: run failed": 3,
            "overflyt/syddjurs: rollback failed": 3,
            "overflyt/syddjurs: pre-check blocked": 3,
            "overflyt/syddjurs: approval waiting": 3,
        }
        with get_client(sync_client=True) as client:
            rollback = client.read_deployment_by_name("rollback-site/syddjurs")
            run = client.create_flow_run_from_deployment(
                rollback.id, parameters={"params": {"plan": str(syddjurs), "site": "grenaa-raadhus"}}
            )
            assert "syddjurs" in run.tags
            # as the flow ends when its rollback is refused: Prefect's own event, its state's message
            why = "rollback of grenaa-raadhus (wave 1) ended with exit code 1: grenaa-raadhus: failed — no cutover"
            client.set_flow_run_state(run.id, Failed(message=why), force=True)
        failed = receiver.wait("/syddjurs", why)
        assert failed["subject"] == "overflyt: Syddjurs Kommune (706): rollback-site failed"
        assert failed["text"].startswith("Syddjurs Kommune (706): the rollback-site run ")
        assert "Site: grenaa-raadhus" in failed["text"]
        assert "What to do next: read the run's log and report in the UI" in failed["text"]
        assert failed["text"].endswith(f"Flow run: {url}/runs/flow-run/{run.id}")
        assert receiver.wait("/ops", why) == failed  # serve's --notify too
        print(json.dumps(failed, indent=2, ensure_ascii=False))

        # what a flow emits (flows.notify), as Prefect relates it to its run
        event = {
            "event": PRECHECK_BLOCKED,
            "occurred": "2027-03-06T01:30:00Z",
            "id": "8d1b4a3e-7d0b-4a43-9a57-6a9b0f7e0c01",
            "resource": {"prefect.resource.id": "overflyt.municipality.favrskov"},
            "related": [{"prefect.resource.id": f"prefect.flow-run.{run.id}", "prefect.resource.role": "flow-run"}],
            "payload": {"subject": "overflyt: Favrskov Kommune (710): wave 1 is blocked", "body": "target.folder"},
        }
        httpx.post(f"{url}/api/events", json=[event], timeout=10).raise_for_status()
        blocked = receiver.wait("/ops", "target.folder")
        assert blocked == {
            "subject": "overflyt: Favrskov Kommune (710): wave 1 is blocked",
            "text": f"target.folder\n\nFlow run: {url}/runs/flow-run/{run.id}",
        }
        assert not [b for p, b in receiver.got if p == "/syddjurs" and "target.folder" in b["text"]]
        # the dead URL: the server logs each failed send (Prefect retries it, then gives up on it); the
        # other URLs were sent to all the same
        log = home / "overflyt-server.log"
        deadline = time.monotonic() + 60
        while "will be moved to the dead letter queue" not in log.read_text():
            assert time.monotonic() < deadline, "the failed send to the dead URL is not in the server's log"
            time.sleep(1)
        assert "httpx.ConnectError: All connection attempts failed" in log.read_text()

        # favrskov's plan is gone and serve has no --notify: only syddjurs's own URL is left
        shutil.rmtree(inventories / "favrskov")
        said = serve(url, home, inventories)
        print(said)
        assert ours() == {
            "overflyt/syddjurs: run failed": 1,
            "overflyt/syddjurs: rollback failed": 1,
            "overflyt/syddjurs: pre-check blocked": 1,
            "overflyt/syddjurs: approval waiting": 1,
        }
        with get_client(sync_client=True) as client:
            deployments = sorted(
                d.name for d in client.read_deployments(sort=DeploymentSort.NAME_ASC, limit=200, offset=0)
            )
            documents = client.read_block_documents(offset=0, limit=200)
        blocks = sorted(d.name or "" for d in documents if (d.name or "").startswith("overflyt"))
        assert deployments == ["syddjurs", "syddjurs", "syddjurs"]
        assert blocks == [block_name(f"{receiver.url}/syddjurs")]
        for flow in ("migrate-wave", "precheck-wave", "rollback-site"):
            assert f"overflyt: removed deployment {flow}/favrskov: its plan is gone\n" in said
        assert "overflyt: removed automation overflyt/favrskov: run failed\n" in said


@pytest.mark.parametrize("url", ["ftp://example.org/x", "hooks.example.org", "mailto:nobody"])
def test_a_url_no_notification_block_sends_to_is_refused(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError):
        check_url(url)
    assert main(["serve", "--notify", url, "--inventories", str(REPO / "inventories")]) == 2
    assert capsys.readouterr().err.startswith(f"overflyt: --notify {url!r}: not a notification address")


@pytest.mark.parametrize("count", [0, 2, 3, 7, 9])
def test_every_page_is_read_and_each_once(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """98 municipalities hold more automations, blocks and deployments than one page of the API."""
    monkeypatch.setattr(notifications, "PAGE", 3)
    there = [f"item-{n}" for n in range(count)]
    asked: list[int] = []

    def read(at: int) -> list[str]:
        asked.append(at)
        return there[at : at + 3]

    assert notifications._all_pages(read) == there
    assert asked == list(range(0, count + 1, 3))  # a full last page asks once more, and gets none
