"""Scale-out: the same deployments on a Prefect server backed by PostgreSQL, two workers in one work pool,
everything through a TLS proxy with the API's auth string — the recipe of docs/prefect.md.

PostgreSQL (Debian's package) runs from a data directory under tmp_path as the ``postgres`` user; a
Prefect server uses it, on 127.0.0.1 with an auth string (Prefect's basic authentication); nginx
(Debian's package) runs docs/nginx-prefect.conf in front of it with a certificate of a CA made in
the test. `overflyt serve --api-url https://... --workers 0` registers the deployments of two
municipalities (the sample and a copy of it under another municipality code) with the auth string
from OVERFLYT_API_AUTH_FILE; two `prefect worker start` processes trusting the CA poll the pool with
room for one flow run each. Both municipalities' nightly pre-checks are started at once: both
complete, at the same time, one on each worker. Meanwhile: requests without the auth string to
create a flow run or resume a paused one get 401 and change nothing; a worker and the CLI given
another CA refuse the proxy; `overflyt serve --host 0.0.0.0` without an auth string is refused;
the auth string is on no command line and in no file the run left (logs, database, proxy logs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.settings import (
    PREFECT_API_AUTH_STRING,
    PREFECT_API_SSL_CERT_FILE,
    PREFECT_API_URL,
    temporary_settings,
)
from prefect.states import Paused

from overflyt.orchestration.serve import start_server, start_worker, stop, wait_healthy

from .labtools import free_port
from .test_secrets import _leaks, _on_command_lines
from .tlsproxy import make_ca, make_server_cert, nginx

pytestmark = [pytest.mark.lab, pytest.mark.timeout(1500)]  # includes waiting for the lab lock

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "inventories" / "norddjurs"


def pg_bin(name: str) -> str:
    """A PostgreSQL server program from Debian's package (/usr/lib/postgresql/<version>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    assert found, f"{name}: Debian's postgresql package is not installed (lab/debian-packages.txt)"
    return str(found[-1])


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[str]:
    """A PostgreSQL cluster in tmp_path/pg on a free loopback port, run as the postgres user (PostgreSQL
    refuses root); its connection URL for Prefect. Stopped, and its directory's access undone, at the end."""
    data = tmp_path / "pg"
    data.mkdir()
    shutil.chown(data, "postgres", "postgres")
    # postgres must reach its data dir: let others traverse (not list) the directories above it.
    opened = []
    for parent in [tmp_path, *tmp_path.parents]:
        if parent == Path("/tmp") or parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            opened.append((parent, mode))
            parent.chmod(mode | 0o001)
    as_postgres = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    try:
        subprocess.run(
            [*as_postgres, pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "-N"],
            check=True,
            capture_output=True,
        )
        options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run(
            [*as_postgres, pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(data / "log"), "-w", "start"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_postgres, pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], check=False)
        for parent, mode in opened:
            parent.chmod(mode)
    assert not (data / "postmaster.pid").exists(), "PostgreSQL did not stop"


@pytest.fixture
def inventories(lab: dict[str, Any], tmp_path: Path) -> Path:
    """The sample municipality and a second one: the same estate under code 708 (its own lock and records)."""
    root = tmp_path / "inventories"
    for slug, code, name in (("norddjurs", "707", "Norddjurs Kommune"), ("syddjurs", "708", "Syddjurs Kommune")):
        shutil.copytree(SAMPLE, root / slug)
        text = (root / slug / "plan.yml").read_text().replace("../../lab/.state/", f"{lab['state_dir']}/")
        text = text.replace('  code: "707"\n  name: Norddjurs Kommune\n', f'  code: "{code}"\n  name: {name}\n', 1)
        assert f'code: "{code}"' in text
        (root / slug / "plan.yml").write_text(text)
    return root


def overflyt(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "overflyt.cli", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120
    )


def test_two_municipalities_precheck_at_once_on_two_workers_of_a_postgres_backed_server_behind_tls_and_auth(
    lab: dict[str, Any], postgres: str, inventories: Path, tmp_path: Path
) -> None:
    port, tls_port = free_port(), free_port()
    api_url = f"https://127.0.0.1:{tls_port}/api"  # through the proxy: TLS, and the server asks for the auth string
    ca = make_ca(tmp_path / "tls", "overflyt-test-ca")
    other_ca = make_ca(tmp_path / "tls", "another-ca")
    certificate = make_server_cert(tmp_path / "tls", ca, "127.0.0.1")
    auth = "overflyt:canary-api-auth-Vq9d-3051"
    auth_file = tmp_path / "api-auth"
    auth_file.write_text(auth + "\n")
    auth_file.chmod(0o600)
    env = {k: v for k, v in lab["env"].items() if not k.endswith("AUTH_STRING")}
    env.update(
        OVERFLYT_STATE_DIR=str(tmp_path / "state"),
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_API_SSL_CERT_FILE=str(ca[0]),
    )
    cli_env = {k: v for k, v in os.environ.items() if not k.endswith("AUTH_STRING") and k != "PREFECT_API_URL"}
    cli_env.update(env)
    worker_env = dict(env, PREFECT_API_AUTH_STRING=auth)  # the plain `prefect worker start` of docs/prefect.md
    settings = {PREFECT_API_URL: api_url, PREFECT_API_AUTH_STRING: auth, PREFECT_API_SSL_CERT_FILE: str(ca[0])}

    refused = overflyt(["serve", "--host", "0.0.0.0", "--port", str(port)], inventories.parent, cli_env)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith("overflyt: --host 0.0.0.0: not a loopback address, and no auth string is set")

    started = []
    try:
        server = start_server(
            port,
            tmp_path / "server.log",
            auth=auth,
            home=tmp_path / "prefect",
            env={"PREFECT_API_DATABASE_CONNECTION_URL": postgres},
        )
        started.append(server)
        print(f"server on PostgreSQL healthy after {wait_healthy(f'http://127.0.0.1:{port}/api', server, 180):.1f} s")
        with nginx(tmp_path / "nginx", tls_port, *certificate, f"127.0.0.1:{port}") as access_log:
            # The CLI without the auth string, and with another CA: refused, in one sentence each.
            no_auth = overflyt(["serve", "--api-url", api_url, "--workers", "0"], inventories.parent, cli_env)
            assert no_auth.returncode == 1, no_auth.stderr
            assert no_auth.stderr.startswith(
                f"overflyt: the Prefect API at {api_url} refused the request (HTTP 401): give it the server's auth "
                "string (PREFECT_API_AUTH_STRING, OVERFLYT_API_AUTH_FILE or --auth-file FILE)\n"
            ), no_auth.stderr
            wrong_ca = overflyt(
                ["serve", "--api-url", api_url, "--workers", "0"],
                inventories.parent,
                dict(cli_env, OVERFLYT_API_AUTH_FILE=str(auth_file), PREFECT_API_SSL_CERT_FILE=str(other_ca[0])),
            )
            assert wrong_ca.returncode == 1, wrong_ca.stderr
            assert wrong_ca.stderr.startswith(
                f"overflyt: the Prefect API at {api_url}: its TLS certificate is not trusted"
            ), wrong_ca.stderr
            registered = overflyt(
                ["serve", "--api-url", api_url, "--workers", "0"],
                inventories.parent,
                dict(cli_env, OVERFLYT_API_AUTH_FILE=str(auth_file)),
            )
            assert registered.returncode == 0, registered.stderr
            assert "overflyt: registered in work pool overflyt: " in registered.stderr
            for n in (1, 2):
                started.append(
                    start_worker(
                        api_url, "overflyt", f"worker-{n}", tmp_path / f"worker-{n}.log", limit=1, env=worker_env
                    )
                )
            untrusting = start_worker(
                api_url,
                "overflyt",
                "worker-other-ca",
                tmp_path / "worker-other-ca.log",
                env=dict(worker_env, PREFECT_API_SSL_CERT_FILE=str(other_ca[0])),
            )
            started.append(untrusting)

            with temporary_settings(updates=settings):
                runs = {
                    slug: run_deployment(f"precheck-wave/{slug}", timeout=0).id  # type: ignore[union-attr]
                    for slug in ("norddjurs", "syddjurs")
                }
            unauthorized = probe_without_auth(api_url, ca[0], settings)
            on_command_lines = _on_command_lines({"auth string": auth})
            finished = wait_final(settings, list(runs.values()), timeout_s=420)
            # Each municipality's findings table, under its own stable key (the REST call the UI makes).
            query = {"artifacts": {"key": {"any_": ["precheck-707-wave-1", "precheck-708-wave-1"]}}, "limit": 10}
            answer = post(api_url, "/artifacts/filter", query, ca[0], auth)
            keys = {a["key"]: a["type"] for a in json.loads(answer)}
            with temporary_settings(updates=settings), get_client(sync_client=True) as client:
                workers = {w.name for w in client.read_workers_for_work_pool("overflyt", limit=20, offset=0)}
            assert untrusting.poll() is None  # it keeps trying, and keeps failing
    finally:
        for process in reversed(started):
            stop(process)

    assert unauthorized == {"create_flow_run": 401, "resume": 401, "created": 0, "still_paused": True}, unauthorized
    assert on_command_lines == []
    for slug, run_id in runs.items():
        run = finished[run_id]
        assert run.state_name == "Completed", (slug, run.state)
    # They ran at the same time ...
    a, b = (finished[runs["norddjurs"]], finished[runs["syddjurs"]])
    spans = [(r.start_time, r.end_time) for r in (a, b)]
    assert all(start and end for start, end in spans), spans
    (a_start, a_end), (b_start, b_end) = spans
    assert a_start < b_end, spans  # type: ignore[operator]
    assert b_start < a_end, spans  # type: ignore[operator]
    # ... one on each worker (each worker says which flow runs it submitted).
    ran_on = {}
    for n in (1, 2):
        log = (tmp_path / f"worker-{n}.log").read_text()
        # both workers may reach for the same run; the server lets one have it and aborts the other
        tried = re.findall(rf"Worker 'worker-{n}' submitting flow run '([0-9a-f-]+)'", log)
        aborted = set(re.findall(r"Aborted submission of flow run '([0-9a-f-]+)'", log))
        for run_id in tried:
            if run_id not in aborted:
                ran_on[UUID(run_id)] = f"worker-{n}"
    assert sorted(ran_on.get(r, "none") for r in runs.values()) == ["worker-1", "worker-2"], ran_on
    assert keys.get("precheck-707-wave-1") == "table"
    assert keys.get("precheck-708-wave-1") == "table"
    # The worker given another CA never reached the server: it says why, and the server never saw it.
    assert {"worker-1", "worker-2"} <= workers
    assert "worker-other-ca" not in workers
    untrusting_log = (tmp_path / "worker-other-ca.log").read_text()
    assert "CERTIFICATE_VERIFY_FAILED" in untrusting_log
    assert "submitting flow run" not in untrusting_log
    # Everything went through the proxy (its log), and the auth string is in no file the run left.
    proxied = access_log.read_text()
    assert len(re.findall(r'"POST /api/deployments/[0-9a-f-]+/create_flow_run HTTP/1.1" 201 ', proxied)) == 2
    assert (
        len(re.findall(r'"POST /api/(deployments|flow_runs)/[0-9a-f-]+/(create_flow_run|resume) [^"]*" 401 ', proxied))
        == 2
    )
    assert _leaks({"auth string": auth}, tmp_path) == [f"auth string in {auth_file}"]
    # Every process the test started is gone, and nothing else listens on the server's port.
    assert all(p.poll() is not None for p in started)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def post(api_url: str, path: str, body: Any, ca_file: Path, auth: str | None) -> bytes:
    """POST BODY as JSON to the API over TLS (trusting CA_FILE), with the auth string when AUTH."""
    import base64
    import ssl

    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    request = urllib.request.Request(f"{api_url}{path}", data=json.dumps(body).encode(), headers=headers)
    context = ssl.create_default_context(cafile=str(ca_file))
    with urllib.request.urlopen(request, timeout=30, context=context) as answer:
        data: bytes = answer.read()
        return data


def probe_without_auth(api_url: str, ca_file: Path, settings: dict[Any, Any]) -> dict[str, Any]:
    """What a request without the auth string gets when it creates a flow run of a deployment, or
    resumes a paused run with an approval, and whether it changed anything."""
    from flows import migrate_wave

    found: dict[str, Any] = {}
    with temporary_settings(updates=settings), get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("migrate-wave/norddjurs")
        before = client.count_flow_runs()
        paused = client.create_flow_run(migrate_wave, parameters={}, state=Paused(timeout_seconds=600))  # no pool
        for name, path, body in (
            ("create_flow_run", f"/deployments/{deployment.id}/create_flow_run", {}),
            ("resume", f"/flow_runs/{paused.id}/resume", {"run_input": {"approved_by": "Mallory", "ticket": "X-1"}}),
        ):
            try:
                post(api_url, path, body, ca_file, auth=None)
                found[name] = 200
            except urllib.error.HTTPError as exc:
                found[name] = exc.code
        found["created"] = client.count_flow_runs() - before - 1  # the paused one made here
        state = client.read_flow_run(paused.id).state
        found["still_paused"] = state is not None and state.type == StateType.PAUSED
    return found


def wait_final(settings: dict[Any, Any], run_ids: list[UUID], timeout_s: float) -> dict[UUID, FlowRun]:
    deadline = time.monotonic() + timeout_s
    with temporary_settings(updates=settings), get_client(sync_client=True) as client:
        while True:
            runs = {r: client.read_flow_run(r) for r in run_ids}
            if all(run.state is not None and run.state.is_final() for run in runs.values()):
                return runs
            assert time.monotonic() < deadline, {r: run.state for r, run in runs.items()}
            time.sleep(1)
