"""Choosing what a command works on: one wave, and all or some of its sites."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from overflyt.errors import UsageError
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


def refuse_vms_ahead_of_their_site(plan: Plan) -> None:
    """A UsageError when the plan pulls VMs ahead of their site's wave (``waves[].vms``): no site's
    cutover would move them in that wave and their own site's leaves them out, so `wave run` refuses
    the plan rather than strand a VM behind a moved subnet."""
    pulled = [(w.number, name) for w in plan.waves for name in w.vms]
    if pulled:
        names = ", ".join(f"{name} (wave {number})" for number, name in pulled)
        raise UsageError(
            f"the plan moves VMs ahead of their site's wave ({names}): `wave run` does not carry out "
            "waves[].vms yet; put those VMs' sites in that wave or take them out of waves[].vms"
        )


def next_wave(plan: Plan, now: datetime | None = None) -> int:
    """The first wave whose window has not ended (the last wave once all have): what nightly pre-checks check."""
    now = now or datetime.now(UTC)
    upcoming = [w.number for w in plan.waves if w.window.end > now]
    return upcoming[0] if upcoming else plan.waves[-1].number
