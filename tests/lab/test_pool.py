"""VM moves that take time, against the lab with the simulator's transfer time on (`overflyt lab
transfer`, lab/README.md): the care centre of Djurslandstest Kommune (test_window's plan, its VMs'
dependencies on the town hall dropped) moves its four VMs at most two at a time (``per_site: 2``);
one of them takes 40 s, the others about 3 s each at 20,000 MB/s.

* A long VM no longer holds back the rest of its site: with batches the VMs after the first two
  waited for it; in the pool the others start as slots free and have all moved while it still moves.
  The same on the way back: the rollback is a pool too.
* A cancel while the long VM moves: the run's Ansible is stopped, but vCenter carries the
  relocation on; the rollback cancels it (CancelTask) before it lands, so the site is exactly as it
  was — also after the time the relocation would have taken.
* A kill -9 while the long VM moves, then a rerun: the rerun waits for the relocation vCenter
  carried on instead of starting a second one (which vCenter refuses), and every VM is relocated
  exactly once.

Each test leaves the lab as it found it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from overflyt.cutover.wave import Approval, rollback_site, run_wave
from overflyt.lab import transfer

from .labtools import ansible_processes, estate
from .test_window import CARE_VMS, CODE, window_plan

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("lab_env")]

REPO = Path(__file__).resolve().parents[2]
APPROVAL = Approval("Mette Frederiksen (test)", "CHG-0019")
START = datetime.fromisoformat("2027-03-06T18:00:00+01:00")  # the run is --outside-window
SITE = "digterparken"
LONG = CARE_VMS[0]  # first in plan order, so it starts in the first launch
LONG_S = 40.0
BACK_S = 35.0  # the long VM's way back in the rollback
_LINE = re.compile(r"^(\S+ \S+) ofl-vcsim: (relocate|relocate-done) vm=\S+ name=(\S+)")


@pytest.fixture
def slow_transfer(lab_plan: Path) -> Iterator[None]:
    """The simulator's relocations take time: 20,000 MB/s, the long VM LONG_S; off again after."""
    transfer(lab_plan, 20000, seconds={LONG: LONG_S})
    try:
        yield
    finally:
        transfer(lab_plan, 0)


def _moves(lab: dict[str, Any], skip: int) -> tuple[dict[str, datetime], dict[str, datetime]]:
    """When each VM's relocation was asked for and when it ended, from the simulator's log after
    its first ``skip`` lines (second resolution); a VM relocated twice fails the test."""
    lines = (Path(lab["state_dir"]) / "vcsim" / "vcsim.log").read_text().splitlines()[skip:]
    started: dict[str, datetime] = {}
    ended: dict[str, datetime] = {}
    for line in lines:
        m = _LINE.match(line)
        if m is None:
            continue
        when, kind, name = datetime.strptime(m[1], "%Y/%m/%d %H:%M:%S"), m[2], m[3]
        seen = started if kind == "relocate" else ended
        assert name not in seen, f"{name} relocated twice: {line}"
        seen[name] = when
    return started, ended


def _care_plan(lab: dict[str, Any], where: Path) -> Path:
    plan = window_plan(lab, where, START, START + timedelta(hours=12))
    care = "|".join(CARE_VMS)
    text, n = re.subn(rf"(\{{name: (?:{care}),[^\n]*?), depends_on: \[[^\]\n]*\]\}}", r"\1}", plan.read_text())
    assert n == 3, n  # the fourth had its dependency dropped by window_plan
    plan.write_text(text)
    return plan


def _run_until_the_long_vm_moves(lab: dict[str, Any], where: Path) -> tuple[Path, int, subprocess.Popen[str]]:
    """`overflyt wave run` of the care centre (its plan written under ``where``), returned once the
    long VM moves and a short one has moved beside it: the plan, the number of lines the
    simulator's log had before, and the running process."""
    plan = _care_plan(lab, where)
    skip = len((Path(lab["state_dir"]) / "vcsim" / "vcsim.log").read_text().splitlines())
    command = [
        sys.executable, "-m", "overflyt.cli", "wave", "run", str(plan), "--wave", "1", f"--site={SITE}",
        "--approved-by", "test", "--outside-window", "-q",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    deadline = time.monotonic() + 240
    while True:
        started, ended = _moves(lab, skip)
        if LONG in started and LONG not in ended and set(ended) - {LONG}:
            return plan, skip, process
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail(f"the long VM never moved beside a short one: {(started, ended)} {process.communicate()}")
        time.sleep(0.2)


def test_a_long_vm_does_not_hold_back_the_rest_of_its_site(
    lab: dict[str, Any], lab_plan: Path, si: Any, tmp_path: Path, slow_transfer: None
) -> None:
    before = estate(si, lab)
    plan = _care_plan(lab, tmp_path)
    log_file = Path(lab["state_dir"]) / "vcsim" / "vcsim.log"
    skip = len(log_file.read_text().splitlines())
    others = [vm for vm in CARE_VMS if vm != LONG]
    rolled_back = False
    try:
        outcome = run_wave(plan, 1, [SITE], dry_run=False, approval=APPROVAL, outside_window=True)
        assert [(s.site, s.status) for s in outcome.sites] == [(SITE, "done")], outcome.sites
        started, ended = _moves(lab, skip)
        assert sorted(started) == sorted(ended) == sorted(CARE_VMS), (started, ended)
        # every other VM has moved while the long one still moved ...
        assert all(ended[vm] < ended[LONG] for vm in others), (started, ended)
        # ... and at least one of them started on a slot a short move had freed, which batches
        # (the next batch only after the long one's batch ended) could not do
        reused = [b for b in others for a in others if ended[a] <= started[b] < ended[LONG]]
        assert reused, (started, ended)
        assert (ended[LONG] - started[LONG]).total_seconds() >= LONG_S - 1  # it really took its time
        migration = json.loads((outcome.run_dir / f"vm-migration-{SITE}.json").read_text())
        assert {vm: move["status"] for vm, move in migration["vms"].items()} == dict.fromkeys(CARE_VMS, "moved")
        assert LONG in migration["batches"][0], migration["batches"]
        assert len(migration["batches"]) >= 3, migration["batches"]  # VMs started as slots freed

        # The rollback goes back as a pool too: the long VM's way back takes BACK_S, the others go
        # back beside it, one on each slot a short move back has freed.
        transfer(lab_plan, 20000, seconds={LONG: BACK_S})
        skip = len(log_file.read_text().splitlines())
        back = rollback_site(plan, SITE)
        rolled_back = back.exit_code == 0
        assert rolled_back, back.sites
        started, ended = _moves(lab, skip)
        assert sorted(started) == sorted(ended) == sorted(CARE_VMS), (started, ended)
        assert all(ended[vm] < ended[LONG] for vm in others), (started, ended)
        assert [b for b in others for a in others if ended[a] <= started[b] < ended[LONG]], (started, ended)
        rollback = json.loads((back.run_dir / f"vm-rollback-{SITE}.json").read_text())
        assert {vm: r["status"] for vm, r in rollback["vms"].items()} == dict.fromkeys(CARE_VMS, "restored")
        assert LONG in rollback["batches"][0], rollback["batches"]
        assert len(rollback["batches"]) >= 3, rollback["batches"]
    finally:
        transfer(lab_plan, 0)  # a rollback still to do: its moves at once
        if not rolled_back:
            assert rollback_site(plan, SITE).exit_code == 0
    assert estate(si, lab) == before


def test_a_cancel_mid_transfer_cancels_the_relocation_vcenter_carries_on(
    lab: dict[str, Any], lab_plan: Path, si: Any, tmp_path: Path, slow_transfer: None
) -> None:
    before = estate(si, lab)
    _, skip, process = _run_until_the_long_vm_moves(lab, tmp_path)
    started, _ = _moves(lab, skip)
    process.send_signal(signal.SIGTERM)  # what Prefect sends when a run is cancelled from the UI
    out, err = process.communicate(timeout=300)
    assert process.returncode == 1, (out, err)
    state = json.loads((tmp_path / "state" / CODE / "wave-1" / "state.json").read_text())["sites"][SITE]
    assert state["status"] == "rolled_back", state
    assert state["error"].endswith(": canceled (signal SIGTERM)"), state
    assert ansible_processes(tmp_path / "state") == {}
    log = (Path(lab["state_dir"]) / "vcsim" / "vcsim.log").read_text().splitlines()[skip:]
    assert any(f"name={LONG} " in line and line.endswith(" canceled") for line in log), log  # CancelTask
    # past the moment the relocation would have landed, the site is still as it was
    landing = started[LONG].timestamp() + LONG_S + 2
    time.sleep(max(0.0, landing - time.time()))
    assert estate(si, lab) == before


def test_a_rerun_after_a_kill_mid_transfer_waits_for_the_relocation_under_way(
    lab: dict[str, Any], lab_plan: Path, si: Any, tmp_path: Path, slow_transfer: None
) -> None:
    before = estate(si, lab)
    plan, skip, process = _run_until_the_long_vm_moves(lab, tmp_path)
    os.killpg(process.pid, signal.SIGKILL)  # the orchestrator and its ansible-playbooks die mid-transfer
    process.communicate()
    try:
        outcome = run_wave(plan, 1, [SITE], dry_run=False, approval=APPROVAL, outside_window=True)
        assert [(s.site, s.status) for s in outcome.sites] == [(SITE, "done")], outcome.sites
        started, ended = _moves(lab, skip)  # fails on a VM relocated twice
        assert sorted(started) == sorted(ended) == sorted(CARE_VMS), (started, ended)
        migration = json.loads((outcome.run_dir / f"vm-migration-{SITE}.json").read_text())
        assert migration["vms"][LONG]["status"] in ("moved", "unchanged"), migration["vms"][LONG]
    finally:
        transfer(lab_plan, 0)
        assert rollback_site(plan, SITE).exit_code == 0
    assert estate(si, lab) == before
