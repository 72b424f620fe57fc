"""Session fixtures shared by every test.

``lab``: brings the lab up once per session through the same code path as ``overflyt lab up``
and yields its status (the dict ``overflyt lab status --json`` prints); brings it down at the end.
A lab found up (left by `make demo`, `overflyt lab up` or a session that died, perhaps with a wave cut
over) is first brought back to the plan's initial state — down, then up — and the session says so.
If the lab cannot come up, every test that needs it FAILS (never skips).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
PLAN = REPO / "inventories" / "norddjurs" / "plan.yml"
# Tests run plans copied into temporary directories, some from another working directory: they name
# the project (playbooks/, roles/, collections/) explicitly, as an installed overflyt would.
os.environ.setdefault("OVERFLYT_PROJECT_DIR", str(REPO))
# Reports in their default language (Danish), whatever the shell running the tests asks for.
os.environ.pop("OVERFLYT_LANG", None)


@pytest.fixture(scope="session")
def lab_plan() -> Path:
    return PLAN


RESET = (
    "overflyt tests: the lab was already up (left by `make demo`, `overflyt lab up` or an earlier session, "
    "perhaps with a wave cut over): bringing it back to the plan's initial state (lab down, then lab up)"
)


@pytest.fixture(scope="session")
def lab(lab_plan: Path, pytestconfig: pytest.Config) -> Iterator[dict[str, Any]]:
    """The lab is one per machine: concurrent test sessions (several checkouts, CI's clone, a
    benchmark) take turns on its machine-wide lock, waiting up to 15 minutes."""
    from overflyt.errors import OverflytError
    from overflyt.lab import down, exclusive, status, up

    try:
        with exclusive(900):
            try:
                if status(lab_plan)["up"]:  # what it holds is not known: rebuilt from the plan
                    _say(pytestconfig, RESET)
                    down(lab_plan)
                state = up(lab_plan)
            except OverflytError as exc:
                pytest.fail(f"the lab did not come up: {exc}", pytrace=False)
            if not state["up"]:
                pytest.fail(f"the lab is not healthy: {state['problems']}", pytrace=False)
            yield state
            down(lab_plan)
    except OverflytError as exc:
        pytest.fail(str(exc), pytrace=False)


def _say(config: pytest.Config, line: str) -> None:
    """A line on the terminal, past pytest's capturing (as `make test` shows it)."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        reporter.write_line(line)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`lab down` tests take the session's lab away: they run last."""
    items.sort(key=lambda item: item.name.startswith("test_lab_down"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Prefect's temporary API server, when a test started one in this process, stops here while the
    terminal is still open. Left to its atexit stop, its goodbye is logged to a stream pytest has
    closed: a "Logging error" traceback after the summary."""
    server = sys.modules.get("prefect.server.api.server")
    if server is not None:
        for instance in list(server.SubprocessASGIServer._instances.values()):
            instance.stop()
