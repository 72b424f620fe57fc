"""Two municipalities at once share nothing; the same municipality twice is refused.

Norddjurs (707) and a second municipality — the sample plan under another kommune code and name,
pointed at the same lab — dry-run their wave 1 at the same time through the CLI (Prefect flows,
ansible-runner). While both run, a second run for Norddjurs is started and must be refused.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "inventories" / "norddjurs"


def _other_municipality(lab: dict[str, Any], where: Path) -> Path:
    plan_dir = where / "syddjurs"
    shutil.copytree(SAMPLE, plan_dir)
    text = (plan_dir / "plan.yml").read_text().replace("../../lab/.state/", f"{lab['state_dir']}/")
    text = text.replace(
        '  code: "707"\n  name: Norddjurs Kommune', '  code: "706"\n  name: Syddjurs Kommune (lab copy)'
    )
    assert '"706"' in text
    (plan_dir / "plan.yml").write_text(text)
    return plan_dir / "plan.yml"


def _dry_run(plan: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "overflyt.cli", "wave", "run", str(plan), "--wave", "1", "--dry-run", "-q"]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_municipalities_run_at_once_in_isolation_and_a_second_run_of_one_is_refused(
    lab: dict[str, Any], tmp_path: Path
) -> None:
    other = _other_municipality(lab, tmp_path)
    state = tmp_path / "state"
    # a fresh Prefect home: both runs start on a database neither has created yet (CI's case)
    env = {**os.environ, **lab["env"], "OVERFLYT_STATE_DIR": str(state), "PREFECT_HOME": str(tmp_path / "prefect")}
    first = _dry_run(SAMPLE / "plan.yml", env)
    second = _dry_run(other, env)
    lock = state / "707" / "lock"
    deadline = time.monotonic() + 120

    def held_by_the_flow() -> bool:  # not merely the CLI's brief check before Prefect starts
        return lock.exists() and '"purpose": "wave 1 dry run"' in lock.read_text()

    while not held_by_the_flow() and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.1)
    assert held_by_the_flow(), "the first run's flow never took its municipality's lock"
    again = _dry_run(SAMPLE / "plan.yml", env)
    again_out, again_err = again.communicate(timeout=120)
    outputs = [p.communicate(timeout=600) for p in (first, second)]

    # The same municipality twice: the second is refused, naming who holds it, and leaves no run record.
    assert again.returncode == 2, (again_out, again_err)
    assert "overflyt: municipality 707 is busy: " in again_err
    # Two municipalities at once: both ran to the end.
    assert [first.returncode, second.returncode] == [0, 0], outputs
    runs = {code: sorted((state / code / "wave-1" / "wave").iterdir()) for code in ("707", "706")}
    assert [len(r) for r in runs.values()] == [1, 1], runs  # the refused run left nothing
    for code, [run_dir] in runs.items():
        other_code = "706" if code == "707" else "707"
        record = json.loads((run_dir / "record.json").read_text())
        assert record["municipality"] == code
        # each run's ansible-runner private dirs live inside its own run record ...
        private_dirs = sorted(p.name for p in (run_dir / "ansible").iterdir())
        assert private_dirs, run_dir
        # ... and its generated inventories carry only its own municipality
        for inventory in (run_dir / "ansible").glob("*/inventory/*"):
            text = inventory.read_text()
            assert f'"{other_code}"' not in text, inventory
            assert f"/{other_code}/" not in text, inventory
    for run_pid in (first.pid, second.pid, again.pid):
        assert not list(Path("/dev/shm").glob(f"overflyt-secrets-{run_pid}-*")), "secret files outlived their run"
