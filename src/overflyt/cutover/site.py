"""One site's cutover: its VMs and its network change together, and one rollback restores both.
The same itinerary cuts over a server subnet that moves ahead of its site, on a smaller scope
(``site_id`` is then the subnet's key, :mod:`overflyt.plan.ahead`): the devices that route it, its
VMs, its route only.

The itinerary (:data:`overflyt.cutover.itinerary.ITINERARY`: backup → placements → migrate →
configure (push + verify) → postcheck) is recorded in the wave state before and after each step. A
rerun continues a half-done cutover where it stopped: backups and placements taken before the
change are kept (never retaken from a half-changed site), VM moves and device pushes are
idempotent, so nothing is moved twice.

Rollback restores every device that has a backup (verified byte-equal) and moves every VM that
has a recorded placement back to it — both idempotent, so rolling back a partly done cutover,
or rolling back twice, is safe.

Before each step of a real cutover, ``before_step(site, step)`` may stop the site: the wave's
window check (:mod:`overflyt.cutover.wave`) raises :class:`WindowClosed` there when the window has
closed and the plan says roll back; the site is then rolled back like a failed one.

Each step, and the rollback, runs through ``step_runner(site, step, call)``: called directly by
default; the Prefect flow passes one that makes each a task of the site's subflow, so the UI shows
wave → site → step. This module never imports Prefect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from overflyt.ansible import cancel
from overflyt.ansible.step import StepContext
from overflyt.cutover.itinerary import ITINERARY, STEP_NAMES, Carried, ItineraryStep, SiteWork, dry_run_itinerary
from overflyt.cutover.outcome import SiteOutcome, dump
from overflyt.cutover.state import SiteState, WaveStore
from overflyt.errors import OverflytError, PlaybookFailed, RollbackFailed
from overflyt.plan.ahead import unit_site, unit_subnets
from overflyt.steps import network, vms

log = logging.getLogger(__name__)

OnStep = Callable[[str, str, str], None]  # (site, step, status)
StepRunner = Callable[[str, str, Callable[[], None]], None]  # (site, step, call): runs call()
BeforeStep = Callable[[str, str], None]  # (site, step): raises WindowClosed to stop the site there


class CutoverFailed(OverflytError):
    """A step of a site's cutover failed (the site is then rolled back per the plan's policy)."""


class WindowClosed(CutoverFailed):
    """The wave's window closed before a step of a site under way, and the plan says roll back
    (``window_policy.on_window_end: rollback``): the site is rolled back whatever ``rollback`` says."""


def _direct(_site: str, _step: str, call: Callable[[], None]) -> None:
    call()


@dataclass
class Cutover:
    """Everything a site's cutover needs, bound once: the step context and how steps are run."""

    ctx: StepContext
    on_step: OnStep | None = None
    step_runner: StepRunner = _direct
    before_step: BeforeStep | None = None  # a real cutover's check at each step boundary (the window)

    def _note(self, site: str, step: str, status: str) -> None:
        log.info("site %s: %s %s", site, step, status)
        if self.on_step is not None:
            self.on_step(site, step, status)

    # -- a real cutover -------------------------------------------------------------------------

    def run_site(self, site_id: str, store: WaveStore) -> SiteOutcome:
        """Cut the site over, continuing a half-done attempt; on failure roll back per policy."""
        state = store.site(site_id)
        outcome = SiteOutcome(site_id, "done")
        unknown = [s for s in [*state.done, *([state.current] if state.current else [])] if s not in STEP_NAMES]
        if unknown:
            raise CutoverFailed(
                f"site {site_id}: the wave state {store.path} names steps this overflyt does not know: "
                f"{', '.join(unknown)} (known: {', '.join(STEP_NAMES)})"
            )
        if state.status == "done":
            outcome.status = "skipped"
            self._note(site_id, "cutover", "already done")
            return outcome
        if state.status in ("rolled_back", "failed"):
            # A new attempt after a rollback starts from scratch: the site is as it was.
            store.state.sites[site_id] = state = SiteState(attempts=state.attempts, runs=state.runs)
        state.status = "in_progress"
        state.site = unit_site(self.ctx.plan, site_id)
        state.subnets = unit_subnets(self.ctx.plan, self.ctx.wave, site_id)
        if state.started_at is None:  # a new attempt; a resumed one keeps when its backups were taken
            state.started_at = datetime.now(UTC)
        state.attempts += 1
        state.runs.append(self.ctx.run.record.run_id)
        state.error = None
        store.save()
        carried = Carried()
        try:
            for step in ITINERARY:
                if step.name not in state.done:
                    work = SiteWork(self.ctx, site_id, state, outcome, False, step.timeout_s(self.ctx), carried)
                    self._take(step, work, store)
        except (OverflytError, OSError) as exc:
            where = state.current or "cutover"
            window = isinstance(exc, WindowClosed)
            if cancel.cancel_requested():
                state.error = f"{where}: canceled ({cancel.cancel_reason()})"
                outcome.canceled = True
            else:
                state.error = f"{where}: {exc}"
            outcome.error = state.error
            if window:
                outcome.window = str(exc)
            self._note(site_id, where, "canceled" if outcome.canceled else "window closed" if window else "failed")
            state.status = "failed"
            store.save()
            if self.ctx.plan.rollback == "automatic" or window:
                with cancel.shielded():  # a cancel stops the cutover, never its rollback
                    self.rollback_site(site_id, store, outcome)
            else:
                outcome.status = "failed"
            return outcome
        state.status = "done"
        state.current = None
        store.save()
        self._note(site_id, "cutover", "done")
        return outcome

    def _take(self, step: ItineraryStep, work: SiteWork, store: WaveStore | None) -> None:
        """One step: recorded as current before, as done after (a dry run records nothing)."""
        state = work.state
        if cancel.cancel_requested():
            state.current = step.name
            raise CutoverFailed(f"canceled before {step.name}")
        if store is not None and self.before_step is not None:
            self.before_step(work.site, step.name)
        state.current = step.name
        if store is not None:
            store.save()
        self._note(work.site, step.name, "started")
        started = time.monotonic()
        self.step_runner(work.site, step.name, lambda: step.action(work))
        if step.name not in state.done:
            state.done.append(step.name)
        state.current = None
        if store is not None:
            store.save()
        work.outcome.steps[step.name] = round(time.monotonic() - started, 2)
        self._note(work.site, step.name, "done")

    # -- rollback -------------------------------------------------------------------------------

    def rollback_site(self, site_id: str, store: WaveStore, outcome: SiteOutcome | None = None) -> SiteOutcome:
        """Restore the site's devices and VMs to what was recorded before its cutover."""
        outcome = outcome or SiteOutcome(site_id, "rolled_back")
        state = store.site(site_id)
        problems: list[str] = []
        started = time.monotonic()
        self._note(site_id, "rollback", "started")
        state.rollback = {}
        self.step_runner(site_id, "rollback", lambda: problems.extend(self._restore(site_id, state, outcome)))
        outcome.steps["rollback"] = round(time.monotonic() - started, 2)
        state.rollback = {**(state.rollback or {}), "run": self.ctx.run.record.run_id, "problems": problems}
        if problems:
            state.status = outcome.status = "rollback_failed"
            outcome.error = (outcome.error + "; " if outcome.error else "") + "rollback failed: " + "; ".join(problems)
            store.save()
            self._note(site_id, "rollback", "FAILED")
            return outcome
        state.status = outcome.status = "rolled_back"
        state.moved = []
        store.save()
        self._note(site_id, "rollback", "done")
        return outcome

    def _restore(self, site_id: str, state: SiteState, outcome: SiteOutcome) -> list[str]:
        """Both halves of a rollback; what could not be restored, one line each (never raises)."""
        ctx, restore_s = self.ctx, self.ctx.plan.timeouts.restore_s
        problems: list[str] = []
        touched = "configure" in state.done or state.current == "configure"
        if state.backups:
            verified: network.VerifyResult | None = None
            if touched:
                # Never trust the failed task: re-read what the change left on the devices.
                try:
                    verified = network.verify_site(ctx, site_id, timeout_s=restore_s, fail=False)
                except (OverflytError, OSError) as exc:
                    log.warning("site %s: devices could not be re-read before the restore: %s", site_id, exc)
            try:
                backups = {
                    h: network.Backup(hostname=h, file=b.file, sha256=b.sha256) for h, b in state.backups.items()
                }
                restored = network.restore_site(ctx, site_id, backups, dry_run=False, timeout_s=restore_s)
                outcome.rollback["devices"] = dump(restored)
                if touched:
                    classified = network.classify(verified, restored)
                    outcome.rollback["classified"] = classified
                    state.rollback = {"classified": dict(classified)}
                    found = ", ".join(f"{h}: {c}" for h, c in classified.items())
                    self._note(site_id, "rollback", f"devices found {found}")
                problems += [f"device {h} not restored" for h, d in restored.devices.items() if not d.restored]
            except (OverflytError, OSError) as exc:
                problems.append(f"devices: {exc}")
        if state.placements:
            try:
                placements = {name: vms.Placement.model_validate(data) for name, data in state.placements.items()}
                back = vms.rollback_site_vms(ctx, site_id, placements, timeout_s=restore_s)
                outcome.rollback["vms"] = dump(back)
            except (OverflytError, OSError) as exc:
                problems.append(f"VMs: {exc}")
        return problems

    # -- dry run --------------------------------------------------------------------------------

    def dry_run_site(self, site_id: str) -> SiteOutcome:
        """The dry run's steps of the itinerary, under --check --diff: what would move and what would
        change. Writes no wave state; reads devices and vCenter only."""
        outcome = SiteOutcome(site_id, "dry_run")
        scratch = SiteState()
        for step in dry_run_itinerary():
            self._take(step, SiteWork(self.ctx, site_id, scratch, outcome, True, step.timeout_s(self.ctx)), None)
        self._note(site_id, "dry run", "done")
        return outcome


__all__ = [
    "BeforeStep", "Cutover", "CutoverFailed", "PlaybookFailed", "RollbackFailed", "SiteOutcome", "StepRunner",
    "WindowClosed",
]  # fmt: skip
