"""What a dead run of the municipality left running is stopped and reported before a new run
touches anything (overflyt.ansible.leftovers), with real processes: a planted sleeper recorded as
a dead run's, one with a child of its own, and one of a run whose process still lives."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from overflyt.ansible import leftovers, processes
from overflyt.errors import EXIT_BAD_INPUT
from overflyt.record import Run, RunLocked

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process identities are read from /proc")


@pytest.fixture
def dead_owner() -> processes.Identity:
    """The identity of a process that ran and has ended: a dead run's main process."""
    owner = subprocess.Popen(["sleep", "60"])
    identity = processes.identify(owner.pid)
    owner.kill()
    owner.wait()
    assert identity is not None
    return identity


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; whatever is left of them is killed afterwards."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def _plant(run: Run, command: list[str], owner: processes.Identity, started: list[subprocess.Popen[bytes]]) -> int:
    proc = subprocess.Popen(command, start_new_session=True)
    started.append(proc)
    identity = processes.identify(proc.pid)
    assert identity is not None
    processes.record(run.processes, identity, command[0], owner)
    return proc.pid


def test_leftovers_of_a_dead_run_are_stopped_reported_and_recorded(
    tmp_path: Path,
    dead_owner: processes.Identity,
    started: list[subprocess.Popen[bytes]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = Run.create("wave", "707", 1, ["grenaa-raadhus"], dry_run=False, base=tmp_path)
    _plant(dead, ["sleep", "300"], dead_owner, started)
    _plant(dead, ["sh", "-c", "sleep 300 & wait"], dead_owner, started)
    # a pre-check of another wave that runs right now: its process lives, its processes are its own
    living = Run.create("precheck", "707", 2, ["kattegatskolen"], dry_run=True, base=tmp_path)
    me = processes.identify(os.getpid())
    assert me is not None
    _plant(living, ["sleep", "301"], me, started)
    deadline = time.monotonic() + 5
    while len(child_of_sh := processes.descendants(started[1].pid)) != 1:  # sh has started its sleep
        assert time.monotonic() < deadline, child_of_sh
        time.sleep(0.02)
    run = Run.create("wave", "707", 1, ["grenaa-raadhus"], dry_run=False, base=tmp_path)

    with caplog.at_level(logging.WARNING, logger="overflyt.ansible.leftovers"):
        said = leftovers.stop_leftovers(run)

    assert len(said) == 1
    assert said[0].startswith(f"stopped 1 sh process, 2 sleep processes left by run {dead.record.run_id} (dead since ")
    assert said[0].endswith(" UTC)")
    assert [r.getMessage() for r in caplog.records] == said
    assert json.loads((run.dir / "record.json").read_text())["notes"]["leftovers"] == said
    assert started[0].wait(5) == -signal.SIGTERM
    assert started[1].wait(5) == -signal.SIGTERM
    assert processes.identify(child_of_sh[0]) is None
    assert started[2].poll() is None, "a living run's process was stopped"
    assert leftovers.stop_leftovers(run) == []  # nothing left the second time


def test_what_cannot_be_stopped_keeps_the_municipality_busy(
    tmp_path: Path,
    dead_owner: processes.Identity,
    started: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dead = Run.create("wave", "707", 1, ["grenaa-raadhus"], dry_run=False, base=tmp_path)
    pid = _plant(dead, ["sleep", "300"], dead_owner, started)
    monkeypatch.setattr(processes, "stop", lambda found, grace_s: list(found))  # a process stuck in the kernel
    run = Run.create("wave", "707", 1, ["grenaa-raadhus"], dry_run=False, base=tmp_path)

    with pytest.raises(RunLocked) as refused:
        leftovers.stop_leftovers(run)

    said = f"municipality 707 is busy: 1 sleep process left by run {dead.record.run_id} (dead since "
    assert str(refused.value).startswith(said)
    assert str(refused.value).endswith(f" UTC) could not be stopped: pid {pid} (sleep); stop them, then run again")
    assert refused.value.exit_code == EXIT_BAD_INPUT
    record = json.loads((run.dir / "record.json").read_text())
    assert record["status"] == "failed"
    assert record["notes"]["leftovers"] == [str(refused.value).removeprefix("municipality 707 is busy: ").removesuffix(
        "; stop them, then run again")]  # fmt: skip
