"""Choosing what a command works on: one wave, and all or some of its sites."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from overflyt.errors import UsageError
from overflyt.plan.ahead import ahead_subnets, units_of_wave
from overflyt.plan.model import Plan


def select_sites(plan: Plan, wave: int, sites: Sequence[str] = ()) -> list[str]:
    """The wave's sites, or the named subset of them in the wave's order; bad input is a UsageError."""
    numbers = [w.number for w in plan.waves]
    if wave not in numbers:
        raise UsageError(f"wave {wave} is not in the plan (its waves: {', '.join(map(str, numbers))})")
    own = list(plan.wave(wave).sites)
    unknown = [s for s in sites if s not in own]
    if unknown:
        where = {s.id: w.number for w in plan.waves for s in (plan.site(x) for x in w.sites)}
        reasons = [
            f"site {s!r} is in wave {where[s]}, not wave {wave}" if s in where else f"site {s!r} is not in the plan"
            for s in unknown
        ]
        raise UsageError("; ".join(reasons) + f" (wave {wave}'s sites: {', '.join(own)})")
    return [s for s in own if s in sites] if sites else own


def select_units(plan: Plan, wave: int, names: Sequence[str] = ()) -> list[str]:
    """What a wave run cuts over, in the wave's order: its sites, then its subnets that move ahead of
    their site (:mod:`overflyt.plan.ahead`; each by its key). ``names`` narrows them: a site of the
    wave, an ahead subnet's key, or the site an ahead subnet of the wave belongs to (all of its
    subnets moving ahead in this wave). Bad input is a UsageError."""
    select_sites(plan, wave)  # an unknown wave is refused first
    ahead = ahead_subnets(plan, wave)
    keys = {unit.key for unit in ahead}
    homes = {unit.site for unit in ahead}
    if not names:
        return units_of_wave(plan, wave)
    own = set(plan.wave(wave).sites) if wave in [w.number for w in plan.waves] else set()
    sites = [n for n in names if n not in keys and (n not in homes or n in own)]
    chosen = set(select_sites(plan, wave, sites)) if sites else set()
    chosen |= {u.key for u in ahead if u.key in names or (u.site in names and u.site not in own)}
    return [u for u in units_of_wave(plan, wave) if u in chosen]


def next_wave(plan: Plan, now: datetime | None = None) -> int:
    """The first wave whose window has not ended (the last wave once all have): what nightly pre-checks check."""
    now = now or datetime.now(UTC)
    upcoming = [w.number for w in plan.waves if w.window.end > now]
    return upcoming[0] if upcoming else plan.waves[-1].number
