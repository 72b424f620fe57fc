"""What dead runs left running: found, stopped and reported before a run of the municipality
touches anything.

The guard (:mod:`.guard`) ends what a playbook started when the run's process dies; this is the
belt to those braces. Every run records what it starts (``processes.jsonl``, :mod:`.processes`).
A run of a municipality, once it holds the municipality's lock, reads the records of the
municipality's other runs for processes that still run although their run's main process has
ended, stops them together with what they started in turn, and says so: in the log (the CLI
prints it) and in its own record (``notes["leftovers"]``). What cannot be stopped keeps the
municipality busy, as its lock would: the run is refused (:class:`LeftoversRunning`) before it
changes anything.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from overflyt.ansible import processes
from overflyt.record import PROCESSES, Run, RunLocked

log = logging.getLogger(__name__)


class LeftoversRunning(RunLocked):
    """Processes a dead run of the municipality left could not be stopped: nothing may start."""


def stop_leftovers(run: Run, grace_s: float = 5.0) -> list[str]:
    """Stop what dead runs of ``run``'s municipality left running (call it holding the municipality's
    lock); returns what was said, one line per dead run, also logged and kept in ``run``'s record."""
    said: list[str] = []
    stuck: list[str] = []
    for other in run.other_runs():
        left = [r.process for r in processes.recorded(other / PROCESSES) if processes.alive(r.process)
                and not processes.alive(r.owner)]  # fmt: skip
        if not left:
            continue
        found = _with_descendants(left)
        names = {p: processes.name_of(p.pid) for p in found}
        survivors = processes.stop(found, grace_s)
        by = f"left by run {other.name} (dead since {_last_seen(other)})"
        stopped = [names[p] for p in found if p not in survivors]
        if stopped:
            said.append(f"stopped {_counted(stopped)} {by}")
            log.warning("%s", said[-1])
        if survivors:
            pids = ", ".join(f"{p.pid} ({names[p]})" for p in survivors)
            stuck.append(f"{_counted([names[p] for p in survivors])} {by} could not be stopped: pid {pids}")
    if said or stuck:
        run.record.notes["leftovers"] = said + stuck
        run.save()
    if stuck:
        run.finish("failed")
        raise LeftoversRunning(
            f"municipality {run.record.municipality} is busy: {'; '.join(stuck)}; stop them, then run again"
        )
    return said


def _with_descendants(roots: list[processes.Identity]) -> list[processes.Identity]:
    """``roots`` and every running process below them, each once, parents first."""
    found: dict[processes.Identity, None] = dict.fromkeys(roots)
    for root in roots:
        for pid in processes.descendants(root.pid):
            identity = processes.identify(pid)
            if identity is not None:
                found[identity] = None
    return list(found)


def _counted(names: list[str]) -> str:
    counts = Counter(names)
    return ", ".join(f"{n} {name} process{'es' if n > 1 else ''}" for name, n in sorted(counts.items()))


def _last_seen(run_dir: Path) -> str:
    """When the run last wrote its record or a playbook's output: the latest sign of its life."""
    files = [run_dir / "record.json", *run_dir.glob("ansible/*/artifacts/*/stdout")]
    times = [f.stat().st_mtime for f in files if f.is_file()]
    return datetime.fromtimestamp(max(times), UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if times else "?"
