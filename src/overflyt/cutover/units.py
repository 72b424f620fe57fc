"""A site's units across its waves: what of it moved when, the order a rollback undoes it in, and
what of another site's a rollback would undo with it.

A site moves in units (:mod:`overflyt.plan.ahead`): each server subnet that moves ahead of it, in
an earlier wave, and its own cutover, in its wave. Each unit is recorded in its wave's state
(:class:`~overflyt.cutover.state.SiteState`: the subnets it moved, its runs, when its latest
attempt started, its backups and placements). ``overflyt rollback --site`` undoes them latest first,
each to its own backups; a unit of *another* site that changed one of those devices later would be
undone silently by that restore, so the rollback is refused naming it (:func:`later_changes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from overflyt.cutover.state import SiteState, WaveStore
from overflyt.errors import UsageError
from overflyt.plan import Plan
from overflyt.plan.ahead import ahead_subnets, find_ahead, is_ahead_key, unit_name
from overflyt.steps.ahead import ahead_device_changes

UNDONE = ("pending", "rolled_back")  # a unit in one of these has nothing in place to undo


@dataclass(frozen=True)
class Recorded:
    """One unit as its wave's state recorded it."""

    wave: int
    key: str
    site: str
    state: SiteState

    @property
    def when(self) -> datetime:
        """When its latest attempt started (older states without it: ordered by wave)."""
        return self.state.started_at or datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=self.wave)

    @property
    def in_place(self) -> bool:
        return self.state.status not in UNDONE and bool(self.state.backups or self.state.placements)


def recorded_units(plan: Plan, base: Path | None = None) -> list[Recorded]:
    """Every unit recorded in the plan's waves' states, oldest first."""
    out: list[Recorded] = []
    for wave in plan.waves:
        store = WaveStore(plan.municipality.code, wave.number, base)
        for key, state in store.state.sites.items():
            site = state.site or (key.split(":", 1)[0] if is_ahead_key(key) else key)
            out.append(Recorded(wave.number, key, site, state))
    return sorted(out, key=lambda r: (r.when, r.wave))


def to_undo(plan: Plan, site_id: str, base: Path | None = None) -> list[Recorded]:
    """The site's units that have something in place, latest first: the order a rollback undoes them."""
    mine = [r for r in recorded_units(plan, base) if r.site == site_id and r.in_place]
    return sorted(mine, key=lambda r: (r.when, r.wave), reverse=True)


def later_changes(plan: Plan, site_id: str, undo: list[Recorded], base: Path | None = None) -> list[str]:
    """Units of other sites, in place, that changed a device after a unit of ``undo`` backed it up:
    restoring that backup would undo them. One line each, naming both."""
    others = [r for r in recorded_units(plan, base) if r.site != site_id and r.in_place]
    lines: list[str] = []
    for mine in undo:
        for other in others:
            shared = sorted(set(mine.state.backups) & set(other.state.backups))
            if shared and other.when > mine.when:
                lines.append(
                    f"{unit_name(plan, other.key)} (wave {other.wave}, runs {', '.join(other.state.runs) or '-'}) "
                    f"changed {', '.join(shared)} after {unit_name(plan, mine.key)} (wave {mine.wave}) backed "
                    f"{'it' if len(shared) == 1 else 'them'} up: roll back {other.site} first "
                    f"(overflyt rollback PLAN --site {other.site})"
                )
    return lines


def refuse_ahead_not_done(plan: Plan, wave: int, units: list[str], base: Path | None = None) -> None:
    """A UsageError when a site of ``units`` has a subnet that moves ahead of it in an earlier wave
    that has not moved it: the site's cutover would route a subnet whose servers are not there."""
    problems: list[str] = []
    for unit in ahead_subnets(plan):
        if unit.wave >= wave or unit.site not in units:
            continue
        state = WaveStore(plan.municipality.code, unit.wave, base).state.sites.get(unit.key)
        if state is None or state.status != "done":
            status = "not run" if state is None else state.status
            problems.append(
                f"site {unit.site}: its subnet {unit.subnet} ({unit.mapping.source}) moves ahead in wave "
                f"{unit.wave}, which has not moved it ({status}): run wave {unit.wave} first"
            )
    if problems:
        raise UsageError("; ".join(problems))


def site_history(plan: Plan, site_id: str, base: Path | None = None) -> list[dict[str, object]]:
    """Which subnets of the site moved in which wave and run, oldest first (its units' records)."""
    return [
        {
            "unit": r.key,
            "wave": r.wave,
            "ahead": find_ahead(plan, r.key) is not None,
            "subnets": list(r.state.subnets),
            "status": r.state.status,
            "runs": list(r.state.runs),
        }
        for r in recorded_units(plan, base)
        if r.site == site_id
    ]


def stale_reasons(plan: Plan, key: str, refused: Mapping[str, list[str]]) -> list[str]:
    """Why the stale-plan check refuses unit ``key`` (``refused``: per site, what changed since the
    pre-check; nothing: it may run). A site: what changed of it. An ahead subnet: what changed of its
    site (its VMs, its gateway), and a change on a device of another site that it changes too (the
    upstream core)."""
    unit = find_ahead(plan, key)
    if unit is None:
        return list(refused.get(key, []))
    hosts = tuple(f"device {host}'s " for host in ahead_device_changes(plan, unit))
    reasons = list(refused.get(unit.site, []))
    for site, lines in refused.items():
        if site != unit.site:
            reasons += [line for line in lines if line.startswith(hosts)]
    return reasons
