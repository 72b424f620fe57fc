"""Run a wave: its phases, in order — admit → precheck → approve → stale check → cut each site →
finish — and roll a site back on demand.

``run_wave`` is what `overflyt wave run` and the `migrate-wave` flow call; ``rollback_site`` is
what `overflyt rollback` and the `rollback-site` flow call. Each phase is a method of
:class:`WaveRun`, so the order reads top to bottom in :func:`run_wave`. Bad input is refused by
admission (:mod:`overflyt.cutover.admission`) before anything is contacted. One run per
municipality at a time (the municipality lock).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from overflyt.ansible import cancel
from overflyt.ansible.runner import AnsibleEvent
from overflyt.ansible.step import StepContext
from overflyt.cutover.admission import Admission, admit, admit_rollback
from overflyt.cutover.outcome import Approval, SiteOutcome, WaveOutcome
from overflyt.cutover.report import report_data, report_markdown
from overflyt.cutover.site import Cutover, OnStep, StepRunner
from overflyt.cutover.state import WaveStore
from overflyt.errors import EXIT_FAILED, EXIT_OK, EXIT_ROLLBACK_FAILED
from overflyt.precheck import fingerprint
from overflyt.precheck.engine import run_checks
from overflyt.precheck.facts import EstateFacts
from overflyt.precheck.findings import PrecheckReport
from overflyt.precheck.gather import gather_estate
from overflyt.precheck.registry import CheckContext, Mode
from overflyt.precheck.report import render
from overflyt.record import Run, municipality_lock

log = logging.getLogger(__name__)

OnEvent = Callable[[AnsibleEvent], None]
SiteRunner = Callable[[str, Callable[[], SiteOutcome]], SiteOutcome]


def _call(_site_id: str, cut: Callable[[], SiteOutcome]) -> SiteOutcome:
    return cut()


def _direct(_site: str, _step: str, call: Callable[[], None]) -> None:
    call()


@dataclass
class WaveRun:
    """One run of a wave, phase by phase; every phase records what it decided in the run record."""

    admission: Admission
    run: Run
    outcome: WaveOutcome
    on_event: OnEvent | None = None
    on_step: OnStep | None = None
    store: WaveStore | None = None  # None in a dry run: a dry run writes no wave state
    untouched: list[str] = field(default_factory=list)
    report: PrecheckReport | None = None
    facts: EstateFacts | None = None
    refused: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ctx(self) -> StepContext:
        a = self.admission
        return StepContext(a.loaded, a.wave, self.run, a.credentials, on_event=self.on_event)

    def precheck(self, outside_window: bool) -> bool:
        """Pre-check the sites this wave has not touched yet; False when something critical blocks the
        wave (nothing was changed). Done sites are skipped and half-done ones resume from their
        recorded state: their VMs are already (partly) in the target by our own doing."""
        a, dry_run = self.admission, self.admission.dry_run
        plan = a.loaded.plan
        self.store = None if dry_run else WaveStore(plan.municipality.code, a.wave)
        store = self.store
        self.untouched = [
            s for s in a.sites if store is None or store.site(s).status in ("pending", "rolled_back", "failed")
        ]
        if not self.untouched:
            return True
        with self.run.step("precheck", f"wave {a.wave}: {', '.join(self.untouched)}"):
            facts, _ = gather_estate(self.ctx, self.untouched, timeout_s=plan.timeouts.precheck_s)
            mode: Mode = "precheck" if dry_run or outside_window else "run"
            context = CheckContext(
                plan=plan, wave=a.wave, facts=facts, now=datetime.now(UTC), sites=tuple(self.untouched), mode=mode
            )
            report = self.report = run_checks(context)
            self.run.write("precheck.md", render(report, "markdown"))
            self.run.write("precheck.json", render(report, "json"))
            self.facts = facts
        self.outcome.precheck = {str(k): v for k, v in report.counts.items()}
        if report.blocked:
            self.outcome.blocked = True
            self.run.record.notes["blocked_by"] = [
                f"{f.id} {f.subject}" for f in report.findings if f.severity == "critical"
            ]
            return False
        return True

    def approve(self, approval: Approval | None, decide: Callable[[], Approval | None] | None) -> bool:
        """The approval gate of a real cutover of a plan that needs one; False when not given."""
        if self.admission.dry_run or not self.admission.loaded.plan.approval_required:
            return True
        approval = approval or (decide() if decide else None)
        if approval is None:
            self.run.record.notes["approval"] = "not given: nothing was changed"
            self.outcome.blocked = True
            return False
        self.outcome.approval = approval
        self.run.record.notes["approval"] = asdict(approval)
        self.run.save()
        return True

    def stale_check(self) -> None:
        """A site none of whose cutover has begun is refused when anything of it changed since the
        last pre-check of the wave (like a stale saved Terraform plan)."""
        facts = self.facts
        saved = fingerprint.load(self.run.dir.parents[1])
        if self.store is None or saved is None or facts is None:
            return
        plan, wave = self.admission.loaded.plan, self.admission.wave
        self.refused = fingerprint.stale(plan, saved, fingerprint.take(plan, wave, self.untouched, facts))
        self.run.record.notes["stale"] = self.refused

    def cut_sites(self, site_runner: SiteRunner, step_runner: StepRunner) -> None:
        """Each site's cutover (or dry run), in the wave's order, as the plan's failure policy says."""
        cutover = Cutover(self.ctx, on_step=self.on_step, step_runner=step_runner)
        plan, store = self.admission.loaded.plan, self.store
        for site_id in self.admission.sites:
            if site_id in self.refused:
                reason = "stale plan: " + "; ".join(self.refused[site_id]) + "; re-run the pre-check and review"
                self.outcome.sites.append(SiteOutcome(site_id, "refused", error=reason))
                if self.on_step is not None:
                    self.on_step(site_id, "cutover", "refused (stale plan)")
                continue
            with self.run.step("dry-run" if store is None else "cutover", site_id) as step:

                def cut(site_id: str = site_id) -> SiteOutcome:
                    return cutover.dry_run_site(site_id) if store is None else cutover.run_site(site_id, store)

                result = site_runner(site_id, cut)
                step.detail = {"status": result.status, "error": result.error}
                if result.status in ("failed", "rolled_back", "rollback_failed"):
                    step.status = "rolled_back" if result.status == "rolled_back" else "failed"
            self.outcome.sites.append(result)
            if result.canceled:
                self.run.record.notes["canceled"] = {"site": site_id, "error": result.error}
                break
            if result.status == "rollback_failed" or (
                result.status in ("failed", "rolled_back") and plan.on_site_failure == "stop"
            ):
                break

    def finish(self) -> WaveOutcome:
        _finish(self.run, self.outcome)
        return self.outcome


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
    step_runner: StepRunner | None = None,
) -> WaveOutcome:
    """Pre-check the wave, then cut its sites over (or, with ``dry_run``, show what would change).

    ``site_runner(site_id, cut)`` runs one site's cutover ``cut()`` and ``step_runner(site, step,
    call)`` one step of it — the Prefect flow passes ones that make each site a subflow run and
    each step a task; by default they are simply called."""
    admission = admit(
        plan_path, wave, sites, dry_run=dry_run, approval_given=approval is not None,
        can_ask=decide_approval is not None,
    )  # fmt: skip
    code = admission.loaded.plan.municipality.code
    with municipality_lock(code, f"wave {wave} {'dry run' if dry_run else 'cutover'}"):
        run = Run.create("wave", code, wave, list(admission.sites), dry_run=dry_run)
        outcome = WaveOutcome(code, wave, dry_run, run.record.run_id, run.dir)
        if outside_window and not dry_run:
            outcome.overrides.append("run outside the wave's maintenance window (--outside-window)")
        log.info("wave %d (%s): run %s", wave, "dry run" if dry_run else "cutover", run.dir)
        phases = WaveRun(admission, run, outcome, on_event=on_event, on_step=on_step)
        if phases.precheck(outside_window) and phases.approve(approval, decide_approval):
            phases.stale_check()
            phases.cut_sites(site_runner or _call, step_runner or _direct)
        return phases.finish()


def rollback_site(
    plan_path: Path,
    site_id: str,
    *,
    on_event: OnEvent | None = None,
    on_step: OnStep | None = None,
    step_runner: StepRunner | None = None,
) -> WaveOutcome:
    """Roll back a site's cutover on demand, from its wave's recorded state."""
    admission = admit_rollback(plan_path, site_id)
    code, wave = admission.loaded.plan.municipality.code, admission.wave
    with municipality_lock(code, f"rollback of {site_id}"):
        store = WaveStore(code, wave)
        run = Run.create("rollback", code, wave, [site_id], dry_run=False)
        outcome = WaveOutcome(code, wave, False, run.record.run_id, run.dir, kind="rollback")
        ctx = StepContext(admission.loaded, wave, run, admission.credentials, on_event=on_event)
        cutover = Cutover(ctx, on_step=on_step, step_runner=step_runner or _direct)
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


__all__ = ["Approval", "WaveOutcome", "WaveRun", "report_data", "report_markdown", "rollback_site", "run_wave"]
