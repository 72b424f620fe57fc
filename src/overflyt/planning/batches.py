"""The one VM scheduling rule: which VMs may move at once, in which order.

:class:`Pool` is the rule: at most ``concurrency.global`` and ``per_site`` moves at once,
``per_host`` of one source host, ``per_datastore`` on one datastore (source or, through the
storage map, target), a VM only after every VM of the set it ``depends_on`` has moved, the longest
chain of dependents first, then the given order — counted over the moves under way. The cutover's
migration and the rollback run it as a pool (:func:`overflyt.steps.vm_batches.run_pool`: a move's
slots free when its transfer is over, so one long move holds back nothing but its own slots; the
rollback over :func:`returns`, the dependencies reversed); :func:`schedule` runs it batch after
batch (each batch ends before the next starts), as the wave planner's estimates
(:mod:`overflyt.planning.cost`) do; :func:`makespan` simulates the pool with each move's duration.
Pure code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from overflyt.errors import UsageError
from overflyt.plan.model import Concurrency


class Schedulable(Protocol):
    """What the rule needs of a VM (a plan's or an estate's)."""

    @property
    def name(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def datastore(self) -> str: ...
    @property
    def depends_on(self) -> Sequence[str]: ...


def schedule(vms: Sequence[Schedulable], storage: Mapping[str, str], limits: Concurrency) -> list[list[str]]:
    """``vms`` cut into batches that run one after the other.

    In one batch: at most ``limits.global_`` and ``per_site`` VMs, at most ``per_host`` of one
    source host, at most ``per_datastore`` on one datastore (source or, through ``storage``, the
    target: a move loads both). A VM is in a later batch than every VM of the set it
    ``depends_on`` (dependencies outside the set are other sites' or waves' business). Within
    those rules each batch is filled greedily: VMs with the longest chain of dependents first,
    then the given order. Deterministic; raises UsageError naming a dependency cycle.
    """
    pool = Pool(vms, storage, limits)
    out: list[list[str]] = []
    while pool.pending:
        batch = pool.take()
        if not batch:  # pragma: no cover - heights() refuses cycles, and a limit is at least 1
            raise UsageError(f"cannot schedule {', '.join(pool.pending)}")
        out.append(batch)
        for name in batch:  # a batch ends before the next starts
            pool.finish(name, moved=True)
    return out


@dataclass(frozen=True)
class Return:
    """A VM going back in a rollback: from where it was recorded (``host``, ``datastore``: the
    loads its move puts on the source, the target datastore through the storage map), after every
    VM of the set that depends on it (``depends_on``: the plan's dependencies reversed)."""

    name: str
    host: str
    datastore: str
    depends_on: tuple[str, ...]


def returns(vms: Sequence[Schedulable]) -> list[Return]:
    """``vms`` (their recorded host and datastore) as they go back: each after the VMs of the set
    that depend on it, so a dependent is back before what it depends on leaves the target. The
    order is kept (the pool's tie-break)."""
    names = {vm.name for vm in vms}
    return [
        Return(
            name=vm.name,
            host=vm.host,
            datastore=vm.datastore,
            depends_on=tuple(o.name for o in vms if o.name != vm.name and vm.name in o.depends_on and o.name in names),
        )
        for vm in vms
    ]


def datastores_loaded(datastore: str, storage: Mapping[str, str]) -> tuple[str, ...]:
    """The datastores moving a VM from ``datastore`` loads: it, and its target through ``storage``."""
    target = storage.get(datastore, datastore)
    return (datastore,) if target == datastore else (datastore, target)


def heights(dependents: Mapping[str, set[str]], deps: Mapping[str, set[str]]) -> dict[str, int]:
    """Length of the longest chain of dependents below each VM; UsageError naming a cycle.

    Depth-first from each VM in ``deps``' order, dependents in name order; the first cycle met is
    named. Iterative, so a chain of any length is fine (no recursion limit).
    """
    height: dict[str, int] = {}
    for start in deps:
        if start in height:
            continue
        path = [start]  # the VMs being visited, each a dependent of the one before
        on_path = {start}
        todo = [iter(sorted(dependents[start]))]
        while todo:
            nxt = next(todo[-1], None)
            if nxt is None:
                todo.pop()
                name = path.pop()
                on_path.discard(name)
                height[name] = 1 + max((height[d] for d in dependents[name]), default=0)
            elif nxt in on_path:
                cycle = [*path[path.index(nxt) :], nxt]
                raise UsageError(f"VMs depend on each other in a cycle: {' -> '.join(reversed(cycle))}")
            elif nxt not in height:
                path.append(nxt)
                on_path.add(nxt)
                todo.append(iter(sorted(dependents[nxt])))
    return height


# -- the pool: the same rule over the moves under way --------------------------------------------


class Pool:
    """One site's moves: each VM pending, then holding slots (moving), then released (its
    transfer over, its check still running), then finished (moved, or not)."""

    def __init__(self, vms: Sequence[Schedulable], storage: Mapping[str, str], limits: Concurrency) -> None:
        index = {vm.name: i for i, vm in enumerate(vms)}
        self._deps = {vm.name: {d for d in vm.depends_on if d in index and d != vm.name} for vm in vms}
        self._loads = {vm.name: (vm.host, datastores_loaded(vm.datastore, storage)) for vm in vms}
        dependents: dict[str, set[str]] = {name: set() for name in index}
        for name, needs in self._deps.items():
            for d in needs:
                dependents[d].add(name)
        height = heights(dependents, self._deps) if any(self._deps.values()) else dict.fromkeys(index, 1)
        self._limits = limits
        self._size = min(limits.global_, limits.per_site)
        self._pending = sorted(index, key=lambda n: (-height[n], index[n]))
        self._holding: set[str] = set()  # slots taken: started, transfer not over
        self._running: set[str] = set()  # started, not finished
        self._moved: set[str] = set()

    @property
    def pending(self) -> list[str]:
        """The VMs not started, in the order they are taken."""
        return list(self._pending)

    @property
    def running(self) -> set[str]:
        return set(self._running)

    @property
    def moved(self) -> set[str]:
        return set(self._moved)

    def take(self) -> list[str]:
        """The pending VMs that start now, in priority order, marked as holding their slots: each
        one's dependencies in the set have all moved, and it fits the limits with every move that
        still holds slots. Greedy: a VM that does not fit leaves room for a later one that does."""
        per_host: dict[str, int] = {}
        per_ds: dict[str, int] = {}
        for name in self._holding:
            host, stores = self._loads[name]
            per_host[host] = per_host.get(host, 0) + 1
            for ds in stores:
                per_ds[ds] = per_ds.get(ds, 0) + 1
        room = self._size - len(self._holding)
        taken: list[str] = []
        for name in self._pending:
            if len(taken) >= room:
                break
            if not self._deps[name] <= self._moved:
                continue
            host, stores = self._loads[name]
            if per_host.get(host, 0) < self._limits.per_host and all(
                per_ds.get(ds, 0) < self._limits.per_datastore for ds in stores
            ):
                taken.append(name)
                per_host[host] = per_host.get(host, 0) + 1
                for ds in stores:
                    per_ds[ds] = per_ds.get(ds, 0) + 1
        self._pending = [n for n in self._pending if n not in taken]
        self._holding.update(taken)
        self._running.update(taken)
        return taken

    def release(self, name: str) -> bool:
        """``name``'s transfer is over: its slots are free for the next move. True when it held any."""
        if name not in self._holding:
            return False
        self._holding.discard(name)
        return True

    def finish(self, name: str, *, moved: bool) -> None:
        """``name``'s move has ended: moved (and verified), so its dependents may start, or not."""
        self._holding.discard(name)
        self._running.discard(name)
        if moved:
            self._moved.add(name)


def makespan(
    vms: Sequence[Schedulable], storage: Mapping[str, str], limits: Concurrency, seconds: Mapping[str, float]
) -> float:
    """How long the pool takes to move ``vms`` when each takes ``seconds[name]`` (its transfer; its
    check counted as nothing): an event simulation of :class:`Pool`, the schedule's length."""
    pool = Pool(vms, storage, limits)
    now = 0.0
    ends: dict[str, float] = {}
    while True:
        for name in pool.take():
            ends[name] = now + seconds[name]
        if not ends:
            if pool.pending:  # pragma: no cover - heights() refuses cycles, and a limit is at least 1
                raise ValueError(f"cannot schedule {', '.join(pool.pending)}")
            return now
        now = min(ends.values())
        for name in [n for n, end in ends.items() if end <= now]:
            del ends[name]
            pool.finish(name, moved=True)
