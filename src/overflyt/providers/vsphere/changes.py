"""The vSphere provider: the only module of overflyt that imports pyVmomi.

Public surface:

* :func:`connect` / :func:`disconnect` (or ``with connect(...) as session``) — one logged-in
  session on one vCenter, trusted the way its :class:`VCenterConnection` says (CA file, SHA-256
  pin, system CA store or an explicit insecure override), failing closed;
* :func:`gather_facts` (and :func:`collect_facts`, which connects and never raises for an
  unreachable endpoint) — the read-only :class:`~overflyt.precheck.facts.VCenterFacts` of some datacenters,
  read in bulk with the PropertyCollector: one ContainerView per datacenter and one paged
  ``RetrievePropertiesEx`` for every object of every type;
* :func:`vm_placement`, :func:`relocate_vm`, :func:`set_power`, :func:`ensure_folder`,
  :func:`destroy_vm` — the migration primitives of a wave and of its rollback.

Every pyVmomi, socket and TLS error is translated here: :class:`~overflyt.errors.ProviderUnreachable`
(one sentence naming the endpoint and the reason; never a secret) for connectivity, TLS and login,
:class:`~overflyt.errors.MigrationStepFailed` for a refused or failed change.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import math
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pyVim import connect as _pyvim_connect
from pyVmomi import vim as _vim
from pyVmomi import vmodl as _vmodl

from overflyt.errors import MigrationStepFailed, OverflytError, ProviderUnreachable
from overflyt.precheck.facts import (
    ClusterFacts,
    DatastoreFacts,
    HostFacts,
    PortgroupFacts,
    TLSMode,
    VCenterFacts,
    VMFacts,
)

log = logging.getLogger(__name__)

# pyVmomi's dynamic types are Any to the type checker; this module is where they stay.
vim: Any = _vim
vmodl: Any = _vmodl
SmartConnect: Any = _pyvim_connect.SmartConnect
Disconnect: Any = _pyvim_connect.Disconnect

DEFAULT_TIMEOUT_S = 15.0
TASK_TIMEOUT_S = 3600.0
PAGE_SIZE = 500  # objects per RetrievePropertiesEx page

PowerState = Literal["powered_on", "powered_off", "suspended"]
ToolsState = Literal["ok", "not_running", "not_installed", "old"]
Progress = Callable[[int], None]

_POWER: dict[str, PowerState] = {
    "poweredOn": "powered_on",
    "poweredOff": "powered_off",
    "suspended": "suspended",
}
_TOOLS_OLD = {"guestToolsNeedUpgrade", "guestToolsTooOld", "guestToolsSupportedOld", "guestToolsBlacklisted"}
# OpenSSL verify codes (X509_V_ERR_*) that mean "not issued by a CA we trust".
_UNKNOWN_CA = {2, 18, 19, 20, 21, 27}
_HOST_MISMATCH = {62, 64}
_PC = vmodl.query.PropertyCollector


class LoginFailed(ProviderUnreachable):
    """The vCenter answered but refused the credentials (vim.fault.InvalidLogin)."""


# -- connection -----------------------------------------------------------------------------------


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


def _fingerprint(der: bytes, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm, der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


class _FingerprintMismatch(ssl.SSLError):
    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"certificate fingerprint mismatch (expected {expected}, got {actual})")
        self.expected = expected
        self.actual = actual


class _Socket(ssl.SSLSocket):
    """Every TLS connection of a session: bounded by the timeout, pin checked after the handshake."""

    def do_handshake(self, block: bool = False) -> None:
        context = self.context
        if not isinstance(context, _Context):  # pragma: no cover - only _Context creates us
            raise ssl.SSLError("overflyt TLS socket created outside its context")
        if self.gettimeout() is None:
            self.settimeout(context.timeout_s)
        super().do_handshake(block)
        der = self.getpeercert(binary_form=True)
        if der is None:
            raise ssl.SSLError("the server presented no certificate")
        context.peer_der = der
        if context.pin is not None:
            actual = _fingerprint(der)
            if actual != context.pin:
                raise _FingerprintMismatch(context.pin, actual)


class _Context(ssl.SSLContext):
    """An SSL context that also pins a SHA-256 fingerprint on every connection it makes (not only
    when chain verification fails, as pyVmomi's own ``thumbprint`` does), bounds every handshake
    and read by the endpoint's timeout and remembers the last peer certificate."""

    sslsocket_class = _Socket
    pin: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    peer_der: bytes | None = None


def _context(endpoint: VCenterConnection) -> _Context:
    context = _Context(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.timeout_s = endpoint.timeout_s
    if endpoint.insecure or (endpoint.thumbprint and not endpoint.ca_file):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif endpoint.ca_file:
        try:
            context.load_verify_locations(cafile=endpoint.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ProviderUnreachable(
                f"{endpoint.where}: cannot read its CA file {endpoint.ca_file}: {_os_reason(exc)}"
            ) from exc
    else:
        context.load_default_certs()
    context.pin = endpoint.thumbprint
    return context


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower() if exc.strerror[:1].isupper() and exc.strerror[1:2].islower() else exc.strerror
    return str(exc) or type(exc).__name__


def _tls_reason(exc: ssl.SSLCertVerificationError, endpoint: VCenterConnection) -> str:
    code = exc.verify_code
    detail = exc.verify_message or exc.reason or str(exc)
    if code in _HOST_MISMATCH:
        return f"hostname mismatch: the certificate is not valid for {endpoint.hostname} ({detail})"
    if code in _UNKNOWN_CA:
        store = f"CA file {endpoint.ca_file}" if endpoint.ca_file else "the system CA store"
        return f"unknown CA: the certificate is not issued by a CA in {store} ({detail})"
    if code == 10:
        return f"the certificate has expired ({detail})"
    return str(detail)


def _handshake(endpoint: VCenterConnection, context: _Context) -> bytes:
    """Connect and complete the TLS handshake once, before any credentials leave this machine."""
    where = endpoint.where
    try:
        with (
            socket.create_connection((endpoint.hostname, endpoint.port), timeout=endpoint.timeout_s) as raw,
            context.wrap_socket(raw, server_hostname=endpoint.hostname) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except _FingerprintMismatch as exc:
        raise ProviderUnreachable(
            f"{where}: TLS verification failed: fingerprint mismatch (expected {exc.expected}, got {exc.actual})"
        ) from exc
    except ssl.SSLCertVerificationError as exc:
        raise ProviderUnreachable(f"{where}: TLS verification failed: {_tls_reason(exc, endpoint)}") from exc
    except ssl.SSLError as exc:
        raise ProviderUnreachable(f"{where}: TLS handshake failed: {exc.reason or exc}") from exc
    except ConnectionRefusedError as exc:
        raise ProviderUnreachable(f"{where}: connection refused") from exc
    except TimeoutError as exc:
        raise ProviderUnreachable(f"{where}: no answer within {endpoint.timeout_s:g} s") from exc
    except socket.gaierror as exc:
        raise ProviderUnreachable(f"{where}: cannot resolve {endpoint.hostname}: {exc.strerror}") from exc
    except OSError as exc:
        raise ProviderUnreachable(f"{where}: cannot connect: {_os_reason(exc)}") from exc
    if der is None:
        raise ProviderUnreachable(f"{where}: TLS verification failed: the server presented no certificate")
    return der


class VSphereSession:
    """A logged-in session on one vCenter. Use as a context manager or call :func:`disconnect`."""

    def __init__(self, endpoint: VCenterConnection, si: Any, content: Any, certificate: bytes) -> None:
        self.endpoint = endpoint
        self.si = si
        self.content = content
        self.certificate_sha256 = _fingerprint(certificate)
        self.certificate_sha1 = _fingerprint(certificate, "sha1")
        self.closed = False

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def tls(self) -> TLSMode:
        return self.endpoint.tls

    @property
    def version(self) -> str:
        return str(self.content.about.version)

    @property
    def instance_uuid(self) -> str:
        return str(self.content.about.instanceUuid)

    def __enter__(self) -> VSphereSession:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        disconnect(self)

    def __repr__(self) -> str:
        return f"VSphereSession({self.name!r}, {self.url!r}, tls={self.tls!r})"


def connect(endpoint: VCenterConnection) -> VSphereSession:
    """Log in to ``endpoint``. Raises ProviderUnreachable (LoginFailed for refused credentials)."""
    where = endpoint.where
    if endpoint.insecure:
        log.warning("%s: TLS certificate NOT verified (explicit insecure override)", where)
    context = _context(endpoint)
    certificate = _handshake(endpoint, context)
    try:
        si = SmartConnect(
            host=endpoint.hostname,
            port=endpoint.port,
            user=endpoint.username,
            pwd=endpoint.password.get_secret_value(),
            sslContext=context,
            httpConnectionTimeout=endpoint.timeout_s,
        )
        content = si.RetrieveContent()
    except vim.fault.InvalidLogin as exc:
        raise LoginFailed(f"{where}: login failed for user {endpoint.username}: {exc.msg}") from exc
    except _FingerprintMismatch as exc:
        raise ProviderUnreachable(
            f"{where}: TLS verification failed: fingerprint mismatch (expected {exc.expected}, got {exc.actual})"
        ) from exc
    except ssl.SSLCertVerificationError as exc:
        raise ProviderUnreachable(f"{where}: TLS verification failed: {_tls_reason(exc, endpoint)}") from exc
    except TimeoutError as exc:
        raise ProviderUnreachable(f"{where}: no answer within {endpoint.timeout_s:g} s") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise ProviderUnreachable(f"{where}: connection failed: {_os_reason(exc)}") from exc
    except vmodl.MethodFault as exc:
        raise ProviderUnreachable(f"{where}: vCenter refused the session: {_fault(exc)}") from exc
    except Exception as exc:  # pyVim raises a plain Exception for "not a VIM server"
        raise ProviderUnreachable(f"{where}: not a vSphere API endpoint: {exc}") from exc
    session = VSphereSession(endpoint, si, content, context.peer_der or certificate)
    log.info("%s: logged in as %s (vCenter %s, TLS %s)", where, endpoint.username, session.version, session.tls)
    return session


def disconnect(session: VSphereSession) -> None:
    """Log out; errors on the way out are logged, not raised."""
    if session.closed:
        return
    session.closed = True
    try:
        Disconnect(session.si)
    except (vmodl.MethodFault, OSError, http.client.HTTPException) as exc:
        log.info("%s: logout failed (%s); the session expires on its own", session.endpoint.where, exc)


def _fault(exc: BaseException) -> str:
    msg = getattr(exc, "msg", None) or getattr(exc, "localizedMessage", None)
    return f"{type(exc).__name__.rsplit('.', 1)[-1]}: {msg}" if msg else type(exc).__name__.rsplit(".", 1)[-1]


@contextmanager
def _boundary(
    session: VSphereSession, doing: str, refused: type[OverflytError] = ProviderUnreachable
) -> Iterator[None]:
    """Translate what pyVmomi and the network raise while ``doing`` something on ``session``."""
    where = session.endpoint.where
    try:
        yield
    except vim.fault.NotAuthenticated as exc:
        raise ProviderUnreachable(f"{where}: the session is no longer logged in while {doing}") from exc
    except TimeoutError as exc:
        raise ProviderUnreachable(f"{where}: no answer within {session.endpoint.timeout_s:g} s while {doing}") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise ProviderUnreachable(f"{where}: connection lost while {doing}: {_os_reason(exc)}") from exc
    except vmodl.MethodFault as exc:
        raise refused(f"{where}: vCenter refused {doing}: {_fault(exc)}") from exc


# -- bulk reads -----------------------------------------------------------------------------------


@dataclass
class _Obj:
    ref: Any
    props: dict[str, Any]

    @property
    def moid(self) -> str:
        return str(self.ref._GetMoId())

    @property
    def kind(self) -> str:
        return str(self.ref._wsdlName)

    @property
    def name(self) -> str:
        return str(self.props.get("name", self.moid))

    def get(self, path: str, default: Any = None) -> Any:
        value = self.props.get(path)
        return default if value is None else value

    def parent(self) -> str | None:
        parent = self.props.get("parent")
        return str(parent._GetMoId()) if parent is not None else None


def _retrieve(session: VSphereSession, objects: list[Any], props: list[Any]) -> list[_Obj]:
    """One paged RetrievePropertiesEx (plus ContinueRetrievePropertiesEx per further page)."""
    collector = session.content.propertyCollector
    spec = _PC.FilterSpec(objectSet=objects, propSet=props)
    result = collector.RetrievePropertiesEx(specSet=[spec], options=_PC.RetrieveOptions(maxObjects=PAGE_SIZE))
    found: list[_Obj] = []
    while result is not None:
        for content in result.objects or []:
            found.append(_Obj(content.obj, {p.name: p.val for p in content.propSet or []}))
        if not result.token:
            break
        result = collector.ContinueRetrievePropertiesEx(token=result.token)
    return found


def _in_views(session: VSphereSession, containers: list[Any], paths: dict[Any, list[str]]) -> list[_Obj]:
    """Every object below each container whose type is a key of ``paths`` (a subtype's extra
    properties may be given under the subtype), read in one paged call through ContainerViews."""
    if not containers:
        return []
    manager = session.content.viewManager
    kinds = [kind for kind in paths if not any(kind is not other and issubclass(kind, other) for other in paths)]
    views = [manager.CreateContainerView(container, kinds, True) for container in containers]
    try:
        traverse = _PC.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)
        objects = [_PC.ObjectSpec(obj=view, skip=True, selectSet=[traverse]) for view in views]
        props = [_PC.PropertySpec(type=kind, pathSet=list(p)) for kind, p in paths.items()]
        return _retrieve(session, objects, props)
    finally:
        for view in views:
            try:
                view.DestroyView()
            except (vmodl.MethodFault, OSError, http.client.HTTPException) as exc:
                log.debug("DestroyView failed: %s", exc)


def _one(session: VSphereSession, ref: Any, paths: list[str]) -> _Obj:
    objects = _retrieve(
        session, [_PC.ObjectSpec(obj=ref, skip=False)], [_PC.PropertySpec(type=type(ref), pathSet=paths)]
    )
    return objects[0] if objects else _Obj(ref, {})


_VM_PLACE = [
    "name",
    "parent",
    "config.template",
    "config.files.vmPathName",
    "config.hardware.device",
    "datastore",
    "runtime.host",
    "runtime.powerState",
]
_VM_FACTS = [
    *_VM_PLACE,
    "config.uuid",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "guest.toolsRunningStatus",
    "guest.toolsStatus",
    "guest.toolsVersionStatus2",
    "snapshot",
]
_HOST = ["name", "parent", "runtime.connectionState", "runtime.inMaintenanceMode"]
_HOST_FACTS = [*_HOST, "summary.hardware", "summary.quickStats", "config.network.portgroup"]


def _paths(vm: list[str], host: list[str]) -> dict[Any, list[str]]:
    return {
        vim.VirtualMachine: vm,
        vim.HostSystem: host,
        vim.ComputeResource: ["name", "parent", "resourcePool"],
        vim.Datastore: ["name", "parent", "summary.capacity", "summary.freeSpace"],
        vim.Network: ["name", "parent"],
        vim.dvs.DistributedVirtualPortgroup: ["key", "config.distributedVirtualSwitch", "config.defaultPortConfig"],
        vim.DistributedVirtualSwitch: ["name", "parent", "uuid", "config.uplinkPortgroup"],
        vim.Folder: ["name", "parent"],
    }


class _Inventory:
    """The objects of some datacenters, with the name lookups every function here needs."""

    def __init__(self, datacenters: list[_Obj], objects: list[_Obj]) -> None:
        self.datacenters = {dc.moid: dc for dc in datacenters}
        self.objects = {o.moid: o for o in objects}
        self.vm_roots = {str(dc.props["vmFolder"]._GetMoId()): dc.name for dc in datacenters}
        self._dc: dict[str, str | None] = {}
        self.pg_by_key = {
            str(o.props["key"]): o for o in objects if o.kind == "DistributedVirtualPortgroup" and "key" in o.props
        }

    def of(self, kind: str) -> list[_Obj]:
        return [o for o in self.objects.values() if o.kind == kind]

    def vms(self) -> list[_Obj]:
        """The VMs (not templates) that live in one of the datacenters read: a view may also list a
        VM whose folder is in another datacenter (vcsim keeps a moved VM in its old resource pool)."""
        return [
            o
            for o in self.of("VirtualMachine")
            if not o.get("config.template", False) and self.datacenter(o) is not None
        ]

    def datacenter(self, obj: _Obj) -> str | None:
        """The datacenter an object lives in (walking up its parents)."""
        chain: list[str] = []
        moid: str | None = obj.moid
        found: str | None = None
        while moid is not None:
            if moid in self._dc:
                found = self._dc[moid]
                break
            if moid in self.datacenters:
                found = self.datacenters[moid].name
                break
            chain.append(moid)
            parent = self.objects.get(moid)
            moid = parent.parent() if parent is not None else None
        for seen in chain:
            self._dc[seen] = found
        return found

    def folder_path(self, folder_moid: str | None) -> str | None:
        """Path of a VM folder below its datacenter's vm folder ("" for that folder), None if not one."""
        parts: list[str] = []
        moid = folder_moid
        while moid is not None:
            if moid in self.vm_roots:
                return "/".join(reversed(parts))
            folder = self.objects.get(moid)
            if folder is None or folder.kind != "Folder":
                return None
            parts.append(folder.name)
            moid = folder.parent()
        return None

    def name(self, ref: Any) -> str | None:
        if ref is None:
            return None
        obj = self.objects.get(str(ref._GetMoId()))
        return obj.name if obj is not None else None

    def cluster_of_host(self, host: _Obj | None) -> _Obj | None:
        parent = self.objects.get(host.parent() or "") if host is not None else None
        return parent if parent is not None and parent.kind == "ClusterComputeResource" else None

    def nic_portgroup(self, nic: Any) -> str:
        backing = nic.backing
        if isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
            key = str(backing.port.portgroupKey) if backing.port is not None else ""
            pg = self.pg_by_key.get(key)
            return pg.name if pg is not None else key
        if isinstance(backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo):
            return self.name(backing.network) or str(backing.deviceName or "")
        if isinstance(backing, vim.vm.device.VirtualEthernetCard.OpaqueNetworkBackingInfo):
            return f"opaque:{backing.opaqueNetworkId}"
        return str(getattr(backing, "deviceName", "") or "")

    def named(self, kind: str, name: str, datacenter: str) -> _Obj | None:
        for obj in self.objects.values():
            if (obj.kind == kind or (kind == "Network" and obj.kind == "DistributedVirtualPortgroup")) and (
                obj.name == name and self.datacenter(obj) == datacenter
            ):
                return obj
        return None


def _datacenters(session: VSphereSession, names: list[str] | None) -> list[_Obj]:
    found = _in_views(session, [session.content.rootFolder], {vim.Datacenter: ["name", "vmFolder", "parent"]})
    return [dc for dc in found if names is None or dc.name in names]


def _inventory(session: VSphereSession, names: list[str] | None, vm: list[str], host: list[str]) -> _Inventory:
    dcs = _datacenters(session, names)
    return _Inventory(dcs, _in_views(session, [dc.ref for dc in dcs], _paths(vm, host)))


# -- facts ----------------------------------------------------------------------------------------


def _tools(running: str | None, status: str | None, version: str | None) -> ToolsState:
    """guest.toolsRunningStatus / toolsStatus / toolsVersionStatus2 -> one word.

    Not installed wins, then too old, then not running (a powered-off VM's tools never run);
    vcsim 0.24 reports toolsNotInstalled / guestToolsNotRunning for every VM, so the lab's VMs
    read as not_installed.
    """
    if status == "toolsNotInstalled" or version == "guestToolsNotInstalled":
        return "not_installed"
    if status == "toolsOld" or version in _TOOLS_OLD:
        return "old"
    if running != "guestToolsRunning" or status == "toolsNotRunning":
        return "not_running"
    return "ok"


def _disk_gb(disk: Any) -> int:
    size = disk.capacityInBytes or (disk.capacityInKB or 0) * 1024
    return math.ceil(size / 2**30)


def _home_datastore(vm: _Obj, inv: _Inventory) -> list[str]:
    names = [n for n in (inv.name(ref) for ref in vm.get("datastore", [])) if n]
    path = str(vm.get("config.files.vmPathName", ""))
    home = path[1 : path.index("]")] if path.startswith("[") and "]" in path else None
    # vcsim 0.24 does not move config.files on relocation: trust the path only when it still agrees
    if home in names:
        names.remove(home)
        names.insert(0, home)
    return names


def _nics(devices: list[Any]) -> list[Any]:
    return sorted((d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)), key=lambda d: d.key)


def _label(device: Any) -> str:
    info = device.deviceInfo
    return str(info.label) if info is not None and info.label else f"{type(device).__name__} {device.key}"


def _devices_of_concern(devices: list[Any]) -> tuple[list[str], list[str], list[str]]:
    """(connected media, shared disks, passthrough devices) of a VM's device list."""
    media: list[str] = []
    shared: list[str] = []
    passthrough: list[str] = []
    shared_bus = {
        d.key
        for d in devices
        if isinstance(d, vim.vm.device.VirtualSCSIController) and d.sharedBus not in (None, "noSharing")
    }
    for d in devices:
        if isinstance(d, vim.vm.device.VirtualCdrom | vim.vm.device.VirtualFloppy):
            connectable = d.connectable
            connected = connectable is not None and (connectable.connected or connectable.startConnected)
            backing = d.backing
            source = getattr(backing, "fileName", None) or getattr(backing, "deviceName", None)
            if connected and backing is not None:
                media.append(f"{_label(d)}: {source}" if source else _label(d))
        elif isinstance(d, vim.vm.device.VirtualDisk):
            backing = d.backing
            reasons = []
            if isinstance(backing, vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo):
                reasons.append(f"RDM {backing.compatibilityMode or ''}".strip())
            sharing = getattr(backing, "sharing", None)
            if sharing not in (None, "sharingNone"):
                reasons.append(str(sharing))
            if d.controllerKey in shared_bus:
                reasons.append("shared SCSI bus")
            if reasons:
                shared.append(f"{_label(d)} ({', '.join(reasons)})")
        elif isinstance(
            d,
            vim.vm.device.VirtualUSB
            | vim.vm.device.VirtualSerialPort
            | vim.vm.device.VirtualParallelPort
            | vim.vm.device.VirtualPCIPassthrough,
        ):
            passthrough.append(_label(d))
    return media, shared, passthrough


def _snapshots(snapshot: Any) -> list[str]:
    names: list[str] = []

    def walk(trees: list[Any]) -> None:
        for tree in trees or []:
            names.append(str(tree.name))
            walk(tree.childSnapshotList)

    if snapshot is not None:
        walk(snapshot.rootSnapshotList)
    return names


def _key(mapping: dict[str, Any], name: str, datacenter: str, moid: str) -> str:
    """Objects are keyed by name; a name seen before (another datacenter or folder) gets qualified."""
    for key in (name, f"{datacenter}/{name}", f"{datacenter}/{name}#{moid}"):
        if key not in mapping:
            return key
    return moid


def _placement(vm: _Obj, inv: _Inventory) -> Placement:
    host = inv.objects.get(str(vm.props["runtime.host"]._GetMoId())) if vm.get("runtime.host") else None
    cluster = inv.cluster_of_host(host)
    datastores = _home_datastore(vm, inv)
    return Placement(
        vm=vm.name,
        moid=vm.moid,
        datacenter=inv.datacenter(vm) or "",
        cluster=cluster.name if cluster is not None else None,
        host=host.name if host is not None else "",
        datastore=datastores[0] if datastores else "",
        folder=inv.folder_path(vm.parent()) or "",
        portgroups=[inv.nic_portgroup(nic) for nic in _nics(vm.get("config.hardware.device", []))],
        power=_POWER.get(str(vm.get("runtime.powerState")), "powered_off"),
    )


def gather_facts(session: VSphereSession, datacenters: list[str]) -> VCenterFacts:
    """Read-only facts of ``datacenters`` (all datacenters when empty) in a fixed number of calls.

    Every datacenter found appears in ``folders`` (possibly with an empty list), so a missing one is
    visible. Objects are keyed by name; a name already taken (e.g. ``VM Network`` in two datacenters)
    is keyed ``<datacenter>/<name>``. Templates are not VMs here.
    """
    started = time.monotonic()
    with _boundary(session, "reading the inventory"):
        inv = _inventory(session, datacenters or None, _VM_FACTS, _HOST_FACTS)
    facts = _facts(session, inv)
    log.info(
        "%s: facts of %d VMs, %d hosts in %.2f s",
        session.endpoint.where,
        len(facts.vms),
        len(facts.hosts),
        time.monotonic() - started,
    )
    return facts


def _facts(session: VSphereSession, inv: _Inventory) -> VCenterFacts:
    hosts: dict[str, HostFacts] = {}
    host_of: dict[str, HostFacts] = {}
    vlans: dict[tuple[str, str], int] = {}
    for h in inv.of("HostSystem"):
        hw = h.get("summary.hardware")
        stats = h.get("summary.quickStats")
        cluster = inv.cluster_of_host(h)
        dc = inv.datacenter(h) or ""
        cores = int(hw.numCpuCores or 0) if hw is not None else 0
        facts = HostFacts(
            name=h.name,
            datacenter=dc,
            cluster=cluster.name if cluster is not None else None,
            connected=h.get("runtime.connectionState") == "connected",
            maintenance=bool(h.get("runtime.inMaintenanceMode", False)),
            cpu_cores=cores,
            cpu_mhz=cores * int(hw.cpuMhz or 0) if hw is not None else 0,
            cpu_used_mhz=int(stats.overallCpuUsage or 0) if stats is not None else 0,
            memory_mb=int(hw.memorySize or 0) // 2**20 if hw is not None else 0,
            memory_used_mb=int(stats.overallMemoryUsage or 0) if stats is not None else 0,
        )
        hosts[_key(hosts, h.name, dc, h.moid)] = facts
        host_of[h.moid] = facts
        for pg in h.get("config.network.portgroup", []):
            if pg.spec is not None and pg.spec.vlanId:
                vlans.setdefault((dc, str(pg.spec.name)), int(pg.spec.vlanId))

    vms: dict[str, VMFacts] = {}
    allocated: dict[str, list[int]] = {}
    for vm in inv.vms():
        place = _placement(vm, inv)
        devices = vm.get("config.hardware.device", [])
        media, shared, passthrough = _devices_of_concern(devices)
        cpu = int(vm.get("config.hardware.numCPU", 0))
        memory = int(vm.get("config.hardware.memoryMB", 0))
        vms[_key(vms, vm.name, place.datacenter, vm.moid)] = VMFacts(
            name=vm.name,
            moid=vm.moid,
            uuid=vm.get("config.uuid"),
            datacenter=place.datacenter,
            cluster=place.cluster,
            host=place.host,
            folder=place.folder,
            datastores=_home_datastore(vm, inv),
            cpu=cpu,
            memory_mb=memory,
            disks_gb=[_disk_gb(d) for d in devices if isinstance(d, vim.vm.device.VirtualDisk)],
            portgroups=place.portgroups,
            power=place.power,
            tools=_tools(
                vm.get("guest.toolsRunningStatus"), vm.get("guest.toolsStatus"), vm.get("guest.toolsVersionStatus2")
            ),
            snapshots=_snapshots(vm.get("snapshot")),
            connected_media=media,
            shared_disks=shared,
            passthrough=passthrough,
        )
        host = inv.objects.get(str(vm.props["runtime.host"]._GetMoId())) if vm.get("runtime.host") else None
        cluster = inv.cluster_of_host(host)
        if cluster is not None:
            totals = allocated.setdefault(cluster.moid, [0, 0])
            totals[0] += cpu
            totals[1] += memory

    clusters: dict[str, ClusterFacts] = {}
    for c in inv.of("ClusterComputeResource"):
        members = [host_of[h.moid] for h in inv.of("HostSystem") if h.parent() == c.moid and h.moid in host_of]
        dc = inv.datacenter(c) or ""
        cpu, memory = allocated.get(c.moid, [0, 0])
        clusters[_key(clusters, c.name, dc, c.moid)] = ClusterFacts(
            name=c.name,
            datacenter=dc,
            hosts=sorted(h.name for h in members),
            cpu_cores=sum(h.cpu_cores for h in members),
            memory_mb=sum(h.memory_mb for h in members),
            allocated_vcpu=cpu,
            allocated_memory_mb=memory,
        )

    datastores: dict[str, DatastoreFacts] = {}
    for ds in inv.of("Datastore"):
        dc = inv.datacenter(ds) or ""
        datastores[_key(datastores, ds.name, dc, ds.moid)] = DatastoreFacts(
            name=ds.name,
            datacenter=dc,
            capacity_gb=round(int(ds.get("summary.capacity", 0)) / 2**30, 1),
            free_gb=round(int(ds.get("summary.freeSpace", 0)) / 2**30, 1),
        )

    portgroups: dict[str, PortgroupFacts] = {}
    for net in sorted(inv.of("Network") + inv.of("DistributedVirtualPortgroup"), key=lambda o: o.name):
        dc = inv.datacenter(net) or ""
        vlan = _dvpg_vlan(net.get("config.defaultPortConfig")) if net.kind != "Network" else vlans.get((dc, net.name))
        if net.kind == "DistributedVirtualPortgroup" and _is_uplink(net, inv):
            continue
        portgroups[_key(portgroups, net.name, dc, net.moid)] = PortgroupFacts(name=net.name, datacenter=dc, vlan=vlan)

    folders: dict[str, list[str]] = {dc.name: [] for dc in inv.datacenters.values()}
    for f in inv.of("Folder"):
        path = inv.folder_path(f.moid)
        folder_dc = inv.datacenter(f)
        if path and folder_dc is not None:
            folders.setdefault(folder_dc, []).append(path)
    for paths in folders.values():
        paths.sort()

    about = session.content.about
    return VCenterFacts(
        name=session.name,
        url=session.url,
        reachable=True,
        tls=session.tls,
        certificate_sha256=session.certificate_sha256,
        version=str(about.version),
        instance_uuid=str(about.instanceUuid),
        vms=vms,
        hosts=hosts,
        clusters=clusters,
        datastores=datastores,
        portgroups=portgroups,
        folders=folders,
    )


def _dvpg_vlan(setting: Any) -> int | None:
    """The VLAN of a distributed portgroup: its VLAN id; None for none (0), trunks and PVLANs."""
    vlan = getattr(setting, "vlan", None)
    if isinstance(vlan, vim.dvs.VmwareDistributedVirtualSwitch.VlanIdSpec) and vlan.vlanId:
        return int(vlan.vlanId)
    return None


def _is_uplink(pg: _Obj, inv: _Inventory) -> bool:
    """A distributed switch's uplink portgroup is not a network VMs connect to."""
    for switch in inv.of("VmwareDistributedVirtualSwitch") + inv.of("DistributedVirtualSwitch"):
        uplinks = switch.get("config.uplinkPortgroup", [])
        if any(ref._GetMoId() == pg.moid for ref in uplinks):
            return True
    return False


def collect_facts(endpoint: VCenterConnection, datacenters: list[str]) -> VCenterFacts:
    """Connect, gather, disconnect; an unreachable endpoint or refused login becomes facts with
    ``reachable`` false (or ``login_failed``) and ``error`` set, never an exception."""
    try:
        with connect(endpoint) as session:
            return gather_facts(session, datacenters)
    except LoginFailed as exc:
        return VCenterFacts(
            name=endpoint.name, url=endpoint.url, reachable=True, login_failed=True, error=str(exc), tls=endpoint.tls
        )
    except ProviderUnreachable as exc:
        return VCenterFacts(name=endpoint.name, url=endpoint.url, reachable=False, error=str(exc))


# -- placement and migration ----------------------------------------------------------------------


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


def _find_vm(session: VSphereSession, vm: str, datacenter: str | None) -> tuple[_Inventory, _Obj] | None:
    """The VM of that name (in that datacenter, or anywhere), with the inventory around it."""
    inv = _inventory(session, [datacenter] if datacenter else None, ["name", "parent", "config.template"], _HOST)
    found = [o for o in inv.vms() if o.name == vm]
    if not found:
        return None
    if len(found) > 1:
        where = ", ".join(f"{inv.datacenter(o)}/{inv.folder_path(o.parent())} ({o.moid})" for o in found)
        raise MigrationStepFailed(f"vm {vm}: {len(found)} VMs of that name in {session.endpoint.where}: {where}")
    full = _one(session, found[0].ref, _VM_PLACE)
    inv.objects[full.moid] = full
    return inv, full


def vm_placement(session: VSphereSession, vm: str, *, datacenter: str | None = None) -> Placement:
    """Where VM ``vm`` is now. Raises MigrationStepFailed when there is none (or more than one)."""
    with _boundary(session, f"reading the placement of vm {vm}"):
        found = _find_vm(session, vm, datacenter)
    if found is None:
        scope = f"datacenter {datacenter}" if datacenter else "any datacenter"
        raise MigrationStepFailed(f"vm {vm}: not found in {scope} of {session.endpoint.where}")
    inv, obj = found
    return _placement(obj, inv)


def _wait(session: VSphereSession, task: Any, doing: str, timeout_s: float, progress: Progress | None) -> Any:
    """Wait for a vCenter task; its failure or a timeout (task then cancelled) is MigrationStepFailed."""
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    last: int | None = None
    while True:
        info = _one(session, task, ["info.state", "info.progress", "info.error", "info.result"])
        state = info.get("info.state")
        if state == "success":
            if progress is not None and last != 100:
                progress(100)
            return info.get("info.result")
        if state == "error":
            error = info.get("info.error")
            reason = (getattr(error, "localizedMessage", None) or _fault(error.fault)) if error else "unknown error"
            raise MigrationStepFailed(f"{session.endpoint.where}: {doing} failed: {reason}")
        percent = info.get("info.progress")
        if progress is not None and percent is not None and percent != last:
            last = int(percent)
            progress(last)
        if time.monotonic() > deadline:
            try:
                task.CancelTask()
                cancelled = "cancelled"
            except vmodl.MethodFault as exc:
                cancelled = f"could not be cancelled: {_fault(exc)}"
            raise MigrationStepFailed(
                f"{session.endpoint.where}: {doing} did not finish within {timeout_s:g} s "
                f"(task {task._GetMoId()} {cancelled})"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


@dataclass
class _Resolved:
    host: _Obj
    pool: Any
    datastore: _Obj
    folder: Any
    networks: list[_Obj]
    dvs_uuid: dict[str, str]


def _resolve(session: VSphereSession, inv: _Inventory, target: RelocationTarget, nics: list[str]) -> _Resolved:
    where = f"{session.endpoint.where}, datacenter {target.datacenter}"
    if target.datacenter not in {dc.name for dc in inv.datacenters.values()}:
        raise MigrationStepFailed(f"{session.endpoint.where}: no datacenter {target.datacenter}")
    cluster = inv.named("ClusterComputeResource", target.cluster, target.datacenter)
    if cluster is None:
        raise MigrationStepFailed(f"{where}: no cluster {target.cluster}")
    host = inv.named("HostSystem", target.host, target.datacenter)
    if host is None or host.parent() != cluster.moid:
        raise MigrationStepFailed(f"{where}: no host {target.host} in cluster {target.cluster}")
    datastore = inv.named("Datastore", target.datastore, target.datacenter)
    if datastore is None:
        raise MigrationStepFailed(f"{where}: no datastore {target.datastore}")
    folder = next(
        (
            f
            for f in inv.of("Folder")
            if inv.folder_path(f.moid) == target.folder and inv.datacenter(f) == target.datacenter
        ),
        None,
    )
    root = next(dc for dc in inv.datacenters.values() if dc.name == target.datacenter).props["vmFolder"]
    if folder is None and target.folder:
        raise MigrationStepFailed(f"{where}: no VM folder {target.folder} (ensure_folder creates it)")
    networks = []
    for name in nics:
        network = inv.named("Network", name, target.datacenter)
        if network is None:
            raise MigrationStepFailed(f"{where}: no portgroup {name}")
        networks.append(network)
    dvs_uuid = {o.moid: str(o.props["uuid"]) for o in inv.objects.values() if "uuid" in o.props}
    return _Resolved(host, cluster.props["resourcePool"], datastore, folder.ref if folder else root, networks, dvs_uuid)


def _target_nics(vm: str, current: list[str], target: RelocationTarget) -> list[str]:
    if target.nics is not None:
        if len(target.nics) != len(current):
            raise MigrationStepFailed(
                f"vm {vm}: has {len(current)} NICs, the target names portgroups for {len(target.nics)}"
            )
        return list(target.nics)
    wanted = []
    for pg in current:
        if pg in target.portgroups:
            wanted.append(target.portgroups[pg])
        elif not target.portgroups or pg in target.portgroups.values():
            wanted.append(pg)
        else:
            raise MigrationStepFailed(f"vm {vm}: a NIC is on portgroup {pg}, which the network map does not map")
    return wanted


def _nic_changes(devices: list[Any], resolved: _Resolved) -> list[Any]:
    """Device edits that put each NIC (in key order) on its resolved network; unchanged NICs left out."""
    changes = []
    for nic, network in zip(_nics(devices), resolved.networks, strict=True):
        if network.kind == "DistributedVirtualPortgroup":
            switch = network.props["config.distributedVirtualSwitch"]
            backing: Any = vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
                port=vim.dvs.PortConnection(
                    portgroupKey=network.props["key"], switchUuid=resolved.dvs_uuid.get(str(switch._GetMoId()))
                )
            )
            old = nic.backing
            if (
                isinstance(old, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo)
                and old.port is not None
                and old.port.portgroupKey == network.props["key"]
            ):
                continue
        else:
            backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(network=network.ref, deviceName=network.name)
            old = nic.backing
            if (
                isinstance(old, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo)
                and old.network is not None
                and old.network._GetMoId() == network.moid
            ):
                continue
        nic.backing = backing
        changes.append(
            vim.vm.device.VirtualDeviceSpec(operation=vim.vm.device.VirtualDeviceSpec.Operation.edit, device=nic)
        )
    return changes


def relocate_vm(
    session: VSphereSession,
    vm: str,
    source_datacenter: str,
    target: RelocationTarget,
    *,
    target_session: VSphereSession | None = None,
    dry_run: bool = False,
    timeout_s: float = TASK_TIMEOUT_S,
    progress: Progress | None = None,
) -> RelocationResult:
    """Move VM ``vm`` (in ``source_datacenter`` of ``session``'s vCenter) to ``target``.

    ``target_session`` is the target vCenter (default: the same one); when it is another vCenter
    (other instance UUID or URL) the spec carries a ServiceLocator for a cross-vCenter vMotion.
    Idempotent: a VM already at the target is left alone (``changed`` false). ``dry_run`` resolves
    everything and reports the move it would make without making it. After the task the placement
    is read again; NICs still on their old portgroup (vcsim 0.24 ignores a RelocateSpec's
    deviceChange) are moved with a reconfigure, and any other difference is MigrationStepFailed.
    """
    started = time.monotonic()
    dest = target_session or session
    cross = dest is not session and (dest.instance_uuid != session.instance_uuid or dest.url != session.url)
    with _boundary(session, f"looking up vm {vm}", MigrationStepFailed):
        found = _find_vm(session, vm, source_datacenter)
    if found is None:  # not in the source any more: a rerun after the move?
        with _boundary(dest, f"looking up vm {vm}", MigrationStepFailed):
            found = _find_vm(dest, vm, target.datacenter)
        if found is None:
            raise MigrationStepFailed(
                f"vm {vm}: not found in datacenter {source_datacenter} of {session.endpoint.where} "
                f"nor in datacenter {target.datacenter} of {dest.endpoint.where}"
            )
        where_vm = dest
    else:
        where_vm = session
    inv, obj = found
    before = _placement(obj, inv)
    nics = _target_nics(vm, before.portgroups, target)
    with _boundary(dest, f"resolving the target of vm {vm}", MigrationStepFailed):
        tinv = (
            inv
            if dest is where_vm and target.datacenter == before.datacenter
            else _inventory(dest, [target.datacenter], ["name"], _HOST)
        )
        resolved = _resolve(dest, tinv, target, nics)
    wanted = before.model_copy(
        update={
            "datacenter": target.datacenter,
            "cluster": target.cluster,
            "host": target.host,
            "datastore": target.datastore,
            "folder": target.folder,
            "portgroups": nics,
        }
    )
    if before.same_place(wanted):
        return RelocationResult(
            vm=vm, changed=False, dry_run=dry_run, before=before, after=before,
            message=f"vm {vm} is already at {wanted.describe()}",
        )  # fmt: skip
    if dry_run:
        return RelocationResult(
            vm=vm, changed=True, dry_run=True, cross_vcenter=cross and where_vm is session, before=before,
            after=wanted, message=f"vm {vm} would move from {before.describe()} to {wanted.describe()}",
        )  # fmt: skip

    devices = obj.get("config.hardware.device", [])
    spec = vim.vm.RelocateSpec(
        host=resolved.host.ref,
        pool=resolved.pool,
        datastore=resolved.datastore.ref,
        folder=resolved.folder,
        deviceChange=_nic_changes(devices, resolved),
    )
    if cross and where_vm is session:
        spec.service = vim.ServiceLocator(
            url=f"https://{dest.endpoint.hostname}:{dest.endpoint.port}",
            instanceUuid=dest.instance_uuid,
            credential=vim.ServiceLocator.NamePassword(
                username=dest.endpoint.username, password=dest.endpoint.password.get_secret_value()
            ),
            sslThumbprint=dest.certificate_sha1,
        )
    doing = f"relocating vm {vm} to {wanted.describe()}"
    log.info("%s: %s", where_vm.endpoint.where, doing)
    with _boundary(where_vm, doing, MigrationStepFailed):
        task = obj.ref.RelocateVM_Task(spec=spec, priority=vim.VirtualMachine.MovePriority.defaultPriority)
        _wait(where_vm, task, doing, timeout_s, progress)
    after = _converge(dest, vm, target.datacenter, wanted, resolved, timeout_s)
    return RelocationResult(
        vm=vm,
        changed=True,
        cross_vcenter=cross and where_vm is session,
        before=before,
        after=after,
        message=f"vm {vm} moved from {before.describe()} to {after.describe()}",
        duration_s=round(time.monotonic() - started, 3),
        task=str(task._GetMoId()),
    )


def _converge(
    session: VSphereSession, vm: str, datacenter: str, wanted: Placement, resolved: _Resolved, timeout_s: float
) -> Placement:
    """Read the placement after a move; move NICs the move left behind; fail on any other difference."""
    with _boundary(session, f"reading the placement of vm {vm} after its move", MigrationStepFailed):
        found = _find_vm(session, vm, datacenter)
    if found is None:
        raise MigrationStepFailed(f"vm {vm}: not in datacenter {datacenter} of {session.endpoint.where} after the move")
    inv, obj = found
    after = _placement(obj, inv)
    if after.portgroups != wanted.portgroups:
        log.warning("vm %s: NICs still on %s after the move; reconfiguring them", vm, after.portgroups)
        doing = f"moving the NICs of vm {vm} to {', '.join(wanted.portgroups)} after its move"
        with _boundary(session, doing, MigrationStepFailed):
            changes = _nic_changes(obj.get("config.hardware.device", []), resolved)
            task = obj.ref.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=changes))
            _wait(session, task, doing, timeout_s, None)
            found = _find_vm(session, vm, datacenter)
        if found is None:  # pragma: no cover - it was there a moment ago
            raise MigrationStepFailed(f"vm {vm}: vanished from {session.endpoint.where} while reconfiguring")
        after = _placement(found[1], found[0])
    if not after.same_place(wanted):
        raise MigrationStepFailed(
            f"vm {vm}: vCenter reported the move done but the VM is at {after.describe()}, not {wanted.describe()}"
        )
    return after


def set_power(
    session: VSphereSession,
    vm: str,
    state: PowerState,
    *,
    datacenter: str | None = None,
    dry_run: bool = False,
    graceful: bool = True,
    timeout_s: float = 600.0,
) -> PowerResult:
    """Bring VM ``vm`` to power ``state`` (idempotent). Powering off shuts the guest down when its
    tools run and ``graceful`` (a hard power-off after ``timeout_s``), else powers off hard."""
    with _boundary(session, f"reading the power state of vm {vm}", MigrationStepFailed):
        found = _find_vm(session, vm, datacenter)
    if found is None:
        raise MigrationStepFailed(f"vm {vm}: not found in {session.endpoint.where}")
    obj = found[1]
    before = _POWER.get(str(obj.get("runtime.powerState")), "powered_off")
    if before == state:
        return PowerResult(
            vm=vm, changed=False, dry_run=dry_run, before=before, after=before, message=f"vm {vm} is already {state}"
        )
    if state == "suspended" and before != "powered_on":
        raise MigrationStepFailed(f"vm {vm}: cannot suspend a VM that is {before}")
    if dry_run:
        return PowerResult(
            vm=vm,
            changed=True,
            dry_run=True,
            before=before,
            after=state,
            message=f"vm {vm} would go from {before} to {state}",
        )
    doing = f"setting vm {vm} {state}"
    with _boundary(session, doing, MigrationStepFailed):
        ref = obj.ref
        if state == "powered_on":
            _wait(session, ref.PowerOnVM_Task(), doing, timeout_s, None)
        elif state == "suspended":
            _wait(session, ref.SuspendVM_Task(), doing, timeout_s, None)
        else:
            tools = _one(session, ref, ["guest.toolsRunningStatus"]).get("guest.toolsRunningStatus")
            if graceful and before == "powered_on" and tools == "guestToolsRunning":
                ref.ShutdownGuest()
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline:
                    if _one(session, ref, ["runtime.powerState"]).get("runtime.powerState") == "poweredOff":
                        break
                    time.sleep(1.0)
                else:
                    log.warning("vm %s: guest did not shut down within %g s; powering off", vm, timeout_s)
                    _wait(session, ref.PowerOffVM_Task(), doing, timeout_s, None)
            else:
                _wait(session, ref.PowerOffVM_Task(), doing, timeout_s, None)
        after = _POWER.get(str(_one(session, ref, ["runtime.powerState"]).get("runtime.powerState")), "powered_off")
    if after != state:
        raise MigrationStepFailed(f"vm {vm}: asked for {state}, vCenter reports {after}")
    return PowerResult(
        vm=vm, changed=True, before=before, after=after, message=f"vm {vm} went from {before} to {after}"
    )


def ensure_folder(session: VSphereSession, datacenter: str, path: str, *, dry_run: bool = False) -> bool:
    """Create VM folder ``path`` (below ``datacenter``'s vm folder) and its parents; True if it
    was (or, with ``dry_run``, would be) created."""
    parts = [p for p in path.split("/") if p]
    doing = f"creating VM folder {path} in datacenter {datacenter}"
    with _boundary(session, doing, MigrationStepFailed):
        dcs = _datacenters(session, [datacenter])
        if not dcs:
            raise MigrationStepFailed(f"{session.endpoint.where}: no datacenter {datacenter}")
        inv = _Inventory(dcs, _in_views(session, [dcs[0].props["vmFolder"]], {vim.Folder: ["name", "parent"]}))
        parent = dcs[0].props["vmFolder"]
        created = False
        for depth in range(len(parts)):
            sub = "/".join(parts[: depth + 1])
            existing = next((f for f in inv.of("Folder") if inv.folder_path(f.moid) == sub), None)
            if existing is not None:
                parent = existing.ref
                continue
            if dry_run:
                return True
            try:
                parent = parent.CreateFolder(name=parts[depth])
            except vim.fault.DuplicateName as exc:  # created meanwhile by someone else
                parent = exc.object
            created = True
    return created


def destroy_vm(
    session: VSphereSession,
    vm: str,
    *,
    datacenter: str,
    folder: str,
    dry_run: bool = False,
    timeout_s: float = 600.0,
) -> bool:
    """Delete a leftover VM ``vm`` from folder ``folder`` of ``datacenter`` (a half-done move's
    copy on the target). Guarded: only a VM of exactly that name directly in that folder, and never
    a powered-on one. True if it was (or would be) deleted; False when there is none."""
    with _boundary(session, f"looking up vm {vm}", MigrationStepFailed):
        found = _find_vm(session, vm, datacenter)
    if found is None:
        return False
    inv, obj = found
    actual = inv.folder_path(obj.parent())
    if actual != folder:
        raise MigrationStepFailed(
            f"vm {vm}: refusing to delete it: it is in folder {actual!r} of {datacenter}, "
            f"not the target folder {folder!r}"
        )
    power = _POWER.get(str(obj.get("runtime.powerState")), "powered_off")
    if power == "powered_on":
        raise MigrationStepFailed(f"vm {vm}: refusing to delete it: it is powered on, so not a leftover")
    if dry_run:
        return True
    doing = f"deleting leftover vm {vm} from {datacenter}/{folder}"
    log.warning("%s: %s", session.endpoint.where, doing)
    with _boundary(session, doing, MigrationStepFailed):
        _wait(session, obj.ref.Destroy_Task(), doing, timeout_s, None)
    return True
