"""The VM half of a site cutover against the lab's vCenter simulator: record where wave 1's town
hall VMs are, move them into the shared datacentre through Ansible batch by batch, prove it with
pyVmomi and with the simulator's own log of RelocateVM_Task requests (no VM moved twice), move
them back exactly; a dry run that changes nothing; one VM that cannot move (a VM of its name is
already in the target folder, as a failed earlier attempt leaves it) fails alone, what moved is
reported as moved, and the rollback restores everything and removes that leftover.

Every test leaves the lab as it found it (a safety net puts back by hand what a failing test left)."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from overflyt.plan import Plan, load_plan
from overflyt.plan.credentials import ResolvedCredential, resolve_all
from overflyt.providers import vsphere
from overflyt.record import Run
from overflyt.steps.vms import (
    Placement,
    VmMigrationFailed,
    migrate_site_vms,
    record_placements,
    rollback_site_vms,
)

from .labtools import find, source_vcenter, step_ctx, wait

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
PLAN_PATH = REPO / "inventories" / "norddjurs" / "plan.yml"
SITE = "grenaa-raadhus"
WAVE1 = ["ndj-dc01", "ndj-dc02", "ndj-dhcp01", "ndj-pki01", "ndj-radius01", "ndj-wsus01", "ndj-mgmt01", "ndj-print01"]
BATCHES = [WAVE1[0:2], WAVE1[2:4], WAVE1[4:6], WAVE1[6:8]]
TARGET_FOLDER = "Kommuner/707-Norddjurs"
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def ctx(lab: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in lab["env"].items():
            mp.setenv(name, value)
        mp.setenv("OVERFLYT_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        plan = load_plan(PLAN_PATH)
        yield {"plan": plan, "credentials": resolve_all(plan, PLAN_PATH.parent), "lab": lab}


@pytest.fixture(scope="module")
def si(lab: dict[str, Any]) -> Iterator[Any]:
    with source_vcenter(lab) as conn:
        yield conn


@pytest.fixture(scope="module", autouse=True)
def report_timings() -> Iterator[None]:
    yield
    if TIMINGS:
        print("\nvmops timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMINGS.items()))


def new_run(dry_run: bool = False) -> Run:
    return Run.create("wave", "707", 1, [SITE], dry_run=dry_run)


def credentials(ctx: dict[str, Any]) -> dict[str, ResolvedCredential]:
    return dict(ctx["credentials"])


# -- what the peer says -----------------------------------------------------------------------------


def folder_path(entity: Any) -> str:
    parts: list[str] = []
    parent = entity.parent
    while not isinstance(parent.parent, vim.Datacenter):
        parts.append(parent.name)
        parent = parent.parent
    return "/".join(reversed(parts))


def datacenter_of(entity: Any) -> str:
    parent = entity.parent
    while not isinstance(parent, vim.Datacenter):
        parent = parent.parent
    return str(parent.name)


def vms_by_name(si: Any) -> dict[str, list[Any]]:
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
    try:
        found: dict[str, list[Any]] = {}
        for vm in view.view:
            found.setdefault(vm.name, []).append(vm)
        return found
    finally:
        view.Destroy()


def where(vm: Any) -> tuple[Any, ...]:
    """A VM's placement as pyVmomi reads it, independently of overflyt's provider."""
    nics = sorted((d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)),
                  key=lambda d: d.key)  # fmt: skip
    pg_names = {pg.key: pg.name for pg in vm.network if isinstance(pg, vim.dvs.DistributedVirtualPortgroup)}
    return (
        datacenter_of(vm),
        vm.runtime.host.parent.name,
        vm.runtime.host.name,
        tuple(ds.name for ds in vm.datastore),
        folder_path(vm),
        tuple(pg_names.get(n.backing.port.portgroupKey, n.backing.port.portgroupKey) for n in nics),
        vm.runtime.powerState,
    )


def snapshot(si: Any) -> list[tuple[Any, ...]]:
    """Every VM of the simulator (both datacenters): moid, name and placement."""
    return sorted((vm._moId, name, *where(vm)) for name, vms in vms_by_name(si).items() for vm in vms)


def relocations(lab: dict[str, Any]) -> list[str]:
    """Names of the VMs of every RelocateVM_Task the simulator received, in order."""
    text = (Path(lab["state_dir"]) / "vcsim" / "vcsim.log").read_text(errors="replace")
    return re.findall(r"ofl-vcsim: relocate vm=\S+ name=(\S+) ", text)


def in_target_folder(si: Any) -> list[str]:
    folder = si.content.searchIndex.FindByInventoryPath(f"MJ-DC1/vm/{TARGET_FOLDER}")
    return sorted(child.name for child in folder.childEntity)


def put_back_by_hand(lab: dict[str, Any], si: Any, placements: dict[str, Placement], leftovers: list[Any]) -> None:
    """Safety net: whatever a failing test left moved goes back through the provider itself."""
    for leftover in leftovers:
        try:
            if leftover.runtime.powerState == "poweredOn":
                wait(leftover.PowerOffVM_Task())
            wait(leftover.Destroy_Task())
        except vim.fault.ManagedObjectNotFound:
            pass
    v = next(x for x in lab["vcenters"] if x["name"] == "ndj-vcenter")
    host, port = v["url"].removeprefix("https://").removesuffix("/sdk").split(":")
    endpoint = vsphere.VCenterConnection(
        name="ndj-vcenter", hostname=host, port=int(port), username=v["user"], password=v["password"],
        ca_file=v["ca_file"],
    )  # fmt: skip
    with vsphere.connect(endpoint) as session:
        for name, placement in placements.items():
            now = vsphere.vm_placement(session, name)
            if not now.same_place(placement):
                vsphere.relocate_vm(session, name, now.datacenter, vsphere.RelocationTarget.from_placement(placement))
            vsphere.set_power(session, name, placement.power, graceful=False)


# -- the tests ------------------------------------------------------------------------------------


def test_migrate_the_town_hall_and_roll_it_back_exactly(ctx: dict[str, Any], si: Any) -> None:
    plan: Plan = ctx["plan"]
    lab = ctx["lab"]
    before = snapshot(si)
    seen = len(relocations(lab))
    run = new_run()
    # One VM of the site is off: it must stay off through the move and the rollback.
    mgmt = vms_by_name(si)["ndj-mgmt01"][0]
    wait(mgmt.PowerOffVM_Task())
    placements: dict[str, Placement] = {}
    try:
        started = time.monotonic()
        placements = record_placements(step_ctx(plan, PLAN_PATH, 1, run, credentials(ctx)), SITE)
        TIMINGS["record 8"] = time.monotonic() - started
        assert sorted(placements) == sorted(WAVE1)
        for vm in plan.vms_of_site(SITE):
            p = placements[vm.name]
            power = "powered_off" if vm.name == "ndj-mgmt01" else vm.power.value
            assert (p.datacenter, p.cluster, p.host, p.datastore, p.folder, p.portgroups, p.power) == (
                "NDJ-DC", "NDJ-Cluster-01", vm.host, vm.datastore, "Servere", vm.portgroups, power,
            )  # fmt: skip
        storage = {m.source: m.target for m in plan.storage_map}
        migrate_and_roll_back(ctx, si, plan, run, placements, storage, seen)
    finally:
        put_back_by_hand(lab, si, placements, [])
        if mgmt.runtime.powerState != "poweredOn":
            wait(mgmt.PowerOnVM_Task())
    assert snapshot(si) == before
    # No secret reached the run record (inventories, runner artifacts, job events, results).
    passwords = [v["password"] for v in lab["vcenters"]]
    files = [f for f in run.dir.rglob("*") if f.is_file()]
    assert len(files) > 50
    assert [f for f in files if any(pw in f.read_text(errors="replace") for pw in passwords)] == []


def went_back_dependents_first(plan: Plan, launches: list[list[str]], vms: list[str]) -> None:
    """The rollback's launches (a pool, as the migration's): each of ``vms`` once, no launch over the
    plan's limits, and each VM in a later launch than every VM of the set that depends on it."""
    assert sorted(n for launch in launches for n in launch) == sorted(vms), launches
    limit = min(plan.concurrency.global_, plan.concurrency.per_site, plan.concurrency.per_datastore)
    assert all(len(launch) <= limit for launch in launches), launches
    number = {n: i for i, launch in enumerate(launches) for n in launch}
    for vm in plan.vms:
        for dependency in vm.depends_on:
            if vm.name in number and dependency in number:
                assert number[vm.name] < number[dependency], (vm.name, dependency, launches)


def migrate_and_roll_back(
    ctx: dict[str, Any], si: Any, plan: Plan, run: Run, placements: dict[str, Placement],
    storage: dict[str, str], seen: int,
) -> None:  # fmt: skip
    lab = ctx["lab"]
    before = snapshot(si)
    try:
        started = time.monotonic()
        migration = migrate_site_vms(step_ctx(plan, PLAN_PATH, 1, run, credentials(ctx)), SITE, dry_run=False)
        TIMINGS["migrate 8"] = time.monotonic() - started
        assert {n: v.status for n, v in migration.vms.items()} == dict.fromkeys(WAVE1, "moved")
        assert migration.batches == BATCHES
        assert migration.moved == WAVE1
        found = vms_by_name(si)
        hosts: Counter[str] = Counter()
        for vm in plan.vms_of_site(SITE):
            [it] = found[vm.name]
            dc, cluster, host, datastores, folder, portgroups, power = where(it)
            assert (dc, cluster, datastores, folder, portgroups, power) == (
                "MJ-DC1", "MJ-Kommuner-01", (storage[vm.datastore],), TARGET_FOLDER, ("NDJ-707-Faelles",),
                "poweredOff" if vm.name == "ndj-mgmt01" else "poweredOn",
            ), vm.name  # fmt: skip
            hosts[host] += 1
            moved = migration.vms[vm.name]
            assert moved.before == placements[vm.name]
            assert moved.after is not None
            assert (moved.after.host, moved.after.folder, moved.after.portgroups) == (
                host, TARGET_FOLDER, ["NDJ-707-Faelles"],
            )  # fmt: skip
            assert moved.seconds > 0
        # Spread by allocated memory over the cluster's four hosts: two VMs each.
        assert hosts == {"mj-esx01": 2, "mj-esx02": 2, "mj-esx03": 2, "mj-esx04": 2}

        started = time.monotonic()
        again = migrate_site_vms(step_ctx(plan, PLAN_PATH, 1, run, credentials(ctx)), SITE, dry_run=False)
        TIMINGS["migrate 8 again (unchanged)"] = time.monotonic() - started
        assert {n: v.status for n, v in again.vms.items()} == dict.fromkeys(WAVE1, "unchanged")
        assert again.batches == [WAVE1]  # nothing to move: checked together
        # The simulator saw exactly one relocation per VM.
        assert Counter(relocations(lab)[seen:]) == Counter(WAVE1)
    finally:
        started = time.monotonic()
        back = rollback_site_vms(step_ctx(plan, PLAN_PATH, 1, run, credentials(ctx)), SITE, placements)
        TIMINGS["rollback 8"] = time.monotonic() - started
    assert {n: v.status for n, v in back.vms.items()} == dict.fromkeys(WAVE1, "restored")
    went_back_dependents_first(plan, back.batches, WAVE1)
    assert all(v.after == placements[n] for n, v in back.vms.items())
    assert snapshot(si) == before
    assert in_target_folder(si) == []
    assert Counter(relocations(lab)[seen:]) == Counter(WAVE1 * 2)

    again_back = rollback_site_vms(step_ctx(plan, PLAN_PATH, 1, run, credentials(ctx)), SITE, placements)
    assert {n: v.status for n, v in again_back.vms.items()} == dict.fromkeys(WAVE1, "unchanged")
    assert Counter(relocations(lab)[seen:]) == Counter(WAVE1 * 2)


def test_dry_run_reports_every_move_and_changes_nothing(ctx: dict[str, Any], si: Any) -> None:
    plan: Plan = ctx["plan"]
    lab = ctx["lab"]
    before = snapshot(si)
    seen = len(relocations(lab))
    started = time.monotonic()
    migration = migrate_site_vms(
        step_ctx(plan, PLAN_PATH, 1, new_run(dry_run=True), credentials(ctx)), SITE, dry_run=True
    )
    TIMINGS["dry run 8"] = time.monotonic() - started
    assert snapshot(si) == before
    assert relocations(lab)[seen:] == []
    assert {n: v.status for n, v in migration.vms.items()} == dict.fromkeys(WAVE1, "would_move")
    assert migration.batches == [WAVE1]
    for vm in plan.vms_of_site(SITE):
        moved = migration.vms[vm.name]
        assert moved.before is not None
        assert moved.after is not None
        assert (moved.before.datacenter, moved.before.host, moved.before.folder) == ("NDJ-DC", vm.host, "Servere")
        assert (moved.after.datacenter, moved.after.cluster, moved.after.datastore, moved.after.folder) == (
            "MJ-DC1", "MJ-Kommuner-01", "mj-ds-gold-01", TARGET_FOLDER,
        )  # fmt: skip
        assert moved.after.portgroups == ["NDJ-707-Faelles"]
        assert moved.after.host.startswith("mj-esx0")


def test_a_vm_that_cannot_move_fails_alone_and_the_rollback_restores_everything(ctx: dict[str, Any], si: Any) -> None:
    plan: Plan = ctx["plan"]
    lab = ctx["lab"]
    before = snapshot(si)
    seen = len(relocations(lab))
    run = new_run()
    placements = record_placements(step_ctx(plan, PLAN_PATH, 1, run, credentials(ctx)), SITE)
    # A copy of ndj-pki01, powered off, in the target folder: what a failed earlier attempt leaves.
    # A real vCenter refuses to move a VM onto a name in use; vm_migrate refuses it before trying.
    folder = si.content.searchIndex.FindByInventoryPath(f"MJ-DC1/vm/{TARGET_FOLDER}")
    pool = find(si, vim.ClusterComputeResource, "MJ-Kommuner-01").resourcePool
    spec = vim.vm.ConfigSpec(
        name="ndj-pki01", numCPUs=1, memoryMB=256, guestId="otherGuest",
        files=vim.vm.FileInfo(vmPathName="[mj-ds-gold-01]"),
    )  # fmt: skip
    leftover = wait(folder.CreateVM_Task(config=spec, pool=pool))
    real = placements["ndj-pki01"].moid
    try:
        with pytest.raises(VmMigrationFailed) as caught:
            migrate_site_vms(step_ctx(plan, PLAN_PATH, 1, run, credentials(ctx)), SITE, dry_run=False)
        failed = caught.value
        reason = (
            f"vm ndj-pki01: datacenter MJ-DC1 already holds a VM of that name (folder {TARGET_FOLDER}, powered_off, "
            f"{leftover._moId}) while the VM is still in NDJ-DC ({real}): not moving it onto a name clash (a leftover "
            "of an earlier attempt? a rollback removes provable leftovers)"
        )
        assert str(failed) == (
            f"migration of the VMs of site {SITE} failed: ndj-pki01: {reason} "
            "(moved before the failure: ndj-dc01, ndj-dc02, ndj-dhcp01)"
        )
        assert failed.failed_hosts == ("ndj-pki01",)
        statuses = {n: v.status for n, v in failed.migration.vms.items()}
        assert statuses == {
            "ndj-dc01": "moved", "ndj-dc02": "moved", "ndj-dhcp01": "moved", "ndj-pki01": "failed",
            "ndj-radius01": "skipped", "ndj-wsus01": "skipped", "ndj-mgmt01": "skipped", "ndj-print01": "skipped",
        }  # fmt: skip
        assert failed.migration.vms["ndj-pki01"].error == reason
        assert failed.migration.vms["ndj-radius01"].error == "not started: batch 2 failed"
        assert failed.migration.moved == ["ndj-dc01", "ndj-dc02", "ndj-dhcp01"]
        # The peer agrees: three moved (once each), the rest did not.
        assert Counter(relocations(lab)[seen:]) == Counter(["ndj-dc01", "ndj-dc02", "ndj-dhcp01"])
        found = vms_by_name(si)
        assert {n: datacenter_of(found[n][0]) for n in ("ndj-dc01", "ndj-dhcp01", "ndj-radius01")} == {
            "ndj-dc01": "MJ-DC1", "ndj-dhcp01": "MJ-DC1", "ndj-radius01": "NDJ-DC",
        }  # fmt: skip
        assert sorted(datacenter_of(vm) for vm in found["ndj-pki01"]) == ["MJ-DC1", "NDJ-DC"]

        # Someone powers ndj-dc02 off in the target meanwhile: the rollback powers it on again.
        wait(found["ndj-dc02"][0].PowerOffVM_Task())
        back = rollback_site_vms(step_ctx(plan, PLAN_PATH, 1, run, credentials(ctx)), SITE, placements)
        assert back.vms["ndj-dc02"].after is not None
        assert back.vms["ndj-dc02"].after.power == "powered_on"
        assert {n: (v.status, v.leftover_removed) for n, v in back.vms.items()} == {
            "ndj-dc01": ("restored", False), "ndj-dc02": ("restored", False), "ndj-dhcp01": ("restored", False),
            "ndj-pki01": ("restored", True), "ndj-radius01": ("unchanged", False),
            "ndj-wsus01": ("unchanged", False), "ndj-mgmt01": ("unchanged", False),
            "ndj-print01": ("unchanged", False),
        }  # fmt: skip
        # VMs already in place checked in a launch of their own, the others back dependents first.
        assert back.batches[0] == WAVE1[4:]
        went_back_dependents_first(plan, back.batches[1:], ["ndj-dc01", "ndj-dc02", "ndj-dhcp01", "ndj-pki01"])
    finally:
        put_back_by_hand(lab, si, placements, [vm for vm in vms_by_name(si).get("ndj-pki01", []) if vm._moId != real])
    assert snapshot(si) == before
    assert in_target_folder(si) == []
    assert Counter(relocations(lab)[seen:]) == Counter(["ndj-dc01", "ndj-dc02", "ndj-dhcp01"] * 2)
