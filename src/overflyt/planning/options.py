"""What the wave planner may be asked: its options, their defaults and limits, and its one error.

:class:`PlanningOptions` says how waves are sized and scheduled; :func:`check_options` refuses
options no plan can satisfy, before anything is planned. :class:`PlanningImpossible` (exit 2) is
how every part of the planner refuses, naming the VMs or the option and the reason.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from overflyt.errors import EXIT_BAD_INPUT, OverflytError
from overflyt.plan.model import Concurrency

SHARED_ROLES = frozenset({"ad", "dns", "dhcp", "ntp"})
TIMEZONE = "Europe/Copenhagen"
PLACEHOLDER = "CHANGE-ME"


class PlanningImpossible(OverflytError):
    """The estate cannot be cut into waves as asked; the message names the VMs and why (exit 2)."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"cannot plan waves: {reason}")


@dataclass(frozen=True)
class PlanningOptions:
    """How waves are sized and scheduled. ``first_window`` is local time in ``timezone`` when naive."""

    first_window: datetime
    window_hours: float = 12.0
    waves_per_week: int = 1
    bandwidth_mbps: int = 1000
    site_minutes: float = 15.0
    vm_minutes: float = 5.0
    concurrency: Concurrency = field(default_factory=Concurrency)
    target_datastores: tuple[str, ...] = (PLACEHOLDER,)
    shared_roles: frozenset[str] = SHARED_ROLES
    timezone: str = TIMEZONE


def default_first_window(now: datetime) -> datetime:
    """The next Saturday 18:00 (local, naive) strictly after ``now`` (aware, or naive local time)."""
    local = now.astimezone(ZoneInfo(TIMEZONE)).replace(tzinfo=None) if now.tzinfo else now
    candidate = local.replace(hour=18, minute=0, second=0, microsecond=0) + timedelta(days=(5 - local.weekday()) % 7)
    return candidate if candidate > local else candidate + timedelta(days=7)


def check_options(options: PlanningOptions) -> None:
    """Refuse options no plan can satisfy (a window shorter than a site cutover, overlapping windows, ...)."""
    bad = PlanningImpossible
    if not 0 < options.window_hours <= 168:
        raise bad(f"a window must last more than 0 and at most 168 hours (got {options.window_hours:g})")
    if not 1 <= options.waves_per_week <= 7:
        raise bad(f"waves per week must be 1 to 7 (got {options.waves_per_week})")
    if options.bandwidth_mbps <= 0:
        raise bad(f"the replication bandwidth must be positive (got {options.bandwidth_mbps} Mbps)")
    if options.site_minutes < 0 or options.vm_minutes < 0:
        raise bad("minutes per site and per batch cannot be negative")
    if not options.target_datastores:
        raise bad("give at least one target datastore")
    if options.site_minutes > options.window_hours * 60:
        raise bad(
            f"a window of {options.window_hours:g} h is shorter than one site cutover "
            f"({options.site_minutes:g} min); raise --window-hours"
        )
    gap = _min_gap_days(options.waves_per_week)
    if options.window_hours > gap * 24:
        raise bad(
            f"windows of {options.window_hours:g} h overlap at {options.waves_per_week} waves a week "
            f"({gap} day{'s' if gap != 1 else ''} apart); lower --window-hours or --waves-per-week"
        )


def day_offsets(per_week: int) -> list[int]:
    """Day offsets in a week of the waves' windows: spread evenly, the first on the first window's day."""
    return [i * 7 // per_week for i in range(per_week)]


def _min_gap_days(per_week: int) -> int:
    days = [*day_offsets(per_week), 7]
    return min(b - a for a, b in itertools.pairwise(days))
