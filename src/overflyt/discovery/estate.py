"""The as-is estate: what a municipality has today, before anything moves.

An estate file records the municipality's vCenters, physical hosts, sites, server portgroups,
virtual machines, network devices and access points. Discovery writes it (``overflyt discover``); a person
may write or correct it; :mod:`overflyt.planning.waves` turns it into a proposed plan. It is the other
side of the plan (:mod:`overflyt.plan.model`): the plan says what should happen, the estate says
what is there. The two share their vocabulary (site kinds, uplinks, power states, device roles and
platforms) so a plan can be written from an estate without translation.

``load_estate`` reads an estate file (YAML) and raises :class:`EstateInvalid` listing every problem
found, each as ``FILE:LINE: FIELD: REASON (value: ...)`` like plan errors; ``validate_estate``
checks what single objects cannot know about each other (references, duplicates, overlapping
networks); ``dump_estate`` writes an estate back as YAML.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator, Sequence
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, IPvAnyInterface, ValidationError, field_validator

from overflyt.errors import EXIT_BAD_INPUT, OverflytError, PlanIssue
from overflyt.plan.loader import YamlDocument, dotted, read_yaml, show_value
from overflyt.plan.model import (
    Criticality,
    DeviceRole,
    Municipality,
    Name,
    Platform,
    PowerState,
    SiteKind,
    Slug,
    ToolsStatus,
    VMName,
)
from overflyt.plan.rules import Problem

log = logging.getLogger(__name__)

PathKey = tuple[str | int, ...]


class Model(BaseModel):
    """Base of every estate object: immutable, and unknown fields are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# A national estate holds tens of thousands of addresses; the ipaddress module parses a dotted quad
# in Python. These parse the canonical forms in C (inet_pton takes exactly four decimal octets
# without leading zeros, as ipaddress does) and leave anything else to pydantic and its messages.


def _fast_address(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return IPv4Address(socket.inet_pton(socket.AF_INET, value))
        except OSError:
            return value
    return value


def _fast_network(value: Any) -> Any:
    if isinstance(value, str):
        address, _, prefix = value.partition("/")
        if prefix.isdigit() and str(int(prefix)) == prefix and int(prefix) <= 32:
            try:
                packed = socket.inet_pton(socket.AF_INET, address)
                return IPv4Network((int.from_bytes(packed, "big"), int(prefix)))
            except (OSError, ValueError):
                return value
    return value


Address = Annotated[IPv4Address, BeforeValidator(_fast_address)]
Network = Annotated[IPv4Network, BeforeValidator(_fast_network)]


class VCenter(Model):
    name: Slug
    url: str = Field(pattern=r"^https://[^\s/]+(:[0-9]+)?/sdk$", description="https://HOST[:PORT]/sdk")
    datacenter: str = Field(min_length=1, description="The datacenter that holds the municipality's VMs.")
    cluster: str = Field(min_length=1, description="The cluster that holds the municipality's VMs.")


class Host(Model):
    """A physical ESXi host, in the server room of one site."""

    name: Name
    vcenter: Slug = Field(description="The vCenter that manages it (one of `vcenters`).")
    site: Slug = Field(description="The site whose server room it stands in; its VMs move with that site.")
    cpu_cores: int = Field(ge=1, le=1024)
    memory_mb: int = Field(ge=1024)


class Uplink(Model):
    """The site's link to the municipal core: upstream device first address, site second."""

    device: Name = Field(description="The upstream device (hostname).")
    subnet: Network
    bandwidth_mbps: int = Field(gt=0)

    @field_validator("subnet")
    @classmethod
    def _point_to_point(cls, value: IPv4Network) -> IPv4Network:
        if value.prefixlen not in (30, 31):
            raise ValueError(f"a link subnet must be a /30 or /31, not /{value.prefixlen}")
        return value


class Site(Model):
    id: Slug
    name: str = Field(min_length=1)
    kind: SiteKind
    address_block: Network = Field(description="The site's client LAN.")
    uplink: Uplink | None = Field(default=None, description="None for the municipal core's own site.")
    # Names, not objects: a country has ~150,000 of them and nothing plans with more than their count.
    access_points: list[Name] = Field(default=[], description="The site's wireless access points, by name.")


class Portgroup(Model):
    """A server network: the VMs on it share one subnet, which moves to the datacentre whole."""

    name: str = Field(min_length=1)
    vlan: int | None = Field(default=None, ge=1, le=4094)
    subnet: Network


class VirtualMachine(Model):
    name: VMName
    uuid: UUID | None = None
    host: Name = Field(description="The ESXi host it runs on (one of `hosts`); its site is the VM's site.")
    datastore: str = Field(min_length=1, description="Its home datastore.")
    folder: str = Field(default="", description="VM folder below the datacenter's vm folder; empty for the root.")
    cpu: int = Field(ge=1, le=768)
    memory_mb: int = Field(ge=4, le=24 * 1024 * 1024)
    disks_gb: list[Annotated[int, Field(gt=0)]] = Field(min_length=1)
    portgroups: list[str] = Field(min_length=1, description="Portgroups of its NICs (each one of `portgroups`).")
    ip: Address | None = None
    power: PowerState
    tools: ToolsStatus = Field(default=ToolsStatus.ok, description="As vCenter last reported it.")
    role: str | None = Field(
        default=None,
        min_length=1,
        description="What the VM is for (ad, dns, dhcp, ntp, sql, file, ...). The planner moves shared "
        "services (ad, dns, dhcp, ntp by default) first; `tags` count too.",
    )
    tags: list[str] = Field(default=[], description="vSphere tags or labels.")
    app_group: Name | None = Field(default=None, description="Application group; a group moves in one wave.")
    criticality: Criticality = Criticality.medium
    depends_on: list[VMName] = Field(default=[], description="VMs it needs; they never move after it.")


class DeviceInterface(Model):
    """One interface as the device listed it (FRR: ``show interface brief``)."""

    name: str = Field(min_length=1)
    state: Literal["up", "down"]
    addresses: list[IPvAnyInterface] = Field(
        default=[], description="Its addresses with prefix length (FRR lists each subnet's primary address)."
    )


class NetworkDevice(Model):
    hostname: Name
    site: Slug
    role: DeviceRole
    platform: Platform
    management: Address = Field(description="Management address (SSH).")
    port: int = Field(default=22, ge=1, le=65535)
    # As-is fields `overflyt discover devices` fills in (None: not discovered).
    version: str | None = Field(default=None, min_length=1, description="Software version the device reports.")
    interfaces: list[DeviceInterface] | None = Field(default=None, description="Its interfaces, as discovered.")
    config_sha256: str | None = Field(
        default=None,
        pattern="^[0-9a-f]{64}$",
        description="sha256 of its running configuration without volatile lines (overflyt.discovery.devices).",
    )


class Estate(Model):
    """One municipality's estate as it is."""

    schema_version: Literal[1] = 1
    municipality: Municipality
    vcenters: list[VCenter] = []
    hosts: list[Host] = []
    sites: list[Site] = Field(min_length=1)
    portgroups: list[Portgroup] = []
    vms: list[VirtualMachine] = []
    devices: list[NetworkDevice] = []


class EstateInvalid(OverflytError):
    """The estate file cannot be used; every issue found is listed (exit 2)."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, issues: Sequence[PlanIssue]) -> None:
        self.issues = tuple(issues)
        count = len(self.issues)
        head = f"estate invalid: {count} error{'s' if count != 1 else ''}"
        super().__init__("\n".join([head, *(f"  {issue}" for issue in self.issues)]))


# -- whole-estate rules ----------------------------------------------------------------------------


def validate_estate(estate: Estate) -> list[Problem]:
    """Every problem of the estate as a whole (references, duplicates, overlaps); empty when usable."""
    return [*_unique(estate), *_references(estate), *_addresses(estate)]


def _unique(estate: Estate) -> Iterator[Problem]:
    collections: list[tuple[str, str, Sequence[Any]]] = [
        ("vcenters", "name", estate.vcenters),
        ("hosts", "name", estate.hosts),
        ("sites", "id", estate.sites),
        ("portgroups", "name", estate.portgroups),
        ("vms", "name", estate.vms),
        ("devices", "hostname", estate.devices),
    ]
    for collection, key, items in collections:
        seen: set[str] = set()
        for i, item in enumerate(items):
            name = str(getattr(item, key))
            if name in seen:
                yield Problem((collection, i, key), "given twice (already used above)", name)
            seen.add(name)
    access_points: set[str] = set()
    for i, site in enumerate(estate.sites):
        for j, ap in enumerate(site.access_points):
            if ap in access_points:
                yield Problem(("sites", i, "access_points", j), "access point given twice (already used above)", ap)
            access_points.add(ap)
    ips: dict[str, str] = {}
    for i, vm in enumerate(estate.vms):
        if vm.ip is not None:
            other = ips.setdefault(str(vm.ip), vm.name)
            if other != vm.name:
                yield Problem(("vms", i, "ip"), f"same address as VM {other}", str(vm.ip))
    endpoints: dict[tuple[str, int], str] = {}
    for i, device in enumerate(estate.devices):
        other = endpoints.setdefault((str(device.management), device.port), device.hostname)
        if other != device.hostname:
            yield Problem(
                ("devices", i, "management"),
                f"same management address and port as device {other}",
                f"{device.management}:{device.port}",
            )


def _references(estate: Estate) -> Iterator[Problem]:
    vcenters = {v.name for v in estate.vcenters}
    hosts = {h.name for h in estate.hosts}
    sites = {s.id for s in estate.sites}
    portgroups = {p.name: p for p in estate.portgroups}
    vms = {v.name for v in estate.vms}
    devices = {d.hostname for d in estate.devices}
    for i, host in enumerate(estate.hosts):
        if host.vcenter not in vcenters:
            yield Problem(("hosts", i, "vcenter"), "unknown vCenter", host.vcenter)
        if host.site not in sites:
            yield Problem(("hosts", i, "site"), "unknown site", host.site)
    for i, site in enumerate(estate.sites):
        if site.uplink and site.uplink.device not in devices:
            yield Problem(("sites", i, "uplink", "device"), "unknown device", site.uplink.device)
    for i, vm in enumerate(estate.vms):
        if vm.host not in hosts:
            yield Problem(("vms", i, "host"), "unknown host", vm.host)
        for j, pg in enumerate(vm.portgroups):
            if pg not in portgroups:
                yield Problem(("vms", i, "portgroups", j), "unknown portgroup", pg)
        for j, dep in enumerate(vm.depends_on):
            if dep == vm.name:
                yield Problem(("vms", i, "depends_on", j), "a VM cannot depend on itself", dep)
            elif dep not in vms:
                yield Problem(("vms", i, "depends_on", j), "depends on an unknown VM", dep)
        if vm.ip is not None:
            subnets = [portgroups[pg].subnet for pg in vm.portgroups if pg in portgroups]
            if subnets and not any(vm.ip in s for s in subnets):
                yield Problem(
                    ("vms", i, "ip"),
                    f"address is outside its portgroups' subnets ({', '.join(map(str, subnets))})",
                    str(vm.ip),
                )
    for i, device in enumerate(estate.devices):
        if device.site not in sites:
            yield Problem(("devices", i, "site"), "unknown site", device.site)


def _addresses(estate: Estate) -> Iterator[Problem]:
    """Site LANs, uplinks and server subnets must not overlap; each overlapping pair is reported on
    the one later in the file. CIDR blocks are nested or apart, so a sorted sweep with a stack of
    the blocks still open finds every pair without comparing all with all."""
    named: list[tuple[PathKey, str, IPv4Network]] = []
    for i, site in enumerate(estate.sites):
        named.append((("sites", i, "address_block"), f"site {site.id}'s address_block", site.address_block))
        if site.uplink:
            named.append((("sites", i, "uplink", "subnet"), f"site {site.id}'s uplink", site.uplink.subnet))
    for i, pg in enumerate(estate.portgroups):
        named.append((("portgroups", i, "subnet"), f"portgroup {pg.name}'s subnet", pg.subnet))
    spans = [(int(net.network_address), int(net.broadcast_address)) for _, _, net in named]
    order = sorted(range(len(named)), key=lambda k: (spans[k][0], -spans[k][1], k))
    found: list[tuple[int, int, Problem]] = []
    open_blocks: list[int] = []
    for k in order:
        while open_blocks and spans[open_blocks[-1]][1] < spans[k][0]:
            open_blocks.pop()
        for other in open_blocks:  # every block still open contains this one
            later, earlier = max(k, other), min(k, other)
            reason = f"overlaps {named[earlier][1]} ({named[earlier][2]})"
            found.append((later, earlier, Problem(named[later][0], reason, str(named[later][2]))))
        open_blocks.append(k)
    for _, _, problem in sorted(found, key=lambda f: (f[0], f[1])):
        yield problem


# -- reading and writing ---------------------------------------------------------------------------

_REASONS = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown field (docs/planner.md lists the fields of an estate)",
}

_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load_estate(path: str | Path) -> Estate:
    """Read, parse and check an estate file; :class:`EstateInvalid` lists every problem found."""
    estate_path = Path(path)
    doc = read_yaml(estate_path, "an estate file", EstateInvalid)
    shown, data = doc.file, doc.data
    if not isinstance(data, dict):
        raise EstateInvalid([PlanIssue(shown, "", "an estate must be a YAML mapping (key: value) at the top", 1)])
    try:
        estate = Estate.model_validate(data)
    except ValidationError as exc:
        issues = [_schema_issue(doc, err) for err in exc.errors(include_url=False)]
        raise EstateInvalid(sorted(issues, key=_order)) from None
    problems = validate_estate(estate)
    if problems:
        raise EstateInvalid(sorted((_problem_issue(doc, p) for p in problems), key=_order))
    log.debug(
        "loaded estate %s: %d sites, %d hosts, %d VMs, %d devices, %d access points",
        shown,
        len(estate.sites),
        len(estate.hosts),
        len(estate.vms),
        len(estate.devices),
        sum(len(s.access_points) for s in estate.sites),
    )
    return estate


def dump_estate(estate: Estate) -> str:
    """The estate as YAML that :func:`load_estate` reads back to an equal estate."""
    data = {"schema_version": estate.schema_version, **estate.model_dump(mode="json", exclude_defaults=True)}
    text: str = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    return text


def _order(issue: PlanIssue) -> tuple[int, str]:
    return (issue.line or 0, issue.path)


def _schema_issue(doc: YamlDocument, err: Any) -> PlanIssue:
    loc: PathKey = tuple(p for p in err["loc"] if p != "[key]")
    kind = err["type"]
    reason = _REASONS.get(kind, str(err["msg"]).removeprefix("Value error, "))
    value = err["input"]
    shown = None if kind in ("missing", "extra_forbidden") or isinstance(value, dict | list) else show_value(value)
    return PlanIssue(doc.file, dotted(loc), reason, doc.line_of(loc), shown)


def _problem_issue(doc: YamlDocument, problem: Problem) -> PlanIssue:
    value = None if problem.value is None else show_value(problem.value)
    return PlanIssue(doc.file, dotted(problem.path), problem.reason, doc.line_of(problem.path), value)
