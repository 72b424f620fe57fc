"""The machine-wide lab lock: one lab per machine, its users take turns."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from overflyt.lab.common import LabError

LAB_LOCK = Path("/run/lock/overflyt-lab-tests.lock")


@contextlib.contextmanager
def exclusive(wait_s: float, on_wait: Callable[[], None] | None = None, lock_path: Path = LAB_LOCK) -> Iterator[None]:
    """Hold the machine-wide lab lock for the block. The lab is one per machine (fixed namespaces,
    addresses and ports), so its users — a test session, a benchmark, in any checkout — take turns:
    this waits up to ``wait_s`` for the holder (calling ``on_wait`` once, when it starts waiting),
    then raises LabError. The kernel frees a dead holder's lock."""
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
