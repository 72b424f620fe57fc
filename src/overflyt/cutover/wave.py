"""Run a wave: its phases, in order — admit → precheck → approve → stale check → cut each site →
finish — and roll a site back on demand.

``run_wave`` is what `overflyt wave run` and the `migrate-wave` flow call; ``rollback_site`` is
what `overflyt rollback` and the `rollback-site` flow call. Each phase is a method of
:class:`WaveRun`, so the order reads top to bottom in :func:`run_wave`. Bad input is refused by
admission (:mod:`overflyt.cutover.admission`) before anything is contacted. One run per
municipality at a time (the municipality lock).

The wave's maintenance window is held while its sites run (:class:`~overflyt.cutover.window.WindowGate`): no site starts
after the window has closed or when what is left of it is shorter than the site's estimate (the
planner's, :func:`overflyt.planning.cost.move_cost`) plus the plan's margin — such a site ends
``not_started``, untouched, and a later run carries on with it; a site under way when the window
closes finishes or is rolled back, as ``window_policy.on_window_end`` says. ``--outside-window``
(``outside_window``) lifts all of it and is recorded as an override: who and why. A rollback is
always allowed outside the window.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from overflyt.ansible import cancel, leftovers
from overflyt.ansible.runner import AnsibleEvent
from overflyt.ansible.step import StepContext
from overflyt.cutover import parallel
from overflyt.cutover.admission import Admission, admit, admit_rollback
from overflyt.cutover.outcome import Approval, SiteOutcome, WaveOutcome
from overflyt.cutover.report import names_of, report_data, report_markdown
from overflyt.cutover.site import Cutover, OnStep, StepRunner
from overflyt.cutover.state import WaveStore, plan_version
from overflyt.cutover.units import stale_reasons, to_undo
from overflyt.cutover.window import ROLLBACK_ANY_TIME, WindowGate, minutes_text, now, window_text
from overflyt.errors import EXIT_FAILED, EXIT_OK, EXIT_ROLLBACK_FAILED
from overflyt.plan import Plan
from overflyt.plan.ahead import is_ahead_key, read_sites
from overflyt.precheck import fingerprint
from overflyt.precheck.engine import run_checks
from overflyt.precheck.facts import EstateFacts
from overflyt.precheck.findings import PrecheckReport
from overflyt.precheck.gather import gather_estate
from overflyt.precheck.registry import CheckContext, Mode
from overflyt.precheck.report import render
from overflyt.precheck.rules.plan import waive_window
from overflyt.precheck.waivers import apply_waivers, in_force, today
from overflyt.record import Run, municipality_lock
from overflyt.reports import labels, one_line
from overflyt.steps.vm_batches import site_vms

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
    gate: WindowGate | None = None  # None in a dry run and with --outside-window: the window holds nothing back
    override: str | None = None  # --outside-window: by whom and why
    clock: Callable[[], datetime] = now

    @property
    def ctx(self) -> StepContext:
        a = self.admission
        return StepContext(a.loaded, a.wave, self.run, a.credentials, on_event=self.on_event)

    def hold_window(self, outside_window: bool, reason: str | None) -> None:
        """A real cutover holds its wave's window (the gate), or overrides it on purpose: recorded
        with who and why."""
        plan, wave, run = self.admission.loaded.plan, self.admission.wave, self.run
        window, policy = plan.wave(wave).window, plan.window_policy
        held = f"Wave {wave}'s window: {window_text(window)}."
        facts: dict[str, Any] = {
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
            "timezone": window.timezone,
            "held": not outside_window,
            "on_window_end": policy.on_window_end,
            "margin_min": policy.margin_min,
        }
        if outside_window:
            why = (reason or "").strip() or "no reason given"
            self.override = f"--outside-window by {run.record.operator}: {why}"
            self.outcome.overrides.append(
                f"run outside the wave's maintenance window ({window_text(window)}) with --outside-window, "
                f"by {run.record.operator}: {why}"
            )
            run.record.notes["override"] = {"outside_window": True, "by": run.record.operator, "why": why, **facts}
            facts["note"] = f"{held} Not held: this run was started with --outside-window (see the override). "
        else:
            self.gate = WindowGate(plan, wave, clock=self.clock, on_step=self.on_step)
            end = "finished (reported as running over)" if policy.on_window_end == "finish" else "rolled back"
            facts["note"] = (
                f"{held} A site starts only while what is left of the window holds the site's estimate plus a "
                f"{minutes_text(policy.margin_min)} margin; a site under way when it closes is {end} "
                f"(on_window_end: {policy.on_window_end}). "
            )
        facts["note"] += ROLLBACK_ANY_TIME
        self.outcome.window = facts

    def precheck(self, outside_window: bool) -> bool:
        """Pre-check the sites this wave has not touched yet; False when something critical blocks the
        wave (nothing was changed). Done sites are skipped and half-done ones resume from their
        recorded state: their VMs are already (partly) in the target by our own doing."""
        a, dry_run = self.admission, self.admission.dry_run
        plan = a.loaded.plan
        self.store = None if dry_run else WaveStore(plan.municipality.code, a.wave, a.loaded.state)
        if self.store is not None:  # the evidence pack refuses a plan whose wave is not this one
            self.store.state.plan_version = plan_version(plan, a.wave)
        store = self.store
        untouched = [
            s for s in a.sites if store is None or store.site(s).status in ("pending", "rolled_back", "failed")
        ]
        if not untouched:
            return True
        # The pre-check is of the wave's sites; a subnet moving ahead of its site is checked with all of
        # them (the wave's VMs then include it; its site's devices are read and fingerprinted too, for the
        # stale-plan check, and backed up and verified by its cutover).
        wave_sites = plan.wave(a.wave).sites
        ahead = any(is_ahead_key(u) for u in untouched)
        self.untouched = list(wave_sites) if ahead else untouched
        left = frozenset(vm.name for u in untouched for vm in site_vms(plan, a.wave, u)) if ahead else None
        with self.run.step("precheck", f"wave {a.wave}: {', '.join(untouched)}"):
            read = read_sites(plan, a.wave, self.untouched)  # and the gateways of subnets moving ahead
            facts, _ = gather_estate(self.ctx, read, timeout_s=plan.timeouts.precheck_s)
            mode: Mode = "precheck" if dry_run or outside_window else "run"
            context = CheckContext(
                plan=plan,
                wave=a.wave,
                facts=facts,
                now=self.clock(),
                sites=tuple(self.untouched),
                mode=mode,
                only_vms=left,
            )
            report = apply_waivers(run_checks(context), a.loaded.waivers, plan, context.now)
            if self.override is not None and not dry_run:
                report = waive_window(report, self.override)  # an ended window, run anyway on purpose
            self.report = report
            self.run.write("precheck.md", render(report, "markdown", self.outcome.lang))
            self.run.write("precheck.json", render(report, "json"))
            self.facts = facts
        self.outcome.precheck = {str(k): v for k, v in report.counts.items()}
        if report.blocked:
            self.outcome.blocked = True
            self.outcome.blocked_by = blocking_lines(report)
            self.run.record.notes["blocked_by"] = self.outcome.blocked_by
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
            self.outcome.blocked_by = [f"wave {self.admission.wave}: approval not given: nothing was changed"]
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
        waivers = in_force(self.admission.loaded.waivers, today(plan, wave, self.clock()))
        now = fingerprint.take(plan, wave, read_sites(plan, wave, self.untouched), facts, waivers)
        self.refused = fingerprint.stale(plan, saved, now)
        self.run.record.notes["stale"] = self.refused

    def cut_sites(self, site_runner: SiteRunner, step_runner: StepRunner) -> None:
        """Each site's cutover (or dry run), in the wave's order, up to ``concurrency.sites`` at once
        (:mod:`overflyt.cutover.parallel`), as the plan's failure policy says."""
        plan, store, gate = self.admission.loaded.plan, self.store, self.gate
        if store is None:
            gate = None  # a dry run changes nothing: any time will do
        before_step = gate.before_step if gate is not None else None
        ctx = dataclasses.replace(self.ctx, stop_moves=gate.stop_moves if gate is not None else None)
        cutover = Cutover(ctx, on_step=self.on_step, step_runner=step_runner, before_step=before_step)

        def hold(site_id: str) -> SiteOutcome | None:
            stale = stale_reasons(plan, site_id, self.refused)  # an ahead subnet: its site's, its devices'
            under_way = store is not None and store.site(site_id).status not in ("pending", "rolled_back", "failed")
            if stale and not under_way:
                reason = "stale plan: " + "; ".join(stale) + "; re-run the pre-check and review"
                if self.on_step is not None:
                    self.on_step(site_id, "cutover", "refused (stale plan)")
                return SiteOutcome(site_id, "refused", error=reason)
            why = None if gate is None or store is None else gate.refusal(site_id, store.site(site_id).status)
            return None if why is None else self._not_started(site_id, why)

        def cut_one(site_id: str) -> SiteOutcome:
            with self.run.step("dry-run" if store is None else "cutover", site_id) as step:

                def cut() -> SiteOutcome:
                    return cutover.dry_run_site(site_id) if store is None else cutover.run_site(site_id, store)

                result = site_runner(site_id, cut)
                if gate is not None and result.window is None:
                    result.window = gate.ran_over(result)
                step.detail = {"status": result.status, "error": result.error}
                if result.window:
                    step.detail["window"] = result.window
                if result.status in ("failed", "rolled_back", "rollback_failed"):
                    step.status = "rolled_back" if result.status == "rolled_back" else "failed"
            if result.canceled and "canceled" not in self.run.record.notes:
                self.run.record.notes["canceled"] = {"site": site_id, "error": result.error}
            return result

        def stops(result: SiteOutcome) -> bool:
            return (
                result.canceled
                or result.status == "rollback_failed"
                or (
                    result.status in ("failed", "rolled_back")
                    and plan.on_site_failure == "stop"
                    and not (gate is not None and gate.closed())  # then the window holds the rest back, said by name
                )
            )

        limit, sites = plan.concurrency.sites, self.admission.sites
        after = sites_before(plan, self.admission.wave, sites) if limit > 1 else None
        self.outcome.sites.extend(parallel.cut_sites(sites, limit, hold, cut_one, stops, after))

    def _not_started(self, site_id: str, why: str) -> SiteOutcome:
        """A site the window holds back: said in the outcome, the run record, the log and the wave
        state (a site nothing of which is in place keeps its status; its error says why)."""
        with self.run.step("cutover", site_id) as step:
            step.status = "skipped"
            step.detail = {"status": "not_started", "error": why}
        log.warning("site %s: %s", site_id, why)
        if self.on_step is not None:
            self.on_step(site_id, "cutover", why)
        if self.store is not None:
            state = self.store.site(site_id)
            if state.status in ("pending", "rolled_back"):
                state.error = why
                self.store.save()
        return SiteOutcome(site_id, "not_started", error=why)

    def finish(self) -> WaveOutcome:
        _finish(self.run, self.outcome)
        return self.outcome


def sites_before(plan: Plan, wave: int, sites: Sequence[str]) -> dict[str, set[str]]:
    """For each of ``sites`` (sites, or subnets moving ahead), the others of them holding a VM that
    one of its VMs ``depends_on``: with sites at once, it starts only after those have ended."""
    unit_of = {vm.name: unit for unit in sites for vm in site_vms(plan, wave, unit)}
    return {
        unit: {unit_of[d] for vm in site_vms(plan, wave, unit) for d in vm.depends_on if unit_of.get(d, unit) != unit}
        for unit in sites
    }


def run_wave(
    plan_path: Path,
    wave: int,
    sites: Sequence[str] = (),
    *,
    dry_run: bool = True,
    approval: Approval | None = None,
    outside_window: bool = False,
    outside_window_reason: str | None = None,
    on_event: OnEvent | None = None,
    on_step: OnStep | None = None,
    decide_approval: Callable[[], Approval | None] | None = None,
    site_runner: SiteRunner | None = None,
    step_runner: StepRunner | None = None,
    lang: str | None = None,
) -> WaveOutcome:
    """Pre-check the wave, then cut its sites over (or, with ``dry_run``, show what would change).
    Its reports (report.md, precheck.md) are in ``lang`` (default :func:`overflyt.reports.default_lang`).

    ``outside_window``: run although the wave's window is not open, or has ended — no site is then
    held back by it; recorded as an override naming the operator and ``outside_window_reason``.
    ``site_runner(site_id, cut)`` runs one site's cutover ``cut()`` and ``step_runner(site, step,
    call)`` one step of it — the Prefect flow passes ones that make each site a subflow run and
    each step a task; by default they are simply called."""
    if lang is not None:
        labels(lang)  # an unknown language is refused before anything runs
    admission = admit(
        plan_path, wave, sites, dry_run=dry_run, approval_given=approval is not None,
        can_ask=decide_approval is not None,
    )  # fmt: skip
    code, home = admission.loaded.plan.municipality.code, admission.loaded.state
    with municipality_lock(code, f"wave {wave} {'dry run' if dry_run else 'cutover'}", home):
        run = Run.create("wave", code, wave, list(admission.sites), dry_run=dry_run, base=home)
        leftovers.stop_leftovers(run)  # what dead runs of the municipality left: stopped before anything
        outcome = WaveOutcome(
            code, wave, dry_run, run.record.run_id, run.dir, names=names_of(admission.loaded.plan, wave)
        )
        if lang is not None:
            outcome.lang = lang
        log.info("wave %d (%s): run %s", wave, "dry run" if dry_run else "cutover", run.dir)
        phases = WaveRun(admission, run, outcome, on_event=on_event, on_step=on_step)
        if not dry_run:
            phases.hold_window(outside_window, outside_window_reason)
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
    lang: str | None = None,
) -> WaveOutcome:
    """Roll back on demand everything of a site moved so far, from its waves' recorded states (its
    report.md in ``lang``): its own cutover and the subnets of it moved ahead in earlier waves, latest
    first, each to its own backups and placements. Stops at the first unit not rolled back (what
    came before it stays in place: undoing it would not restore what was before)."""
    if lang is not None:
        labels(lang)  # an unknown language is refused before anything runs
    admission = admit_rollback(plan_path, site_id)
    plan = admission.loaded.plan
    code, wave, home = plan.municipality.code, admission.wave, admission.loaded.state
    with municipality_lock(code, f"rollback of {site_id}", home):
        run = Run.create("rollback", code, wave, [site_id], dry_run=False, base=home)
        leftovers.stop_leftovers(run)  # what dead runs of the municipality left: stopped before anything
        names = names_of(plan, wave)
        outcome = WaveOutcome(code, wave, False, run.record.run_id, run.dir, kind="rollback", names=names)
        if lang is not None:
            outcome.lang = lang
        window = plan.wave(wave).window
        outcome.window = {"note": f"{ROLLBACK_ANY_TIME} Wave {wave}'s window: {window_text(window)}."}
        undo = to_undo(plan, site_id, home)
        run.record.notes["units"] = [{"unit": r.key, "wave": r.wave, "subnets": r.state.subnets} for r in undo]
        for unit in undo:
            store = WaveStore(code, unit.wave, home)
            ctx = StepContext(admission.loaded, unit.wave, run, admission.credentials, on_event=on_event)
            cutover = Cutover(ctx, on_step=on_step, step_runner=step_runner or _direct)
            with run.step("rollback", unit.key), cancel.shielded():
                result = cutover.rollback_site(unit.key, store)
            outcome.sites.append(result)
            if result.status != "rolled_back":
                break
        _finish(run, outcome)
        return outcome


def blocking_lines(report: PrecheckReport) -> list[str]:
    """The critical findings that block a wave, one line each, as the pre-check's report says them."""
    return [
        f"critical {f.id} {f.subject_kind} {f.subject}: {one_line(f.message)}"
        for f in report.findings
        if f.severity == "critical"
    ]


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
