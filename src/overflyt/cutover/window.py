"""The wave's maintenance window while its sites run: no site starts after the window has closed
or when what is left of it is shorter than the site's estimate (the planner's,
:func:`overflyt.planning.cost.move_cost`) plus the plan's margin; a site under way when it closes
finishes or is rolled back, as ``window_policy.on_window_end`` says. ``--outside-window`` lifts it
(the wave records the override). A rollback is always allowed outside the window."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from overflyt.cutover.outcome import SiteOutcome
from overflyt.cutover.site import OnStep, WindowClosed
from overflyt.plan.ahead import unit_name
from overflyt.plan.model import MaintenanceWindow, Plan
from overflyt.planning.cost import move_cost
from overflyt.steps.vm_batches import site_vms

log = logging.getLogger(__name__)


def now() -> datetime:
    return datetime.now(UTC)


def _at(moment: datetime, zone: str, now: datetime | None = None) -> str:
    """A moment as local time in ``zone``: ``06:00 (Europe/Copenhagen)``, with its date when that is
    not today's (or ``now``'s) and its seconds when they are not zero."""
    local = moment.astimezone(ZoneInfo(zone))
    today = (now or datetime.now(UTC)).astimezone(ZoneInfo(zone)).date()
    text = local.strftime("%H:%M:%S" if local.second else "%H:%M")
    return f"{'' if local.date() == today else local.strftime('%Y-%m-%d ')}{text} ({zone})"


def minutes_text(minutes: float, *, down: bool = False) -> str:
    """Minutes as a person reads them: ``25 min``, ``3 h 20 min``, ``less than a minute`` (rounded to
    the nearest minute, or down with ``down``: what is left of a window is never overstated)."""
    whole = max(0, math.floor(minutes) if down else math.floor(minutes + 0.5))
    if whole == 0 and minutes > 0:
        return "less than a minute"
    hours, rest = divmod(whole, 60)
    return f"{hours} h {rest} min" if hours and rest else f"{hours} h" if hours else f"{rest} min"


def window_text(window: MaintenanceWindow) -> str:
    """``2027-03-06 18:00 to 2027-03-07 06:00 (Europe/Copenhagen)``."""
    zone = ZoneInfo(window.timezone)
    start, end = window.start.astimezone(zone), window.end.astimezone(zone)
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} ({window.timezone})"


ROLLBACK_ANY_TIME = "A rollback is always allowed outside the window: it restores the agreed state."


@dataclass
class WindowGate:
    """The wave's maintenance window, held while a real cutover's sites run (not with --outside-window).

    A site starts only while what is left of the window holds its estimate plus the plan's margin
    (:meth:`refusal`); at each step boundary of a site under way, a closed window rolls it back when
    ``on_window_end`` says so and its VM moves have not finished in time (:meth:`before_step`);
    :meth:`ran_over` says how far a finished site ran past the window."""

    plan: Plan
    wave: int
    clock: Callable[[], datetime] = now
    on_step: OnStep | None = None
    started: dict[str, set[str]] = field(default_factory=dict)  # per site: the steps it began in this run

    @property
    def window(self) -> MaintenanceWindow:
        return self.plan.wave(self.wave).window

    def closed(self) -> bool:
        return self.clock() >= self.window.end

    def at(self, moment: datetime) -> str:
        return _at(moment, self.window.timezone, self.clock())

    def estimate(self, site_id: str) -> float:
        """Minutes the site's cutover is expected to take: the planner's estimate of its VM moves
        (disks across the policy's bandwidth, the cutover's batches) plus the policy's site minutes."""
        policy, plan = self.plan.window_policy, self.plan
        storage = {m.source: m.target for m in plan.storage_map}
        vms = site_vms(plan, self.wave, site_id)
        cost = move_cost(
            vms, storage, plan.concurrency, bandwidth_mbps=policy.bandwidth_mbps, vm_minutes=policy.vm_minutes
        )
        return policy.site_minutes + cost.minutes

    def refusal(self, site_id: str, status: str) -> str | None:
        """Why the site may not start now (``status``: its wave state's), or None when it may."""
        if status == "done":
            return None  # nothing left to do: the cutover skips it
        now, end = self.clock(), self.window.end
        under_way = status not in ("pending", "rolled_back")
        estimate, margin = self.estimate(site_id), self.plan.window_policy.margin_min
        needs = (
            f"{unit_name(self.plan, site_id)} needs about {minutes_text(estimate + margin)} "
            f"({minutes_text(estimate)} estimated + {minutes_text(margin)} margin)"
        )
        if now >= end:
            when = f"the window closed at {self.at(end)}"
        elif under_way:
            return None  # a site an earlier run left part done goes on; on_window_end decides at the end
        elif (end - now).total_seconds() / 60 < estimate + margin:
            when = (
                f"the window closes at {self.at(end)}, in {minutes_text((end - now).total_seconds() / 60, down=True)}"
            )
        else:
            return None
        then = (
            "an earlier run left it part done: finish it with --outside-window or roll it back (overflyt rollback)"
            if under_way
            else "its devices and VMs were not touched: rerun it in the next window, or with --outside-window"
        )
        return f"not started: {when}; {needs}; {then}"

    def before_step(self, site_id: str, step: str) -> None:
        """At a step boundary of a site under way: past the window's end, roll it back (raise
        WindowClosed) when the plan says so and its VM moves had not finished before the window closed
        (a step before them is next, or they finished in this run after it closed); else go on."""
        started = self.started.setdefault(site_id, set())
        now, end = self.clock(), self.window.end
        if now >= end:
            rollback = self.plan.window_policy.on_window_end == "rollback"
            moves_late = step in ("backup", "placements", "migrate") or (step == "configure" and "migrate" in started)
            if rollback and moves_late:
                raise WindowClosed(
                    f"the window closed at {self.at(end)} before the site's VM moves had finished (checked before "
                    f"its {step} step); on_window_end: rollback"
                )
            if "window" not in started:
                started.add("window")
                message = f"the window closed at {self.at(end)}: finishing the site (on_window_end: finish)"
                log.warning("site %s: %s", site_id, message)
                if self.on_step is not None:
                    self.on_step(site_id, step, message)
        started.add(step)

    def stop_moves(self, site_id: str) -> str | None:
        """Before each VM batch of a site under way: why no further batch may start (the window has
        closed and the plan says roll back), or None. The batches not started fail the migrate step,
        and the site is rolled back like any failed move."""
        end = self.window.end
        if self.plan.window_policy.on_window_end != "rollback" or self.clock() < end:
            return None
        return f"the window closed at {self.at(end)} (on_window_end: rollback)"

    def ran_over(self, result: SiteOutcome) -> str | None:
        """For a site that finished after the window closed: by how much, and what the plan said."""
        now, end = self.clock(), self.window.end
        if result.status != "done" or now <= end:
            return None
        over = minutes_text((now - end).total_seconds() / 60)
        return (
            f"ran over the window by {over}: it closed at {self.at(end)}, the site finished at {self.at(now)} "
            "(on_window_end: finish)"
        )
