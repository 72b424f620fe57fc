"""`overflyt serve` without the lab: a real Prefect server with its UI, the deployments per
municipality with their schedules and forms, a worker in the process work pool, re-registration that
keeps what people switched in the UI, and a clean stop. Nothing here runs a flow."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.sorting import FlowRunSort
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

from overflyt.ansible import processes
from overflyt.cli import main
from overflyt.errors import OverflytError
from overflyt.orchestration.auth import auth_string, is_loopback
from overflyt.orchestration.serve import municipalities, wait_healthy
from overflyt.plan import load_plan
from overflyt.plan.select import next_wave

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[2]
# A CLI run's way to its API (overflyt.orchestration.local), with a flow of one step
SERVED_PROBE = """
from prefect import flow
from overflyt.orchestration.local import prepare_local_database

@flow(name="overflyt-served-probe")
def probe() -> int:
    return 7

with prepare_local_database(say=print):
    assert probe() == 7
"""
PLAN = REPO / "inventories" / "norddjurs" / "plan.yml"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline[:150]}")
    return found


def test_serve_starts_the_ui_registers_the_deployments_and_a_worker_and_stops_cleanly(tmp_path: Path) -> None:
    """On another loopback address (127.0.0.2) with an auth string from --auth-file: the API asks
    every request for it, this command and its worker send it, and no process shows it."""
    port = free_port("127.0.0.2")
    url = f"http://127.0.0.2:{port}"
    auth = "overflyt:canary-serve-Jm4q-7730"
    auth_file = tmp_path / "auth"
    auth_file.write_text(auth + "\n")
    auth_file.chmod(0o600)
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "home"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    for name in (
        "PREFECT_API_URL",
        "PREFECT_API_AUTH_STRING",
        "PREFECT_SERVER_API_AUTH_STRING",
        "OVERFLYT_API_AUTH_FILE",
    ):
        env.pop(name, None)
    out = tmp_path / "serve.out"
    with open(out, "w") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "overflyt.cli",
                "serve",
                "--host",
                "127.0.0.2",
                "--port",
                str(port),
                "--auth-file",
                str(auth_file),
            ],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while f"overflyt: Prefect UI: {url}\n" not in out.read_text():
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.5)

        with urllib.request.urlopen(f"{url}/", timeout=10) as page:  # the UI, same port
            assert page.status == 200
            assert "<html" in page.read().decode().lower()
        with pytest.raises(urllib.error.HTTPError) as refused:  # the API without the auth string
            urllib.request.urlopen(f"{url}/api/deployments/filter", data=b"{}", timeout=10)
        assert refused.value.code == 401
        assert processes_mentioning(auth) == []  # not on any command line (server, worker)

        settings = {PREFECT_API_URL: f"{url}/api", PREFECT_API_AUTH_STRING: auth}
        with temporary_settings(updates=settings), get_client(sync_client=True) as client:
            migrate = client.read_deployment_by_name("migrate-wave/norddjurs")
            precheck = client.read_deployment_by_name("precheck-wave/norddjurs")
            rollback = client.read_deployment_by_name("rollback-site/norddjurs")
            pool = client.read_work_pool("overflyt")
            deadline = time.monotonic() + 60
            while not client.read_workers_for_work_pool("overflyt", limit=10, offset=0):
                assert time.monotonic() < deadline, "no worker polled the work pool"
                time.sleep(0.5)

            assert pool.type == "process"
            plan = str(PLAN)
            for d in (migrate, precheck, rollback):
                assert d.work_pool_name == "overflyt"
                assert d.job_variables == {"working_dir": str(REPO)}
            assert migrate.entrypoint == "flows.migrate_wave.migrate_wave"
            assert migrate.parameters == {"params": {"plan": plan, "wave": 1, "ask_approval": True}}
            waves = sorted((s.slug, s.active, s.schedule.rrule, s.parameters) for s in migrate.schedules)  # type: ignore[union-attr]
            assert waves == [
                (
                    f"wave-{n}",
                    False,
                    f"DTSTART:{start}\nRRULE:FREQ=DAILY;COUNT=1",
                    {"params": {"plan": plan, "wave": n, "dry_run": False, "ask_approval": True}},
                )
                for n, start in ((1, "20270306T180000"), (2, "20270320T180000"), (3, "20270403T180000"))
            ]
            assert [(s.slug, s.active, s.schedule.cron, s.schedule.timezone) for s in precheck.schedules] == [  # type: ignore[union-attr]
                ("nightly", True, "30 1 * * *", "Europe/Copenhagen")
            ]
            assert precheck.parameters == {"params": {"plan": plan}}
            assert rollback.parameters == {"params": {"plan": plan}}
            assert rollback.schedules == []
            # The form the UI renders: descriptions and defaults, dry run on.
            form = migrate.parameter_openapi_schema["definitions"]["MigrateWaveParams"]["properties"]
            assert form["dry_run"]["default"] is True
            assert form["dry_run"]["description"] == "Show what would move and change; change nothing"
            assert form["approval_timeout_s"]["default"] == 3600

            # Someone switches wave 2's schedule on and the nightly pre-check off in the UI; registering
            # again (a restart, another machine) keeps both.
            by_slug = {s.slug: s.id for s in [*migrate.schedules, *precheck.schedules]}
            client.update_deployment_schedule(migrate.id, by_slug["wave-2"], active=True)
            client.update_deployment_schedule(precheck.id, by_slug["nightly"], active=False)
            again = subprocess.run(  # the client's auth string from OVERFLYT_API_AUTH_FILE
                [sys.executable, "-m", "overflyt.cli", "serve", "--api-url", f"{url}/api", "--workers", "0"],
                cwd=REPO,
                env=dict(env, OVERFLYT_API_AUTH_FILE=str(auth_file)),
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert again.returncode == 0, again.stderr
            active = {
                s.slug: s.active
                for name in ("migrate-wave/norddjurs", "precheck-wave/norddjurs")
                for s in client.read_deployment_by_name(name).schedules
            }
            assert active == {"wave-1": False, "wave-2": True, "wave-3": False, "nightly": False}

            # A CLI run on the same PREFECT_HOME without PREFECT_API_URL uses this server (the record
            # serve keeps there) instead of starting a temporary API; its flow run shows here.
            record = json.loads((tmp_path / "home" / "overflyt-serve.json").read_text())
            serve = processes.identify(proc.pid)
            assert serve is not None
            assert record == {
                "api_url": f"{url}/api",
                "pid": proc.pid,
                "start": serve.start,
                "boot": serve.boot,
                "auth": True,
            }
            probe = subprocess.run(
                [sys.executable, "-c", SERVED_PROBE], cwd=REPO, env=dict(env, OVERFLYT_API_AUTH_FILE=str(auth_file)),
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert probe.returncode == 0, probe.stdout + probe.stderr
            assert f"using the Prefect server overflyt serve runs at {url}/api" in probe.stdout
            probed = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["overflyt-served-probe"])),
                sort=FlowRunSort.ID_DESC,
                limit=10,
            )
            assert [r.state.type.value for r in probed if r.state] == ["COMPLETED"]

        proc.send_signal(signal.SIGTERM)
        proc.wait(90)
    finally:
        if proc.poll() is None:  # a failed assertion above: stop it the way a person would, then hard
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    text = out.read_text()
    assert proc.returncode == 0, text
    assert "overflyt: registered in work pool overflyt: migrate-wave/norddjurs, precheck-wave/norddjurs, " in text
    assert text.endswith("overflyt: stopped\n"), text
    assert auth not in text
    assert auth not in (tmp_path / "home" / "overflyt-server.log").read_text()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.2", port)) != 0, "the Prefect server outlived overflyt serve"
    assert processes_mentioning(f"--port {port}") == []
    assert processes_mentioning(f"-{proc.pid}-1") == [], "the worker outlived overflyt serve"
    assert not (tmp_path / "home" / "overflyt-serve.json").exists(), "serve left its record behind"


def test_the_nightly_precheck_checks_the_next_wave_whose_window_has_not_ended() -> None:
    plan = load_plan(PLAN)

    def at(moment: str) -> int:
        return next_wave(plan, datetime.fromisoformat(moment).replace(tzinfo=UTC))

    assert at("2026-01-01T00:00") == 1
    assert at("2027-03-07T04:59") == 1  # wave 1 ends 06:00 Copenhagen time (05:00 UTC)
    assert at("2027-03-07T05:00") == 2
    assert at("2027-04-04T03:00") == 3  # wave 3's window is open
    assert at("2030-01-01T00:00") == 3  # all done: the last wave
    [m] = municipalities(REPO / "inventories", datetime(2027, 3, 10, tzinfo=UTC))
    assert (m.slug, m.plan, m.next_wave) == ("norddjurs", PLAN, 2)


def test_serve_without_plans_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--inventories", str(tmp_path), "--port", str(free_port())]) == 2
    assert capsys.readouterr().err == f"overflyt: no plans found as {tmp_path}/<kommune>/plan.yml: nothing to serve\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "overflyt: --port 70000: must be between 1 and 65535\n"),
        (["--workers", "-1"], "overflyt: --workers -1: must be 0 or more\n"),
    ],
)
def test_bad_serve_options_are_refused(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", *args]) == 2
    assert capsys.readouterr().err == message


def test_wait_healthy_names_a_server_that_exited() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    with pytest.raises(OverflytError, match=r"^the Prefect server exited with code 3 before it was healthy$"):
        wait_healthy(f"http://127.0.0.1:{free_port()}/api", proc)


@pytest.fixture
def no_auth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PREFECT_API_AUTH_STRING", "PREFECT_SERVER_API_AUTH_STRING", "OVERFLYT_API_AUTH_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "prefect.example.dk"])
def test_a_server_on_a_non_loopback_address_without_an_auth_string_is_refused(
    host: str, no_auth_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--host", host, "--port", str(free_port())]) == 2
    assert capsys.readouterr().err == (
        f"overflyt: --host {host}: not a loopback address, and no auth string is set: anyone who reaches it could "
        "start or approve a cutover. Give --auth-file FILE (mode 0600), or set OVERFLYT_API_AUTH_FILE or "
        "PREFECT_SERVER_API_AUTH_STRING\n"
    )


def test_bad_auth_files_are_refused(tmp_path: Path, no_auth_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    readable = tmp_path / "readable"
    readable.write_text("admin:secret\n")
    readable.chmod(0o644)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    empty.chmod(0o600)
    two = tmp_path / "two"
    two.write_text("admin:secret\nmore\n")
    two.chmod(0o600)
    cases = [
        (readable, f"mode 0644 lets others read the auth string: it must be 0600 (chmod 600 {readable})"),
        (empty, "empty: it must hold the auth string (user:password) on one line"),
        (two, "more than one line: it must hold the auth string alone on one line"),
        (tmp_path / "missing", "No such file or directory"),
        (tmp_path, "not a regular file"),
    ]
    for path, reason in cases:
        assert main(["serve", "--host", "0.0.0.0", "--port", str(free_port()), "--auth-file", str(path)]) == 2
        assert capsys.readouterr().err == f"overflyt: --auth-file {path}: {reason}\n"
    # the same file through OVERFLYT_API_AUTH_FILE, which every command reads
    os.environ["OVERFLYT_API_AUTH_FILE"] = str(readable)
    try:
        assert main(["serve", "--api-url", "http://127.0.0.1:9/api", "--workers", "0"]) == 2
    finally:
        del os.environ["OVERFLYT_API_AUTH_FILE"]
    assert capsys.readouterr().err == (
        f"overflyt: OVERFLYT_API_AUTH_FILE {readable}: mode 0644 lets others read the auth string: it must be "
        f"0600 (chmod 600 {readable})\n"
    )


def test_host_with_api_url_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--api-url", "http://127.0.0.1:9/api", "--host", "127.0.0.2"]) == 2
    assert capsys.readouterr().err == "overflyt: --host 127.0.0.2: starts a server; with --api-url none is started\n"


def test_the_auth_string_comes_from_the_file_else_the_environment(
    tmp_path: Path, no_auth_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert auth_string() is None
    assert auth_string(server=True) is None
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "client:one")
    assert auth_string() == "client:one"
    monkeypatch.setenv("PREFECT_SERVER_API_AUTH_STRING", "server:two")
    assert auth_string() == "client:one"
    assert auth_string(server=True) == "server:two"
    file = tmp_path / "auth"
    file.write_text("file:three \n")  # one trailing newline dropped, the rest kept as it is
    file.chmod(0o600)
    monkeypatch.setenv("OVERFLYT_API_AUTH_FILE", str(file))
    assert auth_string(server=True) == "file:three "
    given = tmp_path / "given"
    given.write_text("given:four")
    given.chmod(0o400)
    assert auth_string(given) == "given:four"


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "prefect.example.dk", ""))


def test_an_approval_through_the_api_names_the_shared_credential_or_none(monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    from flows.migrate_wave import approval_principal

    with temporary_settings(updates={PREFECT_API_AUTH_STRING: "admin:secret"}):
        assert approval_principal(via_api=True) == "shared credential"
    with temporary_settings(updates={PREFECT_API_AUTH_STRING: None}):
        assert approval_principal(via_api=True) == "no credential (the Prefect API asks for none)"
    assert approval_principal(via_api=False) == f"local user {getpass.getuser()}"
