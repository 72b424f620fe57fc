"""The vSphere provider's data: how to reach a vCenter and where a VM is or should go.

Plain pydantic models (frozen, ``extra="forbid"``), no pyVmomi: what the rest of overflyt may
import to speak about placements (``overflyt.steps`` reads the VM roles' reports as
:class:`Placement`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from overflyt.errors import MigrationStepFailed
from overflyt.precheck.facts import TLSMode

DEFAULT_TIMEOUT_S = 15.0

PowerState = Literal["powered_on", "powered_off", "suspended"]
ToolsState = Literal["ok", "not_running", "not_installed", "old"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VCenterConnection(_Model):
    """How to reach and trust one vCenter. Field names match the generated inventory's
    ``overflyt_vcenters.source|target`` so ``VCenterConnection(**that)`` works.

    Trust: ``ca_file`` verifies the chain against that CA (only) and the hostname; ``thumbprint``
    accepts only the certificate with that SHA-256 fingerprint (both given: both must hold);
    ``insecure`` verifies nothing; none of them: the system CA store and the hostname.
    """

    name: str = Field(min_length=1)
    hostname: str = Field(min_length=1)
    port: int = Field(default=443, ge=1, le=65535)
    username: str = Field(min_length=1)
    password: SecretStr
    ca_file: str | None = None
    thumbprint: str | None = Field(default=None, pattern=r"^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$")
    insecure: bool = False
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, le=600)

    @field_validator("thumbprint")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else value

    @model_validator(mode="after")
    def _insecure_alone(self) -> VCenterConnection:
        if self.insecure and (self.ca_file or self.thumbprint):
            raise ValueError("insecure: true cannot be combined with ca_file or thumbprint")
        return self

    @property
    def url(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"https://{host}:{self.port}/sdk"

    @property
    def where(self) -> str:
        return f"vCenter {self.name} ({self.url})"

    @property
    def tls(self) -> TLSMode:
        if self.insecure:
            return "insecure"
        return "thumbprint" if self.thumbprint and not self.ca_file else "verified"


class Placement(_Model):
    """Where a VM is: enough to put it back exactly there."""

    vm: str
    moid: str
    datacenter: str
    cluster: str | None
    host: str
    datastore: str  # home datastore
    folder: str  # below the datacenter's vm folder, "" for its root
    portgroups: list[str]  # one per NIC, in device key order
    power: PowerState

    def same_place(self, other: Placement) -> bool:
        """Same datacenter, cluster, host, datastore, folder and NIC portgroups (power aside)."""
        fields = ("datacenter", "cluster", "host", "datastore", "folder", "portgroups")
        return all(getattr(self, f) == getattr(other, f) for f in fields)

    def describe(self) -> str:
        return (
            f"{self.datacenter}/{self.cluster or '-'}/{self.host}, datastore {self.datastore}, "
            f"folder {self.folder or '/'}, portgroups {', '.join(self.portgroups) or '-'}"
        )


class RelocationTarget(_Model):
    """Where a VM should go. NICs follow ``nics`` (one portgroup per NIC, in device key order) when
    given, else ``portgroups`` (current portgroup -> target portgroup)."""

    datacenter: str = Field(min_length=1)
    cluster: str = Field(min_length=1)
    host: str = Field(min_length=1)
    datastore: str = Field(min_length=1)
    folder: str = ""
    portgroups: dict[str, str] = {}
    nics: list[str] | None = None

    @classmethod
    def from_placement(cls, placement: Placement) -> RelocationTarget:
        """The target that puts a VM back to ``placement`` (rollback)."""
        if placement.cluster is None:
            raise MigrationStepFailed(f"vm {placement.vm}: its host {placement.host} is in no cluster")
        return cls(
            datacenter=placement.datacenter,
            cluster=placement.cluster,
            host=placement.host,
            datastore=placement.datastore,
            folder=placement.folder,
            nics=list(placement.portgroups),
        )


class RelocationResult(_Model):
    vm: str
    changed: bool
    dry_run: bool = False
    cross_vcenter: bool = False
    before: Placement
    after: Placement
    message: str
    duration_s: float = 0.0
    task: str | None = None


class PowerResult(_Model):
    vm: str
    changed: bool
    dry_run: bool = False
    before: PowerState
    after: PowerState
    message: str
