"""planning.batches.Pool: a site's VM moves as a pool — a move starts as soon as a slot frees, not when
the slowest VM of a batch has ended — under the same rules as planning.batches.schedule; and its
event simulation (makespan). Pure code, no lab; tests/lab/test_pool.py runs it against the lab."""

from __future__ import annotations

import random
from collections import Counter

from test_batches import limits, vm

from overflyt.planning.batches import Pool, makespan, schedule


def test_the_first_take_is_the_first_batch() -> None:
    vms = [vm("a", host="h1"), vm("b", host="h1"), vm("c", host="h2"), vm("d", host="h1", depends_on=["c"])]
    rules = limits(total=3, per_host=2)
    assert Pool(vms, {}, rules).take() == schedule(vms, {}, rules)[0]


def test_a_freed_slot_is_taken_while_the_rest_still_move() -> None:
    vms = [vm("long"), vm("short"), vm("next"), vm("last")]
    pool = Pool(vms, {}, limits(per_datastore=2))
    assert pool.take() == ["long", "short"]
    assert pool.take() == []  # the datastore is full
    assert pool.release("short")
    assert pool.take() == ["next"]  # "long" still moves
    pool.finish("short", moved=True)
    pool.finish("next", moved=True)
    assert pool.take() == ["last"]
    assert pool.running == {"long", "last"}
    assert not pool.release("short")  # released once


def test_a_dependent_waits_until_its_dependency_has_finished_not_only_released() -> None:
    vms = [vm("db", host="h1"), vm("app", host="h2", depends_on=["db"])]
    pool = Pool(vms, {}, limits())
    assert pool.take() == ["db"]
    pool.release("db")  # its transfer is over, its check not
    assert pool.take() == []
    pool.finish("db", moved=True)
    assert pool.take() == ["app"]


def test_a_vm_whose_dependency_did_not_move_never_starts() -> None:
    vms = [vm("db", host="h1"), vm("app", host="h2", depends_on=["db"]), vm("web", host="h3", depends_on=["app"])]
    pool = Pool(vms, {}, limits())
    assert pool.take() == ["db"]
    pool.finish("db", moved=False)
    assert pool.take() == []
    assert pool.pending == ["app", "web"]  # never started: run_pool skips them with its reason


def test_the_storage_map_loads_both_ends_of_a_move() -> None:
    vms = [vm("a", host="h1", datastore="src1"), vm("b", host="h2", datastore="src2")]
    pool = Pool(vms, {"src1": "gold", "src2": "gold"}, limits(per_datastore=1))
    assert pool.take() == ["a"]  # both would load the target "gold"
    pool.release("a")
    assert pool.take() == ["b"]


def test_every_limit_holds_at_every_moment_of_a_random_run() -> None:
    rng = random.Random(19)
    vms = [
        vm(f"vm{i}", host=f"h{rng.randrange(4)}", datastore=f"ds{rng.randrange(3)}",
           depends_on=[f"vm{j}" for j in range(i) if rng.random() < 0.08])
        for i in range(60)
    ]  # fmt: skip
    storage = {"ds0": "gold", "ds1": "gold", "ds2": "silver"}
    rules = limits(total=6, per_host=2, per_datastore=3, per_site=5)
    by_name = {v.name: v for v in vms}
    pool = Pool(vms, storage, rules)
    holding: set[str] = set()
    moved: set[str] = set()
    while pool.pending or pool.running:
        for name in pool.take():
            assert set(by_name[name].depends_on) <= moved, name
            holding.add(name)
        assert len(holding) <= min(rules.global_, rules.per_site)
        assert max(Counter(by_name[n].host for n in holding).values(), default=0) <= rules.per_host
        ends = Counter(ds for n in holding for ds in {by_name[n].datastore, storage[by_name[n].datastore]})
        assert max(ends.values(), default=0) <= rules.per_datastore
        name = rng.choice(sorted(pool.running))
        if name in holding and rng.random() < 0.5:
            holding.discard(name)
            pool.release(name)
        else:
            holding.discard(name)
            pool.finish(name, moved=True)
            moved.add(name)
    assert moved == set(by_name)


def test_makespan_is_the_long_move_not_the_sum_of_batches() -> None:
    # per_site 2: batches would be [long, s1], [s2, s3] -> 40 + 3 = 43 s; the pool moves the short
    # ones beside the long one: 40 s
    vms = [vm("long"), vm("s1"), vm("s2"), vm("s3")]
    seconds = {"long": 40.0, "s1": 3.0, "s2": 3.0, "s3": 3.0}
    assert makespan(vms, {}, limits(per_site=2), seconds) == 40.0
    assert makespan(vms, {}, limits(per_site=1), seconds) == 49.0
    chain = [vm("a"), vm("b", depends_on=["a"]), vm("c", depends_on=["b"])]
    assert makespan(chain, {}, limits(), dict.fromkeys("abc", 2.0)) == 6.0
    assert makespan([], {}, limits(), {}) == 0.0
