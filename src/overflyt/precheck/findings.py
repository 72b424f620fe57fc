"""What a pre-check run produces: findings, one result per check evaluated, and the report.

A *finding* is one thing a person must know about (critical blocks the wave). A *check result*
records that one rule looked at one subject — with or without findings — so reports can show
every check as a test case, the passed ones too. All of it is plain, frozen, JSON-serialisable
data and never carries a secret.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, computed_field

from overflyt.plan.model import Municipality


class Severity(StrEnum):
    """How much a finding matters; ordered info < warning < critical. Any critical blocks the wave."""

    critical = "critical"
    warning = "warning"
    info = "info"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __lt__(self, other: str) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: str) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: str) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: str) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank


_RANK = {Severity.info: 0, Severity.warning: 1, Severity.critical: 2}

# Most severe first: the order reports list findings in.
SEVERITIES: tuple[Severity, ...] = (Severity.critical, Severity.warning, Severity.info)

SubjectKind = Literal[
    "vcenter", "vm", "host", "cluster", "datastore", "folder", "portgroup", "device", "site", "wave", "waiver"
]

Status = Literal["passed", "warning", "failed", "skipped"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WaiverMark(_Model):
    """The waiver (waivers.yml beside the plan) a finding was accepted by: it no longer blocks."""

    approved_by: str
    reason: str
    expires: date = Field(description="The last day the waiver applies.")
    severity: Severity = Field(
        description="The finding's severity before it was waived (a waived critical is a warning)."
    )
    where: str = Field(description="Where the waiver is written: waivers.yml:LINE.")

    def text(self) -> str:
        """``waived by NAME until DATE: REASON`` — how every report says it."""
        return f"waived by {self.approved_by} until {self.expires.isoformat()}: {self.reason}"


class Finding(_Model):
    """One thing a check found about one subject."""

    id: str = Field(description="The rule that found it, e.g. vm.snapshots.")
    severity: Severity
    subject_kind: SubjectKind
    subject: str = Field(description="Name of the VM, device, vCenter, datastore, ... it is about.")
    site: str | None = Field(description="Site id the subject belongs to; None for wave-wide subjects.")
    message: str = Field(description="What is wrong and what to do, naming the subject.")
    evidence: dict[str, JsonValue] = Field(default={}, description="What was observed; never a secret.")
    waiver: WaiverMark | None = Field(default=None, description="The waiver that accepted it, if any.")


class CheckResult(_Model):
    """One rule evaluated against one subject, and what it found."""

    rule_id: str
    title: str = Field(description="The rule's title, for reports.")
    subject_kind: SubjectKind
    subject: str
    site: str | None
    findings: tuple[Finding, ...] = ()
    skipped: str | None = Field(
        default=None,
        description="Why the check could not be evaluated; only when another check already reports the "
        "critical cause (e.g. the VM was not found, so its snapshots cannot be counted).",
    )

    @property
    def severity(self) -> Severity | None:
        """The worst severity among the findings, None when there are none."""
        return max((f.severity for f in self.findings), default=None)

    @property
    def passed(self) -> bool:
        """Evaluated, and nothing critical or warning found (info findings may be present)."""
        return self.skipped is None and all(f.severity is Severity.info for f in self.findings)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> Status:
        """passed, warning (passed with a warning), failed (a critical finding) or skipped."""
        if self.skipped is not None:
            return "skipped"
        worst = self.severity
        if worst is Severity.critical:
            return "failed"
        if worst is Severity.warning:
            return "warning"
        return "passed"


class PrecheckReport(_Model):
    """Everything one pre-check run of one wave found."""

    municipality: Municipality
    wave: int
    wave_name: str
    mode: Literal["precheck", "run"]
    sites: tuple[str, ...] = Field(description="The sites checked (all of the wave's unless some were selected).")
    started: datetime
    finished: datetime
    results: tuple[CheckResult, ...]
    site_names: dict[str, str] = Field(
        default_factory=dict, description="What the plan calls each site of the wave (id -> name); reports show both."
    )
    window_start: datetime | None = Field(default=None, description="The wave's maintenance window opens.")
    window_end: datetime | None = Field(default=None, description="The wave's maintenance window closes.")

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding, most severe first (stable within a severity)."""
        found = [f for r in self.results for f in r.findings]
        return tuple(sorted(found, key=lambda f: -f.severity.rank))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def counts(self) -> dict[Severity, int]:
        """Number of findings per severity (every severity present, zero included)."""
        counted = Counter(f.severity for r in self.results for f in r.findings)
        return {severity: counted[severity] for severity in SEVERITIES}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def blocked(self) -> bool:
        """Any critical finding blocks the wave."""
        return any(f.severity is Severity.critical for r in self.results for f in r.findings)
