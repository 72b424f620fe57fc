"""Device discovery: read every network device of a plan over SSH, as the estate's as-is devices.

``overflyt discover devices PLAN`` first checks each device of the plan at its ``management``
address and ``port``, several at a time (``--workers``, :data:`WORKERS` by default), with paramiko
(:func:`check_device`, sending no command): the device's credentials reference resolved as
everywhere else (:func:`overflyt.plan.credentials.resolve`), its host key checked strictly against
the plan's ``ssh.known_hosts`` — a key that is not there, or differs, fails that device naming the
key's fingerprint, as in the pre-checks. A device listed in ``ssh.insecure_host_keys`` is not
verified, and its line says so.

Every device that passed is then read through the project's own ``net_facts`` role
(:mod:`.role_read`, one read-only playbook run), which sends only ``show`` commands:

* ``show version`` — the platform (``FRRouting`` → frr, ``ArubaOS-CX`` → aoscx, ``Cisco IOS`` →
  ios, the markers the pre-checks use: :func:`overflyt.precheck.gather.detect_platform`) and the version
  (FRR: the word after ``FRRouting``; IOS: after ``Version``; AOS-CX: its ``Version :`` line; other
  platforms: the first line).
* the interface listing (FRR ``show interface brief``, IOS and AOS-CX ``show ip interface brief``),
  parsed by ``ansible.utils.cli_parse`` (:mod:`.interfaces`): each interface with its state (up,
  down) and addresses. FRR lists one address per subnet (the subnet's primary; a ``+`` before it
  says the subnet holds more) and no IPv6 link-local address; IOS's masks come from the running
  configuration.
* ``show running-config`` — the hostname the device gives itself (its ``hostname`` line) and the
  config hash: sha256 of the configuration normalised exactly as the ``net_backup`` role saves a
  backup (:func:`overflyt.steps.config_text.normalise`, the one normaliser every role uses
  through the ``overflyt.network`` filters), so it equals the sha256 of the device's backup file and
  changes only when the configuration does. Stripped: trailing whitespace of every line; every
  line that begins with one of :data:`~overflyt.steps.config_text.VOLATILE` (FRR's and IOS's
  ``Building configuration...`` and ``Current configuration ...`` headers, IOS's ``! Last configuration change at ...``,
  ``! NVRAM config last updated at ...`` and ``! No configuration change since last restart``
  stamps, and ``ntp clock-period``, which IOS rewrites as its clock drifts); blank lines at the
  start and end. The text is hashed as UTF-8 (bytes that are not UTF-8 hash as they came).

Management: a device proves it is the one the plan puts at a management address by the host key
known_hosts holds for that address and port, and by the hostname it reports; a device answering at
another device's address shows up as a hostname difference (:func:`compare`).

The command line (``overflyt discover devices``) is :mod:`overflyt.cli.discover`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
from pydantic import BaseModel, ConfigDict, ValidationError

from overflyt.discovery import interfaces
from overflyt.discovery.common import WORKERS
from overflyt.discovery.estate import DeviceInterface
from overflyt.discovery.estate import NetworkDevice as EstateDevice
from overflyt.discovery.role_read import RoleRead
from overflyt.errors import CredentialMissing, UsageError
from overflyt.plan import Plan
from overflyt.plan.credentials import ResolvedCredential, resolve
from overflyt.plan.model import NetworkDevice
from overflyt.precheck.facts import HostKeyState
from overflyt.precheck.gather import detect_platform
from overflyt.project import find_project
from overflyt.steps.config_text import config_sha256

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 15  # TCP connect, SSH banner and login, each
ROLE_TIMEOUT_S = 600  # the net_facts run over every device that passed the check

# The fields discovery owns of an estate device; site and role are a person's to write.
AS_IS = ("platform", "management", "port", "version", "interfaces", "config_sha256")


class DeviceRead(BaseModel):
    """What one device said, or why it could not be read (``error``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hostname: str  # the plan's name for it
    address: str
    port: int
    error: str | None = None
    host_key: HostKeyState = "not_checked"
    host_key_fingerprint: str | None = None  # "SHA256:...", the key the device presented
    name: str | None = None  # the hostname the device gives itself
    platform: str | None = None
    version: str | None = None
    interfaces: list[DeviceInterface] | None = None
    config_sha256: str | None = None
    duration_s: float = 0.0

    @property
    def where(self) -> str:
        return f"{self.hostname} ({self.address}:{self.port})"


class Unreadable(Exception):
    """The device answered something this module cannot use; the message says what."""


# -- parsing (pure) --------------------------------------------------------------------------------


def parse_version(text: str) -> tuple[str | None, str | None]:
    """(platform, version) from ``show version``; None for what cannot be told."""
    platform = detect_platform(text)
    if platform in _VERSION:
        found = re.search(_VERSION[platform], text, re.MULTILINE)
        return platform, found.group(1) if found else None
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return platform, first or None


# The version in each platform's `show version`: FRR's "FRRouting 8.4.4 (...)", IOS's
# "Cisco IOS Software, ... Version 15.9(3)M6, RELEASE ...", AOS-CX's "Version      : FL.10.13.1000".
_VERSION = {
    "frr": r"^FRRouting (\S+)",
    "ios": r"^Cisco IOS.*?, Version ([^,\s]+)",
    "aoscx": r"^Version\s+:\s+(\S+)",
}


def parse_hostname(config: str) -> str | None:
    """The ``hostname`` line of a running configuration."""
    found = re.search(r"^hostname (\S+)\s*$", config, re.MULTILINE)
    return found.group(1) if found else None


def parse_interface_brief(text: str, project: Path | None = None) -> list[DeviceInterface]:
    """FRR's ``show interface brief``: a header, then ``NAME STATUS VRF [ADDRESS]`` per interface,
    further addresses on lines of their own indented to the address column, ``+ `` before the
    address of a subnet that holds more than one — parsed by the net_facts role's TextFSM template
    (:mod:`overflyt.discovery.interfaces`)."""
    try:
        rows = interfaces.from_parsed("frr", interfaces.parse(project or find_project(), "frr", "brief", text))
    except interfaces.NotParsed as exc:
        raise Unreadable(str(exc)) from None
    try:
        return [DeviceInterface.model_validate(row) for row in rows]
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise Unreadable(f"show interface brief: {error['msg']} (value: {error['input']!r})") from None


# -- reading ---------------------------------------------------------------------------------------


class _UnknownHostKey(paramiko.SSHException):
    pass


class _Policy(paramiko.MissingHostKeyPolicy):
    """What to do with a host key known_hosts does not hold: refuse it (strict), or take it without
    saving it (an explicit insecure override). Either way remember it, to name its fingerprint."""

    def __init__(self, accept: bool) -> None:
        self.accept = accept
        self.key: paramiko.PKey | None = None

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        self.key = key
        if not self.accept:
            raise _UnknownHostKey(hostname)


def check_device(
    device: NetworkDevice,
    credential: ResolvedCredential,
    known_hosts: Path | None,
    *,
    insecure: bool = False,
) -> DeviceRead:
    """Check one device's host key and login over SSH, sending no command; never raises for what
    the device or the network does (``error``)."""
    started = time.monotonic()
    address = str(device.management)
    common: dict[str, Any] = {"hostname": device.hostname, "address": address, "port": device.port}
    policy = _Policy(accept=insecure)
    client = paramiko.SSHClient()
    if known_hosts is not None and not insecure:
        client.load_system_host_keys(str(known_hosts))  # read, never written
    client.set_missing_host_key_policy(policy)
    host_key: HostKeyState = "insecure_override" if insecure else "not_checked"
    fingerprint: str | None = None

    def failed(error: str) -> DeviceRead:
        return DeviceRead(
            **common,
            error=error,
            host_key=host_key,
            host_key_fingerprint=fingerprint,
            duration_s=round(time.monotonic() - started, 3),
        )

    try:
        try:
            client.connect(
                address,
                port=device.port,
                username=credential.username,
                password=credential.secret.get_secret_value(),
                timeout=CONNECT_TIMEOUT_S,
                banner_timeout=CONNECT_TIMEOUT_S,
                auth_timeout=CONNECT_TIMEOUT_S,
                allow_agent=False,
                look_for_keys=False,
            )
        except _UnknownHostKey:
            host_key = "unknown"
            fingerprint = policy.key.fingerprint if policy.key else None
            where = "the plan's known_hosts" if known_hosts else "a known_hosts (the plan names no ssh.known_hosts)"
            return failed(f"host key {fingerprint} is not in {where}")
        except paramiko.BadHostKeyException as exc:
            host_key, fingerprint = "changed", exc.key.fingerprint
            known = exc.expected_key.fingerprint
            return failed(f"host key {fingerprint} differs from the one in the plan's known_hosts ({known})")
        except paramiko.AuthenticationException:
            if not insecure:
                host_key = "match"
            return failed(f"login refused for user {credential.username!r} (credentials {credential.reference!r})")
        except paramiko.ssh_exception.NoValidConnectionsError as exc:
            reasons = sorted({getattr(e, "strerror", None) or str(e) for e in exc.errors.values()})
            return failed(f"unreachable: {'; '.join(reasons)}")
        except TimeoutError:
            return failed(f"unreachable: no answer within {CONNECT_TIMEOUT_S} s")
        except (paramiko.SSHException, EOFError) as exc:
            return failed(f"SSH failed: {exc or type(exc).__name__}")
        except OSError as exc:
            return failed(f"unreachable: {exc.strerror or exc}")
        if not insecure:
            host_key = "match"
        transport = client.get_transport()
        fingerprint = transport.get_remote_server_key().fingerprint if transport else None
    finally:
        client.close()
    return DeviceRead(
        **common, host_key=host_key, host_key_fingerprint=fingerprint, duration_s=round(time.monotonic() - started, 3)
    )


def known_hosts_file(plan: Plan, plan_dir: Path) -> Path | None:
    """The plan's ``ssh.known_hosts``; UsageError when it names a file that is not there."""
    if not plan.ssh.known_hosts:
        return None
    path = (plan_dir / plan.ssh.known_hosts).resolve()
    if not path.is_file():
        raise UsageError(f"ssh.known_hosts: {path} is not a file (no device's host key could be verified)")
    return path


def device_credentials(plan: Plan, plan_dir: Path) -> dict[str, ResolvedCredential]:
    """Each device's resolved credential; CredentialMissing with a line per device when any fails."""
    resolved: dict[str, ResolvedCredential] = {}
    failures: dict[str, str] = {}
    for reference in dict.fromkeys(d.credentials for d in plan.devices):
        try:
            resolved[reference] = resolve(plan, reference, plan_dir)
        except CredentialMissing as exc:
            failures[reference] = str(exc)
    if failures:
        lines = [
            f"  {d.hostname} ({d.management}:{d.port}): {failures[d.credentials]}"
            for d in plan.devices
            if d.credentials in failures
        ]
        raise CredentialMissing(
            f"{len(lines)} device(s) cannot be read, their credentials do not resolve (no device was contacted):\n"
            + "\n".join(lines)
        )
    return {d.hostname: resolved[d.credentials] for d in plan.devices}


def read_devices(
    plan: Plan,
    credentials: Mapping[str, ResolvedCredential],
    known_hosts: Path | None,
    *,
    plan_path: Path,
    workers: int = WORKERS,
    on_read: Callable[[DeviceRead], None] | None = None,
) -> list[DeviceRead]:
    """Every device of the plan (at ``plan_path``), in the plan's order: host key and login checked
    ``workers`` at a time (:func:`check_device`), then every device that passed read by the
    ``net_facts`` role in one playbook run (:mod:`.role_read`, ``workers`` forks). ``credentials`` by
    hostname (:func:`device_credentials`), ``known_hosts`` from :func:`known_hosts_file`. What a
    device does is in its ``error``; ``on_read`` hears of each device as soon as it is done."""
    from overflyt.discovery.role_read import read_with_role

    if workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers}")
    checked: dict[str, DeviceRead] = {}
    with ThreadPoolExecutor(max_workers=min(workers, max(len(plan.devices), 1))) as pool:
        futures = [
            pool.submit(
                check_device,
                device,
                credentials[device.hostname],
                known_hosts,
                insecure=device.hostname in plan.ssh.insecure_host_keys,
            )
            for device in plan.devices
        ]
        for future in as_completed(futures):
            read = future.result()
            checked[read.hostname] = read
            if read.error:
                log.debug("%s: %s", read.where, read.error)
                if on_read is not None:
                    on_read(read)
    passed = [d.hostname for d in plan.devices if not checked[d.hostname].error]
    started = time.monotonic()
    answers = read_with_role(plan_path, plan, credentials, passed, forks=workers, timeout_s=ROLE_TIMEOUT_S)
    for name in passed:
        read = _as_read(checked[name], answers[name], time.monotonic() - started)
        checked[name] = read
        if on_read is not None:
            on_read(read)
    return [checked[d.hostname] for d in plan.devices]


def _as_read(check: DeviceRead, answer: RoleRead, role_s: float) -> DeviceRead:
    """A checked device with what the role read of it: platform and version from ``show version``,
    hostname and hash from the running configuration, the interfaces from cli_parse's rows."""
    duration = round(check.duration_s + role_s, 3)
    if answer.error or answer.config is None:
        error = answer.error or "the role saved no running configuration"
        return check.model_copy(update={"error": error, "duration_s": duration})
    platform, version = parse_version(answer.version_text)
    found: list[DeviceInterface] | None = None
    if answer.interfaces is not None:
        rows = interfaces.from_parsed(
            str(answer.interfaces["platform"]), list(answer.interfaces["brief"]), list(answer.interfaces["config"])
        )
        try:
            found = [DeviceInterface.model_validate(row) for row in rows]
        except ValidationError as exc:
            bad = exc.errors(include_url=False)[0]
            return check.model_copy(
                update={"error": f"interfaces: {bad['msg']} (value: {bad['input']!r})", "duration_s": duration}
            )
    return check.model_copy(
        update={
            "name": parse_hostname(answer.config),
            "platform": platform,
            "version": version,
            "interfaces": found,
            "config_sha256": config_sha256(answer.config),
            "duration_s": duration,
        }
    )


# -- what was read, against an estate file and the plan --------------------------------------------


def as_is(read: DeviceRead) -> dict[str, Any]:
    """One device's as-is fields, in the estate file's shape (None: not known)."""
    return {
        "hostname": read.hostname,
        "platform": read.platform,
        "management": read.address,
        "port": read.port,
        "version": read.version,
        "interfaces": None if read.interfaces is None else [i.model_dump(mode="json") for i in read.interfaces],
        "config_sha256": read.config_sha256,
    }


def merge(
    existing: Iterable[Mapping[str, Any]],
    reads: list[DeviceRead],
    plan: Plan,
    estate_sites: set[str] | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The estate's devices updated with what was read: as-is fields replaced (a field the device
    did not tell is kept), a person's fields kept; a device the file does not have is added with
    the plan's site and role when every field can be filled (and, if the file has ``sites``, the
    site is one of them). Devices the plan does not name are kept as they are. Returns (devices,
    one line per change)."""
    planned = {d.hostname: d for d in plan.devices}
    out = [dict(device) for device in existing]
    index = {str(device["hostname"]): i for i, device in enumerate(out)}
    changes: list[str] = []
    for read in reads:
        found = as_is(read)
        i = index.get(read.hostname)
        if i is not None:
            old = out[i]
            out[i] = {**old, **{k: found[k] for k in AS_IS if found[k] is not None}}
            changed = [k for k in AS_IS if old.get(k) != out[i].get(k)]
            if changed:
                changes.append(f"changed: {read.hostname}: {', '.join(changed)}")
            continue
        device = planned[read.hostname]
        if estate_sites is not None and device.site not in estate_sites:
            changes.append(f"not added: {read.hostname}: its site {device.site} is not one of the estate's sites")
            continue
        entry = {"hostname": read.hostname, "site": device.site, "role": device.role.value}
        entry |= {k: found[k] for k in AS_IS if found[k] is not None}
        try:
            EstateDevice.model_validate(entry)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            field = ".".join(str(p) for p in error["loc"])
            why = "the device did not tell it" if error["type"] == "missing" else error["msg"]
            changes.append(f"not added: {read.hostname}: {field}: {why}")
            continue
        changes.append(f"new: {read.hostname} (site and role from the plan)")
        out.append(entry)
    return out, changes


def misnamed(reads: Iterable[DeviceRead]) -> list[DeviceRead]:
    """Devices read that call themselves by another name than the plan's: an estate file is not
    updated while any does (nor while any device could not be read)."""
    return [r for r in reads if not r.error and r.name != r.hostname]


def merge_estate(estate: Mapping[str, Any], reads: list[DeviceRead], plan: Plan) -> tuple[dict[str, Any], list[str]]:
    """An estate file's data with its devices merged with what was read (:func:`merge`; a device is
    added only at one of the file's sites, if it lists any); the rest kept. Returns (the new data,
    one line per change)."""
    sites = {str(s["id"]) for s in estate.get("sites") or []} or None
    devices, changes = merge(estate.get("devices") or [], reads, plan, sites)
    return {**estate, "devices": devices}, changes


@dataclass(frozen=True)
class Difference:
    device: str  # "hostname (address:port)"
    field: str
    plan: Any
    found: Any

    def __str__(self) -> str:
        return f"device {self.device}: {self.field}: plan says {self.plan!r}, the device says {self.found!r}"


def compare(plan: Plan, reads: list[DeviceRead]) -> list[Difference]:
    """Where the plan's devices differ from what answered at their management address and port:
    the hostname the device reports, and its platform. Devices that could not be read are not
    compared (they fail on their own)."""
    by_name = {r.hostname: r for r in reads}
    out: list[Difference] = []
    for device in plan.devices:
        read = by_name.get(device.hostname)
        if read is None or read.error:
            continue
        if read.name != device.hostname:
            out.append(Difference(read.where, "hostname", device.hostname, read.name))
        if read.platform != device.platform.value:
            out.append(Difference(read.where, "platform", device.platform.value, read.platform))
    return out
