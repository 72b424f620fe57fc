"""What the lab looks like, derived from a plan: namespaces, links, addresses, routes, vSphere model.

Pure computation: nothing here touches the machine. :mod:`overflyt.lab.runtime` builds what this
module describes.

Addressing (see lab/README.md for the picture):

* a site's client LAN is its ``address_block``: gateway ``.1``, client namespace ``.10``;
* ``uplink`` /30: the upstream device (the municipal core) has the first host, the site gateway
  the second; ``dc_link`` /30: the shared-datacentre core has the first host, the site gateway the
  second. A site's gateway is its one device with role core or distribution;
* other devices (firewall, access) hang off their site's gateway by a /30 from
  :data:`DEVICE_LINK_POOL`;
* each server subnet (``network_map[].subnet``) exists twice: an origin zone behind its home
  site's gateway (/30 from :data:`ORIGIN_POOL`) and a target zone behind the shared-datacentre core
  (/30 from :data:`TARGET_POOL`). Both zones hold every VM address of the subnet.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from urllib.parse import urlsplit

from overflyt.errors import UsageError
from overflyt.plan import Plan

PREFIX = "ofl-"
DC_CORE = "mj-dc-core"
DEVICE_LINK_POOL = IPv4Network("10.70.251.0/24")
ORIGIN_POOL = IPv4Network("10.70.252.0/24")
TARGET_POOL = IPv4Network("10.255.71.0/24")
RESPONDER_PORT = 7070
SOURCE_VM_FOLDER = "Servere"
TARGET_HOSTS = 4
TARGET_DATASTORE_GB = 20 * 1024
GATEWAY_ROLES = ("core", "distribution")


@dataclass(frozen=True)
class Interface:
    name: str
    address: str  # CIDR, e.g. 10.70.250.10/30
    description: str


@dataclass
class Router:
    """An FRR instance in its own namespace; ``management`` is None for the lab-only DC core."""

    name: str
    namespace: str
    label: str
    management: str | None = None
    port: int | None = None
    interfaces: list[Interface] = field(default_factory=list)
    routes: list[tuple[str, str]] = field(default_factory=list)  # (prefix, next hop)


@dataclass(frozen=True)
class Host:
    """A client or server namespace: one interface, a default route, maybe extra addresses."""

    namespace: str
    address: str  # CIDR on eth0
    gateway: str
    extra: tuple[str, ...] = ()  # /32 addresses on lo (the VMs' addresses in a server zone)


@dataclass(frozen=True)
class Client:
    site: str
    host: Host


@dataclass(frozen=True)
class Zone:
    subnet: str
    side: str  # "source" | "target"
    portgroup: str
    host: Host


@dataclass(frozen=True)
class Link:
    """A veth pair; ``a``/``b`` are (namespace, interface)."""

    a: tuple[str, str]
    b: tuple[str, str]


@dataclass(frozen=True)
class VCenter:
    name: str
    url: str
    address: str  # host:port the simulator listens on
    user: str


@dataclass
class LabSpec:
    routers: list[Router]
    clients: list[Client]
    zones: list[Zone]
    links: list[Link]
    vcenters: list[VCenter]
    vsphere: dict[str, object]  # the simulator's datacenters, as the launcher reads them
    credential_env: dict[str, str]  # vCenter or device name -> env variable of its password
    device_user: str

    @property
    def namespaces(self) -> list[str]:
        return (
            [r.namespace for r in self.routers]
            + [c.host.namespace for c in self.clients]
            + [z.host.namespace for z in self.zones]
        )


def _hosts(net: IPv4Network) -> list[IPv4Address]:
    return list(net.hosts())


def _cidr(address: IPv4Address, net: IPv4Network) -> str:
    return f"{address}/{net.prefixlen}"


def _labels(hostnames: list[str]) -> dict[str, str]:
    """Short, unique labels for namespace and interface names (ndj-kattegat-rtr-01 -> kattegat)."""
    prefix = hostnames[0].split("-")[0] + "-" if hostnames else ""
    if not all(h.startswith(prefix) for h in hostnames):
        prefix = ""
    labels: dict[str, str] = {}
    for h in hostnames:
        label = re.sub(r"(-rtr)?-?\d+$", "", h[len(prefix) :])[:12].strip("-") or "dev"
        base, n = label, 2
        while label in labels.values() or label == "dc-core":
            label = f"{base[:10]}{n}"
            n += 1
        labels[h] = label
    return labels


def _loopback_listener(url: str, what: str) -> str:
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 443
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UsageError(f"{what} url {url}: the lab only serves vCenters on loopback (127.0.0.0/8) addresses")
    return f"{host}:{port}"


def _supernet(nets: list[IPv4Network]) -> IPv4Network:
    net = nets[0]
    while not all(n.subnet_of(net) for n in nets):
        net = net.supernet()
    return net


def _env_of(plan: Plan, credentials: str) -> str | None:
    cred = plan.credentials.get(credentials)
    return cred.secret.env if cred is not None else None


def build_spec(plan: Plan) -> LabSpec:
    """The lab for ``plan``. Raises UsageError when the plan has no lab shape (e.g. no site gateway)."""
    labels = _labels([d.hostname for d in plan.devices])
    routers: dict[str, Router] = {}
    for d in plan.devices:
        if not d.management.is_loopback:
            raise UsageError(
                f"device {d.hostname}: management address {d.management} is not on loopback; "
                "the lab's management plane only uses 127.0.0.0/8"
            )
        label = labels[d.hostname]
        routers[d.hostname] = Router(d.hostname, PREFIX + label, label, str(d.management), d.port)
    dc = Router(DC_CORE, PREFIX + "dc-core", "dc-core")

    gateways: dict[str, Router] = {}
    for site in plan.sites:
        found = [routers[d.hostname] for d in plan.devices if d.site == site.id and d.role.value in GATEWAY_ROLES]
        if len(found) != 1:
            raise UsageError(
                f"site {site.id}: the lab needs exactly one device with role core or distribution "
                f"(its gateway), found {len(found)}"
            )
        gateways[site.id] = found[0]

    links: list[Link] = []

    def connect(a: Router, a_addr: str, b: Router, b_addr: str, a_desc: str, b_desc: str) -> None:
        a.interfaces.append(Interface(f"to-{b.label}", a_addr, a_desc))
        b.interfaces.append(Interface(f"to-{a.label}", b_addr, b_desc))
        links.append(Link((a.namespace, f"to-{b.label}"), (b.namespace, f"to-{a.label}")))

    clients: list[Client] = []
    interconnect: IPv4Address | None = None
    for site in plan.sites:
        gw = gateways[site.id]
        lan = site.address_block
        lan_hosts = _hosts(lan)
        gw.interfaces.append(Interface("lan", _cidr(lan_hosts[0], lan), f"client LAN {site.id}"))
        ns = f"{PREFIX}cl-{site.id}"
        clients.append(Client(site.id, Host(ns, _cidr(lan_hosts[9], lan), str(lan_hosts[0]))))
        links.append(Link((gw.namespace, "lan"), (ns, "eth0")))
        dc_first, dc_second = _hosts(site.dc_link.subnet)[:2]
        net = site.dc_link.subnet
        connect(dc, _cidr(dc_first, net), gw, _cidr(dc_second, net), f"dc_link {site.id}", f"dc_link {DC_CORE}")
        dc.routes.append((str(lan), str(dc_second)))
        if site.uplink is None:
            interconnect = dc_second
            continue
        up = routers.get(site.uplink.device)
        if up is None:
            raise UsageError(f"site {site.id}: uplink device {site.uplink.device} is not a device of the plan")
        first, second = _hosts(site.uplink.subnet)[:2]
        net = site.uplink.subnet
        connect(up, _cidr(first, net), gw, _cidr(second, net), f"uplink {site.id}", f"uplink {up.name}")
        up.routes.append((str(lan), str(second)))
        gw.routes.append(("0.0.0.0/0", str(first)))

    # Firewall and access devices: real routers on a /30 to their site's gateway.
    pool = DEVICE_LINK_POOL.subnets(new_prefix=30)
    for d in plan.devices:
        r = routers[d.hostname]
        if d.role.value in GATEWAY_ROLES:
            continue
        gw = gateways[d.site]
        net = next(pool)
        first, second = _hosts(net)
        connect(gw, _cidr(first, net), r, _cidr(second, net), f"{d.role.value} {d.hostname}", f"to {gw.name}")
        r.routes.append(("0.0.0.0/0", str(first)))

    # Server subnets: origin zone behind the home gateway, target zone behind the DC core.
    zones: list[Zone] = []
    origin_pool = ORIGIN_POOL.subnets(new_prefix=30)
    target_pool = TARGET_POOL.subnets(new_prefix=30)
    site_by_id = {s.id: s for s in plan.sites}
    for m in plan.network_map:
        vms = [vm for vm in plan.vms if m.source in vm.portgroups]
        addresses = tuple(f"{vm.ip}/32" for vm in vms if vm.ip is not None and vm.ip in m.subnet)
        home_site = (
            Counter(vm.site for vm in vms).most_common(1)[0][0]
            if vms
            else next(s.id for s in plan.sites if s.uplink is None)
        )
        home = gateways[home_site]
        iface = f"z-{m.subnet.network_address}"
        for side, router, net in (("source", home, next(origin_pool)), ("target", dc, next(target_pool))):
            first, second = _hosts(net)
            ns = f"{PREFIX}{'src' if side == 'source' else 'tgt'}-{m.subnet.network_address}"
            router.interfaces.append(Interface(iface, _cidr(first, net), f"{side} servers {m.subnet}"))
            router.routes.append((str(m.subnet), str(second)))
            links.append(Link((router.namespace, iface), (ns, "eth0")))
            portgroup = m.source if side == "source" else m.target
            zones.append(Zone(str(m.subnet), side, portgroup, Host(ns, _cidr(second, net), str(first), addresses)))
        # Every upstream device routes the subnet towards its home gateway.
        uplink = site_by_id[home_site].uplink
        if uplink is not None:
            routers[uplink.device].routes.append((str(m.subnet), str(_hosts(uplink.subnet)[1])))

    if interconnect is None:
        raise UsageError("the plan has no site without uplink (the municipal core's site); the lab needs one")
    municipal = [s.address_block for s in plan.sites] + [m.subnet for m in plan.network_map]
    municipal += [s.uplink.subnet for s in plan.sites if s.uplink] + [DEVICE_LINK_POOL, ORIGIN_POOL]
    dc.routes.append((str(_supernet(municipal)), str(interconnect)))

    vcenters = []
    for endpoint in (plan.source.vcenter, plan.target.vcenter):
        cred = plan.credentials.get(endpoint.credentials)
        if cred is None:
            raise UsageError(f"vcenter {endpoint.name}: credentials {endpoint.credentials!r} not in the plan")
        address = _loopback_listener(endpoint.url, f"vcenter {endpoint.name}")
        vcenters.append(VCenter(endpoint.name, endpoint.url, address, cred.username))
    if vcenters[0].address == vcenters[1].address:
        raise UsageError("the plan's source and target vCenter share one address; the lab needs two")

    credential_env = {
        v.name: _env_of(plan, e.credentials)
        for v, e in zip(vcenters, (plan.source.vcenter, plan.target.vcenter), strict=True)
    }
    users = {plan.credentials[d.credentials].username for d in plan.devices if d.credentials in plan.credentials}
    if len(users) > 1:
        raise UsageError(f"the lab's devices share one login; the plan's devices use several: {sorted(users)}")
    for d in plan.devices:
        credential_env.setdefault("network", _env_of(plan, d.credentials))
    return LabSpec(
        routers=[*routers.values(), dc],
        clients=clients,
        zones=zones,
        links=links,
        vcenters=vcenters,
        vsphere={"datacenters": _vsphere(plan)},
        credential_env={k: v for k, v in credential_env.items() if v},
        device_user=users.pop() if users else "overflyt",
    )


def _vsphere(plan: Plan) -> list[dict[str, object]]:
    """The simulator's two datacenters: the municipality's, full, and the shared one, empty."""
    disk_gb: Counter[str] = Counter()
    for vm in plan.vms:
        disk_gb[vm.datastore] += sum(vm.disks_gb)
    source: dict[str, object] = {
        "name": plan.source.datacenter,
        "cluster": plan.source.cluster,
        "switch": f"{plan.source.datacenter}-DSwitch",
        "hosts": sorted({vm.host for vm in plan.vms}),
        # room for the VMs and then some (2 TB or a third again, whichever is more)
        "datastores": [
            {"name": ds, "capacity_gb": max(2048, -(-gb * 4 // 3 // 512) * 512)} for ds, gb in sorted(disk_gb.items())
        ],
        "portgroups": [m.source for m in plan.network_map],
        "folders": [SOURCE_VM_FOLDER],
        "vms": [
            {
                "name": vm.name,
                "host": vm.host,
                "datastore": vm.datastore,
                "folder": SOURCE_VM_FOLDER,
                "cpu": vm.cpu,
                "memory_mb": vm.memory_mb,
                "disks_gb": list(vm.disks_gb),
                "portgroups": list(vm.portgroups),
                "power": vm.power.value,
                "tools": vm.tools.value,
                "ip": str(vm.ip) if vm.ip else "",
            }
            for vm in plan.vms
        ],
    }
    prefix = plan.target.vcenter.name.split("-")[0]
    target: dict[str, object] = {
        "name": plan.target.datacenter,
        "cluster": plan.target.cluster,
        "switch": f"{plan.target.datacenter}-DSwitch",
        "hosts": [f"{prefix}-esx{n:02d}" for n in range(1, TARGET_HOSTS + 1)],
        "datastores": [{"name": ds, "capacity_gb": TARGET_DATASTORE_GB} for ds in plan.target.datastores],
        "portgroups": [m.target for m in plan.network_map],
        "folders": [plan.target.vm_folder],
        "vms": [],
    }
    return [source, target]
