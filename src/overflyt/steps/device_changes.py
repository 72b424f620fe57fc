"""The network half of a site cutover as desired state: what each device of the site should hold.

Pure code: no device is read here. ``device_changes`` says, per device, which static routes and
which shared services the cutover wants; the ``net_configure`` role renders that per platform
against the running configuration it reads at push time (so removals of old next hops are
computed from the device, and a second push changes nothing).

Rules (decided in issue 4):

* A server subnet (``network_map`` entry) is *moved* for site S's cutover in wave W when all its
  VMs move in a wave before W, or when it is homed at S (every VM on it belongs to S) and moves in
  wave W. A subnet without VMs never moves. Subnets moving in wave W at *other* sites are not
  routed directly yet: their home gateway flips them in its own cutover and traffic hairpins over
  the municipal core until then — the same result whatever the order of the wave's sites.
* The site's gateway (its device with role core or distribution) routes every moved subnet to the
  shared datacentre's core: the first host of the site's ``dc_link``.
* IOS and AOS-CX devices of the site are pointed at the shared organisation's services (DNS, NTP,
  syslog, TACACS+); FRR has no such commands, so FRR devices get routes only.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

from pydantic import BaseModel, ConfigDict

from overflyt.plan import Plan
from overflyt.plan.model import DeviceRole, NetworkDevice, NetworkMapping, Platform, PowerState
from overflyt.plan.rules import wave_of_vm

GATEWAY_ROLES = (DeviceRole.core, DeviceRole.distribution)
SERVICE_PLATFORMS = (Platform.ios, Platform.aoscx)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Route(_Model):
    """One static route: ``ip route <prefix> <next_hop>``."""

    prefix: IPv4Network
    next_hop: IPv4Address


class Services(_Model):
    """The shared services a device is pointed at. An empty list leaves that service untouched."""

    dns: tuple[IPv4Address, ...] = ()
    ntp: tuple[IPv4Address, ...] = ()
    syslog: tuple[IPv4Address, ...] = ()
    dhcp: tuple[IPv4Address, ...] = ()
    aaa: tuple[IPv4Address, ...] = ()

    def as_vars(self) -> dict[str, list[str]]:
        return {
            "dns": [str(a) for a in self.dns],
            "ntp": [str(a) for a in self.ntp],
            "syslog": [str(a) for a in self.syslog],
            "dhcp": [str(a) for a in self.dhcp],
            "aaa": [str(a) for a in self.aaa],
        }


class DeviceChange(_Model):
    """What the cutover wants on one device. Empty for a device the cutover leaves alone (it is
    still backed up and verified unchanged)."""

    hostname: str
    platform: Platform
    role: DeviceRole
    gateway: bool
    routes: tuple[Route, ...] = ()
    services: Services | None = None  # None: the platform has no service commands we manage

    @property
    def empty(self) -> bool:
        return not self.routes and (self.services is None or self.services == Services())

    def device_vars(self) -> dict[str, Any]:
        """The ``overflyt_*`` inventory variables handed to the roles as this device's desired state."""
        return {
            "overflyt_gateway": self.gateway,
            "overflyt_routes": [{"prefix": str(r.prefix), "next_hop": str(r.next_hop)} for r in self.routes],
            "overflyt_route_prefixes": [str(r.prefix) for r in self.routes],
            "overflyt_services": self.services.as_vars() if self.services is not None else {},
        }


def subnet_vms(plan: Plan, mapping: NetworkMapping) -> list[str]:
    """Names of the VMs on a mapped portgroup (the subnet's servers)."""
    return [vm.name for vm in plan.vms if mapping.source in vm.portgroups]


def moved_subnets(plan: Plan, wave: int, site_id: str) -> list[NetworkMapping]:
    """The subnets routed to the shared datacentre by ``site_id``'s cutover in ``wave`` (see module doc)."""
    waves = wave_of_vm(plan)
    site_of = {vm.name: vm.site for vm in plan.vms}
    moved: list[NetworkMapping] = []
    for mapping in plan.network_map:
        names = [n for n in subnet_vms(plan, mapping) if n in waves]
        if not names:
            continue
        last = max(waves[n] for n in names)
        homed_here = all(site_of[n] == site_id for n in names)
        if last < wave or (homed_here and last == wave):
            moved.append(mapping)
    return moved


def gateway_of(plan: Plan, site_id: str) -> NetworkDevice | None:
    """The site's gateway: its first device with role core or distribution."""
    return next((d for d in plan.devices_of_site(site_id) if d.role in GATEWAY_ROLES), None)


def dc_peer(plan: Plan, site_id: str) -> IPv4Address:
    """The shared datacentre core's side of the site's dc_link: the /30's (or /31's) first host."""
    subnet = plan.site(site_id).dc_link.subnet
    return subnet.network_address if subnet.prefixlen == 31 else subnet.network_address + 1


def device_changes(plan: Plan, wave: int, site_id: str) -> dict[str, DeviceChange]:
    """Per device of ``site_id`` (by hostname), what its cutover in ``wave`` wants on it."""
    gateway = gateway_of(plan, site_id)
    peer = dc_peer(plan, site_id)
    routes = tuple(Route(prefix=m.subnet, next_hop=peer) for m in moved_subnets(plan, wave, site_id))
    shared = plan.target.services
    services = Services(
        dns=tuple(shared.dns),
        ntp=tuple(shared.ntp),
        syslog=tuple(shared.syslog),
        dhcp=tuple(shared.dhcp),
        aaa=tuple(shared.aaa),
    )
    changes: dict[str, DeviceChange] = {}
    for device in plan.devices_of_site(site_id):
        is_gateway = gateway is not None and device.hostname == gateway.hostname
        changes[device.hostname] = DeviceChange(
            hostname=device.hostname,
            platform=device.platform,
            role=device.role,
            gateway=is_gateway,
            routes=routes if is_gateway else (),
            services=services if device.platform in SERVICE_PLATFORMS else None,
        )
    return changes


def postcheck_targets(plan: Plan, wave: int, site_id: str) -> list[str]:
    """The addresses the site's post-check probes: every powered-on VM with an address on a subnet
    the cutover moved (each must answer from the shared datacentre)."""
    addresses: list[str] = []
    for mapping in moved_subnets(plan, wave, site_id):
        addresses += [
            str(vm.ip)
            for vm in plan.vms
            if mapping.source in vm.portgroups
            and vm.ip is not None
            and vm.ip in mapping.subnet
            and vm.power == PowerState.powered_on
        ]
    return addresses
