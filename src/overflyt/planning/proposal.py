"""The plan a placement makes: a :class:`~overflyt.plan.model.Plan` that ``overflyt plan validate``
accepts, with placeholders for what the estate cannot know.

The source is the estate's vCenter; the target, the credentials' usernames and the storage map's
targets are ``CHANGE-ME``; each used portgroup gets a proposed target network and VLAN, each site
a proposed datacentre link (a /30 from :data:`DC_LINK_POOL` that overlaps nothing in the estate),
and each wave its sites and the VMs it moves ahead of their site.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from ipaddress import IPv4Network
from typing import Any

from pydantic import ValidationError

from overflyt.discovery.estate import Estate
from overflyt.plan.model import Plan
from overflyt.planning.options import PLACEHOLDER, TIMEZONE, PlanningImpossible, PlanningOptions
from overflyt.planning.placement import Placement
from overflyt.planning.units import PlanningModel

# Proposed links to the shared datacentre come from shared address space (RFC 6598), skipping
# anything the estate already uses.
DC_LINK_POOL = IPv4Network("100.64.0.0/10")
CORE_DC_LINK_MBPS = 10000


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


def build_plan(
    model: PlanningModel, placed: Placement, windows: Sequence[tuple[datetime, datetime]], options: PlanningOptions
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
            **({"sites": limits.sites} if limits.sites > 1 else {}),
        },
        "waves": waves,
    }
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:  # pragma: no cover - the estate model holds what the plan needs
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PlanningImpossible(f"the proposed plan does not validate: {where}: {first['msg']}") from exc
