"""The machine-wide lab lock: one lab per machine, its users take turns."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from overflyt.lab.common import LabError

LAB_LOCK = Path("/run/lock/overflyt-lab-tests.lock")
# A process started by the lock's holder (`make demo`'s shell, holding it with flock(1) on this file
# descriptor) uses the holder's lock: the descriptor it inherited already holds it.
HELD_FD_ENV = "OVERFLYT_LAB_LOCK_FD"


def _inherited(lock_path: Path) -> bool:
    """True when HELD_FD_ENV names an inherited descriptor of ``lock_path`` that holds its lock."""
    value = os.environ.get(HELD_FD_ENV, "")
    if not value.isdigit():
        return False
    fd = int(value)
    try:
        if os.path.realpath(f"/proc/self/fd/{fd}") != str(lock_path.resolve()):
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the same open file: held already, so granted
    except OSError:
        return False
    return True


@contextlib.contextmanager
def exclusive(wait_s: float, on_wait: Callable[[], None] | None = None, lock_path: Path = LAB_LOCK) -> Iterator[None]:
    """Hold the machine-wide lab lock for the block. The lab is one per machine (fixed namespaces,
    addresses and ports), so its users — a test session, a benchmark, in any checkout — take turns:
    this waits up to ``wait_s`` for the holder (calling ``on_wait`` once, when it starts waiting),
    then raises LabError. The kernel frees a dead holder's lock. A process whose starter holds the
    lock and passed its descriptor in ``OVERFLYT_LAB_LOCK_FD`` takes its turn within the starter's."""
    if _inherited(lock_path):
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        deadline = time.monotonic() + wait_s
        waiting = False
        while True:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LabError(
                        f"the lab has been in use for {wait_s:.0f} s (a test session or a benchmark holds {lock_path})"
                    ) from None
                if not waiting and on_wait is not None:
                    on_wait()
                waiting = True
                time.sleep(1)
        yield
