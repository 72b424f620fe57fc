"""A CLI run with PREFECT_API_URL configured uses that server and starts none of its own; a configured
server that does not answer is one clear error naming it, a non-zero exit and nothing run (issue 19,
item 6). The server here is a plain HTTP server answering Prefect's health probe (no lab)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

from overflyt.ansible import processes
from overflyt.orchestration import local, served

SAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs" / "plan.yml"


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = 200 if self.path == "/api/health" else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b"true" if code == 200 else b"")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_configured_server_that_answers_is_used_and_nothing_is_started(
    health_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_server() -> None:
        raise AssertionError("a temporary API server was started although PREFECT_API_URL answers")

    monkeypatch.setattr(local, "guarded_server", no_server)
    with temporary_settings(updates={PREFECT_API_URL: health_server}):
        local.prepare_local_database()
    assert local.api_unanswered(health_server, 2) is None


def test_why_a_server_does_not_answer() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/api"
    assert local.api_unanswered(url, 2) == f"GET {url}/health: [Errno 111] Connection refused"
    assert local.api_unanswered("ftp://host/api", 2) == "ftp://host/api/health is not an http(s) URL"


def test_a_wrong_path_is_named_with_the_answer(health_server: str) -> None:
    wrong = health_server.removesuffix("/api")  # the server's root, not its API
    assert local.api_unanswered(wrong, 2) == f"GET {wrong}/health answered 404 Not Found"


def test_wave_run_against_a_configured_server_that_does_not_answer_is_one_clear_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_API_URL=url,
        OVERFLYT_STATE_DIR=str(tmp_path / "state"),
        OVERFLYT_NDJ_VCENTER_PASSWORD="x",
        OVERFLYT_MJ_VCENTER_PASSWORD="x",
        OVERFLYT_NDJ_NETWORK_PASSWORD="x",
    )
    done = subprocess.run(
        [sys.executable, "-m", "overflyt.cli", "wave", "run", str(SAMPLE), "--wave", "1", "--dry-run", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"overflyt: PREFECT_API_URL={url} (set in the environment) does not answer: GET {url}/health: "
        "[Errno 111] Connection refused. Nothing was run. Start that server (overflyt serve), or unset "
        "PREFECT_API_URL to run on a temporary local API."
    ], done.stderr
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").rglob("*.json"))
    assert not (tmp_path / "prefect" / "prefect.db").exists()


# -- the server `overflyt serve` records (no PREFECT_API_URL) ---------------------------------------


def _record(pid: int, api_url: str, auth: bool = False) -> str:
    """A record as serve writes it, naming process ``pid`` as it runs now."""
    serve = processes.identify(pid)
    assert serve is not None
    return json.dumps({"api_url": api_url, "pid": pid, "start": serve.start, "boot": serve.boot, "auth": auth})


def _dead_record(api_url: str) -> tuple[str, int]:
    """A record of a serve process that has ended since (and its pid)."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    text = _record(child.pid, api_url)
    child.communicate(b"")
    return text, child.pid


def test_a_served_server_that_answers_is_used_and_nothing_is_started(
    health_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_server() -> None:
        raise AssertionError("a temporary API server was started although overflyt serve's answers")

    monkeypatch.setattr(local, "guarded_server", no_server)
    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
    served.write_record(tmp_path, health_server, auth=False)
    assert stat.S_IMODE((tmp_path / served.RECORD).stat().st_mode) == 0o600
    said: list[str] = []
    with temporary_settings(updates={PREFECT_API_URL: None, PREFECT_HOME: str(tmp_path)}):
        with local.prepare_local_database(say=said.append):
            assert PREFECT_API_URL.value() == health_server
        assert not PREFECT_API_URL.value()
    assert said == [f"using the Prefect server overflyt serve runs at {health_server} (this run shows in its UI)"]
    served.remove_record(tmp_path)
    assert not (tmp_path / served.RECORD).exists()


def test_a_record_that_cannot_be_used_says_why_and_no_record_says_nothing(
    health_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
    assert served.served_api(tmp_path, local.api_unanswered) == (None, None)
    record = tmp_path / served.RECORD
    text, dead = _dead_record(health_server)
    record.write_text(text)
    assert served.served_api(tmp_path, local.api_unanswered) == (
        None,
        f"overflyt serve (pid {dead}) of {record} is no longer running",
    )
    closed = f"http://127.0.0.1:{_closed_port()}/api"
    record.write_text(_record(os.getpid(), closed))
    assert served.served_api(tmp_path, local.api_unanswered) == (
        None,
        f"the server overflyt serve (pid {os.getpid()}) runs does not answer: GET {closed}/health: "
        "[Errno 111] Connection refused",
    )
    record.write_text(_record(os.getpid(), health_server, auth=True))
    assert served.served_api(tmp_path, local.api_unanswered) == (
        None,
        f"the server overflyt serve (pid {os.getpid()}) runs at {health_server} asks for an auth string and this "
        "run has none (OVERFLYT_API_AUTH_FILE)",
    )
    reused = json.loads(_record(os.getpid(), health_server))
    reused["start"] -= 1  # the same pid, another process (one that got the pid after serve ended)
    record.write_text(json.dumps(reused))
    assert served.served_api(tmp_path, local.api_unanswered)[1] == (
        f"overflyt serve (pid {os.getpid()}) of {record} is no longer running"
    )
    record.write_text(_record(os.getpid(), health_server, auth=True))
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "u:p")
    assert served.served_api(tmp_path, local.api_unanswered) == (health_server, None)
    record.write_text("{not json")
    assert served.served_api(tmp_path, local.api_unanswered)[1].startswith(
        f"{record} is not a record overflyt serve wrote"
    )  # type: ignore[union-attr]


def test_only_the_process_that_wrote_the_record_removes_it(tmp_path: Path) -> None:
    record = tmp_path / served.RECORD
    record.write_text(_dead_record("http://127.0.0.1:1/api")[0])
    served.remove_record(tmp_path)
    assert record.exists()  # another serve's (a newer one's, say): left alone


def test_a_second_serve_leaves_a_running_first_ones_record(tmp_path: Path) -> None:
    record = tmp_path / served.RECORD
    first = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record.write_text(_record(first.pid, "http://127.0.0.1:1/api"))
        assert served.write_record(tmp_path, "http://127.0.0.1:2/api", auth=False) is False
        assert json.loads(record.read_text())["pid"] == first.pid
    finally:
        first.kill()
        first.wait()
    assert served.write_record(tmp_path, "http://127.0.0.1:2/api", auth=False) is True  # the first is gone
    assert json.loads(record.read_text()) == json.loads(_record(os.getpid(), "http://127.0.0.1:2/api"))
