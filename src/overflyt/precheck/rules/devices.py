"""Device checks for the selected sites: reachable over SSH, trusted host key, login, platform, backup.

Each step needs the one before: an unreachable device's host key is not judged, a device whose
key is not trusted is not logged in to, and so on — those checks are skipped, the first failing
one is the finding.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from overflyt.plan.model import NetworkDevice
from overflyt.precheck.facts import DeviceFacts
from overflyt.precheck.findings import Severity
from overflyt.precheck.registry import CheckContext, Evidence, Outcome, Subject, fail, ok, rule, skip

Stage = Literal["reachable", "trusted", "logged_in"]


def _facts(ctx: CheckContext, device: NetworkDevice) -> DeviceFacts | None:
    found = ctx.facts.devices.get(device.hostname)
    if found is not None and found.hostname == device.hostname:
        return found
    return next((d for d in ctx.facts.devices.values() if d.hostname == device.hostname), None)


def _trusted(ctx: CheckContext, device: NetworkDevice, facts: DeviceFacts) -> bool:
    return facts.host_key == "match" or (
        facts.host_key == "insecure_override" and device.hostname in ctx.plan.ssh.insecure_host_keys
    )


def _not_past(ctx: CheckContext, device: NetworkDevice, facts: DeviceFacts | None, stage: Stage) -> str | None:
    """Why the device did not get through ``stage``, naming the check that reports it; None if it did."""
    if facts is None or not facts.reachable:
        return f"{device.hostname} is not reachable (see device.reachable)"
    if stage in ("trusted", "logged_in") and not _trusted(ctx, device, facts):
        return f"{device.hostname}'s host key is not trusted (see device.host_key)"
    if stage == "logged_in" and not facts.login:
        return f"login to {device.hostname} failed (see device.login)"
    return None


def _each(ctx: CheckContext) -> Iterator[tuple[NetworkDevice, Subject, DeviceFacts | None]]:
    for device in ctx.devices:
        yield device, Subject("device", device.hostname, device.site), _facts(ctx, device)


def _at(device: NetworkDevice) -> str:
    return f"{device.management}:{device.port}"


@rule("device.reachable", title="Device answers over SSH", severity=Severity.critical)
def device_reachable(ctx: CheckContext) -> Iterator[Outcome]:
    """Every device of the selected sites answered over SSH at its management address and port.

    Fires when no facts were gathered for the device, or it could not be reached (the gatherer's
    error is in the message). Check the device's `management` address and `port`, the management
    network's ACLs and that the device is up, then run the pre-check again.
    """
    for device, subject, facts in _each(ctx):
        evidence: Evidence = {"address": str(device.management), "port": device.port}
        if facts is None:
            yield fail(
                subject,
                f"Device {device.hostname} ({_at(device)}) was not checked: no facts were gathered; gather facts "
                "for it and run the pre-check again",
                evidence,
            )
        elif not facts.reachable:
            yield fail(
                subject,
                f"Device {device.hostname} is not reachable over SSH at {_at(device)}: "
                f"{facts.error or 'no reason given'}; check its management address, port and ACLs, then run the "
                "pre-check again",
                {**evidence, "error": facts.error},
            )
        else:
            yield ok(subject)


@rule("device.host_key", title="Device host key is the known one", severity=Severity.critical)
def device_host_key(ctx: CheckContext) -> Iterator[Outcome]:
    """The device's SSH host key matches the one in the plan's known_hosts file (`ssh.known_hosts`).

    Critical when the key is unknown, has changed, or was not checked. Never just accept a new
    key: compare the fingerprint in the finding with the one the device shows on its console
    (`ssh-keygen -lf` on its host key, `show ip ssh` / `show crypto key mypubkey` on IOS) — for a
    changed key also ask who replaced the device or its key — and only then put the key into the
    known_hosts file. A device listed in `ssh.insecure_host_keys` is not verified: a warning in
    every report until the override is removed (critical when the gatherer skipped verification
    for a device not listed there).
    """
    known_hosts = ctx.plan.ssh.known_hosts or "the known_hosts file (ssh.known_hosts is not set in the plan)"
    for device, subject, facts in _each(ctx):
        why = _not_past(ctx, device, facts, "reachable")
        if why is not None or facts is None:
            yield skip(subject, why or "")
            continue
        fingerprint = facts.host_key_fingerprint or "(not reported)"
        evidence: Evidence = {
            "host_key": facts.host_key,
            "fingerprint": facts.host_key_fingerprint,
            "address": str(device.management),
            "port": device.port,
            "known_hosts": ctx.plan.ssh.known_hosts,
        }
        verify = (
            f"compare fingerprint {fingerprint} with the one shown on the device's console, and only then "
            f"put the key into {known_hosts}"
        )
        if facts.host_key == "match":
            yield ok(subject)
        elif facts.host_key == "insecure_override" and device.hostname in ctx.plan.ssh.insecure_host_keys:
            yield fail(
                subject,
                f"Host key of {device.hostname} is not verified: explicit insecure override (ssh.insecure_host_keys); "
                f"{verify}, then remove the override",
                evidence,
                severity=Severity.warning,
            )
        elif facts.host_key == "insecure_override":
            yield fail(
                subject,
                f"Host key of {device.hostname} was not verified although the plan does not allow it "
                "(ssh.insecure_host_keys); the fact gatherer must verify it — run the pre-check again with host key "
                "checking",
                evidence,
            )
        elif facts.host_key == "unknown":
            yield fail(
                subject,
                f"Host key of {device.hostname} ({_at(device)}) is unknown: it is not in {known_hosts}; do not just "
                f"accept it — {verify}",
                evidence,
            )
        elif facts.host_key == "changed":
            yield fail(
                subject,
                f"Host key of {device.hostname} ({_at(device)}) has CHANGED from the one in {known_hosts}: the "
                "device or its key was replaced, or someone is in the middle; do not just accept it — find out who "
                f"changed it, {verify}",
                evidence,
            )
        else:
            yield fail(
                subject,
                f"Host key of {device.hostname} was not checked by the fact gatherer; run the pre-check again with "
                "host key checking against ssh.known_hosts",
                evidence,
            )


@rule("device.login", title="Device accepts the login", severity=Severity.critical)
def device_login(ctx: CheckContext) -> Iterator[Outcome]:
    """The device accepted the login with the plan's credentials for it (`devices[].credentials`).

    Check the credentials entry (user and the secret's source) and the device's AAA (local user,
    TACACS+/RADIUS reachability).
    """
    for device, subject, facts in _each(ctx):
        why = _not_past(ctx, device, facts, "trusted")
        if why is not None or facts is None:
            yield skip(subject, why or "")
            continue
        if facts.login:
            yield ok(subject)
            continue
        credential = ctx.plan.credentials.get(device.credentials)
        user = credential.username if credential else "(unknown user)"
        yield fail(
            subject,
            f"Login to {device.hostname} as {user} failed: {facts.error or 'no reason given'}; check credentials "
            f"entry {device.credentials} (user and secret) and the device's AAA",
            {"credentials": device.credentials, "username": user, "error": facts.error},
        )


@rule("device.platform", title="Device is the declared platform", severity=Severity.critical)
def device_platform(ctx: CheckContext) -> Iterator[Outcome]:
    """The device answers as the platform the plan declares (`devices[].platform`: ios, aoscx, frr).

    A different platform would get the wrong configuration templates. Fix the plan, or check that
    the management address reaches the device you think it does.
    """
    for device, subject, facts in _each(ctx):
        why = _not_past(ctx, device, facts, "logged_in")
        if why is not None or facts is None:
            yield skip(subject, why or "")
            continue
        declared = device.platform.value
        if facts.platform == declared:
            yield ok(subject)
            continue
        actual = facts.platform or "nothing recognisable"
        yield fail(
            subject,
            f"{device.hostname} answers as {actual}, the plan declares {declared}; fix devices[].platform in the plan "
            "or check that its management address reaches the right device",
            {"plan": declared, "actual": facts.platform, "version": facts.version},
        )


@rule("device.backup", title="Running config backed up", severity=Severity.critical)
def device_backup(ctx: CheckContext) -> Iterator[Outcome]:
    """The device's running configuration was read and saved (its SHA-256 and the backup file).

    Without a backup a cutover cannot be rolled back. Check that the account may read the running
    configuration (privilege level, `show running-config`) and that the run record is writable.
    """
    for device, subject, facts in _each(ctx):
        why = _not_past(ctx, device, facts, "logged_in")
        if why is not None or facts is None:
            yield skip(subject, why or "")
            continue
        if facts.running_config_sha256 and facts.backup_file:
            yield ok(subject)
            continue
        yield fail(
            subject,
            f"Running config of {device.hostname} could not be backed up; a cutover without a backup cannot be "
            "rolled back — check that the account may read the running configuration, then run the pre-check again",
            {"running_config_sha256": facts.running_config_sha256, "backup_file": facts.backup_file},
        )
