"""The lab's machine-wide lock (overflyt.lab.exclusive): one user at a time, a bounded wait that
names the lock, and a dead holder's lock freed by the kernel. Real processes, a lock file in tmp."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from overflyt.lab import LabError, exclusive

HOLD = """
import sys, time
from pathlib import Path
from overflyt.lab import exclusive
with exclusive(5, lock_path=Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(lock: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_user_waits_then_gives_up_naming_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / "lab.lock"
    holder = _holder(lock)
    waits: list[float] = []
    started = time.monotonic()
    try:
        with pytest.raises(LabError, match=str(lock)), exclusive(1.5, lambda: waits.append(1), lock_path=lock):
            pytest.fail("entered the lab while another process held it")
    finally:
        holder.kill()
        holder.wait()
    assert time.monotonic() - started >= 1.5
    assert waits == [1]  # told once that it waits, not once per poll


def test_a_killed_holder_frees_the_lab_for_the_waiter(tmp_path: Path) -> None:
    lock = tmp_path / "lab.lock"
    holder = _holder(lock)
    entered = False
    started = time.monotonic()
    subprocess.Popen(["sh", "-c", f"sleep 1; kill -9 {holder.pid}"])
    with exclusive(20, lock_path=lock):
        entered = True
        waited = time.monotonic() - started
    holder.wait()
    assert entered
    assert waited >= 0.9  # it did wait for the holder, and got in once the holder died


def test_free_lab_is_entered_at_once_and_released_after(tmp_path: Path) -> None:
    lock = tmp_path / "lab.lock"
    calls: list[int] = []
    with exclusive(1, lambda: calls.append(1), lock_path=lock):
        pass
    with exclusive(0, lambda: calls.append(1), lock_path=lock):  # released: no wait needed
        pass
    assert calls == []


def test_a_process_started_by_the_holder_takes_its_turn_within_the_holders(tmp_path: Path) -> None:
    """`make demo` holds the lock with flock(1) and passes its descriptor (OVERFLYT_LAB_LOCK_FD): a
    process it starts enters; one without the descriptor, or with another one, still waits."""
    lock = tmp_path / "lab.lock"
    enter = (
        "import sys; from pathlib import Path; from overflyt.lab import LabError, exclusive\n"
        "try:\n    with exclusive(1.5, lock_path=Path(sys.argv[1])): print('entered')\n"
        "except LabError: print('waited and gave up')\n"
    )
    script = (
        f'exec 9>>"$1"; flock -n 9 || exit 9\n'
        f'OVERFLYT_LAB_LOCK_FD=9 "{sys.executable}" -c "$2" "$1"\n'
        f'env -u OVERFLYT_LAB_LOCK_FD "{sys.executable}" -c "$2" "$1"\n'
        f'OVERFLYT_LAB_LOCK_FD=1 "{sys.executable}" -c "$2" "$1"\n'
    )
    done = subprocess.run(["bash", "-c", script, "bash", str(lock), enter], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout.split("\n")) == (
        0,
        ["entered", "waited and gave up", "waited and gave up", ""],
    )
