"""The temporary API a CLI run starts when no PREFECT_API_URL is configured (issue 19, item 6): the
run's flows use it as a configured server, Prefect's server code is never imported into the run's
process (it stays in the server's), and with an auth string set the server asks for it. Real
processes, no lab."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)

SCRIPT = """
import os, sys, urllib.error, urllib.request
from overflyt.orchestration.local import prepare_local_database
prepare_local_database()
from prefect import flow

@flow
def hello() -> int:
    return 42

print("RESULT", hello())
url = os.environ["PREFECT_API_URL"]
print("URL", url)
try:
    urllib.request.urlopen(url + "/flow_runs/filter", data=b"{}", timeout=10)
    print("WITHOUT AUTH STRING 200")
except urllib.error.HTTPError as exc:
    print("WITHOUT AUTH STRING", exc.code)
print("SERVER CODE IMPORTED", "prefect.server.api.server" in sys.modules)
"""


def test_a_run_without_a_configured_server_gets_a_temporary_one_that_asks_for_the_auth_string(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_API_AUTH_STRING="overflyt:unit-test-auth-7731",
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert "RESULT 42" in out, done.stdout
    url = next(line.split(" ", 1)[1] for line in out if line.startswith("URL "))
    assert url.startswith("http://127.0.0.1:"), url
    assert url.endswith("/api"), url
    assert "WITHOUT AUTH STRING 401" in out, done.stdout
    assert "SERVER CODE IMPORTED False" in out, done.stdout
    assert "unit-test-auth-7731" not in done.stdout + done.stderr
