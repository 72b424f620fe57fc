"""The pool: a site's VM moves start as soon as a slot frees, not batch after batch.

:class:`Pool` is the bookkeeping of one site's moves under the plan's concurrency limits: which
VMs may start now (:meth:`Pool.take`), when a move stops loading its resources
(:meth:`Pool.release`: its transfer is over) and when it counts as moved for the VMs that
depend on it (:meth:`Pool.finish`: moved and verified). Same rules as
:func:`overflyt.planning.batches.schedule` — at most ``concurrency.global`` and ``per_site`` moves
at once, ``per_host`` of one source host, ``per_datastore`` on one datastore (source or, through
the storage map, target), a VM only after every VM of the set it ``depends_on`` has moved, the
longest chain of dependents first, then the given order — but counted over the moves under way
rather than within a batch, so one long move holds back nothing but its own slots. Pure code;
the cutover (:func:`overflyt.steps.vms.migrate_site_vms`) drives it from its playbooks' events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from overflyt.plan.model import Concurrency
from overflyt.planning.batches import Schedulable, datastores_loaded, heights


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
        self._not_moved: set[str] = set()

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
        (self._moved if moved else self._not_moved).add(name)

    def waiting_on_failed(self) -> dict[str, list[str]]:
        """Pending VMs that can never start because something they depend on did not move."""
        return {
            name: sorted(self._deps[name] & self._not_moved)
            for name in self._pending
            if self._deps[name] & self._not_moved
        }


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
