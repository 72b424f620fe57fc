"""Proposes waves from an estate: the first draft of a plan, for an engineer to edit.

``plan_waves(estate, options)`` is pure and deterministic (same estate and options, same plan) and
returns a :class:`WavePlan`: a :class:`~overflyt.plan.model.Plan` that ``overflyt plan validate``
accepts, and the time estimate of each wave. ``render_plan`` writes it as a plan file. An estate
that cannot be planned raises :class:`PlanningImpossible` (exit 2) naming the VMs and the reason.

What moves together. VMs that share a portgroup (a subnet moves whole) or an app group form one
*unit*; units whose VMs depend on each other in a loop are merged into one too. A unit always
moves in one wave. A site's cutover moves its VMs with it; a unit may move *ahead* of its site
(listed under an earlier wave's ``vms``) when a dependency or the window's size needs it, never
after it.

In which order. A unit never moves after a unit it depends on. Shared services (VMs whose role
or one of whose tags is ad, dns, dhcp or ntp) are placed first, and a unit that depends on one
moves in a later wave, unless it lives at the same site (a site's VMs move with its cutover).
Sites are taken in that order: first those holding shared services, then those whose VMs others
depend on, then the rest (sites without VMs fill the room left in the waves).

How long a wave takes. Sites are cut over one after another: each costs ``site_minutes``. A
unit's VMs move in batches formed by the wave runner's rules (``global`` and ``per_site`` VMs at
once, ``per_host`` per source host, ``per_datastore`` per source or target datastore, a VM after
what it depends on: :func:`overflyt.steps.vms.batches`); each batch costs ``vm_minutes``, and
the disks cross the declared replication bandwidth (1 GB = 8,000 Mbit). Units are counted one
after another, never sharing a batch, so the estimate errs on the long side. A wave holds what
fits its window; each wave keeps room for at least one site cutover.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from overflyt.discovery.estate import Estate, VirtualMachine
from overflyt.errors import EXIT_BAD_INPUT, OverflytError
from overflyt.plan.model import Concurrency, DeviceRole, Plan

log = logging.getLogger(__name__)

SHARED_ROLES = frozenset({"ad", "dns", "dhcp", "ntp"})
TIMEZONE = "Europe/Copenhagen"
PLACEHOLDER = "CHANGE-ME"
# Proposed links to the shared datacentre come from shared address space (RFC 6598), skipping
# anything the estate already uses.
DC_LINK_POOL = IPv4Network("100.64.0.0/10")
CORE_DC_LINK_MBPS = 10000
GATEWAY_ROLES = frozenset({DeviceRole.core, DeviceRole.distribution})


class PlanningImpossible(OverflytError):
    """The estate cannot be cut into waves as asked; the message names the VMs and why (exit 2)."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"cannot plan waves: {reason}")


@dataclass(frozen=True)
class PlanningOptions:
    """How waves are sized and scheduled. ``first_window`` is local time in ``timezone`` when naive."""

    first_window: datetime
    window_hours: float = 12.0
    waves_per_week: int = 1
    bandwidth_mbps: int = 1000
    site_minutes: float = 15.0
    vm_minutes: float = 5.0
    concurrency: Concurrency = field(default_factory=Concurrency)
    target_datastores: tuple[str, ...] = (PLACEHOLDER,)
    shared_roles: frozenset[str] = SHARED_ROLES
    timezone: str = TIMEZONE


@dataclass(frozen=True)
class WaveEstimate:
    """What a proposed wave moves and how long the planner thinks it takes."""

    number: int
    start: datetime
    end: datetime
    sites: tuple[str, ...]
    vms: tuple[str, ...]  # every VM it moves, its sites' and those ahead of their site
    ahead: tuple[str, ...]  # VMs moved ahead of their own site's wave
    shared: tuple[str, ...]  # shared-service VMs among them
    disk_gb: int
    batches: tuple[tuple[str, ...], ...]  # the VM moves as estimated, batch by batch
    transfer_minutes: float
    minutes: float
    window_minutes: float


@dataclass(frozen=True)
class WavePlan:
    plan: Plan
    estimates: tuple[WaveEstimate, ...]
    options: PlanningOptions


# -- the planning model ----------------------------------------------------------------------------


@dataclass
class _Unit:
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


@dataclass
class _Model:
    estate: Estate
    site_of: list[str]  # per VM
    shared_vm: list[bool]  # per VM
    units: list[_Unit]
    unit_of: list[int]  # per VM
    storage: dict[str, str]  # source datastore -> target datastore
    vcenter: str | None  # the one vCenter the VMs run in (None without VMs)


def plan_waves(estate: Estate, options: PlanningOptions) -> WavePlan:
    """Propose waves for the estate (see the module's documentation for the rules).

    The estate must have passed :func:`overflyt.discovery.estate.validate_estate` (``load_estate`` does that).
    """
    _check_options(options)
    model = _model(estate, options)
    capacity = options.window_hours * 60
    placed = _Placement(model, options, capacity)
    placed.run()
    windows = _windows(options, placed.count)
    plan = _plan(model, placed, windows, options)
    estimates = _estimates(model, placed, windows, capacity)
    log.debug("planned %d waves for %s", len(estimates), estate.municipality.name)
    return WavePlan(plan, estimates, options)


def default_first_window(now: datetime) -> datetime:
    """The next Saturday 18:00 (local, naive) strictly after ``now`` (aware, or naive local time)."""
    local = now.astimezone(ZoneInfo(TIMEZONE)).replace(tzinfo=None) if now.tzinfo else now
    candidate = local.replace(hour=18, minute=0, second=0, microsecond=0) + timedelta(days=(5 - local.weekday()) % 7)
    return candidate if candidate > local else candidate + timedelta(days=7)


def _check_options(options: PlanningOptions) -> None:
    bad = PlanningImpossible
    if not 0 < options.window_hours <= 168:
        raise bad(f"a window must last more than 0 and at most 168 hours (got {options.window_hours:g})")
    if not 1 <= options.waves_per_week <= 7:
        raise bad(f"waves per week must be 1 to 7 (got {options.waves_per_week})")
    if options.bandwidth_mbps <= 0:
        raise bad(f"the replication bandwidth must be positive (got {options.bandwidth_mbps} Mbps)")
    if options.site_minutes < 0 or options.vm_minutes < 0:
        raise bad("minutes per site and per batch cannot be negative")
    if not options.target_datastores:
        raise bad("give at least one target datastore")
    if options.site_minutes > options.window_hours * 60:
        raise bad(
            f"a window of {options.window_hours:g} h is shorter than one site cutover "
            f"({options.site_minutes:g} min); raise --window-hours"
        )
    gap = _min_gap_days(options.waves_per_week)
    if options.window_hours > gap * 24:
        raise bad(
            f"windows of {options.window_hours:g} h overlap at {options.waves_per_week} waves a week "
            f"({gap} day{'s' if gap != 1 else ''} apart); lower --window-hours or --waves-per-week"
        )


def _offsets(per_week: int) -> list[int]:
    """Day offsets in a week of the waves' windows: spread evenly, the first on the first window's day."""
    return [i * 7 // per_week for i in range(per_week)]


def _min_gap_days(per_week: int) -> int:
    days = [*_offsets(per_week), 7]
    return min(b - a for a, b in itertools.pairwise(days))


def _model(estate: Estate, options: PlanningOptions) -> _Model:
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
    units: list[_Unit] = []
    unit_of = [0] * len(vms)
    for i in range(len(vms)):
        r = root(i)
        if r not in unit_ids:
            unit_ids[r] = len(units)
            units.append(_Unit(id=len(units), vms=[]))
        unit = units[unit_ids[r]]
        unit.vms.append(i)
        unit_of[i] = unit.id
    used_stores = list(dict.fromkeys(vm.datastore for vm in vms))
    targets = options.target_datastores
    storage = {ds: targets[k % len(targets)] for k, ds in enumerate(used_stores)}
    model = _Model(estate, site_of, shared_vm, units, unit_of, storage, vcenters[0] if vcenters else None)
    for unit in units:
        unit.sites = list(dict.fromkeys(site_of[i] for i in unit.vms))
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


def _rank(units: list[_Unit]) -> None:
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


def _cost(model: _Model, unit: _Unit, options: PlanningOptions) -> None:
    members = [model.estate.vms[i] for i in unit.vms]
    unit.disk_gb = sum(sum(vm.disks_gb) for vm in members)
    unit.batches = _batches(members, model.storage, options.concurrency)
    unit.transfer_minutes = unit.disk_gb * 8000 / options.bandwidth_mbps / 60
    unit.minutes = unit.transfer_minutes + len(unit.batches) * options.vm_minutes


def _batches(members: Sequence[VirtualMachine], storage: dict[str, str], limits: Concurrency) -> list[list[str]]:
    """The VMs cut into batches by the wave runner's rules (see :func:`overflyt.steps.vms.batches`)."""
    index = {vm.name: i for i, vm in enumerate(members)}
    deps = [[index[d] for d in vm.depends_on if d in index and d != vm.name] for vm in members]
    dependents: list[list[int]] = [[] for _ in members]
    for i, needs in enumerate(deps):
        for d in needs:
            dependents[d].append(i)
    # Longest chain of dependents below each VM, from a topological order (no loops here).
    waiting = [len(d) for d in deps]
    order = [i for i, w in enumerate(waiting) if w == 0]
    for i in order:
        for j in dependents[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                order.append(j)
    height = [0] * len(members)
    for i in reversed(order):
        height[i] = 1 + max((height[j] for j in dependents[i]), default=0)
    size = min(limits.global_, limits.per_site)
    remaining = sorted(range(len(members)), key=lambda i: (-height[i], i))
    done = [False] * len(members)
    out: list[list[str]] = []
    while remaining:
        batch: list[int] = []
        per_host: dict[str, int] = {}
        per_store: dict[str, int] = {}
        for i in remaining:
            if len(batch) == size:
                break
            vm = members[i]
            stores = {vm.datastore, storage.get(vm.datastore, vm.datastore)}
            if (
                all(done[d] for d in deps[i])
                and per_host.get(vm.host, 0) < limits.per_host
                and all(per_store.get(s, 0) < limits.per_datastore for s in stores)
            ):
                batch.append(i)
                per_host[vm.host] = per_host.get(vm.host, 0) + 1
                for s in stores:
                    per_store[s] = per_store.get(s, 0) + 1
        for i in batch:
            done[i] = True
        out.append([members[i].name for i in batch])
        remaining = [i for i in remaining if not done[i]]
    return out


def _names(items: Sequence[str], shown: int) -> str:
    head = ", ".join(items[:shown])
    return head + (f" and {len(items) - shown} more" if len(items) > shown else "")


def _describe(model: _Model, unit: _Unit) -> str:
    members = [model.estate.vms[i] for i in unit.vms]
    groups = sorted({vm.app_group for vm in members if vm.app_group})
    portgroups = sorted({pg for vm in members for pg in vm.portgroups})
    what = []
    if groups:
        what.append(f"app group{'s' if len(groups) > 1 else ''} {_names(groups, 3)}")
    what.append(f"portgroup{'s' if len(portgroups) > 1 else ''} {_names(portgroups, 3)}")
    names = [vm.name for vm in members]
    return f"{' with '.join(what)} ({len(names)} VM{'s' if len(names) != 1 else ''}: {_names(names, 5)})"


def _too_big(model: _Model, unit: _Unit, options: PlanningOptions) -> str:
    need = unit.minutes + options.site_minutes
    return (
        f"{_describe(model, unit)} must move in one wave but need {need / 60:.1f} h "
        f"({unit.disk_gb:,} GB at {options.bandwidth_mbps:,} Mbps: {unit.transfer_minutes / 60:.1f} h; "
        f"{len(unit.batches)} move batches x {options.vm_minutes:g} min; a site cutover {options.site_minutes:g} min) "
        f"and a window is {options.window_hours:g} h; raise --bandwidth-mbps or --window-hours, or split the group"
    )


# -- placing units and sites into waves ------------------------------------------------------------


class _Placement:
    """First fit, site by site: a site's pending VMs (and what they need that has not moved yet) go
    together into the earliest wave they may use that has room; a site too big for one window has
    its units placed one by one (moving ahead of it) and its cutover after the last of them."""

    def __init__(self, model: _Model, options: PlanningOptions, capacity: float) -> None:
        self.model = model
        self.options = options
        self.capacity = capacity
        self.used: list[float] = []
        self.sites: list[list[str]] = []
        self.unit_wave: dict[int, int] = {}
        self.site_wave: dict[str, int] = {}
        units_of_site: dict[str, list[int]] = {s.id: [] for s in model.estate.sites}
        for unit in sorted(model.units, key=lambda u: u.rank):
            for site in unit.sites:
                units_of_site[site].append(unit.id)
        self.units_of_site = units_of_site
        self.site_order = self._order()
        self.position = {site: k for k, site in enumerate(self.site_order)}

    @property
    def count(self) -> int:
        return len(self.used)

    def _order(self) -> list[str]:
        units = self.model.units

        def key(pair: tuple[int, str]) -> tuple[int, int, int]:
            position, site = pair
            mine = self.units_of_site[site]
            if not mine:
                return (2, 0, position)
            shared = any(units[u].shared for u in mine)
            return (0 if shared else 1, min(units[u].rank for u in mine), position)

        return [site for _, site in sorted(enumerate(s.id for s in self.model.estate.sites), key=key)]

    def strict(self, unit: int, dep: int) -> bool:
        """Whether ``unit`` must move in a later wave than ``dep``: it needs a shared service from elsewhere."""
        u, d = self.model.units[unit], self.model.units[dep]
        return d.shared and not u.shared and not set(u.sites) & set(d.sites)

    def run(self) -> None:
        for site in self.site_order:
            self._place_site(site)
        self._give_every_wave_a_site()

    def _closure(self, start: Iterable[int]) -> list[int]:
        units = self.model.units
        seen: set[int] = set()
        todo = [u for u in start if u not in self.unit_wave]
        while todo:
            u = todo.pop()
            if u in seen:
                continue
            seen.add(u)
            todo.extend(d for d in units[u].deps if d not in self.unit_wave and d not in seen)
        return sorted(seen, key=lambda u: units[u].rank)

    def _lower_bound(self, bundle: Sequence[int], site: str | None) -> int:
        units = self.model.units
        bound = 0
        for u in bundle:
            for d in units[u].deps:
                if d in self.unit_wave:
                    bound = max(bound, self.unit_wave[d] + (1 if self.strict(u, d) else 0))
        if site is not None:
            for u in self.units_of_site[site]:
                if u in self.unit_wave:
                    bound = max(bound, self.unit_wave[u])
        return bound

    def _fits(self, wave: int, need: float, with_site: bool) -> bool:
        reserve = 0.0 if with_site or self.sites[wave] else self.options.site_minutes
        return self.used[wave] + need + reserve <= self.capacity + 1e-9

    def _first_fit(self, bound: int, need: float, with_site: bool) -> int:
        for wave in range(bound, len(self.used)):
            if self._fits(wave, need, with_site):
                return wave
        self.used.append(0.0)  # a bound is at most one past the last wave
        self.sites.append([])
        return len(self.used) - 1

    def _place_site(self, site: str) -> None:
        units = self.model.units
        bundle = self._closure(self.units_of_site[site])
        cost = sum(units[u].minutes for u in bundle) + self.options.site_minutes
        inner = set(bundle)
        strict_inside = any(self.strict(u, d) for u in bundle for d in units[u].deps if d in inner)
        if cost <= self.capacity and not strict_inside:
            wave = self._first_fit(self._lower_bound(bundle, site), cost, with_site=True)
            for u in bundle:
                self.unit_wave[u] = wave
            self.used[wave] += cost
        else:
            for u in bundle:
                wave = self._first_fit(self._lower_bound([u], None), units[u].minutes, with_site=False)
                self.unit_wave[u] = wave
                self.used[wave] += units[u].minutes
            wave = self._first_fit(self._lower_bound([], site), self.options.site_minutes, with_site=True)
            self.used[wave] += self.options.site_minutes
        self.site_wave[site] = wave
        self.sites[wave].append(site)

    def _give_every_wave_a_site(self) -> None:
        """A wave cuts over at least one site. A wave that only moves VMs ahead of their site gets a
        site from a wave that has several: one without VMs of its own first, from the latest wave."""
        for wave, sites in enumerate(self.sites):
            if sites:
                continue
            candidates = [
                (not self.units_of_site[s], w, k, s)
                for w, others in enumerate(self.sites)
                if len(others) > 1
                for k, s in enumerate(others)
                if all(self.unit_wave[u] <= wave for u in self.units_of_site[s])
            ]
            if not candidates:
                stuck = sorted({u for u, w in self.unit_wave.items() if w == wave}, key=lambda u: u)
                names = [self.model.estate.vms[i].name for u in stuck for i in self.model.units[u].vms]
                raise PlanningImpossible(
                    f"wave {wave + 1} would move only VMs ahead of their site ({_names(names, 5)}) and no other "
                    "site is left to cut over in it; raise --window-hours or --bandwidth-mbps"
                )
            _, source, _, site = max(candidates)
            self.sites[source].remove(site)
            self.used[source] -= self.options.site_minutes
            self.sites[wave].append(site)
            self.used[wave] += self.options.site_minutes
            self.site_wave[site] = wave


# -- from placement to plan ------------------------------------------------------------------------


def _windows(options: PlanningOptions, count: int) -> list[tuple[datetime, datetime]]:
    """Local (naive) start and end of each wave's window; the end is `window_hours` of real time later."""
    zone = ZoneInfo(options.timezone)
    first = options.first_window
    if first.tzinfo is not None:
        first = first.astimezone(zone).replace(tzinfo=None)
    offsets = _offsets(options.waves_per_week)
    out: list[tuple[datetime, datetime]] = []
    for k in range(count):
        week, slot = divmod(k, options.waves_per_week)
        start = first + timedelta(days=week * 7 + offsets[slot])
        end = (start.replace(tzinfo=zone).astimezone(UTC) + timedelta(hours=options.window_hours)).astimezone(zone)
        out.append((start, end.replace(tzinfo=None)))
    for (_, previous_end), (start, _) in itertools.pairwise(out):
        if start < previous_end:
            raise PlanningImpossible(
                f"windows of {options.window_hours:g} h overlap at {options.waves_per_week} waves a week "
                f"(one starts {start:%Y-%m-%d %H:%M}, the one before ends {previous_end:%Y-%m-%d %H:%M}); "
                "lower --window-hours or --waves-per-week"
            )
    return out


def _slug(text: str) -> str:
    ascii_text = text.lower().replace("æ", "ae").replace("ø", "oe").replace("å", "aa")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-") or "kommune"


def _dc_links(estate: Estate, count: int) -> list[IPv4Network]:
    """`count` /30s from DC_LINK_POOL that overlap nothing the estate uses."""
    used = [s.address_block for s in estate.sites] + [p.subnet for p in estate.portgroups]
    used += [s.uplink.subnet for s in estate.sites if s.uplink]
    base = int(DC_LINK_POOL.network_address)
    last = int(DC_LINK_POOL.broadcast_address)
    spans = ((int(n.network_address), int(n.network_address) + (1 << (32 - n.prefixlen)) - 1) for n in used)
    blocked = sorted((lo, hi) for lo, hi in spans if lo <= last and base <= hi)
    out: list[IPv4Network] = []
    while len(out) < count:
        if base + 3 > last:
            raise PlanningImpossible(f"no room left in {DC_LINK_POOL} for {count} datacentre links")
        if not any(lo <= base + 3 and base <= hi for lo, hi in blocked):
            out.append(IPv4Network((base, 30)))
        base += 4
    return out


def _plan(
    model: _Model, placed: _Placement, windows: Sequence[tuple[datetime, datetime]], options: PlanningOptions
) -> Plan:
    estate = model.estate
    code = estate.municipality.code
    vcenter = next((v for v in estate.vcenters if v.name == model.vcenter), estate.vcenters[0])
    used_pgs = {pg for vm in estate.vms for pg in vm.portgroups}
    vlans = {pg.vlan for pg in estate.portgroups if pg.vlan is not None}
    network_map = []
    free_vlan = 1000
    for pg in estate.portgroups:
        if pg.name not in used_pgs:
            continue
        vlan = pg.vlan
        if vlan is None:
            while free_vlan in vlans:
                free_vlan += 1
            vlan = free_vlan
            vlans.add(vlan)
        network_map.append({"source": pg.name, "target": f"K{code}-{pg.name}", "vlan": vlan, "subnet": pg.subnet})
    links = _dc_links(estate, len(estate.sites))
    core_mbps = max((s.uplink.bandwidth_mbps for s in estate.sites if s.uplink), default=CORE_DC_LINK_MBPS)
    sites = []
    for site, link in zip(estate.sites, links, strict=True):
        entry: dict[str, Any] = {
            "id": site.id,
            "name": site.name,
            "kind": site.kind,
            "address_block": site.address_block,
        }
        if site.uplink:
            uplink = site.uplink
            entry["uplink"] = {
                "device": uplink.device,
                "subnet": uplink.subnet,
                "bandwidth_mbps": uplink.bandwidth_mbps,
            }
        mbps = site.uplink.bandwidth_mbps if site.uplink else max(core_mbps, CORE_DC_LINK_MBPS)
        entry["dc_link"] = {"subnet": link, "bandwidth_mbps": mbps}
        sites.append(entry)
    devices = [
        {
            "hostname": d.hostname,
            "site": d.site,
            "role": d.role,
            "platform": d.platform,
            "management": d.management,
            "port": d.port,
            "credentials": "network",
        }
        for d in estate.devices
    ]
    vms = []
    for i, vm in enumerate(estate.vms):
        entry = {
            "name": vm.name,
            "site": model.site_of[i],
            "host": vm.host,
            "datastore": vm.datastore,
            "cpu": vm.cpu,
            "memory_mb": vm.memory_mb,
            "disks_gb": list(vm.disks_gb),
            "portgroups": list(vm.portgroups),
            "power": vm.power,
            "tools": vm.tools,
            "criticality": vm.criticality,
        }
        if vm.uuid is not None:
            entry["uuid"] = vm.uuid
        if vm.ip is not None:
            entry["ip"] = vm.ip
        if vm.app_group:
            entry["app_group"] = vm.app_group
        if vm.depends_on:
            entry["depends_on"] = list(vm.depends_on)
        vms.append(entry)
    ahead: list[list[str]] = [[] for _ in windows]
    for i, vm in enumerate(estate.vms):
        mine = placed.unit_wave[model.unit_of[i]]
        if mine < placed.site_wave[model.site_of[i]]:
            ahead[mine].append(vm.name)
    waves = []
    for w, (start, end) in enumerate(windows):
        shared = any(model.shared_vm[i] for u, uw in placed.unit_wave.items() if uw == w for i in model.units[u].vms)
        window: dict[str, Any] = {"start": f"{start:%Y-%m-%d %H:%M}", "end": f"{end:%Y-%m-%d %H:%M}"}
        if options.timezone != TIMEZONE:
            window["timezone"] = options.timezone
        wave: dict[str, Any] = {
            "number": w + 1,
            "name": "Shared services" if shared else f"Wave {w + 1}",
            "sites": sorted(placed.sites[w], key=placed.position.__getitem__),
            "window": window,
        }
        if ahead[w]:
            wave["vms"] = ahead[w]
        waves.append(wave)
    limits = options.concurrency
    data: dict[str, Any] = {
        "schema_version": 1,
        "municipality": {"code": code, "name": estate.municipality.name},
        "credentials": {
            "source-vcenter": {"username": PLACEHOLDER, "secret": {"env": f"OVERFLYT_K{code}_VCENTER_PASSWORD"}},
            "target-vcenter": {"username": PLACEHOLDER, "secret": {"env": "OVERFLYT_TARGET_VCENTER_PASSWORD"}},
            "network": {"username": PLACEHOLDER, "secret": {"env": f"OVERFLYT_K{code}_NETWORK_PASSWORD"}},
        },
        "source": {
            "vcenter": {"name": vcenter.name, "url": vcenter.url, "credentials": "source-vcenter"},
            "datacenter": vcenter.datacenter,
            "cluster": vcenter.cluster,
        },
        "target": {
            "name": PLACEHOLDER,
            "vcenter": {
                "name": "target-vcenter",
                "url": "https://target-vcenter.invalid/sdk",
                "credentials": "target-vcenter",
            },
            "datacenter": PLACEHOLDER,
            "cluster": PLACEHOLDER,
            "datastores": list(dict.fromkeys(options.target_datastores)),
            "vm_folder": f"Kommuner/{code}-{_slug(estate.municipality.name)}",
        },
        "network_map": network_map,
        "storage_map": [{"source": s, "target": t} for s, t in model.storage.items()],
        "sites": sites,
        "devices": devices,
        "vms": vms,
        "concurrency": {
            "global": limits.global_,
            "per_host": limits.per_host,
            "per_datastore": limits.per_datastore,
            "per_site": limits.per_site,
        },
        "waves": waves,
    }
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:  # pragma: no cover - the estate model holds what the plan needs
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PlanningImpossible(f"the proposed plan does not validate: {where}: {first['msg']}") from exc


def _estimates(
    model: _Model, placed: _Placement, windows: Sequence[tuple[datetime, datetime]], capacity: float
) -> tuple[WaveEstimate, ...]:
    units = model.units
    vms = model.estate.vms
    by_wave: list[list[int]] = [[] for _ in windows]
    for u in sorted(placed.unit_wave, key=lambda u: units[u].rank):
        by_wave[placed.unit_wave[u]].append(u)
    out = []
    for w, (start, end) in enumerate(windows):
        members = sorted(i for u in by_wave[w] for i in units[u].vms)
        sites = placed.sites[w]
        minutes = len(sites) * placed.options.site_minutes + sum(units[u].minutes for u in by_wave[w])
        out.append(
            WaveEstimate(
                number=w + 1,
                start=start,
                end=end,
                sites=tuple(sorted(sites, key=placed.position.__getitem__)),
                vms=tuple(vms[i].name for i in members),
                ahead=tuple(vms[i].name for i in members if placed.site_wave[model.site_of[i]] > w),
                shared=tuple(vms[i].name for i in members if model.shared_vm[i]),
                disk_gb=sum(units[u].disk_gb for u in by_wave[w]),
                batches=tuple(tuple(b) for u in by_wave[w] for b in units[u].batches),
                transfer_minutes=sum(units[u].transfer_minutes for u in by_wave[w]),
                minutes=minutes,
                window_minutes=capacity,
            )
        )
    return tuple(out)


# -- the plan file ---------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[^\W\d_][\w .@/+-]*(?<! )$")
_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}(/\d{1,2})?$")
_KEYWORDS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if (_PLAIN.match(text) and text.lower() not in _KEYWORDS) or _ADDRESS.match(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def _count(n: int, thing: str) -> str:
    plural = "es" if thing.endswith("ch") else "s"
    return f"{n} {thing}{plural if n != 1 else ''}"


def _hours(minutes: float) -> str:
    return f"{minutes / 60:.1f} h"


def _window(estimate: WaveEstimate, options: PlanningOptions) -> dict[str, str]:
    window = {"start": f"{estimate.start:%Y-%m-%d %H:%M}", "end": f"{estimate.end:%Y-%m-%d %H:%M}"}
    if options.timezone != TIMEZONE:
        window["timezone"] = options.timezone
    return window


def render_plan(result: WavePlan, estate_name: str) -> str:
    """The plan as a YAML plan file, commented with what the planner assumed and each wave's estimate."""
    plan, options = result.plan, result.options
    data = plan.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    limits = options.concurrency
    out = [
        f"# Proposed migration plan: {plan.municipality.name} ({plan.municipality.code}), written by",
        f"# `overflyt plan waves` from {estate_name}. Edit it before use: every {PLACEHOLDER} is a placeholder",
        "# (the target datacentre, the credentials' usernames, the storage map's target datastores), and the",
        "# network_map targets and VLANs and the sites' dc_link subnets are proposals. Then run",
        "# `overflyt plan validate` on it.",
        "#",
        f"# Waves sized for {options.window_hours:g} h windows, {options.waves_per_week} a week, at "
        f"{options.bandwidth_mbps:,} Mbps replication,",
        f"# {options.site_minutes:g} min per site cutover and {options.vm_minutes:g} min per batch of VM moves "
        f"(at most {limits.global_} at once, {limits.per_host} per host,",
        f"# {limits.per_datastore} per datastore, {limits.per_site} per site).",
        "schema_version: 1",
        "",
        f"municipality: {_flow(data['municipality'])}",
        "",
        "credentials:",
    ]
    for name, credential in data["credentials"].items():
        out.append(f"  {name}: {_flow(credential)}")
    source = data["source"]
    out += [
        "",
        "source:",
        f"  vcenter: {_flow(source['vcenter'])}",
        f"  datacenter: {_scalar(source['datacenter'])}",
        f"  cluster: {_scalar(source['cluster'])}",
        "",
        "target:",
    ]
    for key, value in data["target"].items():
        out.append(f"  {key}: {_flow(value)}")
    out += ["", "network_map:"] if data.get("network_map") else ["", "network_map: []"]
    out += [f"  - {_flow(m)}" for m in data.get("network_map", [])]
    out += ["", "storage_map:"] if data.get("storage_map") else ["", "storage_map: []"]
    out += [f"  - {_flow(m)}" for m in data.get("storage_map", [])]
    out += ["", "sites:"]
    for site in data["sites"]:
        out.append(f"  - id: {_scalar(site['id'])}")
        out += [f"    {key}: {_flow(value)}" for key, value in site.items() if key != "id"]
    out += ["", "devices:"] if data.get("devices") else ["", "devices: []"]
    out += [f"  - {_flow(d)}" for d in data.get("devices", [])]
    out += ["", "vms:"] if data.get("vms") else ["", "vms: []"]
    out += [f"  - {_flow(vm)}" for vm in data.get("vms", [])]
    concurrency = {"global": limits.global_, "per_host": limits.per_host}
    concurrency |= {"per_datastore": limits.per_datastore, "per_site": limits.per_site}
    out += ["", f"concurrency: {_flow(concurrency)}", "", "waves:"]
    for wave, estimate in zip(data["waves"], result.estimates, strict=True):
        ahead = f" ({len(estimate.ahead)} ahead of their site)" if estimate.ahead else ""
        sites, vms = _count(len(estimate.sites), "site"), _count(len(estimate.vms), "VM")
        cutovers = _count(len(estimate.sites), "site cutover")
        out += [
            f"  # {sites}, {vms}{ahead}, {estimate.disk_gb:,} GB: about {_hours(estimate.minutes)} "
            f"of a {_hours(estimate.window_minutes)} window",
            f"  # (transfer {_hours(estimate.transfer_minutes)}, {_count(len(estimate.batches), 'batch')} x "
            f"{options.vm_minutes:g} min, {cutovers} x {options.site_minutes:g} min)",
            f"  - number: {wave['number']}",
            f"    name: {_scalar(wave['name'])}",
            f"    window: {_flow(_window(estimate, options))}",
            "    sites:",
        ]
        out += [f"      - {_scalar(s)}" for s in wave["sites"]]
        if wave.get("vms"):
            out.append("    vms:")
            out += [f"      - {_scalar(v)}" for v in wave["vms"]]
    return "\n".join(out) + "\n"
