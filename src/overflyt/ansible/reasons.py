"""Why a step failed, in one line a person can act on — the one translation table.

Every failure a person reads (the CLI, the Prefect log and state message, report.md/json,
record.json) passes through :func:`explain`: a reason the vSphere provider or a device gave — an
``OverflytError`` message that names its endpoint (``vCenter mj-vcenter (https://…/sdk): no answer
within 30 s while relocating vm ndj-dc01 …``) or what Ansible's connection said — becomes a sentence
naming the endpoint, the cause and what to do. A reason no entry of :data:`TRANSLATIONS` knows is
kept as it is. Reasons reach this module already scrubbed of every secret value
(:func:`overflyt.ansible.runner.scrub`); nothing here adds one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# "vCenter <name> (<url>)", as VCenterConnection.where says it
_VC = r"(?P<where>vCenter \S+ \([^)\s]+\))"
_RERUN = "then rerun the wave (a rerun resumes it)"


@dataclass(frozen=True)
class Translation:
    """One cause: a pattern over the raw reason and the line it becomes (``str.format`` of the
    pattern's named groups plus ``device``, ``address``, ``user``; ``while`` is `` while <doing>``
    when the pattern caught a ``doing``)."""

    cause: str
    pattern: re.Pattern[str]
    line: str
    device: bool = False  # about a device's SSH login: needs the device (host) it was said of


TRANSLATIONS: tuple[Translation, ...] = (
    Translation(
        "vcenter_timeout",
        re.compile(_VC + r"(?:, datacenter \S+)?: no answer within (?P<s>[\d.]+) s(?: while (?P<doing>.+))?$"),
        "{where} did not answer within {s} s{while}; check that it is up and reachable, " + _RERUN,
    ),
    Translation(
        "vcenter_task_timeout",
        re.compile(_VC + r": (?P<doing>.+?) did not finish within (?P<s>[\d.]+) s(?P<detail> \(.*\))?$"),
        "{where} did not finish {doing} within {s} s{detail}; look at the task in vCenter, " + _RERUN,
    ),
    Translation(
        "vcenter_login",
        re.compile(_VC + r": login failed for user (?P<user>[^\s:]+)"),
        "{where} refused the login of {user}; check its credentials entry (user and secret) and that the "
        "account is neither locked nor expired",
    ),
    Translation(
        "vcenter_session",
        re.compile(_VC + r": the session is no longer logged in while (?P<doing>.+)$"),
        "{where} ended overflyt's session while {doing} (logged out or restarted); " + _RERUN,
    ),
    Translation(
        "vcenter_certificate",
        re.compile(_VC + r": TLS verification failed: (?P<detail>.+)$"),
        "{where} presented a certificate overflyt does not trust — it changed, or the plan's ca_file or "
        "thumbprint is out of date ({detail}); confirm the new certificate with the vCenter's owner before "
        "you trust it",
    ),
    Translation(
        "vcenter_busy",
        re.compile(
            _VC + r": vCenter refused (?P<doing>.+?): (?P<fault>TaskInProgress|InvalidState|ConcurrentAccess|"
            r"FileLocked|ResourceInUse|InvalidPowerState)\b(?P<detail>.*)$"
        ),
        "{where} refused {doing}: the VM is locked or busy with another task ({fault}{detail}); wait for that "
        "task to end, " + _RERUN,
    ),
    Translation(
        "datastore_full",
        re.compile(
            _VC + r": vCenter refused (?P<doing>.+?): (?P<fault>InsufficientDiskSpace|NoDiskSpace|"
            r"InsufficientStorageSpace|OutOfDiskSpace)\b(?P<detail>.*)$"
        ),
        "{where} refused {doing}: the datastore is full ({fault}{detail}); free space on it or map the VM "
        "to another datastore (storage_map), then re-run the pre-check",
    ),
    Translation(
        "datastore_missing",
        re.compile(_VC + r", datacenter (?P<dc>\S+): no datastore (?P<ds>\S+)$"),
        "datastore {ds} is missing from datacenter {dc} of {where}; restore it or change the plan's "
        "storage_map, then re-run the pre-check",
    ),
    Translation(
        "vcenter_unreachable",
        re.compile(
            _VC + r"(?:, datacenter \S+)?: (?:connection lost while (?P<doing>.+?): (?P<detail>.+)|"
            r"(?P<detail2>connection refused|cannot connect: .+|connection failed: .+|cannot resolve .+))$"
        ),
        "{where} could not be reached{while} ({detail}{detail2}); check that it is up and reachable, " + _RERUN,
    ),
    Translation(
        "device_login",
        re.compile(r"(?i)(?:Failed to authenticate|Authentication failed|AuthenticationException|Permission denied)"),
        "device {device} ({address}) refused the login of user {user}; check {credentials} (user and secret) "
        "and the device's AAA",
        device=True,
    ),
    Translation(
        "device_host_key",
        re.compile(r"(?i)(?:host key mismatch|not found in known_hosts|BadHostKey|host key .*differs)"),
        "device {device} ({address}) presented an SSH host key that is not the one in the plan's known_hosts; "
        "confirm the new key with the device's owner, then update known_hosts",
        device=True,
    ),
    Translation(
        "device_timeout",
        re.compile(r"(?i)(?:timed out|timeout triggered|no answer within|connect timeout)"),
        "device {device} ({address}) did not answer in time; check that it is up and reachable, " + _RERUN,
        device=True,
    ),
    Translation(
        "device_refused",
        re.compile(r"(?i)(?:connection refused|unable to connect to port|No route to host)"),
        "device {device} ({address}) refused the SSH connection; check that its SSH server is up, " + _RERUN,
        device=True,
    ),
)


@dataclass(frozen=True)
class Device:
    """A device the reason was said of: its SSH address, login user and where its password comes
    from (never the secret itself)."""

    name: str
    address: str
    user: str
    credentials: str = "the device's credentials entry"


def translate(reason: str, device: Device | None = None) -> tuple[str, str] | None:
    """(cause, line) of the first entry of :data:`TRANSLATIONS` that matches ``reason``, or None.
    A device entry matches only a reason said of a ``device``."""
    text = " ".join(reason.split())
    for entry in TRANSLATIONS:
        if entry.device and device is None:
            continue
        found = entry.pattern.search(text)
        if found is None:
            continue
        values: dict[str, str] = {k: v or "" for k, v in found.groupdict().items()}
        values["while"] = f" while {values['doing']}" if values.get("doing") else ""
        if device is not None:
            values.update(device=device.name, address=device.address, user=device.user, credentials=device.credentials)
        return entry.cause, entry.line.format_map(_Blank(values))
    return None


def explain(reason: str, device: Device | None = None) -> str:
    """``reason`` as one line a person can act on (unchanged when no translation knows it)."""
    translated = translate(reason, device)
    return translated[1] if translated else reason


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def devices_of(inventory: Mapping[str, object]) -> dict[str, Device]:
    """The devices (network_cli hosts) of a generated inventory: name → :class:`Device`."""
    found: dict[str, Device] = {}

    def walk(group: object) -> None:
        if not isinstance(group, Mapping):
            return
        for name, values in (group.get("hosts") or {}).items():
            if isinstance(values, Mapping) and str(values.get("ansible_connection", "")).endswith("network_cli"):
                address = f"{values.get('ansible_host', name)}:{values.get('ansible_port', 22)}"
                source = values.get("overflyt_credentials")
                credentials = str(source) if source else "the device's credentials entry"
                found[str(name)] = Device(str(name), address, str(values.get("ansible_user", "?")), credentials)
        for child in (group.get("children") or {}).values():
            walk(child)

    walk(inventory.get("all"))
    return found
