"""Progress at a glance in the Prefect UI: readable flow-run names, and while a wave runs a progress
artifact (sites and VMs done of the wave's) and a table artifact per municipality (each site's state).

Run names (``<code>-<kommune>-…``, the plan's directory being the municipality's name in
``inventories/``): ``707-norddjurs-wave-2-dry-run``, ``707-norddjurs-wave-2``,
``707-norddjurs-precheck-wave-2`` and ``707-norddjurs-rollback-grenaa-raadhus``.

Artifact keys (stable, so the UI's Artifacts page keeps one entry with its versions):
``progress-<code>-wave-<n>`` (progress) and ``sites-<code>`` (table: the latest wave's sites).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.artifacts import create_progress_artifact, create_table_artifact, update_progress_artifact
from prefect.runtime import flow_run

from flows.logs import key
from overflyt.cutover.outcome import SiteOutcome, WaveOutcome
from overflyt.errors import OverflytError
from overflyt.plan import load_plan

SiteRunner = Callable[[str, Callable[[], SiteOutcome]], SiteOutcome]
_DONE = ("done", "dry_run", "skipped")


def _prefix(plan_path: str) -> str:
    """``<code>-<kommune>``; just the directory's name when the plan does not load (the run says why)."""
    slug = Path(plan_path).resolve().parent.name
    try:
        code = load_plan(plan_path).municipality.code
    except OverflytError:
        return slug
    return f"{code}-{slug}"


def _params() -> dict[str, Any]:
    given = flow_run.parameters.get("params", {})
    dumped = given.model_dump() if hasattr(given, "model_dump") else dict(given)
    return dumped


def wave_run_name(plan: str, wave: int | None, dry_run: bool, what: str = "wave") -> str:
    number = f"wave-{wave}" if wave is not None else "next-wave"
    return f"{_prefix(plan)}-{what + '-' if what != 'wave' else ''}{number}{'-dry-run' if dry_run else ''}"


def rollback_run_name(plan: str, site: str) -> str:
    return f"{_prefix(plan)}-rollback-{site}"


def migrate_wave_name() -> str:
    """The flow_run_name of ``migrate-wave``."""
    p = _params()
    return wave_run_name(p.get("plan", ""), p.get("wave"), bool(p.get("dry_run", True)))


def precheck_wave_name() -> str:
    """The flow_run_name of ``precheck-wave``."""
    p = _params()
    return wave_run_name(p.get("plan", ""), p.get("wave"), False, "precheck")


def rollback_site_name() -> str:
    """The flow_run_name of ``rollback-site``."""
    p = _params()
    return rollback_run_name(p.get("plan", ""), str(p.get("site", "")))


class WaveProgress:
    """The wave's progress and site table, updated as each site ends (see the module's docstring)."""

    def __init__(self, plan_path: str, wave: int, sites: list[str], dry_run: bool) -> None:
        plan = load_plan(plan_path)
        self.code = plan.municipality.code
        self.title = f"{plan.municipality.name} ({self.code}), wave {wave}{' (dry run)' if dry_run else ''}"
        self.wave = wave
        wave_vms = plan.vms_of_wave(wave)
        numbers = {w.number for w in plan.waves}
        self.sites = sites or (list(plan.wave(wave).sites) if wave in numbers else [])
        self.vms = {s: len([vm for vm in wave_vms if vm.site == s]) for s in self.sites}
        self.names = {s.id: s.name for s in plan.sites}
        self.state: dict[str, str] = dict.fromkeys(self.sites, "pending")
        self.artifact: UUID | None = None
        self.lock = threading.Lock()  # sites of a wave may end at once (concurrency.sites)
        self.publish()

    def counts(self) -> tuple[int, int, int, int]:
        """(sites done, sites, VMs done, VMs)."""
        done = [s for s in self.sites if self.state[s] in _DONE]
        return len(done), len(self.sites), sum(self.vms[s] for s in done), sum(self.vms.values())

    def description(self) -> str:
        sites_done, sites, vms_done, vms = self.counts()
        return f"{self.title}: {sites_done} of {sites} sites and {vms_done} of {vms} VMs done"

    def rows(self) -> list[dict[str, str]]:
        return [
            {
                "wave": str(self.wave),
                "site": s,
                "name": self.names.get(s, s),
                "state": self.state[s],
                "vms": f"{self.vms[s] if self.state[s] in _DONE else 0} of {self.vms[s]}",
            }
            for s in self.sites
        ]

    def publish(self) -> None:
        sites_done, sites, vms_done, vms = self.counts()
        percent = 100.0 * (vms_done / vms if vms else sites_done / max(sites, 1))
        if self.artifact is None:
            made = create_progress_artifact(
                percent, key=key("progress", self.code, "wave", self.wave), description=self.description()
            )
            assert isinstance(made, UUID)  # sync in a flow
            self.artifact = made
        else:
            update_progress_artifact(self.artifact, percent, description=self.description())
        create_table_artifact(table=self.rows(), key=key("sites", self.code), description=self.description())

    def site_runner(self, runner: SiteRunner) -> SiteRunner:
        """RUNNER (run_wave's site_runner hook) that marks its site running, then as it ended (sites
        running at once each in their own thread: one publishes at a time)."""

        def run(site_id: str, cut: Callable[[], SiteOutcome]) -> SiteOutcome:
            with self.lock:
                self.state[site_id] = "running"
                self.publish()
            outcome = runner(site_id, cut)
            with self.lock:
                self.state[site_id] = outcome.status
                self.publish()
            return outcome

        return run

    def finish(self, outcome: WaveOutcome) -> None:
        """Every site as the wave ended (sites it never started included)."""
        for site in outcome.sites:
            if site.site in self.state:
                self.state[site.site] = site.status
        if outcome.blocked:
            self.state = dict.fromkeys(self.sites, "blocked")
        self.publish()
