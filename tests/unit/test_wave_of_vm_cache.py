"""wave_of_vm is computed once per plan object (P2: plan.dependencies asked for it once per wave,
waves x VMs per plan); the answer is the same as computing it afresh, for the sample and for planned
municipalities with VMs pulled ahead, and a caller that changes its copy changes no one else's."""

from __future__ import annotations

import gc
from datetime import datetime
from pathlib import Path

from overflyt.discovery.estate import Estate
from overflyt.lab import synth
from overflyt.plan import load_plan, rules
from overflyt.planning.waves import PlanningOptions, plan_waves

SAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs" / "plan.yml"


def test_the_cached_map_is_the_computed_one_and_each_caller_gets_its_own_copy() -> None:
    options = PlanningOptions(first_window=datetime(2027, 3, 6, 18, 0), bandwidth_mbps=10_000, waves_per_week=2)
    plans = [load_plan(SAMPLE)]
    plans += [
        plan_waves(Estate.model_validate(synth.estate_data(code)), options).plan for code in list(synth.quotas())[:6]
    ]
    assert any(w.vms for p in plans for w in p.waves), "no plan pulls a VM ahead: the test would prove less"
    for plan in plans:
        fresh = rules._compute_wave_of_vm(plan)
        first = rules.wave_of_vm(plan)
        assert first == fresh
        first[next(iter(first))] = 999
        assert rules.wave_of_vm(plan) == fresh
        assert rules.wave_of_vm(plan) is not rules.wave_of_vm(plan)


def test_the_cache_ends_with_its_plan() -> None:
    plan = load_plan(SAMPLE)
    rules.wave_of_vm(plan)
    key = id(plan)
    assert key in rules._WAVES_OF_VMS
    del plan
    gc.collect()
    assert key not in rules._WAVES_OF_VMS
