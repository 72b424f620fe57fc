"""Move slots: the plan's concurrency limits, held across every run that shares the state directory.

A VM move loads its source ESXi host, its source and target datastores and the target vCenter.
Within one run the pool already respects the plan's limits (:class:`overflyt.planning.batches.Pool`);
runs of *different* municipalities at once meet on what they share — the shared datacentre's
vCenter and datastores. Before VMs start moving together they take one slot per VM of every
resource each loads, all or none; a full resource makes it wait (and say for whom) until its time runs out. A
move frees its own slots as soon as its transfer is over (:func:`hold_each`), not when the rest
of the VMs that started with it end.

A slot is a kernel lock (``flock``) on a file ``<state>/slots/<resource>/<n>``: the kernel frees it
when the holder's process ends, however it ends, so a SIGKILLed run never leaves a slot taken.
(Prefect's global concurrency limits were the other candidate: their slots are leases that only
the server's repossessor service frees, after the lease runs out, and each local run has its own
ephemeral API server.) The locks hold across every process on one machine — CLI runs, served
flows, workers — and across machines only on a shared state directory whose filesystem honours
``flock`` (NFSv4).

A limit is the plan's: a run with ``per_datastore: 2`` uses slot files 0 and 1 of a datastore, so
it starts a move there only while fewer than two of ``its`` slots are taken, whoever took them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from overflyt.errors import OverflytError
from overflyt.record import now, state_dir

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
POLL_S = 0.25
REPORT_EVERY_S = 30.0


class SlotsUnavailable(OverflytError):
    """The wait for move slots ran out of time (nothing was started)."""


@dataclass(frozen=True)
class Need:
    """``count`` slots of ``resource`` (for example ``datastore vcenter.example/DC/ds1``) whose limit
    is ``limit``."""

    resource: str
    limit: int
    count: int


def needs(counts: Mapping[tuple[str, int], int]) -> list[Need]:
    """``{(resource, limit): count}`` as a sorted list of needs (a fixed order: no two runs wait
    on each other's half)."""
    return [Need(r, lim, c) for (r, lim), c in sorted(counts.items()) if c > 0]


@contextlib.contextmanager
def hold(
    wanted: list[Need],
    holder: Mapping[str, object],
    *,
    timeout_s: float,
    base: Path | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[float]:
    """Hold every slot of ``wanted`` for the block; yields the seconds spent waiting.

    ``holder`` (who: municipality, wave, site, …) is written into each slot taken, so a waiting run
    can say who has what it waits for. Waits at most ``timeout_s``; then raises SlotsUnavailable
    naming the full resources and their holders. ``on_wait`` gets a line when the wait starts and
    every 30 s after."""
    taken, waited = _acquire(wanted, holder, timeout_s=timeout_s, base=base, on_wait=on_wait)
    try:
        yield waited
    finally:
        for handle in taken:
            handle.close()


@contextlib.contextmanager
def hold_each(
    groups: Mapping[str, list[Need]],
    holder: Mapping[str, object],
    *,
    timeout_s: float,
    base: Path | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[tuple[float, Callable[[str], None]]]:
    """:func:`hold` for several moves at once: every slot of every group, all or none, as one wait;
    yields the seconds waited and ``release(group)``, which frees that group's slots before the
    block ends (a move whose transfer is over). What is still held is freed when the block ends."""
    counts: dict[tuple[str, int], int] = {}
    for group in groups.values():
        for need in group:
            counts[(need.resource, need.limit)] = counts.get((need.resource, need.limit), 0) + need.count
    wanted = needs(counts)
    taken, waited = _acquire(wanted, holder, timeout_s=timeout_s, base=base, on_wait=on_wait)
    held: dict[str, list[IO[str]]] = {name: [] for name in groups}
    position = 0
    for need in wanted:  # _try takes each need's handles in turn: deal them out to the groups
        handles = taken[position : position + need.count]
        position += need.count
        for name, group in groups.items():
            count = sum(n.count for n in group if (n.resource, n.limit) == (need.resource, need.limit))
            held[name] += handles[:count]
            handles = handles[count:]

    def release(name: str) -> None:
        for handle in held.pop(name, []):
            handle.close()

    try:
        yield waited, release
    finally:
        for name in list(held):
            release(name)


def _acquire(
    wanted: list[Need],
    holder: Mapping[str, object],
    *,
    timeout_s: float,
    base: Path | None,
    on_wait: Callable[[str], None] | None,
) -> tuple[list[IO[str]], float]:
    """Every slot of ``wanted`` (see :func:`hold`): the handles held and the seconds waited."""
    root = (base or state_dir()) / "slots"
    for need in wanted:
        if need.count > need.limit:
            raise SlotsUnavailable(f"{need.resource}: {need.count} moves at once exceed its limit of {need.limit}")
    started = time.monotonic()
    reported = 0.0
    while True:
        taken, full = _try(root, wanted, holder)
        if not full:
            return taken, time.monotonic() - started
        waited = time.monotonic() - started
        if waited >= timeout_s:
            raise SlotsUnavailable(
                f"waited {waited:.0f} s for move slots and gave up (nothing was started): {_describe(full)}"
            )
        if on_wait is not None and (reported == 0.0 or waited - reported >= REPORT_EVERY_S):
            on_wait(f"waiting for move slots: {_describe(full)}")
            reported = max(waited, 1e-9)
        time.sleep(POLL_S * (0.5 + random.random()))


def _try(
    root: Path, wanted: list[Need], holder: Mapping[str, object]
) -> tuple[list[IO[str]], list[tuple[Need, list[dict[str, object]]]]]:
    """Take every needed slot, or none: (the handles held, []) or ([], the resources that are full
    with who holds them)."""
    taken: list[IO[str]] = []
    full: list[tuple[Need, list[dict[str, object]]]] = []
    for need in wanted:
        directory = root / _SAFE.sub("_", need.resource)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        got: list[IO[str]] = []
        holders: list[dict[str, object]] = []
        for index in range(need.limit):
            if len(got) == need.count:
                break
            handle = open(directory / str(index), "a+", encoding="utf-8")  # noqa: SIM115 - held until released
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holders.append(_holder(handle))
                handle.close()
                continue
            got.append(handle)
        taken += got
        if len(got) < need.count:
            full.append((need, holders))
    if full:
        for held in taken:
            held.close()
        return [], full
    stamp = json.dumps({**holder, "pid": os.getpid(), "since": now().isoformat()}, default=str)
    for held in taken:
        held.seek(0)
        held.truncate()
        held.write(stamp)
        held.flush()
    return taken, []


def _holder(handle: IO[str]) -> dict[str, object]:
    handle.seek(0)
    try:
        data = json.loads(handle.read() or "{}")
    except json.JSONDecodeError:
        data = {}
    return data if isinstance(data, dict) else {}


def _describe(full: list[tuple[Need, list[dict[str, object]]]]) -> str:
    parts = []
    for need, holders in full:
        who = "; ".join(
            " ".join(f"{k} {h[k]}" for k in ("municipality", "wave", "site") if k in h) + f" (pid {h.get('pid', '?')})"
            for h in holders
        )
        parts.append(f"{need.resource} (limit {need.limit}, needs {need.count}) held by {who or 'another run'}")
    return "; ".join(parts)
