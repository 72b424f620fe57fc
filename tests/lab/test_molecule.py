"""The Molecule scenarios of molecule/, one per role, against the lab's real peers: each runs
`molecule test -s <role>` (prepare, check, converge, idempotence, verify, cleanup as the
scenario's molecule.yml orders them) with an inventory written for the running lab, and must
exit 0 having run the idempotence step (second converge: changed=0).

Every scenario leaves the lab as it found it (its cleanup restores the router or moves the VM
back and proves it); the test also checks that from outside Molecule."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from .labtools import MOLECULE_DEVICE, MOLECULE_VM, molecule_env, running_config_sha, source_vcenter, vms_placed

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.parent.name for p in (REPO / "molecule").glob("*/molecule.yml"))
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())
TIMEOUT_S = 240


def sequence(scenario: str) -> list[str]:
    config = yaml.safe_load((REPO / "molecule" / scenario / "molecule.yml").read_text())
    steps: list[str] = config["scenario"]["test_sequence"]
    return steps


def test_every_role_has_a_scenario() -> None:
    assert SCENARIOS == ROLES


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(lab: dict[str, Any], scenario: str) -> None:
    with source_vcenter(lab) as si:
        vms_before = vms_placed(si)
    router_before = running_config_sha(lab, MOLECULE_DEVICE)
    with tempfile.TemporaryDirectory(prefix="ofl-mol-") as tmp:
        env = dict(os.environ, **molecule_env(lab, Path(tmp)))
        env["NO_COLOR"] = "1"
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        started = time.monotonic()
        done = subprocess.run(
            ["molecule", "-c", "molecule/config.yml", "test", "-s", scenario],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    print(f"\nmolecule test -s {scenario}: exit {done.returncode} in {seconds:.1f} s")
    assert done.returncode == 0, output[-20000:]
    # every step of the sequence ran and succeeded, the idempotence step (second converge: changed=0) among them
    steps = re.findall(rf"^{scenario} > (\S+): Executed: (.*)$", output, re.M)
    assert steps == [(step.split()[0], "Successful") for step in sequence(scenario)], output[-20000:]
    assert ("idempotence", "Successful") in steps
    # the lab is as the scenario found it
    assert running_config_sha(lab, MOLECULE_DEVICE) == router_before
    with source_vcenter(lab) as si:
        assert vms_placed(si) == vms_before
    assert MOLECULE_VM in {vm[1] for vm in vms_before}
