"""vmops.batches: a site's VMs cut into batches that respect the plan's concurrency limits and
depends_on order; vmops.choose_hosts: deterministic target hosts. Pure functions, no lab."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from overflyt.ansible.step import StepContext
from overflyt.errors import MigrationStepFailed, UsageError
from overflyt.plan import Inventory, LoadedPlan, Plan, load_plan
from overflyt.plan.model import Concurrency, VirtualMachine
from overflyt.precheck.facts import HostFacts, VCenterFacts, VMFacts
from overflyt.record import Run
from overflyt.steps.vms import batches, choose_hosts, migrate_site_vms, record_placements, rollback_site_vms

PLAN = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs" / "plan.yml"


@pytest.fixture(scope="module")
def plan() -> Plan:
    return load_plan(PLAN)


def limited(plan: Plan, total: int = 4, per_host: int = 2, per_datastore: int = 2, per_site: int = 2) -> Plan:
    concurrency = Concurrency.model_validate(
        {"global": total, "per_host": per_host, "per_datastore": per_datastore, "per_site": per_site}
    )
    return plan.model_copy(update={"concurrency": concurrency})


def with_vms(plan: Plan, vms: list[VirtualMachine]) -> Plan:
    return plan.model_copy(update={"vms": vms})


def check(plan: Plan, wave: int, site: str, result: list[list[str]]) -> None:
    """Every rule batches promises, checked independently of how it schedules."""
    vms = {vm.name: vm for vm in plan.vms_of_wave(wave) if vm.site == site}
    assert sorted(n for b in result for n in b) == sorted(vms), "every VM exactly once"
    storage = {m.source: m.target for m in plan.storage_map}
    limits = plan.concurrency
    position = {name: i for i, batch in enumerate(result) for name in batch}
    for batch in result:
        assert 1 <= len(batch) <= min(limits.global_, limits.per_site)
        hosts = [vms[n].host for n in batch]
        assert max(hosts.count(h) for h in hosts) <= limits.per_host
        stores = [ds for n in batch for ds in {vms[n].datastore, storage[vms[n].datastore]}]
        assert max(stores.count(d) for d in stores) <= limits.per_datastore
    for name, vm in vms.items():
        for dep in vm.depends_on:
            if dep in vms:
                assert position[dep] < position[name], f"{name} moves before {dep}, which it depends on"


def test_wave_1_town_hall_with_the_plans_limits(plan: Plan) -> None:
    # per_site 2 caps every batch at two; ndj-dc01 goes first because six VMs depend on it.
    assert batches(plan, 1, "grenaa-raadhus") == [
        ["ndj-dc01", "ndj-dc02"],
        ["ndj-dhcp01", "ndj-pki01"],
        ["ndj-radius01", "ndj-wsus01"],
        ["ndj-mgmt01", "ndj-print01"],
    ]


def test_a_dependent_waits_for_its_dependency_even_when_there_is_room(plan: Plan) -> None:
    roomy = limited(plan, total=8, per_host=8, per_datastore=8, per_site=8)
    assert batches(roomy, 1, "grenaa-raadhus") == [
        ["ndj-dc01", "ndj-dc02"],
        ["ndj-dhcp01", "ndj-pki01", "ndj-radius01", "ndj-wsus01", "ndj-mgmt01", "ndj-print01"],
    ]


def test_global_limit_caps_a_batch(plan: Plan) -> None:
    tight = limited(plan, total=3, per_host=8, per_datastore=8, per_site=8)
    assert [len(b) for b in batches(tight, 1, "grenaa-raadhus")] == [2, 3, 3]


def test_per_host_limit(plan: Plan) -> None:
    # Wave 1's VMs alternate between ndj-esx01 and ndj-esx02: one per host means two per batch.
    one = limited(plan, total=8, per_host=1, per_datastore=8, per_site=8)
    result = batches(one, 1, "grenaa-raadhus")
    check(one, 1, "grenaa-raadhus", result)
    assert [len(b) for b in result] == [2, 2, 2, 2]
    hosts = {vm.name: vm.host for vm in plan.vms}
    assert all(len({hosts[n] for n in b}) == len(b) for b in result)


def test_per_datastore_limit_counts_source_and_target(plan: Plan) -> None:
    # Two independent VMs on different source datastores that map to the same target datastore
    # (ndj-ds-grenaa-01 and ndj-ds-auning-01 both -> mj-ds-gold-01): one per datastore keeps them apart.
    base = next(vm for vm in plan.vms if vm.name == "ndj-dc02")
    a = base.model_copy(update={"name": "vm-a", "host": "ndj-esx01", "datastore": "ndj-ds-grenaa-01"})
    b = base.model_copy(update={"name": "vm-b", "host": "ndj-esx02", "datastore": "ndj-ds-auning-01"})
    c = base.model_copy(update={"name": "vm-c", "host": "ndj-esx03", "datastore": "ndj-ds-auning-02"})
    synthetic = limited(with_vms(plan, [a, b, c]), total=8, per_host=8, per_datastore=1, per_site=8)
    # vm-c goes to mj-ds-silver-01 from its own datastore: it may join vm-a.
    assert batches(synthetic, 1, "grenaa-raadhus") == [["vm-a", "vm-c"], ["vm-b"]]


def test_longest_chain_of_dependents_goes_first(plan: Plan) -> None:
    # Wave 2, Auning: ndj-sql01 <- ndj-sbsys-app01 <- ndj-sbsys-web01 is the longest chain.
    result = batches(plan, 2, "auning-adm")
    check(plan, 2, "auning-adm", result)
    assert result[0] == ["ndj-sql01", "ndj-sql02"]
    position = {n: i for i, b in enumerate(result) for n in b}
    assert position["ndj-sql01"] < position["ndj-sbsys-app01"] < position["ndj-sbsys-web01"]


@pytest.mark.parametrize(
    ("total", "per_host", "per_datastore", "per_site"),
    list(itertools.product([1, 3, 4], [1, 2], [1, 2, 5], [2, 6])),
)
def test_every_site_of_every_wave_keeps_every_rule(
    plan: Plan, total: int, per_host: int, per_datastore: int, per_site: int
) -> None:
    limits = limited(plan, total, per_host, per_datastore, per_site)
    for wave in plan.waves:
        for site in wave.sites:
            result = batches(limits, wave.number, site)
            check(limits, wave.number, site, result)
            assert result == batches(limits, wave.number, site), "deterministic"


def test_a_subset_ignores_dependencies_outside_it(plan: Plan) -> None:
    # ndj-dhcp01 depends on ndj-dc01, which is not in the set (moved already): no waiting.
    assert batches(plan, 1, "grenaa-raadhus", ["ndj-print01", "ndj-dhcp01"]) == [["ndj-dhcp01", "ndj-print01"]]


def test_a_site_without_vms_in_the_wave_has_no_batches(plan: Plan) -> None:
    assert batches(plan, 2, "kattegatskolen") == []


def test_a_vm_the_site_does_not_move_is_refused(plan: Plan) -> None:
    with pytest.raises(UsageError) as refused:
        batches(plan, 1, "grenaa-raadhus", ["ndj-dc01", "ndj-sql01", "ndj-nosuch"])
    assert str(refused.value) == "site grenaa-raadhus in wave 1 does not move ndj-sql01, ndj-nosuch"


def test_a_site_outside_the_wave_is_refused(plan: Plan) -> None:
    with pytest.raises(UsageError) as refused:
        batches(plan, 1, "auning-adm")
    assert str(refused.value) == "site auning-adm is not cut over in wave 1"
    with pytest.raises(UsageError) as unknown:
        batches(plan, 1, "aarhus")
    assert str(unknown.value) == "site 'aarhus': not in the plan"
    with pytest.raises(UsageError) as no_wave:
        batches(plan, 9, "grenaa-raadhus")
    assert str(no_wave.value) == "wave 9: not in the plan"


def test_a_dependency_cycle_is_refused_naming_it(plan: Plan) -> None:
    vms = [
        vm.model_copy(update={"depends_on": ["ndj-print01"]}) if vm.name == "ndj-dc01" else vm
        for vm in plan.vms  # ndj-print01 depends on ndj-dc01 already
    ]
    with pytest.raises(UsageError) as refused:
        batches(with_vms(plan, vms), 1, "grenaa-raadhus")
    assert str(refused.value) == "VMs depend on each other in a cycle: ndj-dc01 -> ndj-print01 -> ndj-dc01"


# -- choose_hosts ---------------------------------------------------------------------------------


def host(name: str, *, connected: bool = True, maintenance: bool = False, cluster: str = "MJ-Kommuner-01") -> HostFacts:
    return HostFacts(
        name=name, datacenter="MJ-DC1", cluster=cluster, connected=connected, maintenance=maintenance,
        cpu_cores=32, cpu_mhz=64000, cpu_used_mhz=0, memory_mb=524288, memory_used_mb=0,
    )  # fmt: skip


def vm(name: str, on: str, memory_mb: int) -> VMFacts:
    return VMFacts(
        name=name, moid=f"vm-{name}", datacenter="MJ-DC1", cluster="MJ-Kommuner-01", host=on,
        folder="Kommuner/707-Norddjurs", datastores=["mj-ds-gold-01"], cpu=2, memory_mb=memory_mb,
        disks_gb=[60], portgroups=["NDJ-707-Faelles"], power="powered_on", tools="ok",
    )  # fmt: skip


def target(hosts: list[HostFacts], vms: list[VMFacts]) -> VCenterFacts:
    return VCenterFacts(
        name="mj-vcenter",
        url="https://127.0.0.1:18444/sdk",
        reachable=True,
        hosts={h.name: h for h in hosts},
        vms={v.name: v for v in vms},
    )


def test_hosts_are_spread_by_allocated_memory_then_name(plan: Plan) -> None:
    facts = target(
        [host("mj-esx02"), host("mj-esx01"), host("mj-esx03"), host("mj-esx04")],
        [vm("other-a", "mj-esx01", 8192), vm("other-b", "mj-esx03", 2048)],
    )
    order = ["ndj-dc01", "ndj-dc02", "ndj-dhcp01", "ndj-pki01"]  # 8192, 8192, 4096, 4096 MB
    assert choose_hosts(plan, order, facts) == {
        "ndj-dc01": "mj-esx02",  # esx02 and esx04 are empty: esx02 by name
        "ndj-dc02": "mj-esx04",
        "ndj-dhcp01": "mj-esx03",  # 2048 MB
        "ndj-pki01": "mj-esx03",  # 6144 MB, still the least
    }


def test_a_vm_in_the_target_keeps_its_eligible_host(plan: Plan) -> None:
    facts = target(
        [host("mj-esx01"), host("mj-esx02", maintenance=True), host("mj-esx03", connected=False), host("mj-esx04")],
        [vm("ndj-dc01", "mj-esx04", 8192), vm("ndj-dc02", "mj-esx02", 8192)],
    )
    chosen = choose_hosts(plan, ["ndj-dc01", "ndj-dc02"], facts, {"ndj-dc01": "mj-esx04", "ndj-dc02": "mj-esx02"})
    # ndj-dc02's host is in maintenance mode: it goes to an eligible one.
    assert chosen == {"ndj-dc01": "mj-esx04", "ndj-dc02": "mj-esx01"}


def test_no_eligible_host_is_an_error(plan: Plan) -> None:
    facts = target([host("mj-esx01", maintenance=True), host("other", cluster="Other-Cluster")], [])
    with pytest.raises(MigrationStepFailed) as caught:
        choose_hosts(plan, ["ndj-dc01"], facts)
    assert str(caught.value) == (
        "mj-vcenter: cluster MJ-Kommuner-01 of MJ-DC1 has no connected host out of maintenance mode"
    )


def test_a_site_without_vms_reads_and_moves_nothing(plan: Plan, tmp_path: Path) -> None:
    # No vCenter is reachable here: any read or playbook run would fail.
    run = Run.create("wave", "707", 2, ["kattegatskolen"], dry_run=False, base=tmp_path)
    ctx = StepContext(LoadedPlan(plan, PLAN, Inventory(PLAN.parent)), 2, run, {})
    assert record_placements(ctx, "kattegatskolen") == {}
    migration = migrate_site_vms(ctx, "kattegatskolen", dry_run=False)
    assert (migration.batches, migration.vms) == ([], {})
    rollback = rollback_site_vms(ctx, "kattegatskolen", {})
    assert (rollback.batches, rollback.vms) == ([], {})
    assert not (run.dir / "ansible").exists()


# -- the wave's window stops further batches (on_window_end: rollback) ------------------------------


def test_no_further_batch_starts_once_the_window_says_stop(
    plan: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch loop itself, with the vCenter read and the playbooks stood in for (what they do is
    proven against the simulator in tests/lab/): once ``stop_moves`` gives a reason, the batches not
    yet started are skipped with it and the step fails, so the site is rolled back."""
    from overflyt.steps import vms as vm_steps

    started = _batches_stood_in(plan, monkeypatch)
    run = Run.create("wave", "707", 1, ["grenaa-raadhus"], dry_run=False, base=tmp_path)
    reason = "the window closed at 06:00 (Europe/Copenhagen) (on_window_end: rollback)"
    ctx = StepContext(LoadedPlan(plan, PLAN, Inventory(PLAN.parent)), 1, run, {},
                      stop_moves=lambda site: reason if started else None)  # fmt: skip
    with pytest.raises(vm_steps.VmMigrationFailed) as failed:
        migrate_site_vms(ctx, "grenaa-raadhus", dry_run=False)
    migration = failed.value.migration
    assert len(started) == 1  # the first batch ran; none started after the window said stop
    assert len(migration.batches) > 1
    skipped = [n for n, v in migration.vms.items() if v.status == "skipped"]
    assert sorted(skipped) == sorted(n for batch in migration.batches[1:] for n in batch)
    assert {migration.vms[n].error for n in skipped} == {f"not started: {reason}"}
    assert sorted(migration.moved) == started[0]
    assert str(failed.value).startswith("migration of the VMs of site grenaa-raadhus failed: ")
    assert f"not started: {reason}" in str(failed.value)

    # without a reason to stop, every batch runs and the step succeeds
    started.clear()
    ctx = StepContext(LoadedPlan(plan, PLAN, Inventory(PLAN.parent)), 1, run, {}, stop_moves=lambda site: None)
    done = migrate_site_vms(ctx, "grenaa-raadhus", dry_run=False)
    assert len(started) == len(done.batches) > 1
    assert {v.status for v in done.vms.values()} == {"moved"}


def test_no_further_batch_starts_after_a_cancel(plan: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancel (SIGTERM, Prefect's cancel) that arrives while a batch runs: that batch's playbook
    is stopped by the runner (or had just ended), and no later batch starts, each skipped with the
    cancel's reason, so the site is rolled back naming its migrate step. The batch loop itself, with
    the read and the playbooks stood in for as above."""
    from overflyt.ansible import cancel
    from overflyt.steps import vms as vm_steps

    # the cancel arrives as the first batch's moves end; the runner reports that batch canceled
    started = _batches_stood_in(plan, monkeypatch, lambda: cancel.request_cancel("signal SIGTERM"))
    run = Run.create("wave", "707", 1, ["grenaa-raadhus"], dry_run=False, base=tmp_path)
    ctx = StepContext(LoadedPlan(plan, PLAN, Inventory(PLAN.parent)), 1, run, {})
    try:
        with pytest.raises(vm_steps.VmMigrationFailed) as failed:
            migrate_site_vms(ctx, "grenaa-raadhus", dry_run=False)
    finally:
        cancel.reset_cancel()
    migration = failed.value.migration
    assert len(started) == 1 < len(migration.batches)
    skipped = [n for n, v in migration.vms.items() if v.status == "skipped"]
    assert sorted(skipped) == sorted(n for batch in migration.batches[1:] for n in batch)
    assert {migration.vms[n].error for n in skipped} == {"not started: the run was canceled (signal SIGTERM)"}
    assert sorted(migration.moved) == started[0]


def _batches_stood_in(
    plan: Plan, monkeypatch: pytest.MonkeyPatch, during: Callable[[], None] | None = None
) -> list[list[str]]:
    """The town hall's VMs read in the source (an empty target host) and each batch's playbook stood
    in for: every VM of it reported moved, the run ``successful`` — or, with ``during`` (called as
    the batch runs: a cancel, say), ``canceled`` when a cancel was requested. Returns the batches
    started, each its VMs' names, sorted."""
    from overflyt.ansible.cancel import cancel_is_set
    from overflyt.ansible.runner import PlaybookResult
    from overflyt.steps import vms as vm_steps

    site_vms_ = [v for v in plan.vms_of_wave(1) if v.site == "grenaa-raadhus"]
    source = target([], [
        VMFacts(name=v.name, moid=f"vm-{v.name}", datacenter="NDJ-DC", cluster="NDJ-Cluster-01", host=v.host,
                folder="", datastores=[v.datastore], cpu=2, memory_mb=1024, disks_gb=[20],
                portgroups=list(v.portgroups), power="powered_on", tools="ok")
        for v in site_vms_
    ])  # fmt: skip
    monkeypatch.setattr(
        vm_steps, "_read_estate", lambda ctx, step, timeout_s=600: (source, target([host("esx-a")], []))
    )
    started: list[list[str]] = []

    def run_batch(ctx: Any, playbook: str, step: str, vm_hosts: Any, **_: Any) -> tuple[PlaybookResult, float]:
        started.append(sorted(vm_hosts))
        if during is not None:
            during()
        report = {name: {"status": "moved", "seconds": 1.0} for name in vm_hosts}
        status, rc = ("canceled", 254) if cancel_is_set() else ("successful", 0)
        result = PlaybookResult(playbook=playbook, status=status, rc=rc, duration_s=1.0, private_dir="",
                                result={"vms": report})  # fmt: skip
        return result, 0.0

    monkeypatch.setattr(vm_steps, "run_batch", run_batch)
    return started


def test_a_long_move_holds_back_only_its_own_slots(plan: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool driver, with the read and the playbooks stood in for (tests/lab/test_pool.py runs it
    against the simulator): the town hall's VMs without their dependencies, per_datastore 2 (all on
    one datastore). ndj-dc01's playbook does not end until every other VM has moved; each other
    VM's slot frees as its relocation task ends, so they all move beside it, never more than two
    relocations on the datastore at once. (ndj-dc02, started in the same playbook, ends with it.)"""
    import threading

    from overflyt.ansible.runner import PlaybookResult
    from overflyt.steps import vm_batches
    from overflyt.steps import vms as vm_steps

    free = with_vms(plan, [v.model_copy(update={"depends_on": []}) for v in plan.vms])
    town_hall = [v.name for v in free.vms_of_wave(1) if v.site == "grenaa-raadhus"]
    _batches_stood_in(free, monkeypatch)
    monkeypatch.setattr(vm_batches, "COALESCE_S", 0.05)
    lock = threading.Lock()
    relocating: set[str] = set()
    most = 0
    ended: list[str] = []
    others_moved = threading.Event()

    def run_batch(ctx: Any, playbook: str, step: str, vm_hosts: Any, **kw: Any) -> tuple[PlaybookResult, float]:
        nonlocal most
        with lock:
            relocating.update(vm_hosts)
            most = max(most, len(relocating))
        for name in vm_hosts:
            if name != "ndj-dc01":
                with lock:
                    relocating.discard(name)
                kw["on_released"](name)  # its relocation task ended
        if "ndj-dc01" in vm_hosts:
            assert others_moved.wait(10), "the others waited for the long move"
            with lock:
                relocating.discard("ndj-dc01")
        with lock:
            ended.extend(vm_hosts)
            if set(ended) >= set(town_hall) - {"ndj-dc01", "ndj-dc02"}:  # all but dc01's launch
                others_moved.set()
        report = {name: {"status": "moved", "seconds": 1.0} for name in vm_hosts}
        result = PlaybookResult(playbook=playbook, status="successful", rc=0, duration_s=1.0, private_dir="",
                                result={"vms": report})  # fmt: skip
        return result, 0.0

    monkeypatch.setattr(vm_steps, "run_batch", run_batch)
    run = Run.create("wave", "707", 1, ["grenaa-raadhus"], dry_run=False, base=tmp_path)
    ctx = StepContext(LoadedPlan(free, PLAN, Inventory(PLAN.parent)), 1, run, {})
    migration = migrate_site_vms(ctx, "grenaa-raadhus", dry_run=False)
    assert {v.status for v in migration.vms.values()} == {"moved"}
    assert sorted(migration.vms) == sorted(town_hall)
    assert set(ended[-2:]) == {"ndj-dc01", "ndj-dc02"}  # the long one's launch ended last ...
    assert len(ended) == len(town_hall)  # ... after the others had moved beside it
    assert most == free.concurrency.per_datastore == 2
    assert migration.batches[0] == ["ndj-dc01", "ndj-dc02"]
    assert len(migration.batches) == len(town_hall) - 1  # after the first two, one at a time as slots freed


@pytest.mark.parametrize(("role", "task"), [("vm_migrate", "RELOCATE_TASK"), ("vm_rollback", "RESTORE_TASK")])
def test_the_task_whose_end_frees_a_vms_slots_is_the_roles_relocation(role: str, task: str) -> None:
    """run_pool frees a VM's slots when the task named RELOCATE_TASK (RESTORE_TASK in the rollback)
    ends; renamed in the role, slots would free only when the launch ends (the batch barrier back)
    without anything failing."""
    import yaml

    from overflyt.steps import vms as vm_steps

    name = getattr(vm_steps, task)
    tasks = yaml.safe_load((PLAN.parents[2] / "roles" / role / "tasks" / "main.yml").read_text())
    flat = [t for task in tasks for t in [task, *task.get("block", [])]]
    named = [t for t in flat if t.get("name") == name]
    assert len(named) == 1, [t.get("name") for t in flat]
    assert "overflyt.vsphere.vm_relocate" in named[0]


@pytest.mark.parametrize(
    ("role", "var"), [("vm_migrate", "__vm_migrate_launch"), ("vm_rollback", "__vm_rollback_batch")]
)
def test_the_roles_read_only_the_vms_of_their_launch(role: str, var: str) -> None:
    """Each read of vCenter in the migration's and the rollback's role is scoped to the VMs of the
    launch (estate_facts' ``vms``), not the whole datacenter: unscoped, every launch would read
    every VM of both datacenters again. That the expression names the right VMs, the lab's
    cutovers show (a VM missing from the read is refused as not found)."""
    import yaml

    home = PLAN.parents[2] / "roles" / role
    tasks = yaml.safe_load((home / "tasks" / "main.yml").read_text())
    flat = [t for task in tasks for t in [task, *task.get("block", []), *task.get("rescue", [])]]
    reads = [t["overflyt.vsphere.estate_facts"] for t in flat if "overflyt.vsphere.estate_facts" in t]
    assert len(reads) == 2
    assert all(read.get("vms") == "{{ " + var + " }}" for read in reads), reads
    scope = yaml.safe_load((home / "vars" / "main.yml").read_text())
    assert scope[var] == "{{ groups['vms'] | map('extract', hostvars, 'overflyt_vm_name') | list }}"


# -- the rollback: a pool too, dependencies reversed, past a failure and a cancel -------------------


def test_the_rollback_goes_back_as_a_pool_dependents_first_past_a_failure_and_a_cancel(
    plan: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rollback_site_vms with the vCenter read and the playbooks stood in for (what the role does is
    proven against the simulator in tests/lab/): the town hall's eight VMs all in the target. Every
    VM starts only once the VMs that depend on it have ended (ndj-dc01 last: the six others depend
    on it); a failed dependent (ndj-print01) stops nothing, so ndj-dc01 still goes back; a cancel
    requested before the rollback stops nothing either (the rollback runs shielded, and so does each
    launch's thread); no more VMs move at once than the plan's limits allow. The first launch's
    playbook does not end until the other dependents are back (their slots freed as each move
    ended): batch after batch would wait for it instead."""
    import threading

    from overflyt.ansible import cancel
    from overflyt.ansible.runner import PlaybookResult, TaskFailure
    from overflyt.providers.vsphere import Placement
    from overflyt.steps import vm_batches
    from overflyt.steps import vms as vm_steps

    monkeypatch.setattr(vm_batches, "COALESCE_S", 0.05)
    town_hall = [v for v in plan.vms_of_wave(1) if v.site == "grenaa-raadhus"]
    placements = {
        v.name: Placement(vm=v.name, moid=f"vm-{v.name}", datacenter="NDJ-DC", cluster="NDJ-Cluster-01",
                          host=v.host, datastore=v.datastore, folder="", portgroups=list(v.portgroups),
                          power="powered_on")
        for v in town_hall
    }  # fmt: skip
    in_target = target([host("mj-esx01")], [vm(v.name, "mj-esx01", 1024) for v in town_hall])
    monkeypatch.setattr(vm_steps, "_read_estate", lambda *a, **kw: (target([], []), in_target))
    dependents = [v.name for v in town_hall if "ndj-dc01" in v.depends_on]
    assert len(dependents) == 6
    lock = threading.Lock()
    others_back = threading.Event()
    events: list[tuple[str, str]] = []  # ("start" | "end", vm), in order
    moving: set[str] = set()
    most = 0
    shielded: list[bool] = []

    def run_batch(ctx: Any, playbook: str, step: str, vm_hosts: Any, **kw: Any) -> tuple[PlaybookResult, float]:
        nonlocal most
        assert playbook == "rollback_vms.yml"
        with lock:
            shielded.append(cancel.is_shielded())
            events.extend(("start", n) for n in vm_hosts)
            moving.update(vm_hosts)
            most = max(most, len(moving))
        for name in vm_hosts:
            with lock:
                moving.discard(name)
            kw["on_released"](name)  # its move back ended
        if "ndj-dhcp01" in vm_hosts:  # the first launch: its checks go on until the others are back
            assert others_back.wait(10), "the other VMs waited for the first launch to end"
        with lock:
            events.extend(("end", n) for n in vm_hosts)
            if {n for kind, n in events if kind == "end"} >= set(dependents) - {"ndj-dhcp01", "ndj-pki01"}:
                others_back.set()
        report = {n: {"status": "failed" if n == "ndj-print01" else "restored"} for n in vm_hosts}
        failures = [TaskFailure(host="ndj-print01", task="Move the VM back", message="the host refused it")]
        failed = "ndj-print01" in vm_hosts
        result = PlaybookResult(
            playbook=playbook, status="failed" if failed else "successful", rc=2 if failed else 0, duration_s=1.0,
            private_dir="", result={"vms": report}, failures=failures if failed else [],
        )  # fmt: skip
        return result, 0.0

    monkeypatch.setattr(vm_steps, "run_batch", run_batch)
    run = Run.create("rollback", "707", 1, ["grenaa-raadhus"], dry_run=False, base=tmp_path)
    ctx = StepContext(LoadedPlan(plan, PLAN, Inventory(PLAN.parent)), 1, run, {})
    cancel.request_cancel("signal SIGTERM")
    try:
        with cancel.shielded(), pytest.raises(vm_steps.VmRollbackFailed) as failed:
            rollback_site_vms(ctx, "grenaa-raadhus", placements)
    finally:
        cancel.reset_cancel()
    back = failed.value.rollback
    assert {n: v.status for n, v in back.vms.items()} == {
        n: "failed" if n == "ndj-print01" else "restored" for n in placements
    }
    assert str(failed.value).startswith("VMs of site grenaa-raadhus not back where they were: ndj-print01: ")
    assert sorted(n for launch in back.batches for n in launch) == sorted(placements)  # each once
    dc01_started = events.index(("start", "ndj-dc01"))
    assert all(events.index(("end", n)) < dc01_started for n in dependents), events
    assert shielded
    assert all(shielded)  # every launch's thread ran shielded
    assert most <= min(plan.concurrency.per_datastore, plan.concurrency.per_site, plan.concurrency.global_)
    assert back.batches[0] == ["ndj-dhcp01", "ndj-pki01"]  # ended last of the dependents ...
    assert events.index(("end", "ndj-dhcp01")) > events.index(("end", "ndj-mgmt01"))  # ... the others beside it


def test_returns_reverse_the_dependencies_within_the_set() -> None:
    from overflyt.planning.batches import Return, returns

    vms = [
        Return("dc", "h1", "ds1", ()),
        Return("app", "h2", "ds1", ("dc", "elsewhere")),
        Return("web", "h1", "ds2", ("app",)),
    ]
    assert returns(vms) == [
        Return("dc", "h1", "ds1", ("app",)),
        Return("app", "h2", "ds1", ("web",)),
        Return("web", "h1", "ds2", ()),
    ]
