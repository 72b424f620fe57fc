"""planning.batches.schedule: the one VM scheduling rule the cutover runs and the planner estimates
with. Each limit on its own, the storage map loading both ends of a move, dependency order, the
cycle error, determinism, and every rule at once on a synthetic municipality. Pure code, no lab."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest

from overflyt.discovery.estate import VirtualMachine
from overflyt.errors import UsageError
from overflyt.lab import synth
from overflyt.plan.model import Concurrency
from overflyt.planning.batches import schedule


def vm(name: str, host: str = "esx1", datastore: str = "ds1", depends_on: Sequence[str] = ()) -> VirtualMachine:
    return VirtualMachine.model_validate(
        {
            "name": name,
            "host": host,
            "datastore": datastore,
            "cpu": 2,
            "memory_mb": 4096,
            "disks_gb": [40],
            "portgroups": ["VM-Test"],
            "power": "powered_on",
            "depends_on": list(depends_on),
        }
    )


def limits(total: int = 64, per_host: int = 64, per_datastore: int = 64, per_site: int = 64) -> Concurrency:
    return Concurrency.model_validate(
        {"global": total, "per_host": per_host, "per_datastore": per_datastore, "per_site": per_site}
    )


def apart(count: int) -> list[VirtualMachine]:
    """``count`` independent VMs, each on its own host and datastore."""
    return [vm(f"vm{i}", host=f"esx{i}", datastore=f"ds{i}") for i in range(count)]


def check(vms: Sequence[VirtualMachine], storage: dict[str, str], rules: Concurrency, result: list[list[str]]) -> None:
    """Every rule schedule promises, checked independently of how it schedules."""
    by_name = {v.name: v for v in vms}
    assert sorted(n for b in result for n in b) == sorted(by_name), "every VM exactly once"
    position = {name: i for i, batch in enumerate(result) for name in batch}
    for batch in result:
        assert 1 <= len(batch) <= min(rules.global_, rules.per_site)
        assert max(Counter(by_name[n].host for n in batch).values()) <= rules.per_host
        ends = Counter(ds for n in batch for ds in {by_name[n].datastore, storage.get(by_name[n].datastore, "")} if ds)
        assert max(ends.values()) <= rules.per_datastore
    for name, v in by_name.items():
        for dep in v.depends_on:
            if dep in by_name and dep != name:
                assert position[dep] < position[name], f"{name} moves before {dep}, which it depends on"


# -- each limit on its own ---------------------------------------------------------------------------


def test_nothing_to_move_is_no_batch() -> None:
    assert schedule([], {}, limits()) == []


def test_global_limit_caps_a_batch() -> None:
    assert schedule(apart(7), {}, limits(total=3)) == [["vm0", "vm1", "vm2"], ["vm3", "vm4", "vm5"], ["vm6"]]


def test_per_site_limit_caps_a_batch() -> None:
    assert schedule(apart(5), {}, limits(per_site=2)) == [["vm0", "vm1"], ["vm2", "vm3"], ["vm4"]]


def test_the_smaller_of_global_and_per_site_wins() -> None:
    assert [len(b) for b in schedule(apart(9), {}, limits(total=4, per_site=3))] == [3, 3, 3]
    assert [len(b) for b in schedule(apart(9), {}, limits(total=2, per_site=5))] == [2, 2, 2, 2, 1]


def test_per_host_limit() -> None:
    vms = [vm(f"vm{i}", host=f"esx{i % 2}", datastore=f"ds{i}") for i in range(6)]  # alternating hosts
    assert schedule(vms, {}, limits(per_host=1)) == [["vm0", "vm1"], ["vm2", "vm3"], ["vm4", "vm5"]]
    assert schedule(vms, {}, limits(per_host=2)) == [["vm0", "vm1", "vm2", "vm3"], ["vm4", "vm5"]]


def test_per_host_skips_a_full_host_and_fills_the_batch_from_later_vms() -> None:
    vms = [vm("a", host="esx1", datastore="d1"), vm("b", host="esx1", datastore="d2"), vm("c", "esx2", "d3")]
    assert schedule(vms, {}, limits(per_host=1)) == [["a", "c"], ["b"]]


def test_per_datastore_limit_counts_the_source_datastore() -> None:
    vms = [vm(f"vm{i}", host=f"esx{i}", datastore=f"ds{i % 2}") for i in range(5)]
    assert schedule(vms, {}, limits(per_datastore=1)) == [["vm0", "vm1"], ["vm2", "vm3"], ["vm4"]]
    assert schedule(vms, {}, limits(per_datastore=2)) == [["vm0", "vm1", "vm2", "vm3"], ["vm4"]]


# -- the storage map: a move loads both of its datastores ------------------------------------------


def test_two_sources_mapped_to_one_target_are_kept_apart() -> None:
    vms = [vm("a", "esx1", "src-1"), vm("b", "esx2", "src-2"), vm("c", "esx3", "src-3")]
    storage = {"src-1": "gold", "src-2": "gold", "src-3": "silver"}
    assert schedule(vms, storage, limits(per_datastore=1)) == [["a", "c"], ["b"]]
    assert schedule(vms, storage, limits(per_datastore=2)) == [["a", "b", "c"]]


def test_a_target_that_is_another_vms_source_is_loaded_by_both() -> None:
    # a moves src-1 -> src-2 while b reads src-2: one move per datastore keeps them apart.
    vms = [vm("a", "esx1", "src-1"), vm("b", "esx2", "src-2")]
    assert schedule(vms, {"src-1": "src-2"}, limits(per_datastore=1)) == [["a"], ["b"]]
    assert schedule(vms, {}, limits(per_datastore=1)) == [["a", "b"]]


def test_a_datastore_mapped_to_itself_or_unmapped_counts_once() -> None:
    # With per_datastore 1, a VM whose datastore counted twice could never move at all.
    vms = [vm("a", "esx1", "same"), vm("b", "esx2", "unmapped")]
    assert schedule(vms, {"same": "same"}, limits(per_datastore=1)) == [["a", "b"]]


def test_many_sources_mapped_onto_two_targets_cap_a_batch_by_the_targets() -> None:
    # The synthetic municipality's source datastores mapped onto two targets, as a plan's storage_map does.
    vms = synth.estate("707").vms[:40]
    sources = list(dict.fromkeys(v.datastore for v in vms))
    storage = {ds: ("gold", "silver")[k % 2] for k, ds in enumerate(sources)}
    rules = limits(total=8, per_host=4, per_datastore=2, per_site=8)
    result = schedule(vms, storage, rules)
    check(vms, storage, rules, result)
    for batch in result:  # two targets, at most two moves on each: at most four VMs a batch
        assert len(batch) <= 4


# -- dependency order ---------------------------------------------------------------------------------


def test_a_dependent_waits_for_its_dependency_even_when_there_is_room() -> None:
    vms = [vm("app", "esx1", "d1", ["db"]), vm("db", "esx2", "d2"), vm("web", "esx3", "d3", ["app"])]
    assert schedule(vms, {}, limits()) == [["db"], ["app"], ["web"]]


def test_the_longest_chain_of_dependents_goes_first_then_the_given_order() -> None:
    vms = [
        vm("lone1", "esx1", "d1"),
        vm("web", "esx2", "d2", ["app"]),
        vm("app", "esx3", "d3", ["sql"]),
        vm("lone2", "esx4", "d4"),
        vm("sql", "esx5", "d5"),
        vm("report", "esx6", "d6", ["sql"]),
    ]
    # Heights: sql 3 (app, web below it), app 2, the others 1. A batch takes sql, then the first VM
    # of height 1 that is ready (lone1: web and report wait for what they depend on), and so on.
    assert schedule(vms, {}, limits(total=2, per_site=2)) == [["sql", "lone1"], ["app", "lone2"], ["web", "report"]]


def test_dependencies_outside_the_set_and_on_itself_are_ignored() -> None:
    vms = [vm("a", "esx1", "d1", ["moved-already", "a"]), vm("b", "esx2", "d2", ["elsewhere"])]
    assert schedule(vms, {}, limits()) == [["a", "b"]]


def test_a_long_chain_is_scheduled_without_a_recursion_limit() -> None:
    # Each VM depends on the one before: 1,500 deep, past Python's default recursion limit of 1,000.
    chain = [vm(f"c{i:04d}", depends_on=[f"c{i - 1:04d}"] if i else []) for i in range(1500)]
    result = schedule(chain, {}, limits())
    assert result == [[v.name] for v in chain]


# -- cycles ---------------------------------------------------------------------------------------------


def test_a_cycle_of_two_is_refused_naming_it() -> None:
    vms = [vm("a", depends_on=["b"]), vm("b", depends_on=["a"])]
    with pytest.raises(UsageError) as refused:
        schedule(vms, {}, limits())
    assert str(refused.value) == "VMs depend on each other in a cycle: a -> b -> a"


def test_the_first_cycle_met_is_named_each_vm_before_one_it_depends_on() -> None:
    vms = [
        vm("free"),
        vm("x", depends_on=["z"]),
        vm("y", depends_on=["x", "free"]),
        vm("z", depends_on=["y"]),
        vm("w", depends_on=["w", "v"]),
        vm("v", depends_on=["w"]),
    ]
    with pytest.raises(UsageError) as refused:
        schedule(vms, {}, limits())
    # The search starts at free (the first VM), reaches y (it depends on free), then z, then x, and
    # x depends on z: y depends on x, x on z, z on y. The loop of w and v comes later and is not named.
    assert str(refused.value) == "VMs depend on each other in a cycle: y -> x -> z -> y"


# -- determinism and every rule at once --------------------------------------------------------------


def test_the_same_input_gives_the_same_batches() -> None:
    vms = synth.estate("707").vms
    storage = {ds: "gold" for ds in {v.datastore for v in vms}}
    rules = limits(total=4, per_host=2, per_datastore=3, per_site=4)
    first = schedule(vms, storage, rules)
    assert all(schedule(list(vms), dict(storage), rules) == first for _ in range(3))


def test_the_given_order_breaks_ties() -> None:
    vms = apart(4)
    assert schedule(list(reversed(vms)), {}, limits(total=2)) == [["vm3", "vm2"], ["vm1", "vm0"]]


def _sites(code: str) -> list[list[VirtualMachine]]:
    estate = synth.estate(code)
    site_of = {h.name: h.site for h in estate.hosts}
    by_site: dict[str, list[VirtualMachine]] = {}
    for v in estate.vms:
        by_site.setdefault(site_of[v.host], []).append(v)
    return list(by_site.values())


@pytest.mark.parametrize(
    ("total", "per_host", "per_datastore", "per_site"), list(itertools.product([1, 3, 8], [1, 2], [1, 2, 5], [2, 6]))
)
def test_every_site_of_a_municipality_keeps_every_rule(
    total: int, per_host: int, per_datastore: int, per_site: int
) -> None:
    rules = limits(total, per_host, per_datastore, per_site)
    for vms in _sites("707"):
        stores = sorted({v.datastore for v in vms})
        storage = {ds: f"target-{k % 2}" for k, ds in enumerate(stores)}
        result = schedule(vms, storage, rules)
        check(vms, storage, rules, result)


def test_a_vm_with_dependencies_is_any_object_with_the_four_fields() -> None:
    # The cutover passes the plan's VMs, the planner the estate's: schedule reads only four fields.
    class Plain:
        def __init__(self, name: str, depends_on: Sequence[str] = ()) -> None:
            self.name, self.host, self.datastore, self.depends_on = name, "esx1", "ds1", depends_on

    items: list[Any] = [Plain("b", ["a"]), Plain("a")]
    assert schedule(items, {}, limits()) == [["a"], ["b"]]
