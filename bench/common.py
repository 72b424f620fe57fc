"""What every benchmark shares: the machine and commit lines of a result, appending to RESULTS.md,
and — for the lab benchmarks — the lab brought up from a plan under the machine-wide lab lock.

Not a benchmark itself (bench/run.py runs only ``pN_*.py``).
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
WORK = REPO / ".overflyt" / "bench"  # generated plans and run records (git-ignored with .overflyt/)
# The lab is one per machine (fixed namespaces, addresses, ports): test sessions and benchmarks
# wait for each other on the same lock as tests/conftest.py's `lab` fixture.

sys.path.insert(0, str(REPO / "src"))


_current: list[Path] = []  # the plan the lab was last brought up from


class BenchError(Exception):
    """A benchmark could not measure (exit 2): the lab did not come up, a run failed."""


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        kib = next(
            int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")
        )
        memory = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "unknown memory"
    return f"{os.cpu_count()} cores ({cpu}), {memory}, Python {platform.python_version()}"


def commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" (with uncommitted changes)" if dirty else "")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def record(text: str, enabled: bool) -> None:
    """Print a result and append it to bench/RESULTS.md (unless ``--no-record``)."""
    print(text)
    if enabled:
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write("\n" + text.rstrip("\n") + "\n")
        print(f"appended to {RESULTS.relative_to(REPO)}")


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    aligns = ["---"] + ["---:"] * (len(header) - 1)
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(aligns) + " |"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


@contextlib.contextmanager
def lab_lock(wait_s: float = 1800) -> Iterator[None]:
    """Hold the machine-wide lab lock (waits for a test session or another benchmark)."""
    from overflyt.lab import LabError, exclusive

    def said() -> None:
        print("waiting for the lab (a test session or another benchmark holds it) ...", flush=True)

    try:
        with exclusive(wait_s, on_wait=said):
            yield
    except LabError as exc:
        raise BenchError(str(exc)) from None


def lab_up(plan: Path) -> dict[str, Any]:
    """Bring the lab up from ``plan`` (replacing whatever lab is up) and set its credentials in
    this process's environment. Returns ``overflyt lab status --json``."""
    from overflyt.errors import OverflytError
    from overflyt.lab import down, up

    down(plan)  # whatever lab this state dir holds: every run starts from a freshly built lab
    _current[:] = [plan]
    started = time.monotonic()
    try:
        state = up(plan)
    except OverflytError as exc:
        down(plan)
        raise BenchError(f"the lab did not come up from {plan}: {exc}") from exc
    if not state["up"]:
        down(plan)
        raise BenchError(f"the lab from {plan} is not healthy: {state['problems']}")
    os.environ.update(state["env"])
    print(f"lab up from {plan.name} in {time.monotonic() - started:.1f} s", flush=True)
    return state


def lab_down() -> None:
    """Bring down the lab :func:`lab_up` brought up last (if any)."""
    from overflyt.lab import down

    if _current:
        down(_current.pop())


# `overflyt ARGS` as the CLI runs it, plus one log handler that writes each playbook's runner time
# ("playbook X: status in Ns", logged by overflyt.ansible.runner at INFO) to a file: -v would log everything
# at DEBUG and slow the run being measured.
_CLI = """
import logging, sys
handler = logging.FileHandler(sys.argv[1])
handler.setFormatter(logging.Formatter("%(message)s"))
runner = logging.getLogger("overflyt.ansible.runner")
runner.setLevel(logging.INFO)
runner.addHandler(handler)
from overflyt.cli import main
sys.exit(main(sys.argv[2:]))
"""
_PLAYBOOK_LOG = re.compile(r"^playbook (\S+): (\w+) in ([\d.]+)s", re.MULTILINE)


def run_overflyt(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> tuple[float, list[tuple[str, float]]]:
    """Run the overflyt CLI; its wall time and each playbook's (name, runner seconds), in order.
    Output goes to ``log``; a non-zero exit raises :class:`BenchError`."""
    playbooks = log.with_suffix(".playbooks")
    playbooks.unlink(missing_ok=True)
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(
            [sys.executable, "-c", _CLI, str(playbooks), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            check=False,
        )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"overflyt {' '.join(args[:2])} exited {done.returncode}; see {log}")
    text = playbooks.read_text() if playbooks.exists() else ""
    return seconds, [(m.group(1), float(m.group(3))) for m in _PLAYBOOK_LOG.finditer(text)]
