"""The network half of a server subnet that moves ahead of its site, as desired state.

Pure code, like :mod:`overflyt.steps.device_changes` (whose rules a site's cutover follows). An
ahead subnet (:mod:`overflyt.plan.ahead`) changes only its own route, make before break, on the
devices that route it:

* its site's gateway routes the subnet to the shared datacentre's core (the first host of the
  site's ``dc_link``) instead of to its server room;
* the upstream device of the site's ``uplink`` (the municipal core), when it is the gateway of its
  own site, routes the subnet to the shared datacentre over its own site's ``dc_link`` instead of
  towards the subnet's site — so traffic from every other site reaches the moved servers directly.

No shared service (DNS, NTP, syslog, DHCP relay, AAA) changes: those change with the site's own
cutover. The post-check probes every powered-on server of the subnet from the site's client LAN.
"""

from __future__ import annotations

from overflyt.plan import Plan
from overflyt.plan.ahead import AheadSubnet
from overflyt.plan.model import PowerState
from overflyt.steps.device_changes import SERVICE_PLATFORMS, DeviceChange, Route, Services, dc_peer, gateway_of


def ahead_device_changes(plan: Plan, unit: AheadSubnet) -> dict[str, DeviceChange]:
    """Per device that routes ``unit``'s subnet (by hostname), its one route change."""
    changes: dict[str, DeviceChange] = {}
    hops = []
    gateway = gateway_of(plan, unit.site)
    if gateway is not None:
        hops.append((gateway, dc_peer(plan, unit.site)))
    uplink = plan.site(unit.site).uplink
    upstream = next((d for d in plan.devices if uplink is not None and d.hostname == uplink.device), None)
    if upstream is not None and gateway_of(plan, upstream.site) == upstream:
        hops.append((upstream, dc_peer(plan, upstream.site)))
    for device, peer in hops:
        changes[device.hostname] = DeviceChange(
            hostname=device.hostname,
            platform=device.platform,
            role=device.role,
            gateway=True,
            routes=(Route(prefix=unit.mapping.subnet, next_hop=peer),),
            services=Services() if device.platform in SERVICE_PLATFORMS else None,
        )
    return changes


def ahead_postcheck_targets(plan: Plan, unit: AheadSubnet) -> list[str]:
    """Every powered-on server of the subnet with an address on it: each must answer from the
    shared datacentre."""
    return [
        str(vm.ip)
        for vm in plan.vms
        if vm.name in unit.vms and vm.ip is not None and vm.ip in unit.mapping.subnet
        and vm.power == PowerState.powered_on
    ]  # fmt: skip
