"""The rule that starts a wave's sites (overflyt.cutover.parallel): up to the limit at once, in the
plan's order; after a site that stops the wave no new site starts, those running finish; outcomes
in the plan's order."""

from __future__ import annotations

import threading
import time

import pytest

from overflyt.cutover.outcome import SiteOutcome
from overflyt.cutover.parallel import cut_sites
from overflyt.plan.model import Concurrency


class Sites:
    """Fake cutovers: each takes ``took[site]`` seconds and ends with ``ends[site]`` (default done);
    records when each started and ended and the most running at once."""

    def __init__(self, took: dict[str, float], ends: dict[str, str] | None = None) -> None:
        self.took, self.ends = took, ends or {}
        self.started: list[str] = []
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def cut(self, site: str) -> SiteOutcome:
        with self.lock:
            self.started.append(site)
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(self.took[site])
        with self.lock:
            self.running -= 1
        status = self.ends.get(site, "done")
        if status == "boom":
            raise RuntimeError(f"{site}: a bug")
        return SiteOutcome(site, status)


def _stops(outcome: SiteOutcome) -> bool:
    return outcome.status in ("failed", "rolled_back", "rollback_failed")


def _none(_site: str) -> SiteOutcome | None:
    return None


def test_one_at_a_time_by_default_in_the_plan_order() -> None:
    sites = Sites({"a": 0.05, "b": 0, "c": 0})
    out = cut_sites(["a", "b", "c"], Concurrency().sites, _none, sites.cut, _stops)
    assert Concurrency().sites == 1
    assert [o.site for o in out] == ["a", "b", "c"]
    assert sites.most == 1


def test_up_to_the_limit_at_once_and_outcomes_in_the_plan_order() -> None:
    sites = Sites({"a": 0.3, "b": 0.05, "c": 0.05, "d": 0.05})
    out = cut_sites(["a", "b", "c", "d"], 2, _none, sites.cut, _stops)
    assert sites.most == 2
    assert [o.site for o in out] == ["a", "b", "c", "d"]
    assert sites.started[:2] == ["a", "b"]  # the next site starts as soon as one ends: c and d beside a


def test_after_a_failure_with_stop_no_new_site_starts_and_the_running_one_finishes() -> None:
    sites = Sites({"a": 0.3, "b": 0.05, "c": 0, "d": 0}, {"b": "rolled_back"})
    out = cut_sites(["a", "b", "c", "d"], 2, _none, sites.cut, _stops)
    assert [(o.site, o.status) for o in out] == [("a", "done"), ("b", "rolled_back")]
    assert sites.started == ["a", "b"]  # a was running when b failed: it finished; c and d never started


def test_a_held_back_site_does_not_take_a_place() -> None:
    sites = Sites({"a": 0.05, "c": 0.05})

    def hold(site: str) -> SiteOutcome | None:
        return SiteOutcome(site, "not_started", error="window") if site == "b" else None

    out = cut_sites(["a", "b", "c"], 2, hold, sites.cut, _stops)
    assert [(o.site, o.status) for o in out] == [("a", "done"), ("b", "not_started"), ("c", "done")]
    assert sites.most == 2


def test_a_cancelled_site_stops_new_starts_and_the_other_rolls_back_on_its_own() -> None:
    sites = Sites({"a": 0.2, "b": 0.05, "c": 0})

    def stops(outcome: SiteOutcome) -> bool:
        return outcome.canceled

    def cut(site: str) -> SiteOutcome:
        outcome = sites.cut(site)
        outcome.canceled = True
        outcome.status = "rolled_back"
        return outcome

    out = cut_sites(["a", "b", "c"], 2, _none, cut, stops)
    assert [(o.site, o.status) for o in out] == [("a", "rolled_back"), ("b", "rolled_back")]


def test_what_a_site_raised_is_raised_after_the_running_ones_ended() -> None:
    sites = Sites({"a": 0.3, "b": 0.01, "c": 0}, {"b": "boom"})
    with pytest.raises(RuntimeError, match="b: a bug"):
        cut_sites(["a", "b", "c"], 2, _none, sites.cut, _stops)
    assert sites.started == ["a", "b"]
    assert sites.running == 0  # a had finished before the error was raised


def test_the_plan_limit_is_bounded() -> None:
    assert Concurrency.model_validate({"sites": 3}).sites == 3
    with pytest.raises(ValueError, match="sites"):
        Concurrency.model_validate({"sites": 0})


def test_the_planner_lays_cutovers_out_by_the_same_rule() -> None:
    from overflyt.planning.lanes import makespan

    assert makespan([30, 10, 10, 10], 1) == 60
    assert makespan([30, 10, 10, 10], 2) == 30  # b, c and d one after another beside a
    assert makespan([10, 10, 30], 2) == 40  # the third starts when the first ends
    assert makespan([], 3) == 0


def test_a_wave_of_sites_at_once_is_estimated_shorter_and_the_plan_says_so() -> None:
    from test_planner import plan_of, small_estate

    one = plan_of(small_estate()).estimates[0]
    two = plan_of(small_estate(), concurrency=Concurrency.model_validate({"sites": 2}))
    assert len(one.sites) == 3
    assert two.estimates[0].sites == one.sites
    assert two.estimates[0].minutes < one.minutes
    assert two.plan.concurrency.sites == 2


def test_a_site_whose_vm_depends_on_a_running_sites_vm_waits_for_that_site_to_end() -> None:
    """c's VM depends on a VM of a: c starts only once a has ended (the sites behind it meanwhile)."""
    sites = Sites({"a": 0.3, "b": 0.05, "c": 0.05, "d": 0.05})
    out = cut_sites(["a", "b", "c", "d"], 2, _none, sites.cut, _stops, after={"c": {"a"}})
    assert [o.site for o in out] == ["a", "b", "c", "d"]
    assert sites.started.index("d") < sites.started.index("c")  # d went beside a while c waited
    assert sites.started[-1] == "c"


def test_sites_that_depend_on_each_other_run_in_the_plan_order() -> None:
    sites = Sites({"a": 0.05, "b": 0.05})
    out = cut_sites(["a", "b"], 2, _none, sites.cut, _stops, after={"a": {"b"}, "b": {"a"}})
    assert [o.site for o in out] == ["a", "b"]
    assert sites.started == ["a", "b"]
    assert sites.most == 1


def test_the_sites_a_wave_waits_for_are_read_from_depends_on() -> None:
    """Wave 3 of the sample with a care centre VM depending on a VM that moves in wave 3 from another
    site (the library's, moved there): the care centre waits for the library; the others for no one."""
    from pathlib import Path

    from overflyt.cutover.wave import sites_before
    from overflyt.plan import load

    plan = load(Path(__file__).resolve().parents[2] / "inventories" / "norddjurs" / "plan.yml").plan
    assert sites_before(plan, 3, plan.wave(3).sites) == {s: set() for s in plan.wave(3).sites}
    vms = [
        vm.model_copy(update={"site": "grenaa-bibliotek"}) if vm.name == "ndj-omsorg-gw01" else vm for vm in plan.vms
    ]
    vms = [
        vm.model_copy(update={"depends_on": [*vm.depends_on, "ndj-omsorg-gw01"]}) if vm.name == "ndj-nodkald02" else vm
        for vm in vms
    ]
    changed = plan.model_copy(update={"vms": vms})
    before = sites_before(changed, 3, changed.wave(3).sites)
    assert before["digterparken"] == {"grenaa-bibliotek"}  # ndj-nodkald02 -> ndj-omsorg-gw01, now the library's
    assert before["grenaa-bibliotek"] == before["ostervang"] == before["materielgaarden"] == set()


def test_a_signal_that_lands_on_a_sites_thread_is_handled_while_the_sites_run() -> None:
    """Python runs signal handlers in the main thread only, when it runs: the kernel may hand a
    SIGTERM sent to the process to any thread. Here it is sent to a site's thread (SIGUSR1 stands in
    for it); its handler — the cancel — must run while both sites still run, not once one ends."""
    import signal

    handled = threading.Event()
    threads: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: handled.set())

    def cut(site: str) -> SiteOutcome:
        threads.append(threading.get_ident())
        if site == "a":
            time.sleep(0.3)
            signal.pthread_kill(threads[0], signal.SIGUSR1)
        ended = handled.wait(timeout=10)  # a cutover that goes on until the cancel reaches it
        return SiteOutcome(site, "rolled_back" if ended else "done")

    try:
        started = time.monotonic()
        outcomes = cut_sites(["a", "b"], 2, lambda s: None, cut, lambda o: False)
        took = time.monotonic() - started
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert [o.status for o in outcomes] == ["rolled_back", "rolled_back"]
    assert took < 3, f"the handler ran {took:.1f} s in: only once a site had ended"
