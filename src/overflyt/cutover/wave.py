"""Run a wave: pre-checks, then each site's cutover (VMs and network together), then the report.

``run_wave`` is what `overflyt wave run` and the `migrate-wave` flow call. Bad input — unknown
wave or site, a credential that resolves to nothing, a missing approval — is refused before
anything is contacted. One run per municipality at a time (the municipality lock).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from overflyt.ansible import cancel
from overflyt.cutover import fingerprint
from overflyt.cutover.site import Cutover, OnEvent, OnStep, SiteOutcome
from overflyt.cutover.state import WaveStore
from overflyt.errors import EXIT_FAILED, EXIT_OK, EXIT_ROLLBACK_FAILED, UsageError
from overflyt.plan import Plan, load_plan
from overflyt.plan.credentials import resolve_all
from overflyt.plan.select import refuse_vms_ahead_of_their_site, select_sites
from overflyt.precheck.engine import run_checks
from overflyt.precheck.gather import gather_estate
from overflyt.precheck.registry import CheckContext, Mode
from overflyt.precheck.report import render
from overflyt.record import Run, municipality_lock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Approval:
    approved_by: str
    ticket: str | None = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


@dataclass
class WaveOutcome:
    municipality: str
    wave: int
    dry_run: bool
    run_id: str
    run_dir: Path
    blocked: bool = False
    precheck: dict[str, int] = field(default_factory=dict)
    sites: list[SiteOutcome] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    approval: Approval | None = None
    kind: str = "wave"  # wave | rollback

    @property
    def exit_code(self) -> int:
        if any(s.status == "rollback_failed" for s in self.sites):
            return EXIT_ROLLBACK_FAILED
        if self.kind == "rollback":  # an on-demand rollback succeeds by rolling back
            return EXIT_OK if all(s.status == "rolled_back" for s in self.sites) else EXIT_FAILED
        if self.blocked or any(s.status in ("rolled_back", "failed", "refused") for s in self.sites):
            return EXIT_FAILED
        return EXIT_OK


def run_wave(
    plan_path: Path,
    wave: int,
    sites: Sequence[str] = (),
    *,
    dry_run: bool = True,
    approval: Approval | None = None,
    outside_window: bool = False,
    on_event: OnEvent | None = None,
    on_step: OnStep | None = None,
    decide_approval: Callable[[], Approval | None] | None = None,
    site_runner: SiteRunner | None = None,
) -> WaveOutcome:
    """Pre-check the wave, then cut its sites over (or, with ``dry_run``, show what would change).

    ``site_runner(site_id, cut)`` runs one site's cutover ``cut()`` — the Prefect flow passes one
    that makes each site its own subflow run; by default it is simply called."""
    plan = load_plan(plan_path)
    chosen = select_sites(plan, wave, sites)
    refuse_vms_ahead_of_their_site(plan)
    credentials = resolve_all(plan, plan_path.parent)
    if not dry_run and plan.approval_required and approval is None and decide_approval is None:
        raise UsageError(
            f"wave {wave} of {plan.municipality.name} needs approval before its cutover: "
            "give --approved-by NAME (and --ticket REF), or run it with --dry-run"
        )
    code = plan.municipality.code
    with municipality_lock(code, f"wave {wave} {'dry run' if dry_run else 'cutover'}"):
        run = Run.create("wave", code, wave, chosen, dry_run=dry_run)
        outcome = WaveOutcome(code, wave, dry_run, run.record.run_id, run.dir)
        if outside_window and not dry_run:
            outcome.overrides.append("run outside the wave's maintenance window (--outside-window)")
        log.info("wave %d (%s): run %s", wave, "dry run" if dry_run else "cutover", run.dir)

        # 1. Pre-checks of the sites this wave has not touched yet (anything critical stops the wave
        #    before it changes anything). Done sites are skipped and half-done ones resume from
        #    their recorded state: their VMs are already (partly) in the target by our own doing.
        store = None if dry_run else WaveStore(code, wave)
        untouched = [s for s in chosen if store is None or store.site(s).status in ("pending", "rolled_back", "failed")]
        facts = None
        if untouched:
            with run.step("precheck", f"wave {wave}: {', '.join(untouched)}"):
                facts, _ = gather_estate(
                    plan, plan_path, untouched, run, credentials, on_event=on_event, timeout_s=plan.timeouts.precheck_s
                )
                mode: Mode = "precheck" if dry_run or outside_window else "run"
                report = run_checks(
                    CheckContext(
                        plan=plan, wave=wave, facts=facts, now=datetime.now(UTC), sites=tuple(untouched), mode=mode
                    )
                )
                run.write("precheck.md", render(report, "markdown"))
                run.write("precheck.json", render(report, "json"))
            outcome.precheck = {str(k): v for k, v in report.counts.items()}
            if report.blocked:
                outcome.blocked = True
                run.record.notes["blocked_by"] = [
                    f"{f.id} {f.subject}" for f in report.findings if f.severity == "critical"
                ]
                _finish(run, outcome)
                return outcome

        # 2. Approval gate (a real cutover only).
        if not dry_run and plan.approval_required:
            approval = approval or (decide_approval() if decide_approval else None)
            if approval is None:
                run.record.notes["approval"] = "not given: nothing was changed"
                outcome.blocked = True
                _finish(run, outcome)
                return outcome
            outcome.approval = approval
            run.record.notes["approval"] = asdict(approval)
            run.save()

        # 3. Stale plan: a site none of whose cutover has begun is refused when anything of it changed
        #    since the last pre-check of the wave (like a stale saved Terraform plan).
        refused: dict[str, list[str]] = {}
        saved = fingerprint.load(run.dir.parents[1])
        if store is not None and saved is not None and facts is not None:
            refused = fingerprint.stale(plan, saved, fingerprint.take(plan, wave, untouched, facts))
            run.record.notes["stale"] = refused

        # 4. Each site's cutover, in the wave's order.
        cutover = Cutover(plan, plan_path, wave, run, credentials, on_event=on_event, on_step=on_step)
        for site_id in chosen:
            if site_id in refused:
                reason = "stale plan: " + "; ".join(refused[site_id]) + "; re-run the pre-check and review"
                outcome.sites.append(SiteOutcome(site_id, "refused", error=reason))
                if on_step is not None:
                    on_step(site_id, "cutover", "refused (stale plan)")
                continue
            with run.step("dry-run" if dry_run else "cutover", site_id) as step:

                def cut(site_id: str = site_id) -> SiteOutcome:
                    return cutover.dry_run_site(site_id) if store is None else cutover.run_site(site_id, store)

                result = (site_runner or _call)(site_id, cut)
                step.detail = {"status": result.status, "error": result.error}
                if result.status in ("failed", "rolled_back", "rollback_failed"):
                    step.status = "rolled_back" if result.status == "rolled_back" else "failed"
            outcome.sites.append(result)
            if result.canceled:
                run.record.notes["canceled"] = {"site": site_id, "error": result.error}
                break
            if result.status == "rollback_failed" or (
                result.status in ("failed", "rolled_back") and plan.on_site_failure == "stop"
            ):
                break
        _finish(run, outcome)
        return outcome


SiteRunner = Callable[[str, Callable[[], SiteOutcome]], SiteOutcome]


def _call(site_id: str, cut: Callable[[], SiteOutcome]) -> SiteOutcome:
    return cut()


def rollback_target(plan_path: Path, site_id: str) -> tuple[Plan, int]:
    """The plan and wave of a site that has a recorded cutover to roll back; a UsageError otherwise."""
    plan = load_plan(plan_path)
    wave = next((w.number for w in plan.waves if site_id in w.sites), None)
    if wave is None:
        raise UsageError(f"site {site_id!r} is in no wave of the plan (sites: {', '.join(s.id for s in plan.sites)})")
    state = WaveStore(plan.municipality.code, wave).state.sites.get(site_id)
    if state is None or (not state.backups and not state.placements):
        raise UsageError(f"site {site_id} has no recorded cutover in wave {wave}: there is nothing to roll back")
    return plan, wave


def rollback_site(
    plan_path: Path, site_id: str, *, on_event: OnEvent | None = None, on_step: OnStep | None = None
) -> WaveOutcome:
    """Roll back a site's cutover on demand, from its wave's recorded state."""
    plan, wave = rollback_target(plan_path, site_id)
    credentials = resolve_all(plan, plan_path.parent)
    code = plan.municipality.code
    with municipality_lock(code, f"rollback of {site_id}"):
        store = WaveStore(code, wave)
        run = Run.create("rollback", code, wave, [site_id], dry_run=False)
        outcome = WaveOutcome(code, wave, False, run.record.run_id, run.dir, kind="rollback")
        cutover = Cutover(plan, plan_path, wave, run, credentials, on_event=on_event, on_step=on_step)
        with run.step("rollback", site_id), cancel.shielded():
            outcome.sites.append(cutover.rollback_site(site_id, store))
        _finish(run, outcome)
        return outcome


def _finish(run: Run, outcome: WaveOutcome) -> None:
    run.write("report.json", json.dumps(report_data(outcome), indent=2, ensure_ascii=False, default=str))
    run.write("report.md", report_markdown(outcome))
    status = {EXIT_OK: "succeeded", EXIT_FAILED: "failed", EXIT_ROLLBACK_FAILED: "rollback_failed"}[outcome.exit_code]
    if outcome.kind == "rollback" and outcome.exit_code == EXIT_OK:
        status = "rolled_back"
    if (
        outcome.exit_code == EXIT_FAILED
        and outcome.sites
        and all(s.status == "rolled_back" for s in outcome.sites if s.status not in ("done", "skipped"))
    ):
        status = "rolled_back"
    run.finish(status)  # type: ignore[arg-type]


def report_data(outcome: WaveOutcome) -> dict[str, Any]:
    return {
        "municipality": outcome.municipality,
        "wave": outcome.wave,
        "dry_run": outcome.dry_run,
        "run_id": outcome.run_id,
        "run_dir": str(outcome.run_dir),
        "blocked_by_prechecks": outcome.blocked,
        "precheck": outcome.precheck,
        "overrides": outcome.overrides,
        "approval": asdict(outcome.approval) if outcome.approval else None,
        "sites": [asdict(s) for s in outcome.sites],
        "exit_code": outcome.exit_code,
    }


def report_markdown(outcome: WaveOutcome) -> str:
    kind = "dry run" if outcome.dry_run else "cutover"
    lines = [f"# Wave {outcome.wave} of municipality {outcome.municipality} — {kind}", ""]
    lines.append(
        f"Run `{outcome.run_id}`. Pre-checks: " + ", ".join(f"{v} {k}" for k, v in outcome.precheck.items()) + "."
    )
    if outcome.blocked:
        lines += ["", "**Blocked before any change** (pre-checks found critical problems, or approval was not given)."]
    for override in outcome.overrides:
        lines.append(f"\n**Override:** {override}")
    if outcome.approval:
        a = outcome.approval
        lines.append(
            f"\nApproved by **{a.approved_by}** at {a.at}" + (f", ticket {a.ticket}" if a.ticket else "") + "."
        )
    for site in outcome.sites:
        lines += ["", f"## {site.site}: {site.status}"]
        if site.error:
            lines.append(f"\nError: {site.error}")
        if site.steps:
            lines += ["", "| step | seconds |", "| --- | ---: |"] + [f"| {k} | {v} |" for k, v in site.steps.items()]
        vms = (site.vms or {}).get("vms") if isinstance(site.vms, dict) else None
        if vms:
            lines += ["", "| VM | status | to |", "| --- | --- | --- |"]
            for name, vm in vms.items():
                after = vm.get("after") or vm.get("target") or {}
                where = " / ".join(str(after.get(k, "")) for k in ("host", "datastore", "folder") if after.get(k))
                lines.append(f"| {name} | {vm.get('status', '')} | {where} |")
        devices = (site.devices or {}).get("devices") if isinstance(site.devices, dict) else None
        if devices:
            for host, dev in devices.items():
                pending = dev.get("pending_lines") or []
                lines += ["", f"**{host}**: " + ("no change" if not pending else f"{len(pending)} line(s)")]
                if pending:
                    lines += ["", "```", *pending, "```"]
        if site.rollback:
            lines += ["", "Rollback: " + ", ".join(sorted(site.rollback))]
    return "\n".join(lines) + "\n"
