"""Prefect's temporary API server, which a CLI run starts when no PREFECT_API_URL is set, runs under
the process guard: a SIGKILL of the run's process leaves no server behind (issue 23). Real processes,
no lab."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from overflyt.ansible import processes

pytestmark = pytest.mark.timeout(300)

SCRIPT = """
from overflyt.orchestration.local import prepare_local_database
prepare_local_database()
import time
print("ready", flush=True)
time.sleep(600)
"""


def test_a_killed_run_leaves_no_temporary_prefect_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    run = subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert run.stdout is not None
        assert run.stdout.readline().strip() == "ready"
        below = [i for p in processes.descendants(run.pid) if (i := processes.identify(p))]
        names = " ".join(processes.name_of(i.pid) for i in below)
        assert "uvicorn" in " ".join(Path(f"/proc/{i.pid}/cmdline").read_text() for i in below), names
        run.kill()
        run.wait()
        deadline = time.monotonic() + 10
        while any(processes.alive(i) for i in below) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [i for i in below if processes.alive(i)]
        assert not left, f"alive 10 s after SIGKILL of the run: {[processes.name_of(i.pid) for i in left]}"
    finally:
        run.kill()
        for identity in [i for p in processes.descendants(run.pid) if (i := processes.identify(p))]:
            processes.stop([identity], grace_s=1)
