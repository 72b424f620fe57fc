"""Scale-out: the same deployments on a Prefect server backed by PostgreSQL, two workers in one work pool.

PostgreSQL (Debian's package) runs from a data directory under tmp_path as the ``postgres`` user; a
Prefect server uses it; `overflyt serve --api-url ... --workers 0` registers the deployments of two
municipalities (the sample and a copy of it under another municipality code); two `prefect worker
start` processes poll the pool with room for one flow run each. Both municipalities' nightly
pre-checks are started at once: both complete, at the same time, one on each worker.
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
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from overflyt.orchestration.serve import start_server, start_worker, stop, wait_healthy

from .labtools import free_port

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


def test_two_municipalities_precheck_at_once_on_two_workers_of_a_postgres_backed_server(
    lab: dict[str, Any], postgres: str, inventories: Path, tmp_path: Path
) -> None:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = dict(
        lab["env"],
        OVERFLYT_STATE_DIR=str(tmp_path / "state"),
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_WORKER_QUERY_SECONDS="1",
    )
    started = []
    try:
        server = start_server(
            port,
            tmp_path / "server.log",
            home=tmp_path / "prefect",
            env={"PREFECT_API_DATABASE_CONNECTION_URL": postgres},
        )
        started.append(server)
        print(f"server on PostgreSQL healthy after {wait_healthy(api_url, server, timeout_s=180):.1f} s")
        registered = subprocess.run(
            [sys.executable, "-m", "overflyt.cli", "serve", "--api-url", api_url, "--workers", "0"],
            cwd=inventories.parent,
            capture_output=True,
            text=True,
            env=dict(os.environ, **env),
            timeout=120,
        )
        assert registered.returncode == 0, registered.stderr
        assert "overflyt: registered in work pool overflyt: " in registered.stderr
        for n in (1, 2):
            started.append(
                start_worker(api_url, "overflyt", f"worker-{n}", tmp_path / f"worker-{n}.log", limit=1, env=env)
            )

        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            runs = {
                slug: run_deployment(f"precheck-wave/{slug}", timeout=0).id  # type: ignore[union-attr]
                for slug in ("norddjurs", "syddjurs")
            }
        finished = wait_final(api_url, list(runs.values()), timeout_s=420)
        # Each municipality's findings table, under its own stable key (the REST call the UI makes).
        query = {"artifacts": {"key": {"any_": ["precheck-707-wave-1", "precheck-708-wave-1"]}}, "limit": 10}
        request = urllib.request.Request(
            f"{api_url}/artifacts/filter", data=json.dumps(query).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            keys = {a["key"]: a["type"] for a in json.loads(answer.read())}
    finally:
        for process in reversed(started):
            stop(process)

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
    # Every process the test started is gone, and nothing else listens on the server's port.
    assert all(p.poll() is not None for p in started)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def wait_final(api_url: str, run_ids: list[UUID], timeout_s: float) -> dict[UUID, FlowRun]:
    deadline = time.monotonic() + timeout_s
    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        while True:
            runs = {r: client.read_flow_run(r) for r in run_ids}
            if all(run.state is not None and run.state.is_final() for run in runs.values()):
                return runs
            assert time.monotonic() < deadline, {r: run.state for r, run in runs.items()}
            time.sleep(1)
