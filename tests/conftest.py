"""Session fixtures shared by every test.

``lab``: brings the lab up once per session through the same code path as ``overflyt lab up``
and yields its status (the dict ``overflyt lab status --json`` prints); brings it down at the end.
If the lab cannot come up, every test that needs it FAILS (never skips).
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
PLAN = REPO / "inventories" / "norddjurs" / "plan.yml"


@pytest.fixture(scope="session")
def lab_plan() -> Path:
    return PLAN


LAB_LOCK = Path("/run/lock/overflyt-lab-tests.lock")


@pytest.fixture(scope="session")
def lab(lab_plan: Path) -> Iterator[dict[str, Any]]:
    """The lab is one per machine (fixed namespaces, addresses and ports): concurrent test
    sessions (several checkouts, CI's clone) wait for each other on a machine-wide lock."""
    from overflyt.errors import OverflytError
    from overflyt.lab import down, up

    LAB_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LAB_LOCK, "a") as lock:
        deadline = time.monotonic() + 900
        while True:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail("another test session has held the lab for 15 minutes", pytrace=False)
                time.sleep(1)
        try:
            state = up(lab_plan)
        except OverflytError as exc:
            pytest.fail(f"the lab did not come up: {exc}", pytrace=False)
        if not state["up"]:
            pytest.fail(f"the lab is not healthy: {state['problems']}", pytrace=False)
        yield state
        down(lab_plan)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`lab down` tests take the session's lab away: they run last."""
    items.sort(key=lambda item: item.name.startswith("test_lab_down"))
