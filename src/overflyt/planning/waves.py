"""Proposes waves from an estate: the first draft of a plan, for an engineer to edit.

``plan_waves(estate, options)`` is pure and deterministic (same estate and options, same plan) and
returns a :class:`WavePlan`: a :class:`~overflyt.plan.model.Plan` that ``overflyt plan validate``
accepts, and the time estimate of each wave. ``render_plan`` writes it as a plan file. An estate
that cannot be planned raises :class:`PlanningImpossible` (exit 2) naming the VMs and the reason.

What moves together. VMs that share a portgroup (a subnet moves whole) or an app group form one
*unit*; units whose VMs depend on each other in a loop are merged into one too. A unit always
moves in one wave. A site's cutover moves its VMs with it; a unit may move *ahead* of its site
(listed under an earlier wave's ``vms``) when a dependency or the window's size needs it, never
after it.

In which order. A unit never moves after a unit it depends on. Shared services (VMs whose role
or one of whose tags is ad, dns, dhcp or ntp) are placed first, and a unit that depends on one
moves in a later wave, unless it lives at the same site (a site's VMs move with its cutover).
Sites are taken in that order: first those holding shared services, then those whose VMs others
depend on, then the rest (sites without VMs fill the room left in the waves).

How long a wave takes. Sites are cut over one after another: each costs ``site_minutes``, and so
does each server subnet (portgroup) a wave moves ahead of its site, a cutover of its own. A
unit's VMs move in batches formed by the rule the cutover runs (``global`` and ``per_site`` VMs
at once, ``per_host`` per source host, ``per_datastore`` per source or target datastore, a VM
after what it depends on: :func:`overflyt.planning.batches.schedule`); each batch costs
``vm_minutes``, and the disks cross the declared replication bandwidth (1 GB = 8,000 Mbit). Units
are counted one after another, never sharing a batch, so the estimate errs on the long side. A
wave holds what fits its window; each wave keeps room for at least one site cutover.

The steps, one module each: the options and the error (:mod:`.options`), the units and what they
cost (:mod:`.units`), placing them into waves (:mod:`.placement`), the windows and estimates
(:mod:`.estimates`), the plan they make (:mod:`.proposal`) and its file (:mod:`.render`). This
module puts them together and is the planner's public surface.
"""

from __future__ import annotations

import logging

from overflyt.discovery.estate import Estate
from overflyt.planning.estimates import WaveEstimate, WavePlan, estimate_waves, wave_windows
from overflyt.planning.options import (
    PLACEHOLDER,
    SHARED_ROLES,
    TIMEZONE,
    PlanningImpossible,
    PlanningOptions,
    check_options,
    default_first_window,
)
from overflyt.planning.placement import Placement
from overflyt.planning.proposal import CORE_DC_LINK_MBPS, DC_LINK_POOL, build_plan
from overflyt.planning.render import render_plan
from overflyt.planning.units import GATEWAY_ROLES, build_model

__all__ = [
    "CORE_DC_LINK_MBPS",
    "DC_LINK_POOL",
    "GATEWAY_ROLES",
    "PLACEHOLDER",
    "SHARED_ROLES",
    "TIMEZONE",
    "PlanningImpossible",
    "PlanningOptions",
    "WaveEstimate",
    "WavePlan",
    "default_first_window",
    "plan_waves",
    "render_plan",
]

log = logging.getLogger(__name__)


def plan_waves(estate: Estate, options: PlanningOptions) -> WavePlan:
    """Propose waves for the estate (see the module's documentation for the rules).

    The estate must have passed :func:`overflyt.discovery.estate.validate_estate` (``load_estate`` does that).
    """
    check_options(options)
    model = build_model(estate, options)
    capacity = options.window_hours * 60
    placed = Placement(model, options, capacity)
    placed.run()
    windows = wave_windows(options, placed.count)
    plan = build_plan(model, placed, windows, options)
    estimates = estimate_waves(model, placed, windows, capacity)
    log.debug("planned %d waves for %s", len(estimates), estate.municipality.name)
    return WavePlan(plan, estimates, options)
