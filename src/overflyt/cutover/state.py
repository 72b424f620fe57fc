"""The durable state of a wave, across every attempt at it.

``<state>/<kommunekode>/wave-<N>/state.json`` says, per site, how far its cutover got, what it
backed up and where each VM stood before it moved. It is written atomically before and after each
step, so a rerun knows what is done and a rollback knows what to undo — even after the process
that wrote it was killed. Dry runs never write it. Sites of a wave running at once (in threads,
:mod:`overflyt.cutover.parallel`) share one store: a save writes the whole state under a lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from overflyt.plan import Plan
from overflyt.record import state_dir

SiteStatus = Literal["pending", "in_progress", "done", "failed", "rolled_back", "rollback_failed"]
# A step's name, as the itinerary (overflyt.cutover.itinerary.ITINERARY) names it.
Step = str


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BackupRef(_Model):
    file: str
    sha256: str


class SiteState(_Model):
    """One unit of a wave: a site's own cutover (keyed by the site id) or a server subnet that moves
    ahead of its site (keyed ``<site>:<network>-<prefix>``, :mod:`overflyt.plan.ahead`)."""

    status: SiteStatus = "pending"
    site: str | None = None  # the site the unit belongs to (its own id for a site's cutover)
    subnets: list[str] = []  # the server subnets this unit moves (the site's: those not moved ahead)
    started_at: datetime | None = None  # when its latest attempt started (rollback order, later changes)
    current: Step | None = None  # the step that was started and has not finished
    done: list[Step] = []
    backups: dict[str, BackupRef] = {}  # device -> its configuration before this cutover
    placements: dict[str, dict[str, Any]] = {}  # VM -> where it stood before this cutover
    moved: list[str] = []  # VMs that are in the target
    attempts: int = 0
    runs: list[str] = []
    error: str | None = None
    rollback: dict[str, Any] = {}


def plan_version(plan: Plan, wave: int) -> str:
    """The fingerprint of what a wave's state refers to in its plan: the municipality, the wave, its
    sites, the VMs it moves and the sites' devices (sha256 of their canonical JSON). A later wave
    added to the plan leaves it as it was; a site, VM or device of the wave changed changes it."""
    w = plan.wave(wave)
    part = {
        "municipality": plan.municipality.model_dump(mode="json"),
        "wave": w.model_dump(mode="json"),
        "sites": [plan.site(s).model_dump(mode="json") for s in w.sites],
        "vms": [vm.model_dump(mode="json") for vm in plan.vms_of_wave(wave)],
        "devices": [d.model_dump(mode="json") for s in w.sites for d in plan.devices_of_site(s)],
    }
    return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()


class WaveState(_Model):
    municipality: str
    wave: int
    plan_version: str | None = None  # plan_version() of the plan the wave last ran from (None: older state)
    sites: dict[str, SiteState] = {}
    updated_at: datetime | None = None


class WaveStore:
    """Reads and writes one wave's state file."""

    def __init__(self, municipality: str, wave: int, base: Path | None = None) -> None:
        self.path = (base or state_dir()) / municipality / f"wave-{wave}" / "state.json"
        if self.path.exists():
            self.state = WaveState.model_validate_json(self.path.read_text(encoding="utf-8"))
        else:
            self.state = WaveState(municipality=municipality, wave=wave)
        self._lock = threading.Lock()

    def site(self, site_id: str) -> SiteState:
        with self._lock:
            return self.state.sites.setdefault(site_id, SiteState())

    def save(self) -> None:
        with self._lock:  # one writer of the file (and its temporary) at a time
            self.state.updated_at = datetime.now(UTC)
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.path.with_suffix(".json.tmp")
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(self.state.model_dump_json(indent=2))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
