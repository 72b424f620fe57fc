"""The estate and plan model: what a municipality has (estate) and what should happen to it (plan).

All models are frozen and reject unknown fields, so a typo in a plan file is an error, never a
silently ignored setting. Field descriptions become the JSON Schema (`overflyt plan schema`) that
editors and CI use. Cross-references (a VM's site exists, a portgroup is mapped, ...) are checked
in :mod:`overflyt.plan.rules`, not here: this module only knows single objects.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from overflyt.plan.names import check_vm_name

SLUG = r"^[a-z0-9][a-z0-9-]*[a-z0-9]$"
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class Model(BaseModel):
    """Base of every plan object: immutable, and unknown fields are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


Slug = Annotated[str, Field(pattern=SLUG, min_length=2, max_length=63)]
Name = Annotated[str, Field(pattern=NAME, min_length=1, max_length=80)]
NotifyURL = Annotated[str, Field(pattern=r"^(https?://|msteams\+https://|mailto:)\S+$", max_length=2000)]
# A VM's vSphere display name as people see it: any characters vSphere accepts (see overflyt.plan.names)
VMName = Annotated[
    str,
    Field(min_length=1, description="A VM's vSphere display name, exactly as written there (up to 80 characters)."),
    AfterValidator(check_vm_name),
]


class Municipality(Model):
    code: str = Field(pattern=r"^[0-9]{3}$", description="Kommunekode, three digits (Norddjurs: 707).")
    name: str = Field(min_length=1, description="The municipality's name.")


class VaultSecret(Model):
    file: str = Field(min_length=1, description="ansible-vault encrypted YAML file, relative to the plan's directory.")
    key: str = Field(min_length=1, description="Key in that file whose value is the secret.")


class SecretRef(Model):
    """Where a secret comes from at run time. Exactly one source; the secret itself never is here."""

    env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$", description="Environment variable.")
    vault: VaultSecret | None = Field(
        default=None, description="ansible-vault file; its password from OVERFLYT_VAULT_PASSWORD_FILE."
    )
    prefect_block: str | None = Field(default=None, min_length=1, description="Prefect Secret block name.")

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        given = [n for n in ("env", "vault", "prefect_block") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one secret source of env, vault, prefect_block (got {len(given)})")
        return self


class Credential(Model):
    username: str = Field(min_length=1)
    secret: SecretRef


class TLS(Model):
    """How a vCenter's certificate is trusted. Default: the system CA store. `insecure` is an explicit,
    per-endpoint override that every report shows."""

    ca_file: str | None = Field(default=None, description="PEM CA bundle, relative to the plan's directory.")
    thumbprint: str | None = Field(
        default=None,
        pattern=r"^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$",
        description="SHA-256 fingerprint of the server certificate (AA:BB:...).",
    )
    insecure: bool = Field(default=False, description="Skip certificate verification (reported as a warning).")

    @model_validator(mode="after")
    def _insecure_alone(self) -> TLS:
        if self.insecure and (self.ca_file or self.thumbprint):
            raise ValueError("insecure: true cannot be combined with ca_file or thumbprint")
        return self


class VCenterEndpoint(Model):
    name: Slug
    url: str = Field(pattern=r"^https://[^\s/]+(:[0-9]+)?/sdk$", description="https://HOST[:PORT]/sdk")
    credentials: Slug = Field(description="Name of an entry in `credentials`.")
    tls: TLS = TLS()

    @property
    def hostport(self) -> str:
        """HOST[:PORT] of the url."""
        return self.url.removeprefix("https://").removesuffix("/sdk")


class SourceEstate(Model):
    vcenter: VCenterEndpoint
    datacenter: str = Field(min_length=1)
    cluster: str = Field(min_length=1)


class SharedServices(Model):
    """The shared organisation's services that devices are repointed to at cutover."""

    dns: list[IPv4Address] = []
    ntp: list[IPv4Address] = []
    syslog: list[IPv4Address] = []
    dhcp: list[IPv4Address] = []
    aaa: list[IPv4Address] = []


class TargetDatacentre(Model):
    name: str = Field(min_length=1)
    vcenter: VCenterEndpoint
    datacenter: str = Field(min_length=1)
    cluster: str = Field(min_length=1)
    datastores: list[str] = Field(min_length=1)
    vm_folder: str = Field(pattern=r"^[^/].*[^/]$|^[^/]$", description="Folder under the datacenter's vm folder.")
    headroom_pct: int = Field(default=20, ge=0, le=90, description="Capacity kept free after the wave.")
    services: SharedServices = SharedServices()


class SSHSettings(Model):
    known_hosts: str | None = Field(
        default=None,
        description="known_hosts file with every device's key, relative to the plan's directory.",
    )
    insecure_host_keys: list[Name] = Field(
        default=[], description="Devices whose host key is not verified (explicit override, reported)."
    )


class NetworkMapping(Model):
    source: str = Field(min_length=1, description="Source portgroup.")
    target: str = Field(min_length=1, description="Target portgroup in the shared datacentre.")
    vlan: int = Field(ge=1, le=4094, description="Target VLAN id.")
    subnet: IPv4Network = Field(description="The servers' subnet; it moves to the shared datacentre whole.")


class StorageMapping(Model):
    source: str = Field(min_length=1, description="Source datastore.")
    target: str = Field(min_length=1, description="Target datastore (one of target.datastores).")


class SiteKind(StrEnum):
    town_hall = "town_hall"
    school = "school"
    care_centre = "care_centre"
    daycare = "daycare"
    depot = "depot"
    library = "library"
    office = "office"
    datacentre = "datacentre"


def _point_to_point(value: IPv4Network) -> IPv4Network:
    if value.prefixlen not in (30, 31):
        raise ValueError(f"a link subnet must be a /30 or /31, not /{value.prefixlen}")
    return value


class Uplink(Model):
    """The site's existing link to the municipal core: upstream device first address, site second."""

    device: Name = Field(description="The upstream device (hostname).")
    subnet: IPv4Network
    bandwidth_mbps: int = Field(gt=0)

    @field_validator("subnet")
    @classmethod
    def _p2p(cls, value: IPv4Network) -> IPv4Network:
        return _point_to_point(value)


class DCLink(Model):
    """The site's link to the shared datacentre: datacentre core first address, site second."""

    subnet: IPv4Network
    bandwidth_mbps: int = Field(gt=0)

    @field_validator("subnet")
    @classmethod
    def _p2p(cls, value: IPv4Network) -> IPv4Network:
        return _point_to_point(value)


class ProbeSSH(Model):
    """A Linux box at the site (one the team places there, or the site's jump host), reached over
    SSH: the post-check connects from it to each moved server. Its host key must be in the plan's
    `ssh.known_hosts` (as the devices' keys); it needs `python3` and SFTP (Ansible's `script`)."""

    host: Name = Field(description="Address or DNS name overflyt connects to over SSH.")
    port: int = Field(default=22, ge=1, le=65535)
    credentials: Slug = Field(description="Name of an entry in `credentials` (the probe host's login).")


class ProbeGateway(Model):
    """The site's gateway device pings each moved server with the platform's ping module
    (`cisco.ios.ios_ping`), sourced from its LAN interface: proves reachability from the site's
    LAN address, not which side answers."""

    source: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9./:-]{0,63}$",
        description="The ping's source: the gateway's LAN interface (e.g. Vlan100) or its address there.",
    )
    device: Name | None = Field(default=None, description="Default: the site's core/distribution device.")
    count: int = Field(default=3, ge=1, le=20, description="Echo requests per server.")


class SiteProbe(Model):
    """Where the post-check sends real traffic from, as a client of the site would. Exactly one of:

    `netns`: a network namespace on the orchestrator's machine that sits in the site's client LAN
    (the lab's clients); `ssh`: a probe host at the site reached over SSH; `gateway`: the site's
    gateway device's own ping. With `netns` and `ssh` each migrated server address is probed with a
    TCP connection on `port` (its first answered line is shown; the lab's servers name their side).
    """

    netns: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    ssh: ProbeSSH | None = None
    gateway: ProbeGateway | None = None
    port: int = Field(default=7070, ge=1, le=65535)

    @model_validator(mode="after")
    def _exactly_one(self) -> SiteProbe:
        given = [k for k in ("netns", "ssh", "gateway") if getattr(self, k) is not None]
        if len(given) != 1:
            have = ", ".join(given) or "none"
            raise ValueError(f"a site probe takes exactly one of netns, ssh, gateway (given: {have})")
        return self

    @model_serializer(mode="wrap")
    def _unset_ways_left_out(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a probe dumps as the plan says it (a netns probe as before ssh and gateway existed), so a
        # wave's recorded plan fingerprint stays the same
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None or k not in ("netns", "ssh", "gateway")}

    @property
    def via(self) -> str:
        return "netns" if self.netns is not None else "ssh" if self.ssh is not None else "gateway"


class Site(Model):
    id: Slug
    name: str = Field(min_length=1)
    kind: SiteKind
    address_block: IPv4Network = Field(description="The site's client LAN.")
    uplink: Uplink | None = Field(default=None, description="None for the municipal core's own site.")
    dc_link: DCLink
    probe: SiteProbe | None = Field(
        default=None,
        description="Traffic post-check from the site; without it the pre-check warns and the site's "
        "cutover is reported as done with no proof.",
    )


class DeviceRole(StrEnum):
    core = "core"
    distribution = "distribution"
    access = "access"
    firewall = "firewall"


class Platform(StrEnum):
    ios = "ios"
    aoscx = "aoscx"
    frr = "frr"


class NetworkDevice(Model):
    hostname: Name
    site: Slug
    role: DeviceRole
    platform: Platform
    management: IPv4Address = Field(description="Management address overflyt connects to over SSH.")
    port: int = Field(default=22, ge=1, le=65535)
    credentials: Slug = Field(description="Name of an entry in `credentials`.")


class PowerState(StrEnum):
    powered_on = "powered_on"
    powered_off = "powered_off"
    suspended = "suspended"


class ToolsStatus(StrEnum):
    ok = "ok"
    not_running = "not_running"
    not_installed = "not_installed"
    old = "old"


class Criticality(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class VirtualMachine(Model):
    name: VMName
    uuid: UUID | None = None
    site: Slug = Field(description="The site whose cutover moves this VM.")
    host: Name = Field(description="Source ESXi host.")
    datastore: str = Field(min_length=1, description="Source datastore.")
    cpu: int = Field(ge=1, le=768)
    memory_mb: int = Field(ge=4, le=24 * 1024 * 1024)
    disks_gb: list[Annotated[int, Field(gt=0)]] = Field(min_length=1)
    portgroups: list[str] = Field(min_length=1)
    ip: IPv4Address | None = None
    power: PowerState
    tools: ToolsStatus
    app_group: Name | None = None
    criticality: Criticality = Criticality.medium
    depends_on: list[VMName] = []


class MaintenanceWindow(Model):
    """When a wave may run. Times without an offset are local time in `timezone`."""

    start: datetime
    end: datetime
    timezone: str = "Europe/Copenhagen"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindow:
        zone = ZoneInfo(self.timezone)
        start = self.start if self.start.tzinfo else self.start.replace(tzinfo=zone)
        end = self.end if self.end.tzinfo else self.end.replace(tzinfo=zone)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        if end <= start:
            raise ValueError(f"window ends ({end.isoformat()}) before it starts ({start.isoformat()})")
        return self


class Concurrency(Model):
    """How many VM moves run at once: in total into the target vCenter, per source ESXi host, per
    datastore (either end of a move), per site. They hold across concurrent runs too (other
    municipalities moving into the same datacentre): see move slots in the README. ``sites``: how
    many sites of a wave are cut over at once (1: one after another)."""

    global_: int = Field(default=4, ge=1, le=256, alias="global")
    per_host: int = Field(default=2, ge=1, le=64)
    per_datastore: int = Field(default=2, ge=1, le=64)
    per_site: int = Field(default=2, ge=1, le=64)
    sites: int = Field(default=1, ge=1, le=16)


class Timeouts(Model):
    """Hard limits, in seconds, on each step's Ansible run: a step still running at its limit is
    stopped (its process tree ended), reported as timed out, and its site rolled back."""

    precheck_s: int = Field(default=600, ge=10, le=86400)
    backup_s: int = Field(default=300, ge=10, le=86400)
    migrate_s: int = Field(default=3600, ge=10, le=86400, description="All VM moves of one site")
    configure_s: int = Field(default=300, ge=10, le=86400, description="Push and verify one site's devices")
    postcheck_s: int = Field(default=120, ge=10, le=86400)
    restore_s: int = Field(default=600, ge=10, le=86400, description="Each half of a rollback")


class WindowPolicy(Model):
    """What a wave's maintenance window means while the wave runs (a real cutover run without
    `--outside-window`). A site starts only while the window is open and what is left of it holds
    the site's estimate plus `margin_min`; otherwise it is not started (its devices and VMs are not
    touched) and a later run carries on with it. The estimate is the wave planner's: the site's VMs'
    disks across `bandwidth_mbps`, their move batches (the cutover's own batching) at `vm_minutes`
    each, and `site_minutes` for the rest of the site's cutover. A rollback is always allowed
    outside the window: it restores the agreed state."""

    margin_min: float = Field(
        default=15, ge=0, le=1440, description="Minutes kept free at the window's end beyond a site's estimate."
    )
    bandwidth_mbps: float = Field(
        default=1000, gt=0, le=10_000_000, description="Replication bandwidth the estimate assumes, in Mbit/s."
    )
    site_minutes: float = Field(
        default=15,
        ge=0,
        le=1440,
        description="Minutes a site's cutover takes besides its VM moves (backup, push, checks).",
    )
    vm_minutes: float = Field(
        default=5, ge=0, le=1440, description="Minutes each batch of VM moves takes besides its disks."
    )
    on_window_end: Literal["finish", "rollback"] = Field(
        default="finish",
        description="A site under way when the window closes: finish (reported as running over, with the "
        "minutes) or rollback (rolled back when the window closes before its VM moves have finished; checked "
        "before each step of its cutover).",
    )


class Wave(Model):
    number: int = Field(ge=1, description="Waves run in this order.")
    name: str = Field(min_length=1)
    sites: list[Slug] = Field(min_length=1, description="Sites cut over in this wave: their VMs and devices.")
    vms: list[VMName] = Field(
        default=[],
        description="VMs moved in this wave ahead of their own site's wave (a subnet always moves whole).",
    )
    window: MaintenanceWindow


class Plan(Model):
    """A municipality's migration: its estate, where it goes, and the waves that move it."""

    schema_version: Literal[1] = 1
    municipality: Municipality
    credentials: dict[Slug, Credential] = {}
    source: SourceEstate
    target: TargetDatacentre
    ssh: SSHSettings = SSHSettings()
    network_map: list[NetworkMapping] = []
    storage_map: list[StorageMapping] = []
    sites: list[Site] = Field(min_length=1)
    devices: list[NetworkDevice] = []
    vms: list[VirtualMachine] = []
    concurrency: Concurrency = Concurrency()
    rollback: Literal["automatic", "manual"] = Field(
        default="automatic", description="automatic: a failed site is rolled back at once."
    )
    on_site_failure: Literal["continue", "stop"] = Field(
        default="stop", description="Whether a wave goes on with its next site after one fails."
    )
    approval_required: bool = Field(default=True, description="A named person approves before cutover.")
    timeouts: Timeouts = Timeouts()
    window_policy: WindowPolicy = WindowPolicy()
    waves: list[Wave] = Field(min_length=1)
    notify: list[NotifyURL] = Field(
        default=[],
        description="Where `overflyt serve` sends this municipality's notifications (a failed or crashed cutover "
        "or rollback, a rollback that failed, a blocked pre-check, a run waiting for approval), besides its "
        "--notify URLs: http(s)://… (a JSON POST), msteams+https://… (a Teams workflow), mailto:ADDR[,ADDR] "
        "(SendGrid, its key in OVERFLYT_SENDGRID_API_KEY).",
    )

    # Convenience lookups; the rules module guarantees the references they follow exist.
    def site(self, site_id: str) -> Site:
        return next(s for s in self.sites if s.id == site_id)

    def wave(self, number: int) -> Wave:
        return next(w for w in self.waves if w.number == number)

    def vms_of_wave(self, number: int) -> list[VirtualMachine]:
        """The VMs a wave moves: its sites' VMs not pulled forward, plus the VMs it pulls forward."""
        wave = self.wave(number)
        pulled = {name for w in self.waves for name in w.vms}
        return [vm for vm in self.vms if (vm.site in wave.sites and vm.name not in pulled) or vm.name in wave.vms]

    def devices_of_site(self, site_id: str) -> list[NetworkDevice]:
        return [d for d in self.devices if d.site == site_id]

    def vms_of_site(self, site_id: str) -> list[VirtualMachine]:
        return [v for v in self.vms if v.site == site_id]
