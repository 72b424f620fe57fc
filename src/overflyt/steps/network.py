"""The network half of a site cutover, one step per call: backup, configure (+ verify), verify,
restore, post-check. ``site_id`` may also be the key of a subnet that moves ahead of its site
(:mod:`overflyt.plan.ahead`): the same steps over the devices that route it (:mod:`.ahead`).

Each function takes the run's :class:`~overflyt.ansible.step.StepContext` and a site, runs one
playbook over the site's devices through :func:`~overflyt.ansible.step.run_step` (desired state from
:mod:`overflyt.steps.device_changes` as ``overflyt_*`` variables), and returns typed results read
from the roles' ``set_stats``. A failed step raises
:class:`~overflyt.errors.PlaybookFailed` naming the failed hosts and why; a restore that cannot
put a device back raises :class:`~overflyt.errors.RollbackFailed` (a human must act).

Device changes follow backup → render → diff → push → verify → restore on failure: the
orchestrator calls :func:`backup_site` first, hands the backups to :func:`configure_site` (which
refuses to run without one per device) and to :func:`restore_site` on failure.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from overflyt.ansible.inventory import CONTROLLER
from overflyt.ansible.runner import PlaybookResult
from overflyt.ansible.step import StepContext, failure_text, raise_on_failure, run_step
from overflyt.errors import PlaybookFailed, RollbackFailed, UsageError
from overflyt.plan.ahead import find_ahead
from overflyt.plan.rules import probe_device
from overflyt.steps.ahead import ahead_device_changes, ahead_postcheck_targets
from overflyt.steps.device_changes import device_changes, postcheck_targets

log = logging.getLogger(__name__)

Side = Literal["target", "source", "any"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Backup(_Model):
    """A device's running configuration before the change, saved in the run record."""

    hostname: str
    file: str
    sha256: str


class DeviceConfigured(_Model):
    hostname: str
    pending_lines: list[str]  # what the change had to push (what a dry run would push)
    pushed_lines: list[str]  # what was pushed ([] in a dry run and when nothing was left to do)
    changed: bool
    verified: bool
    missing: list[str] = []
    extra: list[str] = []
    config_sha256: str | None = None  # of the running configuration after the change, as verified


class ConfigureResult(_Model):
    site: str
    wave: int
    dry_run: bool
    duration_s: float
    devices: dict[str, DeviceConfigured]

    @property
    def changed(self) -> bool:
        return any(d.changed for d in self.devices.values())


class DeviceVerified(_Model):
    hostname: str
    verified: bool
    missing: list[str]
    extra: list[str]
    config_sha256: str


class VerifyResult(_Model):
    site: str
    wave: int
    duration_s: float
    devices: dict[str, DeviceVerified]


class DeviceRestored(_Model):
    hostname: str
    backup_file: str
    backup_sha256: str
    before_sha256: str
    after_sha256: str
    pending_lines: list[str]
    pushed_lines: list[str]
    changed: bool
    unrestorable: list[str]
    restored: bool


class RestoreResult(_Model):
    site: str
    dry_run: bool
    duration_s: float
    devices: dict[str, DeviceRestored]

    @property
    def restored(self) -> bool:
        return all(d.restored for d in self.devices.values())


class Probe(_Model):
    address: str
    expect: Side
    reached: bool
    side: str | None
    answer: str
    ok: bool


class PostcheckResult(_Model):
    site: str
    skipped: bool
    reason: str | None = None
    netns: str
    duration_s: float
    probes: dict[str, Probe] = {}
    via: str = ""  # netns | ssh | gateway (the plan probe's way); "" when the site has no probe


def backup_site(
    ctx: StepContext,
    site_id: str,
    *,
    dry_run: bool = False,
    timeout_s: int = 600,
) -> dict[str, Backup]:
    """Save every device's running configuration of ``site_id`` into ``<run>/backups/cutover`` (a
    subnet ahead of its site: into ``<run>/backups/cutover/<site>_<network>-<prefix>``).

    Read-only on the devices, dry run or not. Returns the backups by hostname."""
    devices = _site_devices(ctx, site_id)
    directory = ctx.run.dir / "backups" / "cutover"
    if find_ahead(ctx.plan, site_id) is not None:  # its own backups: a site of the run may share a device
        directory = directory / site_id.replace(":", "_")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    device_vars = {host: {"net_backup_dir": str(directory)} for host in devices}
    result = _run(ctx, "net_backup.yml", "net-backup", site_id, device_vars, dry_run=dry_run, timeout_s=timeout_s)
    raise_on_failure(result, f"backup of site {site_id}")
    reported: dict[str, Any] = dict(result.result.get("backup") or {})
    backups: dict[str, Backup] = {}
    for host in devices:
        data = reported.get(host)
        if not data:
            raise PlaybookFailed(f"backup of site {site_id}: {host} reported no backup", [host])
        backup = Backup(hostname=host, file=str(data["file"]), sha256=str(data["sha256"]))
        actual = hashlib.sha256(Path(backup.file).read_bytes()).hexdigest()
        if actual != backup.sha256:
            raise PlaybookFailed(
                f"backup of site {site_id}: {backup.file} has sha256 {actual}, the role reported {backup.sha256}",
                [host],
            )
        backups[host] = backup
    return backups


def configure_site(
    ctx: StepContext,
    site_id: str,
    backups: Mapping[str, Backup],
    *,
    dry_run: bool,
    extra_lines: Mapping[str, Sequence[str]] | None = None,
    timeout_s: int = 900,
) -> ConfigureResult:
    """Render, diff, push and verify the cutover's change on every device of ``site_id``.

    ``dry_run`` runs under ``--check --diff``: the diff is shown, nothing is sent. Refuses to run
    unless ``backups`` holds one backup per device. ``extra_lines`` (tests, emergencies) adds
    top-level lines per device, pushed and verified like the rendered ones."""
    devices = _site_devices(ctx, site_id)
    missing = [host for host in devices if host not in backups]
    if missing:
        raise UsageError(f"configure of site {site_id}: no backup of {', '.join(missing)}; back the devices up first")
    device_vars: dict[str, dict[str, Any]] = {}
    for host, change in devices.items():
        values = change.device_vars()
        if extra_lines and host in extra_lines:
            values["net_configure_extra_lines"] = list(extra_lines[host])
        device_vars[host] = values
    result = _run(ctx, "net_configure.yml", "net-configure", site_id, device_vars, dry_run=dry_run, timeout_s=timeout_s)
    raise_on_failure(result, f"configure of site {site_id}")
    configured: dict[str, Any] = dict(result.result.get("configure") or {})
    verified: dict[str, Any] = dict(result.result.get("verify") or {})
    out: dict[str, DeviceConfigured] = {}
    for host in devices:
        pushed, check = configured.get(host), verified.get(host)
        if not pushed or not check:
            raise PlaybookFailed(f"configure of site {site_id}: {host} reported no result", [host])
        out[host] = DeviceConfigured(
            hostname=host,
            pending_lines=list(pushed["pending_lines"]),
            pushed_lines=list(pushed["pushed_lines"]),
            changed=bool(pushed["changed"]),
            verified=bool(check["verified"]),
            missing=list(check["missing"]),
            extra=list(check["extra"]),
            config_sha256=str(check["config_sha256"]) if check.get("config_sha256") else None,
        )
    return ConfigureResult(site=site_id, wave=ctx.wave, dry_run=dry_run, duration_s=result.duration_s, devices=out)


def verify_site(
    ctx: StepContext,
    site_id: str,
    *,
    timeout_s: int = 600,
    fail: bool = True,
) -> VerifyResult:
    """Check, read-only, that every device of ``site_id`` holds the cutover's desired state (with
    ``fail=False`` only report it: a device that does not is no failure)."""
    devices = _site_devices(ctx, site_id)
    device_vars = {host: {**change.device_vars(), "net_verify_fail": fail} for host, change in devices.items()}
    result = _run(ctx, "net_verify.yml", "net-verify", site_id, device_vars, dry_run=False, timeout_s=timeout_s)
    raise_on_failure(result, f"verify of site {site_id}")
    reported: dict[str, Any] = dict(result.result.get("verify") or {})
    out: dict[str, DeviceVerified] = {}
    for host in devices:
        data = reported.get(host)
        if not data:
            raise PlaybookFailed(f"verify of site {site_id}: {host} reported no result", [host])
        out[host] = DeviceVerified(
            hostname=host,
            verified=bool(data["verified"]),
            missing=list(data["missing"]),
            extra=list(data["extra"]),
            config_sha256=str(data["config_sha256"]),
        )
    return VerifyResult(site=site_id, wave=ctx.wave, duration_s=result.duration_s, devices=out)


Applied = Literal["applied", "partly applied", "not applied"]


def classify(verified: VerifyResult | None, restored: RestoreResult) -> dict[str, Applied]:
    """What a failed or interrupted change had left on each device, from what was re-read after it
    (never from what the failed task said): not applied when the device was still byte-equal to
    its backup when the restore read it, applied when it held the whole desired state
    (``verified``: :func:`verify_site` with ``fail=False``, run before the restore), partly applied
    otherwise."""
    out: dict[str, Applied] = {}
    for host, device in restored.devices.items():
        if device.before_sha256 == device.backup_sha256:
            out[host] = "not applied"
        elif verified is not None and host in verified.devices and verified.devices[host].verified:
            out[host] = "applied"
        else:
            out[host] = "partly applied"
    return out


def restore_site(
    ctx: StepContext,
    site_id: str,
    backups: Mapping[str, Backup],
    *,
    dry_run: bool,
    timeout_s: int = 900,
) -> RestoreResult:
    """Put every device of ``site_id`` back to its backup, verified byte-equal (sha256).

    Raises :class:`RollbackFailed` when a device could not be restored or proven restored (or
    has no backup). A dry run only shows what it would push."""
    devices = _site_devices(ctx, site_id)
    missing = [host for host in devices if host not in backups]
    if missing:
        raise RollbackFailed(f"restore of site {site_id}: no backup of {', '.join(missing)}: restore them by hand")
    device_vars = {
        host: {"net_restore_backup_file": backups[host].file, "net_restore_backup_sha256": backups[host].sha256}
        for host in devices
    }
    result = _run(ctx, "net_restore.yml", "net-restore", site_id, device_vars, dry_run=dry_run, timeout_s=timeout_s)
    reported: dict[str, Any] = dict(result.result.get("restore") or {})
    out: dict[str, DeviceRestored] = {}
    for host in devices:
        data = reported.get(host)
        if data:
            out[host] = DeviceRestored(
                hostname=host,
                backup_file=str(data["backup_file"]),
                backup_sha256=str(data["backup_sha256"]),
                before_sha256=str(data["before_sha256"]),
                after_sha256=str(data["after_sha256"]),
                pending_lines=list(data["pending_lines"]),
                pushed_lines=list(data["pushed_lines"]),
                changed=bool(data["changed"]),
                unrestorable=list(data["unrestorable"]),
                restored=bool(data["restored"]),
            )
    if not result.ok or (not dry_run and len(out) < len(devices)):
        raise RollbackFailed(
            f"restore of site {site_id} failed ({result.status}); devices not back to their backup: "
            + failure_text(result, [h for h in devices if h not in out or not out[h].restored])
        )
    return RestoreResult(site=site_id, dry_run=dry_run, duration_s=result.duration_s, devices=out)


def postcheck_site(
    ctx: StepContext,
    site_id: str,
    *,
    expect: Mapping[str, Side] | None = None,
    timeout_s: int = 300,
) -> PostcheckResult:
    """Real traffic from the site's client LAN (plan ``site.probe``) to every powered-on server of
    the subnets the cutover moved: each must answer from the shared datacentre (``target``).

    The traffic comes from the plan's ``site.probe`` (of the unit's site: a subnet moved ahead of
    its site is probed from that site): a namespace on the controller (``netns``), a probe host at
    the site over SSH (``ssh``; TCP connects, as from the namespace), or the site's gateway device
    (``gateway``; the platform's ping sourced from its LAN interface: a reply is enough, the side
    cannot be told). ``expect`` adds or overrides targets (address → expected side). A site without
    a probe is reported as skipped (no traffic proof). Read-only: the same in a dry run (it then
    shows the traffic as it is)."""
    ahead = find_ahead(ctx.plan, site_id)
    home = ahead.site if ahead is not None else site_id
    site = ctx.plan.site(home)
    moved = ahead_postcheck_targets(ctx.plan, ahead) if ahead else postcheck_targets(ctx.plan, ctx.wave, site_id)
    targets: dict[str, Side] = {address: "target" for address in moved}
    targets.update(expect or {})
    probe = site.probe
    probe_host = f"probe-{home}"
    gateway = probe_device(ctx.plan, home) or ""
    controller: dict[str, Any] = {
        "site_postcheck_via": probe.via if probe else "",
        "site_postcheck_netns": (probe.netns or "") if probe else "",
        "site_postcheck_probe_host": probe_host if probe and probe.ssh else "",
        "site_postcheck_gateway": gateway,
        "site_postcheck_source": probe.gateway.source if probe and probe.gateway else "",
        "site_postcheck_count": probe.gateway.count if probe and probe.gateway else 3,
        "site_postcheck_port": probe.port if probe else 7070,
        "site_postcheck_targets": [{"address": a, "expect": e} for a, e in targets.items()],
    }
    result = run_step(
        ctx, "site_postcheck.yml", f"site-postcheck-{site_id}", controller_vars=controller, dry_run=False,
        timeout_s=timeout_s, devices_home=bool(probe and not probe.netns), vcenters=False,
        sites=[home] if gateway else [],
        probe_hosts={probe_host: probe.ssh} if probe and probe.ssh else None,
    )  # fmt: skip
    data: dict[str, Any] = dict(result.result.get("postcheck") or {})
    probes = {address: Probe(address=address, **values) for address, values in (data.get("probes") or {}).items()}
    if not result.ok:
        bad = [f"{p.address} answered {p.answer!r} (expected {p.expect})" for p in probes.values() if not p.ok]
        detail = "; ".join(bad) if bad else failure_text(result)
        raise PlaybookFailed(f"post-check of site {site_id} failed: {detail}", [CONTROLLER])
    return PostcheckResult(
        site=site_id,
        skipped=bool(data.get("skipped", not targets)),
        reason=data.get("reason") or (None if targets else "no moved server to probe"),
        netns=str(data.get("netns") or ""),
        via=str(data.get("via") or (probe.via if probe else "")),  # a probe with nothing to probe: still its way
        duration_s=result.duration_s,
        probes=probes,
    )


# -- helpers --------------------------------------------------------------------------------------


def _site_devices(ctx: StepContext, site_id: str) -> dict[str, Any]:
    """The devices a unit's change touches, with what it wants on each: a site's own (all its
    devices), or those that route a subnet moving ahead of its site (``site_id`` its unit key)."""
    plan, wave = ctx.plan, ctx.wave
    if wave not in {w.number for w in plan.waves}:
        raise UsageError(f"wave {wave}: not in the plan")
    ahead = find_ahead(plan, site_id)
    if ahead is not None:
        if ahead.wave != wave:
            raise UsageError(f"subnet {ahead.subnet} of site {ahead.site} moves ahead in wave {ahead.wave}, not {wave}")
        return dict(ahead_device_changes(plan, ahead))
    if site_id not in {s.id for s in plan.sites}:
        raise UsageError(f"site {site_id!r}: not in the plan")
    if site_id not in plan.wave(wave).sites:
        raise UsageError(f"site {site_id} is not cut over in wave {wave}")
    return dict(device_changes(plan, wave, site_id))


def _run(
    ctx: StepContext,
    playbook: str,
    step: str,
    site_id: str,
    device_vars: Mapping[str, Mapping[str, Any]],
    *,
    dry_run: bool,
    timeout_s: int,
) -> PlaybookResult:
    sites = sorted({d.site for d in ctx.plan.devices if d.hostname in device_vars})
    result = run_step(
        ctx, playbook, f"{step}-{site_id}", sites=sites, hosts=list(device_vars), device_vars=device_vars,
        dry_run=dry_run, timeout_s=timeout_s, vcenters=False,
    )  # fmt: skip
    log.info("%s of site %s: %s in %.1fs", step, site_id, result.status, result.duration_s)
    return result
