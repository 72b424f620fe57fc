"""What moves together, what it needs first, and what it costs: the planning model.

:func:`build_model` cuts an estate's VMs into *units* (VMs sharing a portgroup or an app group,
and units whose VMs depend on each other in a loop, merged), ranks them (what others depend on
first; shared services, then estate order, break ties) and costs each one: its disks across the
replication bandwidth and its VM moves in batches cut by :func:`overflyt.planning.batches.schedule`,
the rule the cutover runs (:func:`overflyt.planning.cost.move_cost`, the estimate the cutover also
checks a window with). Estates no plan can satisfy are refused here with
:class:`~overflyt.planning.options.PlanningImpossible`: VMs whose host or site is unknown, VMs in
several vCenters, a portgroup across sites, a site without exactly one gateway, a dependency cycle,
a unit too big for one window.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from overflyt.discovery.estate import Estate
from overflyt.plan.model import DeviceRole
from overflyt.planning.cost import move_cost
from overflyt.planning.options import PlanningImpossible, PlanningOptions

GATEWAY_ROLES = frozenset({DeviceRole.core, DeviceRole.distribution})


@dataclass
class Unit:
    """VMs that move in one wave (shared portgroup, app group, or a loop of dependencies)."""

    id: int
    vms: list[int]  # estate indices, in estate order
    sites: list[str] = field(default_factory=list)
    deps: set[int] = field(default_factory=set)
    shared: bool = False
    rank: int = 0
    disk_gb: int = 0
    batches: list[list[str]] = field(default_factory=list)
    transfer_minutes: float = 0.0
    minutes: float = 0.0
    subnets: dict[str, list[str]] = field(default_factory=dict)  # site -> its portgroups (subnets) in the unit


@dataclass
class PlanningModel:
    """An estate as the planner sees it: each VM's site and unit, the units, the storage map."""

    estate: Estate
    site_of: list[str]  # per VM
    shared_vm: list[bool]  # per VM
    units: list[Unit]
    unit_of: list[int]  # per VM
    storage: dict[str, str]  # source datastore -> target datastore
    vcenter: str | None  # the one vCenter the VMs run in (None without VMs)


def build_model(estate: Estate, options: PlanningOptions) -> PlanningModel:
    """The estate's units, ranked and costed; PlanningImpossible when no plan can hold it."""
    vms = estate.vms
    hosts = {h.name: h for h in estate.hosts}
    sites = {s.id for s in estate.sites}
    unknown = next((vm for vm in vms if vm.host not in hosts or hosts[vm.host].site not in sites), None)
    if unknown is not None:
        raise PlanningImpossible(
            f"VM {unknown.name}'s host or its site is not in the estate; validate the estate first"
        )
    site_of = [hosts[vm.host].site for vm in vms]
    vcenters = sorted({hosts[vm.host].vcenter for vm in vms})
    if len(vcenters) > 1:
        raise PlanningImpossible(
            f"the VMs run in {len(vcenters)} vCenters ({', '.join(vcenters)}); a plan moves VMs from one source "
            "vCenter: split the estate per vCenter"
        )
    if not estate.vcenters:
        raise PlanningImpossible("the estate names no vCenter; a plan needs its source vCenter")
    roles = options.shared_roles
    shared_vm = [
        (vm.role is not None and vm.role.lower() in roles) or any(t.lower() in roles for t in vm.tags) for vm in vms
    ]
    index = {vm.name: i for i, vm in enumerate(vms)}
    deps = [[index[d] for d in vm.depends_on if d in index and d != vm.name] for vm in vms]
    _refuse_portgroups_across_sites(estate, site_of)
    _refuse_gateways(estate)
    _refuse_cycles(estate, deps)

    parent = list(range(len(vms)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first: dict[tuple[str, str], int] = {}
    for i, vm in enumerate(vms):
        keys = [("portgroup", pg) for pg in vm.portgroups]
        if vm.app_group:
            keys.append(("app_group", vm.app_group))
        for key in keys:
            union(first.setdefault(key, i), i)
    # Units that depend on each other in a loop (through their groups) must share a wave: merge them.
    for component in _loops(len(vms), root, deps):
        for i in component[1:]:
            union(component[0], i)

    unit_ids: dict[int, int] = {}
    units: list[Unit] = []
    unit_of = [0] * len(vms)
    for i in range(len(vms)):
        r = root(i)
        if r not in unit_ids:
            unit_ids[r] = len(units)
            units.append(Unit(id=len(units), vms=[]))
        unit = units[unit_ids[r]]
        unit.vms.append(i)
        unit_of[i] = unit.id
    used_stores = list(dict.fromkeys(vm.datastore for vm in vms))
    targets = options.target_datastores
    storage = {ds: targets[k % len(targets)] for k, ds in enumerate(used_stores)}
    model = PlanningModel(estate, site_of, shared_vm, units, unit_of, storage, vcenters[0] if vcenters else None)
    for unit in units:
        unit.sites = list(dict.fromkeys(site_of[i] for i in unit.vms))
        for i in unit.vms:
            pgs = unit.subnets.setdefault(site_of[i], [])
            pgs.extend(pg for pg in vms[i].portgroups if pg not in pgs)
        unit.deps = {unit_of[d] for i in unit.vms for d in deps[i]} - {unit.id}
        unit.shared = any(shared_vm[i] for i in unit.vms)
        _cost(model, unit, options)
    _rank(units)
    capacity = options.window_hours * 60
    for unit in sorted(units, key=lambda u: u.rank):
        if unit.minutes + options.site_minutes > capacity:
            raise PlanningImpossible(_too_big(model, unit, options))
    return model


def _refuse_portgroups_across_sites(estate: Estate, site_of: Sequence[str]) -> None:
    homes: dict[str, dict[str, str]] = {}
    for i, vm in enumerate(estate.vms):
        for pg in vm.portgroups:
            homes.setdefault(pg, {}).setdefault(site_of[i], vm.name)
    for pg, sites in homes.items():
        if len(sites) > 1:
            where = "; ".join(f"{site}: {vm}" for site, vm in sites.items())
            raise PlanningImpossible(
                f"portgroup {pg} has VMs at {len(sites)} sites ({where}); a subnet moves whole with one site: "
                "give each site its own portgroup in the estate"
            )


def _refuse_gateways(estate: Estate) -> None:
    gateways: dict[str, list[str]] = {}
    with_devices: dict[str, list[str]] = {}
    for d in estate.devices:
        with_devices.setdefault(d.site, []).append(d.hostname)
        if d.role in GATEWAY_ROLES:
            gateways.setdefault(d.site, []).append(d.hostname)
    for site in estate.sites:
        found = gateways.get(site.id, [])
        if site.id in with_devices and len(found) != 1:
            what = "no core or distribution router" if not found else f"{len(found)} core/distribution routers"
            names = ", ".join(found or with_devices[site.id])
            raise PlanningImpossible(
                f"site {site.id} has {what} ({names}); a plan needs exactly one gateway per site with devices"
            )


def _refuse_cycles(estate: Estate, deps: Sequence[Sequence[int]]) -> None:
    """Depth-first, in estate order: the first loop of depends_on found is named, VM by VM."""
    state = [0] * len(deps)  # 0 new, 1 on the path, 2 done
    for start in range(len(deps)):
        if state[start]:
            continue
        state[start] = 1
        path = [start]
        stack = [iter(deps[start])]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                state[path.pop()] = 2
            elif state[nxt] == 1:
                cycle = [estate.vms[i].name for i in path[path.index(nxt) :]]
                raise PlanningImpossible(
                    "dependency cycle: " + " -> ".join([*cycle, cycle[0]]) + "; break it in the estate's depends_on"
                )
            elif state[nxt] == 0:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(deps[nxt]))


def _loops(count: int, root: Callable[[int], int], deps: Sequence[Sequence[int]]) -> list[list[int]]:
    """Groups of units (named by their root VM) that depend on each other in a loop (Tarjan, iterative)."""
    graph: dict[int, list[int]] = {}
    for i in range(count):
        r = root(i)
        edges = graph.setdefault(r, [])
        for d in deps[i]:
            rd = root(d)
            if rd != r:
                edges.append(rd)
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    loops: list[list[int]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work: list[tuple[int, int]] = [(start, 0)]
        while work:
            node, pos = work.pop()
            if pos == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            edges = graph[node]
            for k in range(pos, len(edges)):
                nxt = edges[k]
                if nxt not in index:
                    work.append((node, k + 1))
                    work.append((nxt, 0))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        loops.append(sorted(component))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    return loops


def _rank(units: list[Unit]) -> None:
    """Topological order (what others depend on first); shared services, then estate order, break ties."""
    dependents: dict[int, list[int]] = {u.id: [] for u in units}
    waiting = {u.id: len(u.deps) for u in units}
    for u in units:
        for d in u.deps:
            dependents[d].append(u.id)
    ready = [(not u.shared, u.vms[0], u.id) for u in units if not u.deps]
    heapq.heapify(ready)
    rank = 0
    while ready:
        _, _, uid = heapq.heappop(ready)
        units[uid].rank = rank
        rank += 1
        for nxt in dependents[uid]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, (not units[nxt].shared, units[nxt].vms[0], nxt))
    if rank != len(units):  # pragma: no cover - loops were merged above
        raise PlanningImpossible("units depend on each other in a loop")


def _cost(model: PlanningModel, unit: Unit, options: PlanningOptions) -> None:
    """A unit's disks across the bandwidth and its VM moves, batched by the cutover's own rule."""
    members = [model.estate.vms[i] for i in unit.vms]
    cost = move_cost(
        members, model.storage, options.concurrency, bandwidth_mbps=options.bandwidth_mbps,
        vm_minutes=options.vm_minutes,
    )  # fmt: skip
    unit.disk_gb, unit.batches = cost.disk_gb, cost.batches
    unit.transfer_minutes, unit.minutes = cost.transfer_minutes, cost.minutes


def name_list(items: Sequence[str], shown: int) -> str:
    """The first ``shown`` items, and how many more."""
    head = ", ".join(items[:shown])
    return head + (f" and {len(items) - shown} more" if len(items) > shown else "")


def _describe(model: PlanningModel, unit: Unit) -> str:
    members = [model.estate.vms[i] for i in unit.vms]
    groups = sorted({vm.app_group for vm in members if vm.app_group})
    portgroups = sorted({pg for vm in members for pg in vm.portgroups})
    what = []
    if groups:
        what.append(f"app group{'s' if len(groups) > 1 else ''} {name_list(groups, 3)}")
    what.append(f"portgroup{'s' if len(portgroups) > 1 else ''} {name_list(portgroups, 3)}")
    names = [vm.name for vm in members]
    return f"{' with '.join(what)} ({len(names)} VM{'s' if len(names) != 1 else ''}: {name_list(names, 5)})"


def _too_big(model: PlanningModel, unit: Unit, options: PlanningOptions) -> str:
    need = unit.minutes + options.site_minutes
    return (
        f"{_describe(model, unit)} must move in one wave but need {need / 60:.1f} h "
        f"({unit.disk_gb:,} GB at {options.bandwidth_mbps:,} Mbps: {unit.transfer_minutes / 60:.1f} h; "
        f"{len(unit.batches)} move batches x {options.vm_minutes:g} min; a site cutover {options.site_minutes:g} min) "
        f"and a window is {options.window_hours:g} h; raise --bandwidth-mbps or --window-hours, or split the group"
    )
