"""The one VM scheduling rule: which VMs move together, in which order.

Both the cutover (:mod:`overflyt.steps.vms`, a site's real moves) and the wave planner
(:mod:`overflyt.planning.waves`, its window estimates) cut VMs into batches with
:func:`schedule`, so an estimate and a real run agree. Pure code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    index = {vm.name: i for i, vm in enumerate(vms)}
    by_name = {vm.name: vm for vm in vms}
    deps = {vm.name: {d for d in vm.depends_on if d in index and d != vm.name} for vm in vms}
    # What each VM loads: its source host, and its datastores at both ends of the move.
    loads = {name: (vm.host, datastores_loaded(vm.datastore, storage)) for name, vm in by_name.items()}
    dependents: dict[str, set[str]] = {name: set() for name in index}
    for name, needs in deps.items():
        for d in needs:
            dependents[d].add(name)
    # Most sets have no dependency inside them: every chain is one VM long.
    height = heights(dependents, deps) if any(deps.values()) else dict.fromkeys(index, 1)
    size = min(limits.global_, limits.per_site)
    done: set[str] = set()
    remaining = sorted(index, key=lambda n: (-height[n], index[n]))
    out: list[list[str]] = []
    while remaining:
        batch: list[str] = []
        per_host: dict[str, int] = {}
        per_ds: dict[str, int] = {}
        for name in remaining:
            if len(batch) == size:
                break
            if not deps[name] <= done:
                continue
            host, stores = loads[name]
            if per_host.get(host, 0) < limits.per_host and all(
                per_ds.get(ds, 0) < limits.per_datastore for ds in stores
            ):
                batch.append(name)
                per_host[host] = per_host.get(host, 0) + 1
                for ds in stores:
                    per_ds[ds] = per_ds.get(ds, 0) + 1
        if not batch:  # pragma: no cover - heights() refuses cycles, and a limit is at least 1
            raise UsageError(f"cannot schedule {', '.join(remaining)}")
        out.append(batch)
        done.update(batch)
        remaining = [n for n in remaining if n not in done]
    return out


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
