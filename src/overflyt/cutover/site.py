"""One site's cutover: its VMs and its network change together, and one rollback restores both.

The itinerary — backup → placements → migrate → configure (push + verify) → postcheck — is
recorded in the wave state before and after each step. A rerun continues a half-done cutover
where it stopped: backups and placements taken before the change are kept (never retaken from a
half-changed site), VM moves and device pushes are idempotent, so nothing is moved twice.

Rollback restores every device that has a backup (verified byte-equal) and moves every VM that
has a recorded placement back to it — both idempotent, so rolling back a partly done cutover,
or rolling back twice, is safe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from overflyt.ansible import cancel
from overflyt.ansible.runner import AnsibleEvent
from overflyt.cutover.state import BackupRef, SiteState, Step, WaveStore
from overflyt.errors import OverflytError, PlaybookFailed, RollbackFailed
from overflyt.plan import Plan
from overflyt.plan.credentials import ResolvedCredential
from overflyt.record import Run
from overflyt.steps import network as netops
from overflyt.steps import vms as vmops

log = logging.getLogger(__name__)

OnEvent = Callable[[AnsibleEvent], None]
OnStep = Callable[[str, str, str], None]  # (site, step, status)


class CutoverFailed(OverflytError):
    """A step of a site's cutover failed (the site is then rolled back per the plan's policy)."""


@dataclass
class SiteOutcome:
    site: str
    status: str  # done | rolled_back | failed | rollback_failed | dry_run | skipped
    error: str | None = None
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds
    vms: dict[str, Any] = field(default_factory=dict)
    devices: dict[str, Any] = field(default_factory=dict)
    postcheck: dict[str, Any] = field(default_factory=dict)
    rollback: dict[str, Any] = field(default_factory=dict)
    canceled: bool = False


@dataclass
class Cutover:
    """Everything a site's cutover needs, bound once."""

    plan: Plan
    plan_path: Path
    wave: int
    run: Run
    credentials: Mapping[str, ResolvedCredential]
    on_event: OnEvent | None = None
    on_step: OnStep | None = None

    def _note(self, site: str, step: str, status: str) -> None:
        log.info("site %s: %s %s", site, step, status)
        if self.on_step is not None:
            self.on_step(site, step, status)

    # -- a real cutover -------------------------------------------------------------------------

    def run_site(self, site_id: str, store: WaveStore) -> SiteOutcome:
        """Cut the site over, continuing a half-done attempt; on failure roll back per policy."""
        state = store.site(site_id)
        outcome = SiteOutcome(site_id, "done")
        if state.status == "done":
            outcome.status = "skipped"
            self._note(site_id, "cutover", "already done")
            return outcome
        if state.status in ("rolled_back", "failed"):
            # A new attempt after a rollback starts from scratch: the site is as it was.
            store.state.sites[site_id] = state = SiteState(attempts=state.attempts, runs=state.runs)
        state.status = "in_progress"
        state.attempts += 1
        state.runs.append(self.run.record.run_id)
        state.error = None
        store.save()
        try:
            self._forward(site_id, state, store, outcome)
        except (OverflytError, OSError) as exc:
            step = state.current or "cutover"
            if cancel.cancel_requested():
                state.error = f"{step}: canceled ({cancel.cancel_reason()})"
                outcome.canceled = True
            else:
                state.error = f"{step}: {exc}"
            outcome.error = state.error
            self._note(site_id, step, "canceled" if outcome.canceled else "failed")
            state.status = "failed"
            store.save()
            if self.plan.rollback == "automatic":
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

    def _forward(self, site_id: str, state: SiteState, store: WaveStore, outcome: SiteOutcome) -> None:
        common = (self.plan, self.plan_path)
        t = self.plan.timeouts

        def begin(step: Step) -> float:
            if cancel.cancel_requested():
                state.current = step
                raise CutoverFailed(f"canceled before {step}")
            state.current = step
            store.save()
            self._note(site_id, step, "started")
            return time.monotonic()

        def end(step: Step, started: float) -> None:
            if step not in state.done:
                state.done.append(step)
            state.current = None
            store.save()
            outcome.steps[step] = round(time.monotonic() - started, 2)
            self._note(site_id, step, "done")

        if "backup" not in state.done:
            started = begin("backup")
            backups = netops.backup_site(
                *common, self.wave, site_id, self.run, self.credentials, on_event=self.on_event, timeout_s=t.backup_s
            )
            state.backups = {h: BackupRef(file=b.file, sha256=b.sha256) for h, b in backups.items()}
            end("backup", started)
        if "placements" not in state.done:
            started = begin("placements")
            placements = vmops.record_placements(*common, site_id, self.run, self.credentials, on_event=self.on_event)
            state.placements = {name: p.model_dump(mode="json") for name, p in placements.items()}
            end("placements", started)
        if "migrate" not in state.done:
            started = begin("migrate")
            migration = vmops.migrate_site_vms(
                *common,
                self.wave,
                site_id,
                self.run,
                self.credentials,
                dry_run=False,
                on_event=self.on_event,
                timeout_s=t.migrate_s,
            )
            outcome.vms = _dump(migration)
            state.moved = sorted(state.placements)
            end("migrate", started)
        if "configure" not in state.done:
            started = begin("configure")
            configured = netops.configure_site(
                *common,
                self.wave,
                site_id,
                self.run,
                self.credentials,
                self._backups(state),
                dry_run=False,
                on_event=self.on_event,
                timeout_s=t.configure_s,
            )
            outcome.devices = _dump(configured)  # configure_site raises unless every device verified
            end("configure", started)
        if "postcheck" not in state.done:
            started = begin("postcheck")
            post = netops.postcheck_site(
                self.plan, self.wave, site_id, self.run, on_event=self.on_event, timeout_s=t.postcheck_s
            )
            outcome.postcheck = _dump(post)  # postcheck_site raises naming every server not reached
            end("postcheck", started)

    def _backups(self, state: SiteState) -> dict[str, netops.Backup]:
        return {h: netops.Backup(hostname=h, file=b.file, sha256=b.sha256) for h, b in state.backups.items()}

    # -- rollback -------------------------------------------------------------------------------

    def rollback_site(self, site_id: str, store: WaveStore, outcome: SiteOutcome | None = None) -> SiteOutcome:
        """Restore the site's devices and VMs to what was recorded before its cutover."""
        outcome = outcome or SiteOutcome(site_id, "rolled_back")
        state = store.site(site_id)
        problems: list[str] = []
        started = time.monotonic()
        self._note(site_id, "rollback", "started")
        state.rollback = {}
        touched = "configure" in state.done or state.current == "configure"
        if state.backups:
            verified: netops.VerifyResult | None = None
            if touched:
                # Never trust the failed task: re-read what the change left on the devices.
                try:
                    verified = netops.verify_site(
                        self.plan,
                        self.plan_path,
                        self.wave,
                        site_id,
                        self.run,
                        self.credentials,
                        on_event=self.on_event,
                        timeout_s=self.plan.timeouts.restore_s,
                        fail=False,
                    )
                except (OverflytError, OSError) as exc:
                    log.warning("site %s: devices could not be re-read before the restore: %s", site_id, exc)
            try:
                restored = netops.restore_site(
                    self.plan,
                    self.plan_path,
                    self.wave,
                    site_id,
                    self.run,
                    self.credentials,
                    self._backups(state),
                    dry_run=False,
                    on_event=self.on_event,
                    timeout_s=self.plan.timeouts.restore_s,
                )
                outcome.rollback["devices"] = _dump(restored)
                if touched:
                    classified = netops.classify(verified, restored)
                    outcome.rollback["classified"] = classified
                    state.rollback = {"classified": dict(classified)}
                    found = ", ".join(f"{h}: {c}" for h, c in classified.items())
                    self._note(site_id, "rollback", f"devices found {found}")
                problems += [f"device {h} not restored" for h, d in restored.devices.items() if not d.restored]
            except (OverflytError, OSError) as exc:
                problems.append(f"devices: {exc}")
        if state.placements:
            try:
                placements = {name: vmops.Placement.model_validate(data) for name, data in state.placements.items()}
                back = vmops.rollback_site_vms(
                    self.plan,
                    self.plan_path,
                    site_id,
                    placements,
                    self.run,
                    self.credentials,
                    on_event=self.on_event,
                    timeout_s=self.plan.timeouts.restore_s,
                )
                outcome.rollback["vms"] = _dump(back)
            except (OverflytError, OSError) as exc:
                problems.append(f"VMs: {exc}")
        outcome.steps["rollback"] = round(time.monotonic() - started, 2)
        state.rollback = {**(state.rollback or {}), "run": self.run.record.run_id, "problems": problems}
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

    # -- dry run --------------------------------------------------------------------------------

    def dry_run_site(self, site_id: str) -> SiteOutcome:
        """The same playbooks under --check --diff: what would move and what would change. Writes no
        wave state; reads devices and vCenter only."""
        outcome = SiteOutcome(site_id, "dry_run")
        common = (self.plan, self.plan_path)
        started = time.monotonic()
        backups = netops.backup_site(
            *common, self.wave, site_id, self.run, self.credentials, dry_run=True, on_event=self.on_event
        )
        outcome.steps["backup"] = round(time.monotonic() - started, 2)
        started = time.monotonic()
        migration = vmops.migrate_site_vms(
            *common, self.wave, site_id, self.run, self.credentials, dry_run=True, on_event=self.on_event
        )
        outcome.vms = _dump(migration)
        outcome.steps["migrate"] = round(time.monotonic() - started, 2)
        started = time.monotonic()
        configured = netops.configure_site(
            *common, self.wave, site_id, self.run, self.credentials, backups, dry_run=True, on_event=self.on_event
        )
        outcome.devices = _dump(configured)
        outcome.steps["configure"] = round(time.monotonic() - started, 2)
        self._note(site_id, "dry run", "done")
        return outcome


def _dump(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value


__all__ = ["Cutover", "CutoverFailed", "PlaybookFailed", "RollbackFailed", "SiteOutcome"]
