"""When each wave runs and what it is estimated to take.

:func:`wave_windows` lays the waves' windows out in the week (``waves_per_week``, evenly spread,
local time in the options' timezone); :func:`estimate_waves` sums, per wave, its sites' cutovers,
the cutovers of the subnets it moves ahead of their site (``site_minutes`` each, as a site: each has
its own backup, configure, verify and post-check) and its units' costs into a :class:`WaveEstimate`
(with ``concurrency.sites`` above 1, the cutovers laid out as that many run at once; the waves are
still sized as if one ran at a time — a conservative fit). :class:`WavePlan` is the planner's
answer: the proposed plan and those estimates.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from overflyt.plan.model import Plan
from overflyt.planning.lanes import makespan
from overflyt.planning.options import PlanningImpossible, PlanningOptions, day_offsets
from overflyt.planning.placement import Placement
from overflyt.planning.units import PlanningModel


@dataclass(frozen=True)
class WaveEstimate:
    """What a proposed wave moves and how long the planner thinks it takes."""

    number: int
    start: datetime
    end: datetime
    sites: tuple[str, ...]
    vms: tuple[str, ...]  # every VM it moves, its sites' and those ahead of their site
    ahead: tuple[str, ...]  # VMs moved ahead of their own site's wave
    ahead_subnets: tuple[str, ...]  # their subnets (portgroups): each a cutover of its own
    shared: tuple[str, ...]  # shared-service VMs among them
    disk_gb: int
    batches: tuple[tuple[str, ...], ...]  # the VM moves as estimated, batch by batch
    transfer_minutes: float
    minutes: float
    window_minutes: float


@dataclass(frozen=True)
class WavePlan:
    """The planner's answer: the proposed plan, each wave's estimate, and the options it was sized for."""

    plan: Plan
    estimates: tuple[WaveEstimate, ...]
    options: PlanningOptions


def wave_windows(options: PlanningOptions, count: int) -> list[tuple[datetime, datetime]]:
    """Local (naive) start and end of each wave's window; the end is `window_hours` of real time later."""
    zone = ZoneInfo(options.timezone)
    first = options.first_window
    if first.tzinfo is not None:
        first = first.astimezone(zone).replace(tzinfo=None)
    offsets = day_offsets(options.waves_per_week)
    out: list[tuple[datetime, datetime]] = []
    for k in range(count):
        week, slot = divmod(k, options.waves_per_week)
        start = first + timedelta(days=week * 7 + offsets[slot])
        end = (start.replace(tzinfo=zone).astimezone(UTC) + timedelta(hours=options.window_hours)).astimezone(zone)
        out.append((start, end.replace(tzinfo=None)))
    for (_, previous_end), (start, _) in itertools.pairwise(out):
        if start < previous_end:
            raise PlanningImpossible(
                f"windows of {options.window_hours:g} h overlap at {options.waves_per_week} waves a week "
                f"(one starts {start:%Y-%m-%d %H:%M}, the one before ends {previous_end:%Y-%m-%d %H:%M}); "
                "lower --window-hours or --waves-per-week"
            )
    return out


def estimate_waves(
    model: PlanningModel, placed: Placement, windows: Sequence[tuple[datetime, datetime]], capacity: float
) -> tuple[WaveEstimate, ...]:
    """Each wave's sites, VMs, disk, batches and minutes: its cutovers (sites' and subnets' ahead,
    :func:`_cutovers`) one after another, or up to ``concurrency.sites`` at once
    (:func:`overflyt.planning.lanes.makespan`)."""
    units = model.units
    vms = model.estate.vms
    by_wave: list[list[int]] = [[] for _ in windows]
    for u in sorted(placed.unit_wave, key=lambda u: units[u].rank):
        by_wave[placed.unit_wave[u]].append(u)
    out = []
    for w, (start, end) in enumerate(windows):
        members = sorted(i for u in by_wave[w] for i in units[u].vms)
        sites = placed.sites[w]
        ahead = [i for i in members if placed.site_wave[model.site_of[i]] > w]
        subnets = tuple(dict.fromkeys(pg for i in ahead for pg in vms[i].portgroups))
        cutovers = len(sites) + len(subnets)
        minutes = cutovers * placed.options.site_minutes + sum(units[u].minutes for u in by_wave[w])
        if placed.options.concurrency.sites > 1:
            minutes = makespan(_cutovers(model, placed, w, by_wave[w]), placed.options.concurrency.sites)
        out.append(
            WaveEstimate(
                number=w + 1,
                start=start,
                end=end,
                sites=tuple(sorted(sites, key=placed.position.__getitem__)),
                vms=tuple(vms[i].name for i in members),
                ahead=tuple(vms[i].name for i in ahead),
                ahead_subnets=subnets,
                shared=tuple(vms[i].name for i in members if model.shared_vm[i]),
                disk_gb=sum(units[u].disk_gb for u in by_wave[w]),
                batches=tuple(tuple(b) for u in by_wave[w] for b in units[u].batches),
                transfer_minutes=sum(units[u].transfer_minutes for u in by_wave[w]),
                minutes=minutes,
                window_minutes=capacity,
            )
        )
    return tuple(out)


def _cutovers(model: PlanningModel, placed: Placement, wave: int, members: Sequence[int]) -> list[float]:
    """The minutes of each cutover of a wave, in order: each unit moved ahead of its site alone (a
    cutover, site minutes, per subnet it holds, and its moves), then each site (its site minutes and
    the units it moves; a unit of several of the wave's sites counted with the first)."""
    units, sites = model.units, placed.sites[wave]
    order = sorted(sites, key=placed.position.__getitem__)
    per_site = dict.fromkeys(order, placed.options.site_minutes)
    ahead: list[float] = []
    for u in members:
        home = next((s for s in order if s in units[u].sites), None)
        if home is None:
            subnets = {pg for i in units[u].vms for pg in model.estate.vms[i].portgroups}
            ahead.append(len(subnets) * placed.options.site_minutes + units[u].minutes)
        else:
            per_site[home] += units[u].minutes
    return ahead + list(per_site.values())
