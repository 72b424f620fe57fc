"""A long VM no longer holds back the rest of its site, against the lab with the simulator's
transfer time on (`overflyt lab transfer`, lab/README.md): the care centre of Djurslandstest
Kommune (test_window's plan, its VMs' dependencies on the town hall dropped) moves its four VMs
at most two at a time (``per_site: 2``); one of them takes 40 s, the others about 3 s each at
20,000 MB/s. With batches the VMs after the first two waited for the long one; in the pool the
others start as slots free and have all moved while it still moves. The site is rolled back
after, and the lab left as it was found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from overflyt.cutover.wave import Approval, rollback_site, run_wave
from overflyt.lab import transfer

from .labtools import estate
from .test_window import CARE_VMS, window_plan

pytestmark = pytest.mark.lab

APPROVAL = Approval("Mette Frederiksen (test)", "CHG-0019")
START = datetime.fromisoformat("2027-03-06T18:00:00+01:00")  # the run is --outside-window
SITE = "digterparken"
LONG = CARE_VMS[0]  # first in plan order, so it starts in the first launch
LONG_S = 40.0
_LINE = re.compile(r"^(\S+ \S+) ofl-vcsim: (relocate|relocate-done) vm=\S+ name=(\S+)")


@pytest.fixture(autouse=True)
def lab_env(lab: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for name, value in lab["env"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(tmp_path / "state"))
    return lab


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


def test_a_long_vm_does_not_hold_back_the_rest_of_its_site(
    lab: dict[str, Any], lab_plan: Path, si: Any, tmp_path: Path, slow_transfer: None
) -> None:
    before = estate(si, lab)
    plan = window_plan(lab, tmp_path, START, START + timedelta(hours=12))
    care = "|".join(CARE_VMS)
    text, n = re.subn(rf"(\{{name: (?:{care}),[^\n]*?), depends_on: \[[^\]\n]*\]\}}", r"\1}", plan.read_text())
    assert n == 3, n  # the fourth had its dependency dropped by window_plan
    plan.write_text(text)
    log_file = Path(lab["state_dir"]) / "vcsim" / "vcsim.log"
    skip = len(log_file.read_text().splitlines())
    try:
        outcome = run_wave(plan, 1, [SITE], dry_run=False, approval=APPROVAL, outside_window=True)
        assert [(s.site, s.status) for s in outcome.sites] == [(SITE, "done")], outcome.sites
        started, ended = _moves(lab, skip)
        assert sorted(started) == sorted(ended) == sorted(CARE_VMS), (started, ended)
        others = [vm for vm in CARE_VMS if vm != LONG]
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
    finally:
        transfer(lab_plan, 0)  # the rollback's moves at once
        assert rollback_site(plan, SITE).exit_code == 0
    assert estate(si, lab) == before
