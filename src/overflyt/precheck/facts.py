"""What overflyt observed of the real estate: the as-is side, separate from the plan's to-be side.

Facts are gathered read-only (from vCenter by the vSphere provider, from devices by Ansible in
check mode) and judged by the pre-check rules. They are plain data: JSON-serialisable, frozen,
and never carry a secret.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Facts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


TLSMode = Literal["verified", "thumbprint", "insecure"]


class VMFacts(Facts):
    name: str
    moid: str
    uuid: str | None = None
    datacenter: str
    cluster: str | None = None
    host: str
    folder: str  # path below the datacenter's vm folder, "" for the root
    datastores: list[str]  # every datastore the VM's files live on, first = its home
    cpu: int
    memory_mb: int
    disks_gb: list[int]
    portgroups: list[str]
    power: Literal["powered_on", "powered_off", "suspended"]
    tools: Literal["ok", "not_running", "not_installed", "old"]
    snapshots: list[str] = []  # snapshot names, depth-first
    connected_media: list[str] = []  # CD-ROM / floppy devices connected or connecting at power on
    shared_disks: list[str] = []  # RDM or multi-writer / shared-bus disks: cannot be relocated
    passthrough: list[str] = []  # USB, serial, parallel, PCI passthrough devices


class HostFacts(Facts):
    name: str
    datacenter: str
    cluster: str | None = None
    connected: bool
    maintenance: bool
    cpu_cores: int
    cpu_mhz: int  # total capacity
    cpu_used_mhz: int
    memory_mb: int  # total capacity
    memory_used_mb: int


class ClusterFacts(Facts):
    name: str
    datacenter: str
    hosts: list[str]
    cpu_cores: int
    memory_mb: int
    allocated_vcpu: int  # sum of the vCPUs of the VMs that live in it
    allocated_memory_mb: int


class DatastoreFacts(Facts):
    name: str
    datacenter: str
    capacity_gb: float
    free_gb: float


class PortgroupFacts(Facts):
    name: str
    datacenter: str
    vlan: int | None = None


class VCenterFacts(Facts):
    """One vCenter as seen through its API; `error` is set (and the rest empty) when unreachable."""

    name: str
    url: str
    reachable: bool
    error: str | None = None
    # The endpoint answered but refused the credentials (`reachable` may be True or False then);
    # `error` holds the reason. Pre-check rule vcenter.login.
    login_failed: bool = False
    tls: TLSMode | None = None
    # SHA-256 fingerprint (AA:BB:...) of the certificate the endpoint presented, so a person can pin
    # it (`tls.thumbprint`) instead of an insecure override.
    certificate_sha256: str | None = None
    version: str | None = None
    instance_uuid: str | None = None
    vms: dict[str, VMFacts] = {}
    # The VM names a scoped read asked for (None: every VM was read). Scoped, `vms` holds only the
    # VMs of those names and `clusters`' allocated CPU and memory count only them.
    vms_read: list[str] | None = None
    hosts: dict[str, HostFacts] = {}
    clusters: dict[str, ClusterFacts] = {}
    datastores: dict[str, DatastoreFacts] = {}
    portgroups: dict[str, PortgroupFacts] = {}
    folders: dict[str, list[str]] = {}  # datacenter -> VM folder paths below its vm folder


HostKeyState = Literal["match", "unknown", "changed", "not_checked", "insecure_override"]


class DeviceFacts(Facts):
    """One network device as seen over SSH."""

    hostname: str
    address: str
    port: int
    reachable: bool
    error: str | None = None
    host_key: HostKeyState = "not_checked"
    # Fingerprint of the key the device presented ("SHA256:..."), so a person can verify it.
    host_key_fingerprint: str | None = None
    login: bool = False
    platform: str | None = None  # what the device says it is: ios, aoscx, frr
    version: str | None = None
    running_config_sha256: str | None = None
    backup_file: str | None = None  # path inside the run record


class EstateFacts(Facts):
    """Everything one pre-check run observed."""

    source: VCenterFacts | None = None
    target: VCenterFacts | None = None
    devices: dict[str, DeviceFacts] = {}
