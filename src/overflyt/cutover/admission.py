"""Admission: everything that is checked before a wave or a rollback contacts anything.

:func:`admit` (a wave) and :func:`admit_rollback` (one site's rollback) load the plan once, choose
the sites and ahead subnets, refuse bad input (unknown wave or site, a site whose subnet that moves
ahead in an earlier wave has not moved, a credential that
resolves to nothing, a missing approval, nothing recorded to roll back) and refuse a municipality
another run holds — each with one message and exit 2, before Prefect or Ansible start.

The CLI admits before it starts the flow, then hands the admission to the flow it runs in the same
process (:func:`handed`): the plan is loaded and its credentials resolved once per run. A flow run
started elsewhere (the UI, a schedule) admits itself.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from overflyt.cutover.state import WaveStore
from overflyt.cutover.units import later_changes, refuse_ahead_not_done, to_undo
from overflyt.errors import UsageError
from overflyt.plan import LoadedPlan, load
from overflyt.plan.ahead import ahead_subnets
from overflyt.plan.credentials import ResolvedCredential, resolve_all
from overflyt.plan.select import select_units
from overflyt.record import municipality_lock


@dataclass(frozen=True)
class Admission:
    """A run that may start: the loaded plan, its wave and sites, the resolved credentials."""

    loaded: LoadedPlan
    wave: int
    sites: tuple[str, ...]
    credentials: Mapping[str, ResolvedCredential]
    dry_run: bool
    kind: str = "wave"  # wave | rollback

    def matches(self, kind: str, plan_path: Path, wave: int | None, sites: Sequence[str], dry_run: bool) -> bool:
        same_plan = self.loaded.path.resolve() == Path(plan_path).resolve()
        same_wave = wave is None or wave == self.wave
        same_sites = not sites or tuple(sites) == self.sites or set(sites) == set(self.sites)
        return self.kind == kind and same_plan and same_wave and same_sites and self.dry_run == dry_run


def admit(
    plan_path: Path, wave: int, sites: Sequence[str] = (), *, dry_run: bool, approval_given: bool, can_ask: bool
) -> Admission:
    """A wave run that may start, or a UsageError/PlanInvalid/CredentialMissing/RunLocked saying why not.
    ``can_ask``: a missing approval can still be asked for (a flow that pauses for it)."""
    handed_over = _HANDED.get()
    if handed_over is not None and handed_over.matches("wave", plan_path, wave, sites, dry_run):
        return handed_over
    loaded = load(plan_path)
    plan = loaded.plan
    chosen = select_units(plan, wave, sites)
    if not dry_run:
        refuse_ahead_not_done(plan, wave, chosen, loaded.state)
    credentials = resolve_all(plan, loaded.directory)
    if not dry_run and plan.approval_required and not approval_given and not can_ask:
        raise UsageError(
            f"wave {wave} of {plan.municipality.name} needs approval before its cutover: "
            "give --approved-by NAME (and --ticket REF), or run it with --dry-run"
        )
    _refuse_busy(plan.municipality.code, loaded.state)
    return Admission(loaded, wave, tuple(chosen), credentials, dry_run)


def admit_rollback(plan_path: Path, site_id: str) -> Admission:
    """A rollback of ``site_id`` that may start: something of the site is in place (its own cutover,
    or a subnet of it moved ahead in an earlier wave), and no other site's unit changed one of its
    devices after it (that restore would undo it: refused, naming it)."""
    handed_over = _HANDED.get()
    if handed_over is not None and handed_over.matches("rollback", plan_path, None, [site_id], False):
        return handed_over
    loaded = load(plan_path)
    plan = loaded.plan
    wave = next((w.number for w in plan.waves if site_id in w.sites), None)
    if wave is None:
        raise UsageError(f"site {site_id!r} is in no wave of the plan (sites: {', '.join(s.id for s in plan.sites)})")
    undo = to_undo(plan, site_id, loaded.state)
    if not undo:
        store = WaveStore(plan.municipality.code, wave, loaded.state)
        ahead = " nor a subnet moved ahead of it" if any(u.site == site_id for u in ahead_subnets(plan)) else ""
        raise UsageError(
            f"site {site_id} has no recorded cutover in wave {wave} (looked in {store.path}){ahead}: there is "
            "nothing to roll back"
        )
    conflicts = later_changes(plan, site_id, undo, loaded.state)
    if conflicts:
        raise UsageError(f"rollback of {site_id} refused, nothing changed: " + "; ".join(conflicts))
    credentials = resolve_all(plan, loaded.directory)
    _refuse_busy(plan.municipality.code, loaded.state)
    return Admission(loaded, wave, (site_id,), credentials, dry_run=False, kind="rollback")


def _refuse_busy(code: str, home: Path) -> None:
    with municipality_lock(code, "checking that no other run is active", home):
        pass  # a busy municipality is refused here; the run takes the lock for real when it starts


_HANDED: contextvars.ContextVar[Admission | None] = contextvars.ContextVar("overflyt_admission", default=None)


@contextlib.contextmanager
def handed(admission: Admission) -> Iterator[None]:
    """Inside, a flow run of this process for the same plan, wave and sites uses ``admission``
    instead of admitting again."""
    token = _HANDED.set(admission)
    try:
        yield
    finally:
        _HANDED.reset(token)
