"""Server subnets that move ahead of their site (``waves[].vms``): the unit a wave cuts over
besides its sites.

The unit that can move ahead is a whole server subnet: a ``network_map`` entry with every VM on its
portgroup, all of one site (:func:`overflyt.plan.rules.ahead_moves_whole_subnets` refuses a list
that splits one or leaves a VM of it behind). Each such subnet is a *unit* of its wave, named by
a key ``<site>:<network>-<prefix length>`` (``auning-adm:10.70.30.0-24``) that never collides with a
site id (a slug has no colon). A site's own cutover is the unit named by the site id.

Pure code on the plan: nothing is read or contacted here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from overflyt.plan.model import NetworkMapping, Plan

SEPARATOR = ":"


@dataclass(frozen=True)
class AheadSubnet:
    """One server subnet moved in ``wave``, ahead of its site ``site``'s own wave."""

    key: str
    site: str
    wave: int
    mapping: NetworkMapping
    vms: tuple[str, ...]  # every VM on the subnet's portgroup, plan order

    @property
    def subnet(self) -> str:
        return str(self.mapping.subnet)


def subnet_key(site_id: str, mapping: NetworkMapping) -> str:
    """The unit key of ``mapping``'s subnet of ``site_id``."""
    net = mapping.subnet
    return f"{site_id}{SEPARATOR}{net.network_address}-{net.prefixlen}"


def is_ahead_key(key: str) -> bool:
    """Whether ``key`` names an ahead subnet (else it is a site id)."""
    return SEPARATOR in key


def ahead_subnets(plan: Plan, wave: int | None = None) -> list[AheadSubnet]:
    """The subnets moved ahead of their site, of ``wave`` (of every wave when None), in wave and
    ``network_map`` order: each ``network_map`` entry whose VMs are all listed in one wave's ``vms``."""
    site_of = {vm.name: vm.site for vm in plan.vms}
    members_of: dict[str, list[str]] = {}
    for vm in plan.vms:
        for pg in dict.fromkeys(vm.portgroups):
            members_of.setdefault(pg, []).append(vm.name)
    out: list[AheadSubnet] = []
    for w in plan.waves:
        if (wave is not None and w.number != wave) or not w.vms:
            continue
        listed = set(w.vms)
        for mapping in plan.network_map:
            members = members_of.get(mapping.source, [])
            if members and all(name in listed for name in members):
                site = site_of[members[0]]
                out.append(AheadSubnet(subnet_key(site, mapping), site, w.number, mapping, tuple(members)))
    return out


def find_ahead(plan: Plan, key: str) -> AheadSubnet | None:
    """The ahead subnet ``key`` names, or None (a site id, or no such unit)."""
    if not is_ahead_key(key):
        return None
    return next((unit for unit in ahead_subnets(plan) if unit.key == key), None)


def unit_site(plan: Plan, key: str) -> str:
    """The site a unit belongs to: the site itself, or an ahead subnet's home site."""
    unit = find_ahead(plan, key)
    return unit.site if unit is not None else key


def unit_name(plan: Plan, key: str) -> str:
    """What people call the unit: the site's name, or ``<site name>: subnet <cidr> (<portgroup>)``."""
    unit = find_ahead(plan, key)
    if unit is None:
        return next((s.name for s in plan.sites if s.id == key), key)
    return f"{plan.site(unit.site).name}: subnet {unit.subnet} ({unit.mapping.source}), ahead"


def read_sites(plan: Plan, wave: int, sites: Sequence[str]) -> list[str]:
    """The sites whose devices a pre-check of ``sites`` of ``wave`` reads and fingerprints: those,
    and the site of each subnet the wave moves ahead (its gateway changes with the subnet), so that
    the stale-plan check sees a change there too."""
    return list(dict.fromkeys([*sites, *(unit.site for unit in ahead_subnets(plan, wave))]))


def units_of_wave(plan: Plan, wave: int) -> list[str]:
    """What a wave cuts over, in its order: its sites, then its ahead subnets."""
    return [*plan.wave(wave).sites, *(unit.key for unit in ahead_subnets(plan, wave))]


def unit_subnets(plan: Plan, wave: int, key: str) -> list[str]:
    """The server subnets a unit moves: an ahead subnet's own; for a site's cutover, the subnets of
    the site's VMs that ``wave`` moves with the site (what moved ahead is not among them)."""
    unit = find_ahead(plan, key)
    if unit is not None:
        return [unit.subnet]
    pulled = {name for w in plan.waves for name in w.vms}
    own = {
        pg for vm in plan.vms if vm.site == key and vm.name not in pulled and key in plan.wave(wave).sites
        for pg in vm.portgroups
    }  # fmt: skip
    return [str(m.subnet) for m in plan.network_map if m.source in own]
