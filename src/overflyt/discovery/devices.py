"""Device discovery: read every network device of a plan over SSH, as the estate's as-is devices.

``overflyt discover devices PLAN`` connects to each device of the plan at its ``management``
address and ``port``, several at a time (``--workers``, :data:`WORKERS` by default), with paramiko
directly (not Ansible): the device's credentials reference resolved as everywhere else
(:func:`overflyt.plan.credentials.resolve`), its host key checked strictly against the plan's
``ssh.known_hosts`` — a key that is not there, or differs, fails that device, as in the
pre-checks. A device listed in ``ssh.insecure_host_keys`` is not verified, and its line says so.

Read-only: it sends only the ``show`` commands below, each on its own exec channel of one SSH
session per device (:func:`_show` refuses anything else).

* ``show version`` — the platform (``FRRouting`` → frr, ``ArubaOS-CX`` → aoscx, ``Cisco IOS`` →
  ios, the markers the pre-checks use: :func:`overflyt.precheck.gather.detect_platform`) and the version
  (FRR: the word after ``FRRouting``; other platforms: the first line).
* ``show interface brief`` — FRR only, the one platform whose output has been captured (from the
  lab): each interface of the default VRF with its state (up, down) and addresses. FRR lists one
  address per subnet there (the subnet's primary; a ``+`` before it says the subnet holds more)
  and no IPv6 link-local address. Other platforms: ``interfaces`` is left unknown.
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

from overflyt.discovery.common import WORKERS
from overflyt.discovery.estate import DeviceInterface
from overflyt.discovery.estate import NetworkDevice as EstateDevice
from overflyt.errors import CredentialMissing, UsageError
from overflyt.plan import Plan
from overflyt.plan.credentials import ResolvedCredential, resolve
from overflyt.plan.model import NetworkDevice
from overflyt.precheck.facts import HostKeyState
from overflyt.precheck.gather import detect_platform
from overflyt.steps.config_text import config_sha256

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 15  # TCP connect, SSH banner and login, each
COMMAND_TIMEOUT_S = 30  # one show command's whole answer

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
    if platform == "frr":
        found = re.search(r"^FRRouting (\S+)", text, re.MULTILINE)
        return platform, found.group(1) if found else None
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return platform, first or None


def parse_hostname(config: str) -> str | None:
    """The ``hostname`` line of a running configuration."""
    found = re.search(r"^hostname (\S+)\s*$", config, re.MULTILINE)
    return found.group(1) if found else None


def parse_interface_brief(text: str) -> list[DeviceInterface]:
    """FRR's ``show interface brief``: a header, then ``NAME STATUS VRF [ADDRESS]`` per interface,
    further addresses on lines of their own indented to the address column, ``+ `` before the
    address of a subnet that holds more than one."""
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        words = [w for w in line.split() if w != "+"]
        if not words or words[:4] == ["Interface", "Status", "VRF", "Addresses"] or set(line) <= {"-", " "}:
            continue
        if line[0].isspace():
            if not rows or len(words) != 1:
                raise Unreadable(f"show interface brief: line {number} not understood: {line.strip()!r}")
            rows[-1]["addresses"].append(words[0])
        elif len(words) in (3, 4) and words[1] in ("up", "down"):
            rows.append({"name": words[0], "state": words[1], "addresses": words[3:]})
        else:
            raise Unreadable(f"show interface brief: line {number} not understood: {line.strip()!r}")
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


def _show(client: paramiko.SSHClient, command: str) -> str:
    """One read-only command's answer. A device that says it did not take the command (a non-zero
    exit status, or an answer beginning with ``%``) fails the read."""
    if not command.startswith("show "):
        raise ValueError(f"discovery sends only show commands, not {command!r}")
    _, stdout, stderr = client.exec_command(command, timeout=COMMAND_TIMEOUT_S)
    answer = stdout.read().decode("utf-8", "surrogateescape")
    complaint = stderr.read().decode("utf-8", "replace").strip()
    status = stdout.channel.recv_exit_status()  # -1: the device sends no exit status
    if status > 0 or answer.lstrip().startswith("%"):
        said = next((x.strip() for x in (answer + "\n" + complaint).splitlines() if x.strip()), "nothing")
        raise Unreadable(f"{command!r} was not taken: the device answered {said[:200]!r} (exit status {status})")
    return answer


def read_device(
    device: NetworkDevice,
    credential: ResolvedCredential,
    known_hosts: Path | None,
    *,
    insecure: bool = False,
) -> DeviceRead:
    """Read one device over SSH; never raises for what the device or the network does (``error``)."""
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
        try:
            platform, version = parse_version(_show(client, "show version"))
            interfaces = parse_interface_brief(_show(client, "show interface brief")) if platform == "frr" else None
            config = _show(client, "show running-config")
        except Unreadable as exc:
            return failed(str(exc))
        except TimeoutError:
            return failed(f"no complete answer within {COMMAND_TIMEOUT_S} s")
        except (paramiko.SSHException, EOFError, OSError) as exc:
            return failed(f"SSH session failed: {exc or type(exc).__name__}")
    finally:
        client.close()
    return DeviceRead(
        **common,
        host_key=host_key,
        host_key_fingerprint=fingerprint,
        name=parse_hostname(config),
        platform=platform,
        version=version,
        interfaces=interfaces,
        config_sha256=config_sha256(config),
        duration_s=round(time.monotonic() - started, 3),
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
    workers: int = WORKERS,
    on_read: Callable[[DeviceRead], None] | None = None,
) -> list[DeviceRead]:
    """Every device of the plan, read ``workers`` at a time, in the plan's order; ``credentials``
    by hostname (:func:`device_credentials`), ``known_hosts`` from :func:`known_hosts_file`. What a
    device does is in its ``error``; ``on_read`` hears of each device as soon as it is done."""
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, not {workers}")
    done: dict[str, DeviceRead] = {}
    with ThreadPoolExecutor(max_workers=min(workers, max(len(plan.devices), 1))) as pool:
        futures = [
            pool.submit(
                read_device,
                device,
                credentials[device.hostname],
                known_hosts,
                insecure=device.hostname in plan.ssh.insecure_host_keys,
            )
            for device in plan.devices
        ]
        for future in as_completed(futures):
            read = future.result()
            log.debug("read %s in %.1f s: %s", read.where, read.duration_s, read.error or "ok")
            done[read.hostname] = read
            if on_read is not None:
                on_read(read)
    return [done[d.hostname] for d in plan.devices]


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
