"""The VM half of a site cutover: record where the site's VMs are, move them into the shared
datacentre as a pool, and put them back exactly where they were.

Each VM is a host of the generated inventory's group ``vms`` (``ansible_connection: local``: its
tasks run on the controller's python), carrying its desired placement as ``overflyt_vm_*``
variables, so Ansible's forks move the VMs of one playbook run at once. The migration is a pool
(:func:`overflyt.steps.vm_batches.run_pool`, :class:`overflyt.planning.batches.Pool`): VMs start, the
ones that may start at the same moment together in one playbook run (a *launch*), as soon as the
plan's concurrency limits have room and what they ``depends_on`` has moved and been verified; a
VM's slots free when its relocation task ends, so one long move holds back only its own slots
(and the VMs started in its launch, which end with it).

* :func:`record_placements` — read-only (``playbooks/record_placements.yml``, role ``vm_facts``):
  each VM's placement in the source, before anything moves;
* :func:`migrate_site_vms` — ``playbooks/migrate_vms.yml`` (role ``vm_migrate``) per launch; target
  host chosen here (least memory allocated, ties by name; a VM already on an eligible target host
  keeps it), datastore through ``storage_map``, folder ``target.vm_folder``, portgroups through
  ``network_map``. A dry run is one check-mode run over every VM. A failure starts no further
  launch (those under way end) and raises :class:`VmMigrationFailed` (a :class:`PlaybookFailed`) naming the
  failed VMs, carrying the per-VM results so the orchestrator knows what moved;
* :func:`rollback_site_vms` — ``playbooks/rollback_vms.yml`` (role ``vm_rollback``) per launch, as
  a pool too, the dependencies reversed (a VM goes back after the VMs that depend on it), every VM
  even after a failure (put back as much as possible); raises :class:`VmRollbackFailed` (a
  :class:`RollbackFailed`) naming what is not back.

VMs already where a run wants them (read just before it) need no move, so they are checked by the
roles together in one launch of their own, without limits, beside the moves.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from overflyt.ansible.reasons import explain
from overflyt.ansible.step import StepContext, failure_text, run_step
from overflyt.errors import MigrationStepFailed, PlaybookFailed, ProviderUnreachable, UsageError
from overflyt.plan.ahead import find_ahead
from overflyt.planning.batches import Return, returns
from overflyt.precheck.facts import VCenterFacts, VMFacts
from overflyt.providers.vsphere import Placement
from overflyt.providers.vsphere.placement import placement_of
from overflyt.steps import slots
from overflyt.steps.vm_batches import Launched, batches, choose_hosts, run_batch, run_pool, schedule_vms, site_vms
from overflyt.steps.vm_batches import loads as vm_loads
from overflyt.steps.vm_results import (
    VmMigration,
    VmMigrationFailed,
    VmMove,
    VmRestore,
    VmRollback,
    VmRollbackFailed,
    read_move,
    read_restore,
)

log = logging.getLogger(__name__)


__all__ = [
    "Placement",
    "VmMigration",
    "VmMigrationFailed",
    "VmMove",
    "VmRestore",
    "VmRollback",
    "VmRollbackFailed",
    "batches",
    "choose_hosts",
    "migrate_site_vms",
    "record_placements",
    "rollback_site_vms",
    "site_vms",
]


# -- which VMs, in which batches ------------------------------------------------------------------


# -- reading the estate ---------------------------------------------------------------------------


def _read_estate(
    ctx: StepContext, step: str, vms: Sequence[str], *, timeout_s: int = 600
) -> tuple[VCenterFacts, VCenterFacts]:
    """Both vCenters' facts of the plan's source and target datacenter, read-only: in the source
    only the VMs named ``vms``; the target whole (:func:`choose_hosts` weighs the memory its VMs
    hold)."""
    plan = ctx.plan
    datacenters = {"source": [plan.source.datacenter], "target": [plan.target.datacenter]}
    scope = {"vm_facts_datacenters": datacenters, "vm_facts_vms": {"source": sorted(set(vms))}}
    result = run_step(
        ctx, "record_placements.yml", step, controller_vars=scope, dry_run=True, timeout_s=timeout_s,
        devices_home=False,
    )  # fmt: skip
    if not result.ok:
        raise PlaybookFailed(f"reading the vCenters failed ({result.status}): {failure_text(result)}")
    sides: dict[str, Any] = dict(result.result.get("vcenters") or {})
    facts: list[VCenterFacts] = []
    for side, endpoint in (("source", plan.source.vcenter), ("target", plan.target.vcenter)):
        data = sides.get(side)
        if not isinstance(data, dict):
            raise PlaybookFailed(f"reading the vCenters: {side} vCenter {endpoint.name} reported nothing")
        read = VCenterFacts.model_validate(data)
        if not read.reachable or read.login_failed or read.error:
            raise ProviderUnreachable(explain(read.error or f"vCenter {endpoint.name} ({endpoint.url}): not reachable"))
        facts.append(read)
    return facts[0], facts[1]


def _found(facts: VCenterFacts, name: str, datacenter: str) -> list[VMFacts]:
    return [v for v in facts.vms.values() if v.name == name and v.datacenter == datacenter]


# -- record ---------------------------------------------------------------------------------------


def record_placements(ctx: StepContext, site_id: str, *, timeout_s: int = 600) -> dict[str, Placement]:
    """Where each VM the site's cutover moves is now, in the source — read-only, before anything
    moves; what :func:`rollback_site_vms` puts them back to. Written to the run record as
    ``placements-<site>.json``. Raises MigrationStepFailed when a VM is not (exactly once) in
    the source datacenter: a placement read anywhere else could not be rolled back to."""
    return read_placements(ctx, site_id, timeout_s=timeout_s)[0]


def read_placements(
    ctx: StepContext, site_id: str, *, timeout_s: int = 600
) -> tuple[dict[str, Placement], tuple[VCenterFacts, VCenterFacts] | None]:
    """:func:`record_placements`, and the vCenters' facts it read them from (None when the site
    moves no VM): a migration that starts right after may use them rather than read again."""
    plan, run = ctx.plan, ctx.run
    vms = site_vms(plan, ctx.wave, site_id)
    if not vms:
        return {}, None
    source, target = _read_estate(ctx, f"vm-placements-{site_id}", [vm.name for vm in vms], timeout_s=timeout_s)
    src_dc, tgt_dc = plan.source.datacenter, plan.target.datacenter
    placements: dict[str, Placement] = {}
    problems: list[str] = []
    for vm in vms:
        found = _found(source, vm.name, src_dc)
        if len(found) == 1 and found[0].cluster is not None:
            placements[vm.name] = placement_of(found[0])
        elif len(found) == 1:
            problems.append(f"vm {vm.name}: its host {found[0].host} in {src_dc} is in no cluster")
        elif found:
            problems.append(f"vm {vm.name}: {len(found)} VMs of that name in {src_dc}")
        else:
            moved = _found(target, vm.name, tgt_dc)
            where = f" (it is in {tgt_dc}, folder {moved[0].folder or '/'}: moved already?)" if moved else ""
            problems.append(f"vm {vm.name}: not in source datacenter {src_dc}{where}")
    if problems:
        raise MigrationStepFailed(
            f"cannot record where the VMs of site {site_id} are:\n" + "\n".join(f"  {p}" for p in problems)
        )
    run.write(
        f"placements-{site_id}.json",
        json.dumps({n: p.model_dump(mode="json") for n, p in placements.items()}, indent=2) + "\n",
    )
    log.info("site %s: recorded the placements of %d VMs", site_id, len(placements))
    return placements, (source, target)


# -- migrate --------------------------------------------------------------------------------------


def migrate_site_vms(
    ctx: StepContext,
    site_id: str,
    *,
    vms: list[str] | None = None,
    dry_run: bool,
    timeout_s: int = 3600,
    read: tuple[VCenterFacts, VCenterFacts] | None = None,
) -> VmMigration:
    """Move the site's VMs (or ``vms`` of them) into the shared datacentre, as a pool.

    ``read``: both vCenters' facts read just before (by :func:`read_placements` in the step
    before), used instead of reading them again; each launch still reads before it moves.

    ``dry_run``: one ``--check --diff`` run over every VM reporting ``would_move`` / ``unchanged``;
    nothing changes. Otherwise VMs start as the pool lets them (:func:`run_pool`); once a VM fails
    (or the run is canceled, or the wave's window tells moves to stop) no further launch starts, the
    VMs not started are skipped, and VmMigrationFailed names the failed VMs and why, after the
    result is written to the run record (``vm-migration-<site>.json``: ``batches`` are the launches
    in the order they started, the VMs not started as a last one). ``timeout_s`` bounds the whole
    migration."""
    plan, wave, run = ctx.plan, ctx.wave, ctx.run
    started = time.monotonic()
    deadline = started + timeout_s
    chosen = site_vms(plan, wave, site_id, vms)
    names = [vm.name for vm in chosen]
    by_name = {vm.name: vm for vm in chosen}
    if not chosen:
        return VmMigration(site=site_id, wave=wave, dry_run=dry_run, duration_s=0.0, batches=[], vms={})
    source, target = read or _read_estate(ctx, f"vm-read-{site_id}", names)
    src_dc, tgt_dc = plan.source.datacenter, plan.target.datacenter
    storage = {m.source: m.target for m in plan.storage_map}
    network = {m.source: m.target for m in plan.network_map}

    in_target: dict[str, VMFacts] = {}
    for name in names:
        there = _found(target, name, tgt_dc)
        if not _found(source, name, src_dc) and len(there) == 1:
            in_target[name] = there[0]
    order = schedule_vms(plan, chosen)
    hosts = choose_hosts(plan, [n for batch in order for n in batch], target, {n: v.host for n, v in in_target.items()})
    wanted: dict[str, dict[str, Any]] = {}
    unmapped: list[str] = []
    for name in names:
        vm = by_name[name]
        now = _found(source, name, src_dc)
        current = now[0].datastores[0] if now and now[0].datastores else vm.datastore
        datastore = storage.get(current) or storage.get(vm.datastore)
        if datastore is None:
            unmapped.append(f"vm {name}: datastore {current} has no storage_map entry")
            continue
        wanted[name] = {
            "datacenter": tgt_dc,
            "cluster": plan.target.cluster,
            "host": hosts[name],
            "datastore": datastore,
            "folder": plan.target.vm_folder,
            "portgroups": network,
        }
    if unmapped:
        raise MigrationStepFailed(f"site {site_id}: cannot move\n" + "\n".join(f"  {u}" for u in unmapped))

    def settled(name: str) -> bool:
        vm, want = in_target.get(name), wanted[name]
        if vm is None:
            return False
        pgs = [network.get(p, p) for p in vm.portgroups]
        return (vm.cluster, vm.host, vm.datastores[:1], vm.folder, vm.portgroups) == (
            want["cluster"],
            want["host"],
            [want["datastore"]],
            want["folder"],
            pgs,
        )

    tools = {vm.name: vm.tools.value for vm in chosen}

    def launch(number: int, batch: list[str], on_released: Callable[[str], None] | None) -> Launched[VmMove]:
        """The VMs of ``batch`` through the migrate playbook, together, as launch ``number``."""
        vm_hosts = {
            name: {
                "overflyt_vm_source_datacenter": src_dc,
                "overflyt_vm_target": wanted[name],
                "overflyt_vm_tools": tools[name],
            }
            for name in batch
        }
        loads: dict[str, set[tuple[str, int]]] = {}
        for name in (n for n in batch if not settled(n)):
            here = _found(source, name, src_dc)
            loads[name] = vm_loads(
                plan,
                host=here[0].host if here else by_name[name].host,
                datastores=[here[0].datastores[0] if here and here[0].datastores else by_name[name].datastore],
                target_datastore=wanted[name]["datastore"],
            )
        left = int(deadline - time.monotonic())
        try:
            result, waited = run_batch(
                ctx, "migrate_vms.yml", f"vm-migrate-{site_id}-{number}", vm_hosts, site_id=site_id, loads=loads,
                dry_run=dry_run, timeout_s=left, released_by=RELOCATE_TASK, on_released=on_released,
            )  # fmt: skip
        except slots.SlotsUnavailable as exc:
            failed = {n: VmMove(vm=n, status="failed", batch=number, error=f"not started: {exc}") for n in batch}
            return Launched(failed, 0.0)
        return Launched({name: read_move(name, number, result) for name in batch}, waited)

    if dry_run:
        log.info("site %s: checking %d VMs: %s", site_id, len(names), ", ".join(names))
        checked = launch(1, names, None)
        plan_batches, results, slot_waits = [names], dict(checked.vms), dict[int, float]()
    else:
        done = [n for n in names if settled(n)]
        moving = [vm for vm in chosen if vm.name not in done]
        plan_batches, results, slot_waits = run_pool(
            ctx, site_id, done, moving, launch, deadline, timeout_s, result_type=VmMove
        )
    migration = VmMigration(
        site=site_id,
        wave=wave,
        dry_run=dry_run,
        duration_s=round(time.monotonic() - started, 3),
        batches=plan_batches,
        slot_waits_s=slot_waits,
        vms={name: results[name] for name in names},
    )
    run.write(f"vm-migration-{site_id}.json", migration.model_dump_json(indent=2) + "\n")
    # what failed — or, when nothing failed, what was not started (the window, the time limit): either
    # fails the step, so the site is rolled back rather than reported done with VMs left behind
    not_moved = migration.failed or [n for n, v in migration.vms.items() if v.status == "skipped"]
    if not_moved:
        reasons = "; ".join(f"{n}: {migration.vms[n].error}" for n in not_moved)
        moved = ", ".join(migration.moved) or "none"
        raise VmMigrationFailed(
            f"migration of the VMs of site {site_id} failed: {reasons} (moved before the failure: {moved})",
            migration,
        )
    return migration


RELOCATE_TASK = "Move the VM into the shared datacentre"  # roles/vm_migrate: its end frees the VM's slots
RESTORE_TASK = "Move the VM back to its recorded placement"  # roles/vm_rollback: the same
# -- rollback -------------------------------------------------------------------------------------


def rollback_site_vms(
    ctx: StepContext,
    site_id: str,
    placements: Mapping[str, Placement],
    *,
    dry_run: bool = False,
    timeout_s: int = 3600,
) -> VmRollback:
    """Put every VM of ``placements`` back at its recorded placement and power state, and remove
    provable leftovers from the target folder.

    The VMs go back as a pool (:func:`run_pool` over :func:`overflyt.planning.batches.returns`):
    a VM starts once every VM of the set that depends on it is back (dependents first) and the
    plan's limits have room, its slots free when its move back ends, so one long move holds back
    nothing but its own slots. A failed VM stops nothing: the others, and what it depends on, still
    go back (put back as much as possible); only the time limit stops new launches. VMs already
    exactly where they were recorded (read just before) are only checked, in a launch of their own.
    Raises VmRollbackFailed naming every VM that is not back (a human must act); the result is
    written to the run record (``vm-rollback-<site>.json``: ``batches`` are the launches in the
    order they started) first."""
    plan = ctx.plan
    started = time.monotonic()
    deadline = started + timeout_s
    if site_id not in {s.id for s in plan.sites} and find_ahead(plan, site_id) is None:
        raise UsageError(f"site {site_id!r}: not in the plan")
    if not placements:
        return VmRollback(site=site_id, dry_run=dry_run, duration_s=0.0, batches=[], vms={})
    source, target = _read_estate(ctx, f"vm-read-{site_id}", list(placements))
    tgt_dc = plan.target.datacenter
    known = [vm for vm in plan.vms if vm.name in placements]
    names = [vm.name for vm in known] + sorted(set(placements) - {vm.name for vm in known})
    depends = {vm.name: vm.depends_on for vm in known}

    def settled(name: str) -> bool:
        want = placements[name]
        here = _found(source, name, want.datacenter)
        if len(here) != 1 or _found(target, name, tgt_dc):
            return False
        now = placement_of(here[0])
        return now.same_place(want) and now.power == want.power

    def launch(number: int, batch: list[str], on_released: Callable[[str], None] | None) -> Launched[VmRestore]:
        """The VMs of ``batch`` back through the rollback playbook, together, as launch ``number``."""
        vm_hosts = {
            name: {
                "overflyt_vm_placement": placements[name].model_dump(mode="json"),
                "overflyt_vm_target_datacenter": tgt_dc,
                "overflyt_vm_target_folder": plan.target.vm_folder,
            }
            for name in batch
        }
        loads = {}
        for name in (n for n in batch if not settled(n)):
            there = _found(target, name, tgt_dc)
            now = there[0].datastores[:1] if there and there[0].datastores else []
            want = placements[name]
            loads[name] = vm_loads(
                plan, host=want.host, datastores=[want.datastore], target_datastore=now[0] if now else None
            )
        left = int(deadline - time.monotonic())
        try:
            result, waited = run_batch(
                ctx, "rollback_vms.yml", f"vm-rollback-{site_id}-{number}", vm_hosts, site_id=site_id, loads=loads,
                dry_run=dry_run, timeout_s=left, released_by=RESTORE_TASK, on_released=on_released,
            )  # fmt: skip
        except slots.SlotsUnavailable as exc:
            skipped = {n: VmRestore(vm=n, status="skipped", batch=number, error=f"not started: {exc}") for n in batch}
            return Launched(skipped, 0.0)
        return Launched({name: read_restore(name, number, result) for name in batch}, waited)

    if dry_run:
        log.info("site %s: checking the rollback of %d VMs: %s", site_id, len(names), ", ".join(names))
        plan_batches, results = [names], dict(launch(1, names, None).vms)
    else:
        done = [n for n in names if settled(n)]
        going = [Return(n, placements[n].host, placements[n].datastore, tuple(depends.get(n, ()))) for n in names]
        going = [vm for vm in going if vm.name not in done]
        plan_batches, results, _ = run_pool(
            ctx, site_id, done, returns(going), launch, deadline, timeout_s, result_type=VmRestore, rollback=True
        )
    rollback = VmRollback(
        site=site_id,
        dry_run=dry_run,
        duration_s=round(time.monotonic() - started, 3),
        batches=plan_batches,
        vms={name: results[name] for name in names},
    )
    ctx.run.write(f"vm-rollback-{site_id}.json", rollback.model_dump_json(indent=2) + "\n")
    if rollback.failed:
        reasons = "; ".join(f"{n}: {rollback.vms[n].error}" for n in rollback.failed)
        raise VmRollbackFailed(f"VMs of site {site_id} not back where they were: {reasons}", rollback)
    return rollback


# -- helpers --------------------------------------------------------------------------------------
