"""Whole-plan rules: what single objects cannot know about each other.

``validate_plan`` returns every problem it finds (never stops at the first), each pointing at the
field path it is about. Each rule is a small function registered in ``RULES``; adding one does not
touch the others.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC
from ipaddress import IPv4Network
from typing import Any

from overflyt.plan.model import DeviceRole, Plan
from overflyt.plan.names import vm_alias

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    path: PathKey
    reason: str
    value: Any = None


Rule = Callable[[Plan], Iterator[Problem]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    return fn


def validate_plan(plan: Plan) -> list[Problem]:
    """Every problem of the plan as a whole; empty when the plan can be used."""
    return [problem for check in RULES for problem in check(plan)]


@rule
def unique_names(plan: Plan) -> Iterator[Problem]:
    for label, items, key in (
        ("site id", plan.sites, "id"),
        ("device hostname", plan.devices, "hostname"),
        ("VM name", plan.vms, "name"),
    ):
        collection = {"site id": "sites", "device hostname": "devices", "VM name": "vms"}[label]
        names = [str(getattr(item, key)) for item in items]
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                yield Problem((collection, i, key), f"duplicate {label} (already used above)", name)
            seen.add(name)
    numbers = [w.number for w in plan.waves]
    seen_numbers: set[int] = set()
    for i, n in enumerate(numbers):
        if n in seen_numbers:
            yield Problem(("waves", i, "number"), "duplicate wave number", n)
        seen_numbers.add(n)
    endpoints: dict[tuple[str, int], str] = {}
    for i, device in enumerate(plan.devices):
        endpoint = (str(device.management), device.port)
        if endpoint in endpoints and endpoints[endpoint] != device.hostname:
            yield Problem(
                ("devices", i, "management"),
                f"same management address and port as device {endpoints[endpoint]}",
                f"{device.management}:{device.port}",
            )
        endpoints.setdefault(endpoint, device.hostname)
    ips: dict[str, str] = {}
    for i, vm in enumerate(plan.vms):
        if vm.ip is None:
            continue
        if str(vm.ip) in ips and ips[str(vm.ip)] != vm.name:
            yield Problem(("vms", i, "ip"), f"same address as VM {ips[str(vm.ip)]}", str(vm.ip))
        ips.setdefault(str(vm.ip), vm.name)
    for collection, sources in (
        ("network_map", [m.source for m in plan.network_map]),
        ("storage_map", [m.source for m in plan.storage_map]),
    ):
        seen_sources: set[str] = set()
        for i, source in enumerate(sources):
            if source in seen_sources:
                yield Problem((collection, i, "source"), "source mapped twice", source)
            seen_sources.add(source)


@rule
def vm_aliases_distinct(plan: Plan) -> Iterator[Problem]:
    """VM names are compared exactly (as vCenter compares them: ``web01`` and ``WEB01`` are two VMs);
    each gets an alias (overflyt.plan.names.vm_alias) that must be its own."""
    seen: dict[str, str] = {}
    for i, vm in enumerate(plan.vms):
        alias = vm_alias(vm.name)
        other = seen.setdefault(alias, vm.name)
        if other != vm.name:
            yield Problem(
                ("vms", i, "name"), f"has the same alias {alias} as VM {other!r}; rename one of them", vm.name
            )


@rule
def credentials_defined(plan: Plan) -> Iterator[Problem]:
    def check(path: PathKey, name: str) -> Iterator[Problem]:
        if name not in plan.credentials:
            known = ", ".join(sorted(plan.credentials)) or "none defined"
            yield Problem(path, f"credentials reference resolves to nothing (known: {known})", name)

    yield from check(("source", "vcenter", "credentials"), plan.source.vcenter.credentials)
    yield from check(("target", "vcenter", "credentials"), plan.target.vcenter.credentials)
    for i, device in enumerate(plan.devices):
        yield from check(("devices", i, "credentials"), device.credentials)


@rule
def references_exist(plan: Plan) -> Iterator[Problem]:
    sites = {s.id for s in plan.sites}
    devices = {d.hostname for d in plan.devices}
    vms = {v.name for v in plan.vms}
    for i, device in enumerate(plan.devices):
        if device.site not in sites:
            yield Problem(("devices", i, "site"), "unknown site", device.site)
    for i, site in enumerate(plan.sites):
        if site.uplink and site.uplink.device not in devices:
            yield Problem(("sites", i, "uplink", "device"), "unknown device", site.uplink.device)
    for i, vm in enumerate(plan.vms):
        if vm.site not in sites:
            yield Problem(("vms", i, "site"), "unknown site", vm.site)
        for j, dep in enumerate(vm.depends_on):
            if dep not in vms:
                yield Problem(("vms", i, "depends_on", j), "depends on an unknown VM", dep)
            elif dep == vm.name:
                yield Problem(("vms", i, "depends_on", j), "a VM cannot depend on itself", dep)
    for j, name in enumerate(plan.ssh.insecure_host_keys):
        if name not in devices:
            yield Problem(("ssh", "insecure_host_keys", j), "unknown device", name)
    for i, wave in enumerate(plan.waves):
        for j, site_id in enumerate(wave.sites):
            if site_id not in sites:
                yield Problem(("waves", i, "sites", j), "unknown site", site_id)
        for j, name in enumerate(wave.vms):
            if name not in vms:
                yield Problem(("waves", i, "vms", j), "unknown VM", name)


@rule
def maps_cover_vms(plan: Plan) -> Iterator[Problem]:
    portgroups = {m.source: m for m in plan.network_map}
    datastores = {m.source for m in plan.storage_map}
    for i, vm in enumerate(plan.vms):
        for j, pg in enumerate(vm.portgroups):
            if pg not in portgroups:
                yield Problem(("vms", i, "portgroups", j), "portgroup has no network_map entry", pg)
        if vm.datastore not in datastores:
            yield Problem(("vms", i, "datastore"), "datastore has no storage_map entry", vm.datastore)
        if vm.ip is not None:
            subnets = [portgroups[pg].subnet for pg in vm.portgroups if pg in portgroups]
            if subnets and not any(vm.ip in s for s in subnets):
                yield Problem(
                    ("vms", i, "ip"),
                    f"address is outside its portgroups' subnets ({', '.join(map(str, subnets))})",
                    str(vm.ip),
                )
    for i, entry in enumerate(plan.storage_map):
        if entry.target not in plan.target.datastores:
            yield Problem(("storage_map", i, "target"), "not one of target.datastores", entry.target)


@rule
def waves_cover_sites(plan: Plan) -> Iterator[Problem]:
    wave_of: dict[str, int] = {}
    for i, wave in enumerate(plan.waves):
        for j, site_id in enumerate(wave.sites):
            if site_id in wave_of:
                yield Problem(("waves", i, "sites", j), f"site is already cut over in wave {wave_of[site_id]}", site_id)
            else:
                wave_of[site_id] = wave.number
    for i, site in enumerate(plan.sites):
        if site.id not in wave_of:
            yield Problem(("sites", i, "id"), "site is in no wave", site.id)


_WAVES_OF_VMS: dict[int, dict[str, int]] = {}  # id(plan) -> its wave_of_vm, while the plan lives


def _wave_of_vm(plan: Plan) -> dict[str, int]:
    """A copy of the plan's VM -> wave map, computed once per plan object: the rules and every
    wave's pre-checks ask for it (plan.dependencies once per wave: waves x VMs over a plan)."""
    cached = _WAVES_OF_VMS.get(id(plan))
    if cached is None:
        cached = _WAVES_OF_VMS[id(plan)] = _compute_wave_of_vm(plan)
        weakref.finalize(plan, _WAVES_OF_VMS.pop, id(plan), None)
    return dict(cached)


def _compute_wave_of_vm(plan: Plan) -> dict[str, int]:
    site_wave = {s: w.number for w in plan.waves for s in w.sites}
    result = {vm.name: site_wave[vm.site] for vm in plan.vms if vm.site in site_wave}
    pulled: set[str] = set()
    for wave in plan.waves:
        for name in wave.vms:
            # Only a valid pull-forward (first listing, earlier than its site's wave) counts; the
            # invalid ones are reported by vm_in_one_wave and must not cascade into other rules.
            if name in result and name not in pulled and wave.number < result[name]:
                result[name] = wave.number
            pulled.add(name)
    return result


def wave_of_vm(plan: Plan) -> dict[str, int]:
    """The wave that moves each VM: its site's wave, or an earlier one that validly pulls it forward."""
    return _wave_of_vm(plan)


@rule
def vm_in_one_wave(plan: Plan) -> Iterator[Problem]:
    site_wave = {s: w.number for w in plan.waves for s in w.sites}
    site_of = {vm.name: vm.site for vm in plan.vms}
    listed: dict[str, int] = {}
    for i, wave in enumerate(plan.waves):
        for j, name in enumerate(wave.vms):
            if name not in site_of:
                continue
            if name in listed:
                yield Problem(("waves", i, "vms", j), f"VM in two waves (also listed in wave {listed[name]})", name)
                continue
            listed[name] = wave.number
            home = site_wave.get(site_of[name])
            if home is not None and home <= wave.number:
                yield Problem(
                    ("waves", i, "vms", j),
                    f"VM in two waves: it moves with its site {site_of[name]} in wave {home}; "
                    "list a VM only to move it earlier than its site",
                    name,
                )


@rule
def dependencies_ordered(plan: Plan) -> Iterator[Problem]:
    wave_of = _wave_of_vm(plan)
    index = {vm.name: i for i, vm in enumerate(plan.vms)}
    for i, vm in enumerate(plan.vms):
        for j, dep in enumerate(vm.depends_on):
            mine, theirs = wave_of.get(vm.name), wave_of.get(dep)
            if mine is not None and theirs is not None and theirs > mine:
                yield Problem(
                    ("vms", i, "depends_on", j),
                    f"wave {mine} depends on a later wave {theirs}: {vm.name} needs {dep}",
                    dep,
                )
    # Cycles: depth-first search over depends_on, each cycle reported once.
    graph = {vm.name: [d for d in vm.depends_on if d in index and d != vm.name] for vm in plan.vms}
    state: dict[str, int] = {}
    reported: set[frozenset[str]] = set()

    def visit(node: str, stack: list[str]) -> Iterator[Problem]:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    yield Problem(
                        ("vms", index[cycle[0]], "depends_on"),
                        "dependency cycle: " + " -> ".join([*cycle, cycle[0]]),
                    )
            elif nxt not in state:
                yield from visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for name in graph:
        if name not in state:
            yield from visit(name, [])


@rule
def waves_in_time_order(plan: Plan) -> Iterator[Problem]:
    previous = None
    for i, wave in enumerate(plan.waves):
        if previous is not None and wave.number <= previous.number:
            yield Problem(
                ("waves", i, "number"),
                f"waves must be listed in order (after wave {previous.number})",
                wave.number,
            )
        if previous is not None and wave.window.start < previous.window.end:
            yield Problem(
                ("waves", i, "window", "start"),
                f"window starts before wave {previous.number}'s window ends ({previous.window.end.isoformat()})",
                wave.window.start.isoformat(),
            )
        previous = wave


@rule
def windows_hold_a_site(plan: Plan) -> Iterator[Problem]:
    """A wave's window is longer than the least any site needs under ``window_policy`` (its
    ``site_minutes`` plus ``margin_min``): otherwise no site of the wave could ever start in it."""
    policy = plan.window_policy
    least = policy.site_minutes + policy.margin_min
    for i, wave in enumerate(plan.waves):
        minutes = (wave.window.end.astimezone(UTC) - wave.window.start.astimezone(UTC)).total_seconds() / 60
        if minutes <= least:
            yield Problem(
                ("waves", i, "window"),
                f"the window lasts {minutes:g} min, not more than window_policy's site_minutes "
                f"({policy.site_minutes:g}) + margin_min ({policy.margin_min:g}): no site could start in it; "
                "lengthen the window or lower them",
                f"{wave.window.start.isoformat()} - {wave.window.end.isoformat()}",
            )


@rule
def subnets_move_whole(plan: Plan) -> Iterator[Problem]:
    wave_of = _wave_of_vm(plan)
    waves_of_pg: dict[str, set[int]] = defaultdict(set)
    sites_of_pg: dict[str, set[str]] = defaultdict(set)
    for vm in plan.vms:
        for pg in vm.portgroups:
            if vm.name in wave_of:
                waves_of_pg[pg].add(wave_of[vm.name])
            sites_of_pg[pg].add(vm.site)
    for i, entry in enumerate(plan.network_map):
        waves = waves_of_pg.get(entry.source, set())
        if len(waves) > 1:
            yield Problem(
                ("network_map", i, "source"),
                f"subnet {entry.subnet} would be split across waves {sorted(waves)}; its VMs must move together",
                entry.source,
            )
        sites = sites_of_pg.get(entry.source, set())
        if len(sites) > 1:
            yield Problem(
                ("network_map", i, "source"),
                f"portgroup is used at several sites ({', '.join(sorted(sites))}); a subnet has one home site",
                entry.source,
            )


@rule
def ahead_moves_whole_subnets(plan: Plan) -> Iterator[Problem]:
    """What a wave moves ahead of its site (``waves[].vms``) is whole server subnets: every VM listed
    is on a ``network_map`` portgroup, and every other VM of that subnet is listed in the same wave."""
    by_name = {vm.name: vm for vm in plan.vms}
    mapped = {m.source: m for m in plan.network_map}
    wave_of = _wave_of_vm(plan)  # only valid pulls: the others are vm_in_one_wave's, not to cascade here
    members_of: dict[str, list[str]] = defaultdict(list)
    for machine in plan.vms:
        for pg in dict.fromkeys(machine.portgroups):
            members_of[pg].append(machine.name)
    for i, wave in enumerate(plan.waves):
        listed = {name for name in wave.vms if wave_of.get(name) == wave.number}
        for j, name in enumerate(wave.vms):
            vm = by_name.get(name)
            if vm is not None and name in listed and not any(pg in mapped for pg in vm.portgroups):
                yield Problem(
                    ("waves", i, "vms", j),
                    "only a whole server subnet moves ahead of its site, and none of this VM's portgroups "
                    f"({', '.join(vm.portgroups)}) is in network_map",
                    name,
                )
        if not listed:
            continue
        for mapping in plan.network_map:
            members = members_of.get(mapping.source, [])
            moving = [n for n in members if n in listed]
            behind = [n for n in members if n not in listed]
            if moving and behind:
                yield Problem(
                    ("waves", i, "vms"),
                    f"splits server subnet {mapping.subnet} ({mapping.source}): {', '.join(moving)} would move "
                    f"ahead in wave {wave.number} and leave {', '.join(behind)} behind; a subnet moves whole: "
                    "list every VM of it or none",
                    mapping.source,
                )


@rule
def addresses_do_not_overlap(plan: Plan) -> Iterator[Problem]:
    named: list[tuple[PathKey, str, IPv4Network]] = []
    for i, site in enumerate(plan.sites):
        named.append((("sites", i, "address_block"), f"site {site.id}'s address_block", site.address_block))
        if site.uplink:
            named.append((("sites", i, "uplink", "subnet"), f"site {site.id}'s uplink", site.uplink.subnet))
        named.append((("sites", i, "dc_link", "subnet"), f"site {site.id}'s dc_link", site.dc_link.subnet))
    for i, entry in enumerate(plan.network_map):
        named.append((("network_map", i, "subnet"), f"server subnet of {entry.source}", entry.subnet))
    # A sweep over the address ranges sorted by start: only ranges that begin before another ends
    # are compared (n log n plus the overlaps, not n²: a national estate has tens of thousands).
    spans = sorted(
        (int(net.network_address), int(net.broadcast_address), index) for index, (_, _, net) in enumerate(named)
    )
    pairs: list[tuple[int, int]] = []
    for position, (_, end, index) in enumerate(spans):
        later = position + 1
        while later < len(spans) and spans[later][0] <= end:
            other = spans[later][2]
            pairs.append((max(index, other), min(index, other)))
            later += 1
    for a, b in sorted(pairs):
        yield Problem(named[a][0], f"overlaps {named[b][1]} ({named[b][2]})", str(named[a][2]))


@rule
def sites_have_a_gateway(plan: Plan) -> Iterator[Problem]:
    gateways: dict[str, list[str]] = defaultdict(list)
    for device in plan.devices:
        if device.role in (DeviceRole.core, DeviceRole.distribution):
            gateways[device.site].append(device.hostname)
    with_devices = {d.site for d in plan.devices}
    for i, site in enumerate(plan.sites):
        has_devices = site.id in with_devices
        if has_devices and not gateways[site.id]:
            yield Problem(("sites", i, "id"), "site has devices but no core or distribution router", site.id)
        if len(gateways[site.id]) > 1:
            yield Problem(
                ("sites", i, "id"),
                f"site has more than one core/distribution router ({', '.join(gateways[site.id])})",
                site.id,
            )


PING_PLATFORMS = ("ios", "frr")  # driven through cisco.ios (cisco.ios.ios_ping); the lab's FRR translates it


@rule
def probes_resolve(plan: Plan) -> Iterator[Problem]:
    devices = {d.hostname: d for d in plan.devices}
    for i, site in enumerate(plan.sites):
        if site.probe is None:
            continue
        if site.probe.ssh is not None and site.probe.ssh.credentials not in plan.credentials:
            known = ", ".join(sorted(plan.credentials)) or "none defined"
            yield Problem(
                ("sites", i, "probe", "ssh", "credentials"),
                f"credentials reference resolves to nothing (known: {known})",
                site.probe.ssh.credentials,
            )
        gateway = site.probe.gateway
        if gateway is None:
            continue
        path: PathKey = ("sites", i, "probe", "gateway", "device")
        if gateway.device is None:
            own = [d.hostname for d in plan.devices if d.site == site.id and d.role in GATEWAY_ROLES]
            if len(own) != 1:
                yield Problem(path, "the site has no single core/distribution device to ping from; name one", None)
                continue
            device = devices[own[0]]
        elif gateway.device not in devices:
            yield Problem(path, "not a device of the plan", gateway.device)
            continue
        else:
            device = devices[gateway.device]
        if device.site != site.id:
            yield Problem(path, f"device {device.hostname} is at site {device.site}, not at this site", device.hostname)
        elif device.platform.value not in PING_PLATFORMS:
            yield Problem(
                path,
                f"no gateway ping for platform {device.platform.value} (only {', '.join(PING_PLATFORMS)}); "
                "use a probe host (probe.ssh)",
                device.hostname,
            )


GATEWAY_ROLES = (DeviceRole.core, DeviceRole.distribution)


def probe_device(plan: Plan, site_id: str) -> str | None:
    """The device whose ping is the site's post-check (plan ``probe.gateway``), or None."""
    site = plan.site(site_id)
    if site.probe is None or site.probe.gateway is None:
        return None
    if site.probe.gateway.device is not None:
        return site.probe.gateway.device
    own = [d.hostname for d in plan.devices if d.site == site_id and d.role in GATEWAY_ROLES]
    return own[0] if len(own) == 1 else None
