"""What a wave run, and each site's cutover, dry run or rollback in it, came to: the data every
report is built from, and the run's exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from overflyt.errors import EXIT_FAILED, EXIT_OK, EXIT_ROLLBACK_FAILED
from overflyt.reports import default_lang


@dataclass
class SiteOutcome:
    site: str
    status: str  # done | rolled_back | failed | rollback_failed | dry_run | skipped | refused | not_started
    error: str | None = None  # why it failed, was refused or not started
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds
    vms: dict[str, Any] = field(default_factory=dict)
    devices: dict[str, Any] = field(default_factory=dict)
    postcheck: dict[str, Any] = field(default_factory=dict)
    rollback: dict[str, Any] = field(default_factory=dict)
    canceled: bool = False
    window: str | None = None  # what the wave's window meant for it: ran over it, closed under it


def shown_status(status: str, postcheck: dict[str, Any] | None) -> str:
    """The status a report shows: a site cut over whose post-check sent no traffic because the plan
    gives it no probe is ``no_proof``, not ``done``. A site with a probe but no moved server to
    probe (a school without a server room) has nothing to prove: ``done``."""
    check = postcheck or {}
    return "no_proof" if status == "done" and check.get("skipped") and not check.get("via") else status


def dump(value: Any) -> Any:
    """A step's result as JSON-ready data (pydantic models dumped, anything else as it is)."""
    model_dump = getattr(value, "model_dump", None)
    return model_dump(mode="json") if callable(model_dump) else value


# Who could have typed an approval (Approval.principal). Prefect 3.8's basic authentication has one
# credential for everyone and passes no request header to the flow: an approval given through the API
# (the UI's Resume, or a deployment run's approved_by) names no person the API authenticated.
SHARED_CREDENTIAL = "shared credential"
NO_CREDENTIAL = "no credential (the Prefect API asks for none)"


@dataclass(frozen=True)
class Approval:
    approved_by: str  # the name typed: nobody checked it
    ticket: str | None = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    # who could have typed it: an authenticated principal ("local user NAME": the CLI's operator), else
    # SHARED_CREDENTIAL (anyone holding the API's auth string), else NO_CREDENTIAL
    principal: str = SHARED_CREDENTIAL


@dataclass(frozen=True)
class Names:
    """What the plan calls the run's municipality, wave and sites, and the wave's window: what its
    reports show beside the ids (empty: not known, the ids stand alone)."""

    municipality: str = ""
    wave: str = ""
    window: dict[str, str] | None = None  # start, end: ISO times with their offset
    sites: dict[str, str] = field(default_factory=dict)  # site id -> name


@dataclass
class WaveOutcome:
    municipality: str
    wave: int
    dry_run: bool
    run_id: str
    run_dir: Path
    blocked: bool = False
    blocked_by: list[str] = field(default_factory=list)  # the critical findings (or the approval) that blocked it
    precheck: dict[str, int] = field(default_factory=dict)
    sites: list[SiteOutcome] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    approval: Approval | None = None
    kind: str = "wave"  # wave | rollback
    window: dict[str, Any] | None = None  # the wave's window and what it meant for this run (note: one sentence)
    names: Names = field(default_factory=Names)
    lang: str = field(default_factory=default_lang)  # the language of its report.md (templates/i18n/<lang>.yml)

    def decided_by(self) -> list[str]:
        """What decided a run that did not succeed, one line each, as a person reads it: what
        blocked the wave, else each site that did not end done (with why)."""
        if self.blocked:
            return list(self.blocked_by) or [f"wave {self.wave}: blocked before any change"]
        return [f"{s.site}: {s.status}" + (f" — {s.error}" if s.error else "") for s in self.sites if s.error]

    @property
    def exit_code(self) -> int:
        if any(s.status == "rollback_failed" for s in self.sites):
            return EXIT_ROLLBACK_FAILED
        if self.kind == "rollback":  # an on-demand rollback succeeds by rolling back
            return EXIT_OK if all(s.status == "rolled_back" for s in self.sites) else EXIT_FAILED
        if self.blocked or any(s.status in ("rolled_back", "failed", "refused", "not_started") for s in self.sites):
            return EXIT_FAILED
        return EXIT_OK
