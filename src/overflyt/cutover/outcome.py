"""What one site's cutover, dry run or rollback came to: the data every report is built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SiteOutcome:
    site: str
    status: str  # done | rolled_back | failed | rollback_failed | dry_run | skipped | refused
    error: str | None = None
    steps: dict[str, float] = field(default_factory=dict)  # step -> seconds
    vms: dict[str, Any] = field(default_factory=dict)
    devices: dict[str, Any] = field(default_factory=dict)
    postcheck: dict[str, Any] = field(default_factory=dict)
    rollback: dict[str, Any] = field(default_factory=dict)
    canceled: bool = False


def dump(value: Any) -> Any:
    """A step's result as JSON-ready data (pydantic models dumped, anything else as it is)."""
    model_dump = getattr(value, "model_dump", None)
    return model_dump(mode="json") if callable(model_dump) else value
