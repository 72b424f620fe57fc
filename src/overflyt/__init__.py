"""overflyt: moves a municipality's virtual servers and network configuration into a shared
datacentre, wave by wave, with pre-checks and rollback per site.

The few verbs the flows, the CLI and the benchmarks use::

    load(path) -> LoadedPlan            read a plan and the inventory beside it, once
    validate_plan(plan) -> [Problem]    the plan's cross-field rules
    precheck_wave(path, wave, ...)      gather facts read-only, judge them, record the reports
    run_wave(path, wave, ...)           admit → precheck → approve → stale check → each site → finish
    rollback_site(path, site, ...)      put a site back as it was before its cutover
    plan_waves(estate, options)         propose waves for an estate

The package's wings, in the order data flows through them (each says what it owns and may import):
``plan/`` → ``precheck/`` → ``cutover/`` → ``steps/`` → ``ansible/`` → ``providers/``; beside them
``planning/``, ``discovery/``, ``orchestration/`` (Prefect only), ``cli/`` and the lab (``lab/``).
``errors``, ``record`` (run records, the municipality lock), ``project`` (where the playbooks and
templates are) and ``reports`` (the one renderer of ``templates/``) are shared by all. The Prefect
flows live in the top-level ``flows/`` package.

Importing ``overflyt`` is cheap: each verb is imported when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from overflyt.cutover.wave import rollback_site, run_wave
    from overflyt.plan import load, validate_plan
    from overflyt.planning.waves import plan_waves
    from overflyt.precheck.wave import precheck_wave

_VERBS = {
    "load": "overflyt.plan",
    "validate_plan": "overflyt.plan",
    "precheck_wave": "overflyt.precheck.wave",
    "run_wave": "overflyt.cutover.wave",
    "rollback_site": "overflyt.cutover.wave",
    "plan_waves": "overflyt.planning.waves",
}

__all__ = ["__version__", "load", "plan_waves", "precheck_wave", "rollback_site", "run_wave", "validate_plan"]


def __getattr__(name: str) -> Any:
    module = _VERBS.get(name)
    if module is None:
        raise AttributeError(f"module 'overflyt' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
