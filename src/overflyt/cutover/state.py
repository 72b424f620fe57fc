"""The durable state of a wave, across every attempt at it.

``<state>/<kommunekode>/wave-<N>/state.json`` says, per site, how far its cutover got, what it
backed up and where each VM stood before it moved. It is written atomically before and after each
step, so a rerun knows what is done and a rollback knows what to undo — even after the process
that wrote it was killed. Dry runs never write it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

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
    status: SiteStatus = "pending"
    current: Step | None = None  # the step that was started and has not finished
    done: list[Step] = []
    backups: dict[str, BackupRef] = {}  # device -> its configuration before this cutover
    placements: dict[str, dict[str, Any]] = {}  # VM -> where it stood before this cutover
    moved: list[str] = []  # VMs that are in the target
    attempts: int = 0
    runs: list[str] = []
    error: str | None = None
    rollback: dict[str, Any] = {}


class WaveState(_Model):
    municipality: str
    wave: int
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

    def site(self, site_id: str) -> SiteState:
        return self.state.sites.setdefault(site_id, SiteState())

    def save(self) -> None:
        self.state.updated_at = datetime.now(UTC)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".json.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(self.state.model_dump_json(indent=2))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
