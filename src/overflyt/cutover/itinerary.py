"""A site's cutover itinerary, as data.

Each :class:`ItineraryStep` names one unit of work, what it does (``action``), whether the dry run
includes it and which of the plan's ``timeouts`` bounds it. :data:`ITINERARY` is the order a real
cutover runs them in; the dry run is the same tuple filtered (:func:`dry_run_itinerary`); the wave
state records progress under these names (:data:`STEP_NAMES`), so adding a step is one line here.

An action reads and records through a :class:`SiteWork`: the step context, the site, its durable
state (a scratch one in a dry run, never saved) and the outcome being built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from overflyt.ansible.step import StepContext
from overflyt.cutover.outcome import SiteOutcome, dump
from overflyt.cutover.state import BackupRef, SiteState
from overflyt.precheck.facts import VCenterFacts
from overflyt.steps import network, vms


@dataclass
class SiteWork:
    """One site's cutover in progress."""

    ctx: StepContext
    site: str
    state: SiteState
    outcome: SiteOutcome
    dry_run: bool
    timeout_s: int
    carried: Carried | None = None  # what one step hands the next within this run (not recorded)


@dataclass
class Carried:
    """What a step of a site's cutover hands the next one in the same run: the vCenters' facts the
    placements were read from, which the migration then uses instead of reading them again (a
    resumed cutover, whose placements step ran in an earlier run, reads them itself)."""

    vcenters: tuple[VCenterFacts, VCenterFacts] | None = None


def backups_of(state: SiteState) -> dict[str, network.Backup]:
    """The device backups a site's state recorded, as the network steps take them."""
    return {h: network.Backup(hostname=h, file=b.file, sha256=b.sha256) for h, b in state.backups.items()}


@dataclass(frozen=True)
class ItineraryStep:
    name: str
    title: str
    action: Callable[[SiteWork], None]
    in_dry_run: bool
    timeout: str  # the field of the plan's ``timeouts`` that bounds it

    def timeout_s(self, ctx: StepContext) -> int:
        value: Any = getattr(ctx.plan.timeouts, self.timeout)
        return int(value)


def _backup(work: SiteWork) -> None:
    backups = network.backup_site(work.ctx, work.site, dry_run=work.dry_run, timeout_s=work.timeout_s)
    work.state.backups = {h: BackupRef(file=b.file, sha256=b.sha256) for h, b in backups.items()}


def _placements(work: SiteWork) -> None:
    placements, read = vms.read_placements(work.ctx, work.site)
    if work.carried is not None:
        work.carried.vcenters = read
    work.state.placements = {name: p.model_dump(mode="json") for name, p in placements.items()}


def _migrate(work: SiteWork) -> None:
    read = None
    if work.carried is not None:
        read, work.carried.vcenters = work.carried.vcenters, None  # used once, by the step right after
    migration = vms.migrate_site_vms(work.ctx, work.site, dry_run=work.dry_run, timeout_s=work.timeout_s, read=read)
    work.outcome.vms = dump(migration)
    if not work.dry_run:
        work.state.moved = sorted(work.state.placements)


def _configure(work: SiteWork) -> None:
    # configure_site raises unless every device verified
    configured = network.configure_site(
        work.ctx, work.site, backups_of(work.state), dry_run=work.dry_run, timeout_s=work.timeout_s
    )
    work.outcome.devices = dump(configured)


def _postcheck(work: SiteWork) -> None:
    # postcheck_site raises naming every server not reached
    work.outcome.postcheck = dump(network.postcheck_site(work.ctx, work.site, timeout_s=work.timeout_s))


ITINERARY: tuple[ItineraryStep, ...] = (
    ItineraryStep("backup", "back up the site's devices", _backup, in_dry_run=True, timeout="backup_s"),
    ItineraryStep("placements", "record where the site's VMs stand", _placements, in_dry_run=False,
                  timeout="precheck_s"),
    ItineraryStep("migrate", "move the site's VMs", _migrate, in_dry_run=True, timeout="migrate_s"),
    ItineraryStep("configure", "push and verify the network change", _configure, in_dry_run=True,
                  timeout="configure_s"),
    ItineraryStep("postcheck", "real traffic from the site to the moved servers", _postcheck, in_dry_run=False,
                  timeout="postcheck_s"),
)  # fmt: skip
STEP_NAMES: tuple[str, ...] = tuple(step.name for step in ITINERARY)


def dry_run_itinerary() -> tuple[ItineraryStep, ...]:
    """The steps a dry run takes: the same playbooks under --check --diff, nothing recorded."""
    return tuple(step for step in ITINERARY if step.in_dry_run)
