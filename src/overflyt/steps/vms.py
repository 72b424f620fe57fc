"""The VM half of a site cutover: record where the site's VMs are, move them into the shared
datacentre batch by batch, and put them back exactly where they were.

Each VM is a host of the generated inventory's group ``vms`` (``ansible_connection: local``: its
tasks run on the controller's python), carrying its desired placement as ``overflyt_vm_*``
variables, so Ansible's forks move the VMs of a batch at once. :func:`batches` cuts a site's VMs
into batches that respect the plan's concurrency limits and ``depends_on`` order; one playbook run
per batch (forks = batch size) is what enforces them, because Ansible's ``serial`` cannot come
from the inventory and a batch must end before the next starts anyway (a dependent moves only
after what it depends on has moved and been verified).

* :func:`record_placements` — read-only (``playbooks/record_placements.yml``, role ``vm_facts``):
  each VM's placement in the source, before anything moves;
* :func:`migrate_site_vms` — ``playbooks/migrate_vms.yml`` (role ``vm_migrate``) per batch; target
  host chosen here (least memory allocated, ties by name; a VM already on an eligible target host
  keeps it), datastore through ``storage_map``, folder ``target.vm_folder``, portgroups through
  ``network_map``. A dry run is one check-mode run over every VM. A failure stops the batches
  after the failed one and raises :class:`VmMigrationFailed` (a :class:`PlaybookFailed`) naming the
  failed VMs, carrying the per-VM results so the orchestrator knows what moved;
* :func:`rollback_site_vms` — ``playbooks/rollback_vms.yml`` (role ``vm_rollback``) per batch, in
  the reverse of the migration's order, every batch even after a failure (put back as much as
  possible); raises :class:`VmRollbackFailed` (a :class:`RollbackFailed`) naming what is not back.

VMs already where a run wants them (read just before it) need no move, so they are checked by the
roles together in one batch, without limits, instead of in the moving batches.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from overflyt.ansible.inventory import build_inventory
from overflyt.ansible.runner import AnsibleEvent, PlaybookResult, run_playbook
from overflyt.errors import MigrationStepFailed, PlaybookFailed, ProviderUnreachable, RollbackFailed, UsageError
from overflyt.plan import Plan, load_inventory
from overflyt.plan.credentials import ResolvedCredential
from overflyt.plan.model import VirtualMachine
from overflyt.planning.batches import schedule
from overflyt.precheck.facts import VCenterFacts, VMFacts
from overflyt.providers.vsphere import Placement
from overflyt.record import Run
from overflyt.steps import slots

log = logging.getLogger(__name__)

OnEvent = Callable[[AnsibleEvent], None]
MoveStatus = Literal["moved", "unchanged", "would_move", "failed", "skipped"]
RestoreStatus = Literal["restored", "unchanged", "would_restore", "failed", "skipped"]

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


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VmMove(_Model):
    """What happened to one VM in a migration.

    ``status``: moved, unchanged (already at its target), would_move (dry run), failed, or skipped
    (not started because an earlier batch failed). ``batch``: 1-based index into
    :attr:`VmMigration.batches`."""

    vm: str
    status: MoveStatus
    batch: int
    before: Placement | None = None
    after: Placement | None = None
    seconds: float = 0.0
    error: str | None = None


class VmMigration(_Model):
    site: str
    wave: int
    dry_run: bool
    duration_s: float
    batches: list[list[str]]  # as run; a dry run is one batch
    slot_waits_s: dict[int, float] = {}  # batch -> seconds it waited for move slots other runs held
    vms: dict[str, VmMove]

    @property
    def moved(self) -> list[str]:
        """VMs this run moved (also a failed one that did move before its check failed)."""
        return [n for n, v in self.vms.items() if v.status == "moved" or (v.status == "failed" and v.after)]

    @property
    def failed(self) -> list[str]:
        return [n for n, v in self.vms.items() if v.status == "failed"]


class VmRestore(_Model):
    """What happened to one VM in a rollback. ``status``: restored, unchanged (already back),
    would_restore (dry run), failed, skipped (the rollback's time ran out before its batch)."""

    vm: str
    status: RestoreStatus
    batch: int
    before: Placement | None = None
    after: Placement | None = None
    seconds: float = 0.0
    leftover_removed: bool = False
    error: str | None = None


class VmRollback(_Model):
    site: str
    dry_run: bool
    duration_s: float
    batches: list[list[str]]
    vms: dict[str, VmRestore]

    @property
    def failed(self) -> list[str]:
        return [n for n, v in self.vms.items() if v.status in ("failed", "skipped")]


class VmMigrationFailed(PlaybookFailed):
    """Some VMs of a site could not be moved; ``migration`` says what happened to each (what moved
    must be rolled back)."""

    def __init__(self, message: str, migration: VmMigration) -> None:
        super().__init__(message, migration.failed)
        self.migration = migration


class VmRollbackFailed(RollbackFailed):
    """Some VMs of a site are not back where they were; ``rollback`` says what happened to each."""

    def __init__(self, message: str, rollback: VmRollback) -> None:
        super().__init__(message)
        self.rollback = rollback


# -- which VMs, in which batches ------------------------------------------------------------------


def site_vms(plan: Plan, wave: int, site_id: str, vms: Sequence[str] | None = None) -> list[VirtualMachine]:
    """The VMs the cutover of ``site_id`` in ``wave`` moves (plan order): the wave's VMs of that
    site; ``vms`` narrows them (each must be one of them)."""
    if site_id not in {s.id for s in plan.sites}:
        raise UsageError(f"site {site_id!r}: not in the plan")
    if wave not in {w.number for w in plan.waves}:
        raise UsageError(f"wave {wave}: not in the plan")
    if site_id not in plan.wave(wave).sites:
        raise UsageError(f"site {site_id} is not cut over in wave {wave}")
    own = [vm for vm in plan.vms_of_wave(wave) if vm.site == site_id]
    if vms is None:
        return own
    names = {vm.name for vm in own}
    unknown = [name for name in dict.fromkeys(vms) if name not in names]
    if unknown:
        raise UsageError(f"site {site_id} in wave {wave} does not move {', '.join(unknown)}")
    wanted = set(vms)
    return [vm for vm in own if vm.name in wanted]


def batches(plan: Plan, wave: int, site_id: str, vms: Sequence[str] | None = None) -> list[list[str]]:
    """The site's VMs (or ``vms`` of them) cut into batches that run one after the other.

    In one batch: at most ``concurrency.global`` and ``per_site`` VMs, at most ``per_host`` of one
    source host, at most ``per_datastore`` on one datastore (source or, through ``storage_map``,
    target: a move loads both). A VM is in a later batch than every VM of the set it
    ``depends_on`` (dependencies outside the set are other sites' or waves' business). Within
    those rules each batch is filled greedily: VMs with the longest chain of dependents first,
    then plan order. Deterministic; raises UsageError on a dependency cycle.
    """
    return _schedule(plan, site_vms(plan, wave, site_id, vms))


def _schedule(plan: Plan, chosen: Sequence[VirtualMachine]) -> list[list[str]]:
    return schedule(chosen, {m.source: m.target for m in plan.storage_map}, plan.concurrency)


def choose_hosts(
    plan: Plan, order: Sequence[str], target: VCenterFacts, keep: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A target host of ``target.cluster`` for each VM of ``order``: a VM in ``keep`` (already in
    the target, on that host) stays when the host is eligible (connected, not in maintenance);
    the others, in order, go to the eligible host with the least memory allocated (the target's
    VMs plus those placed so far), ties by host name. Deterministic for the same estate."""
    dc, cluster = plan.target.datacenter, plan.target.cluster
    eligible = sorted(
        h.name
        for h in target.hosts.values()
        if h.datacenter == dc and h.cluster == cluster and h.connected and not h.maintenance
    )
    if not eligible:
        raise MigrationStepFailed(
            f"{plan.target.vcenter.name}: cluster {cluster} of {dc} has no connected host out of maintenance mode"
        )
    load = dict.fromkeys(eligible, 0)
    for vm in target.vms.values():
        if vm.datacenter == dc and vm.host in load:
            load[vm.host] += vm.memory_mb
    memory = {vm.name: vm.memory_mb for vm in plan.vms}
    chosen: dict[str, str] = {}
    for name in order:
        kept = (keep or {}).get(name)
        if kept in load:
            chosen[name] = kept
    for name in order:
        if name in chosen:
            continue
        host = min(eligible, key=lambda h: (load[h], h))
        chosen[name] = host
        load[host] += memory.get(name, 0)
    return chosen


# -- reading the estate ---------------------------------------------------------------------------


def _read_estate(
    plan: Plan,
    plan_path: Path,
    run: Run,
    credentials: Mapping[str, ResolvedCredential],
    step: str,
    *,
    on_event: OnEvent | None,
    timeout_s: int = 600,
) -> tuple[VCenterFacts, VCenterFacts]:
    """Both vCenters' facts of the plan's source and target datacenter, read-only."""
    inventory, secrets = build_inventory(
        plan,
        load_inventory(plan_path, plan),
        plan_path.parent,
        sites=[],
        credentials=credentials,
        controller_vars={
            "vm_facts_datacenters": {"source": [plan.source.datacenter], "target": [plan.target.datacenter]}
        },
    )
    result = run_playbook(
        "record_placements.yml",
        inventory,
        run.private_dir(step),
        run_id=run.record.run_id,
        dry_run=True,
        secrets=secrets,
        timeout_s=timeout_s,
        on_event=on_event,
    )
    if not result.ok:
        raise PlaybookFailed(f"reading the vCenters failed ({result.status}): {_failure_text(result)}")
    sides: dict[str, Any] = dict(result.result.get("vcenters") or {})
    facts: list[VCenterFacts] = []
    for side, endpoint in (("source", plan.source.vcenter), ("target", plan.target.vcenter)):
        data = sides.get(side)
        if not isinstance(data, dict):
            raise PlaybookFailed(f"reading the vCenters: {side} vCenter {endpoint.name} reported nothing")
        read = VCenterFacts.model_validate(data)
        if not read.reachable or read.login_failed or read.error:
            raise ProviderUnreachable(read.error or f"vCenter {endpoint.name} ({endpoint.url}): not reachable")
        facts.append(read)
    return facts[0], facts[1]


def _found(facts: VCenterFacts, name: str, datacenter: str) -> list[VMFacts]:
    return [v for v in facts.vms.values() if v.name == name and v.datacenter == datacenter]


def _placement(vm: VMFacts) -> Placement:
    return Placement(
        vm=vm.name,
        moid=vm.moid,
        datacenter=vm.datacenter,
        cluster=vm.cluster,
        host=vm.host,
        datastore=vm.datastores[0] if vm.datastores else "",
        folder=vm.folder,
        portgroups=list(vm.portgroups),
        power=vm.power,
    )


def _wave_of(plan: Plan, site_id: str) -> int:
    if site_id not in {s.id for s in plan.sites}:
        raise UsageError(f"site {site_id!r}: not in the plan")
    for wave in plan.waves:
        if site_id in wave.sites:
            return wave.number
    raise UsageError(f"site {site_id} is in no wave of the plan")


# -- record ---------------------------------------------------------------------------------------


def record_placements(
    plan: Plan,
    plan_path: Path,
    site_id: str,
    run: Run,
    credentials: Mapping[str, ResolvedCredential],
    *,
    on_event: OnEvent | None = None,
) -> dict[str, Placement]:
    """Where each VM the site's cutover moves is now, in the source — read-only, before anything
    moves; what :func:`rollback_site_vms` puts them back to. Written to the run record as
    ``placements-<site>.json``. Raises MigrationStepFailed when a VM is not (exactly once) in
    the source datacenter: a placement read anywhere else could not be rolled back to."""
    wave = _wave_of(plan, site_id)
    vms = site_vms(plan, wave, site_id)
    if not vms:
        return {}
    source, target = _read_estate(plan, plan_path, run, credentials, f"vm-placements-{site_id}", on_event=on_event)
    src_dc, tgt_dc = plan.source.datacenter, plan.target.datacenter
    placements: dict[str, Placement] = {}
    problems: list[str] = []
    for vm in vms:
        found = _found(source, vm.name, src_dc)
        if len(found) == 1 and found[0].cluster is not None:
            placements[vm.name] = _placement(found[0])
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
    return placements


# -- migrate --------------------------------------------------------------------------------------


def migrate_site_vms(
    plan: Plan,
    plan_path: Path,
    wave: int,
    site_id: str,
    run: Run,
    credentials: Mapping[str, ResolvedCredential],
    *,
    vms: list[str] | None = None,
    dry_run: bool,
    on_event: OnEvent | None = None,
    timeout_s: int = 3600,
) -> VmMigration:
    """Move the site's VMs (or ``vms`` of them) into the shared datacentre, batch by batch.

    ``dry_run``: one ``--check --diff`` run over every VM reporting ``would_move`` / ``unchanged``;
    nothing changes. Otherwise each batch runs after the previous one succeeded; when a VM fails,
    the later batches are skipped and VmMigrationFailed names the failed VMs and why, after the
    result is written to the run record (``vm-migration-<site>.json``). ``timeout_s`` bounds the
    whole migration."""
    started = time.monotonic()
    deadline = started + timeout_s
    chosen = site_vms(plan, wave, site_id, vms)
    names = [vm.name for vm in chosen]
    by_name = {vm.name: vm for vm in chosen}
    if not chosen:
        return VmMigration(site=site_id, wave=wave, dry_run=dry_run, duration_s=0.0, batches=[], vms={})
    source, target = _read_estate(plan, plan_path, run, credentials, f"vm-read-{site_id}", on_event=on_event)
    src_dc, tgt_dc = plan.source.datacenter, plan.target.datacenter
    storage = {m.source: m.target for m in plan.storage_map}
    network = {m.source: m.target for m in plan.network_map}

    in_target: dict[str, VMFacts] = {}
    for name in names:
        there = _found(target, name, tgt_dc)
        if not _found(source, name, src_dc) and len(there) == 1:
            in_target[name] = there[0]
    order = _schedule(plan, chosen)
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

    if dry_run:
        plan_batches = [names]
    else:
        done = [n for n in names if settled(n)]
        moving = [vm for vm in chosen if vm.name not in done]
        plan_batches = ([done] if done else []) + _schedule(plan, moving)
    tools = {vm.name: vm.tools.value for vm in chosen}
    results: dict[str, VmMove] = {}
    slot_waits: dict[int, float] = {}
    failed_batch: int | None = None
    for number, batch in enumerate(plan_batches, start=1):
        left = int(deadline - time.monotonic())
        if failed_batch is not None or left <= 0:
            why = (
                f"not started: batch {failed_batch} failed"
                if failed_batch is not None
                else f"not started: the migration's time limit ({timeout_s} s) ran out"
            )
            for name in batch:
                results[name] = VmMove(vm=name, status="skipped", batch=number, error=why)
            failed_batch = failed_batch or number
            continue
        vm_hosts = {
            name: {
                "overflyt_vm_source_datacenter": src_dc,
                "overflyt_vm_target": wanted[name],
                "overflyt_vm_tools": tools[name],
            }
            for name in batch
        }
        log.info("site %s: %s batch %d/%d: %s", site_id, "checking" if dry_run else "moving", number,
                 len(plan_batches), ", ".join(batch))  # fmt: skip
        loads: dict[str, set[tuple[str, int]]] = {}
        for name in (n for n in batch if not settled(n)):
            here = _found(source, name, src_dc)
            loads[name] = _loads(
                plan,
                host=here[0].host if here else by_name[name].host,
                datastores=[here[0].datastores[0] if here and here[0].datastores else by_name[name].datastore],
                target_datastore=wanted[name]["datastore"],
            )
        step = f"vm-migrate-{site_id}-{number}"
        try:
            result, waited = _run_batch(
                "migrate_vms.yml", step, plan, plan_path, run, credentials, vm_hosts,
                wave=wave, site_id=site_id, loads=loads, dry_run=dry_run, timeout_s=left, on_event=on_event,
            )  # fmt: skip
        except slots.SlotsUnavailable as exc:
            for name in batch:
                results[name] = VmMove(vm=name, status="failed", batch=number, error=f"not started: {exc}")
            failed_batch = number
            continue
        if waited >= 1:
            slot_waits[number] = round(waited, 1)
        for name in batch:
            results[name] = _move(name, number, result)
        if any(results[name].status == "failed" for name in batch):
            failed_batch = number
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
    if migration.failed:
        reasons = "; ".join(f"{n}: {migration.vms[n].error}" for n in migration.failed)
        moved = ", ".join(migration.moved) or "none"
        raise VmMigrationFailed(
            f"migration of the VMs of site {site_id} failed: {reasons} (moved before the failure: {moved})",
            migration,
        )
    return migration


def _move(name: str, batch: int, result: PlaybookResult) -> VmMove:
    data = dict((result.result.get("vms") or {}).get(name) or {})
    failure = _host_failure(result, name)
    if not data:
        return VmMove(vm=name, status="failed", batch=batch, error=failure or _no_result(result))
    status = str(data.get("status"))
    error = data.get("error") or None
    if status not in ("moved", "unchanged", "would_move", "failed"):
        status, error = "failed", f"the role reported status {status!r}"
    if failure and status != "failed":  # reported, then failed afterwards
        status, error = "failed", failure
    return VmMove(
        vm=name,
        status=status,
        batch=batch,
        before=_placement_of(data.get("before")),
        after=_placement_of(data.get("after")),
        seconds=float(data.get("seconds") or 0.0),
        error=str(error) if error else None,
    )


# -- rollback -------------------------------------------------------------------------------------


def rollback_site_vms(
    plan: Plan,
    plan_path: Path,
    site_id: str,
    placements: Mapping[str, Placement],
    run: Run,
    credentials: Mapping[str, ResolvedCredential],
    *,
    dry_run: bool = False,
    on_event: OnEvent | None = None,
    timeout_s: int = 3600,
) -> VmRollback:
    """Put every VM of ``placements`` back at its recorded placement and power state, and remove
    provable leftovers from the target folder.

    Batches are the migration's, in reverse order (dependents go back first); every batch runs,
    also after a failure. VMs already exactly where they were recorded (read just before) are
    only checked. Raises VmRollbackFailed naming every VM that is not back (a human must act);
    the result is written to the run record (``vm-rollback-<site>.json``) first."""
    started = time.monotonic()
    deadline = started + timeout_s
    if site_id not in {s.id for s in plan.sites}:
        raise UsageError(f"site {site_id!r}: not in the plan")
    if not placements:
        return VmRollback(site=site_id, dry_run=dry_run, duration_s=0.0, batches=[], vms={})
    source, target = _read_estate(plan, plan_path, run, credentials, f"vm-read-{site_id}", on_event=on_event)
    tgt_dc = plan.target.datacenter
    known = [vm for vm in plan.vms if vm.name in placements]
    names = [vm.name for vm in known] + sorted(set(placements) - {vm.name for vm in known})

    def settled(name: str) -> bool:
        want = placements[name]
        here = _found(source, name, want.datacenter)
        if len(here) != 1 or _found(target, name, tgt_dc):
            return False
        now = _placement(here[0])
        return now.same_place(want) and now.power == want.power

    if dry_run:
        plan_batches = [names]
    else:
        done = [n for n in names if settled(n)]
        moving = [vm for vm in known if vm.name not in done]
        strangers = [[n] for n in names if n not in done and n not in {vm.name for vm in known}]
        plan_batches = list(reversed(_schedule(plan, moving))) + strangers + ([done] if done else [])
    results: dict[str, VmRestore] = {}
    wave_of = next((w.number for w in plan.waves if site_id in w.sites), 0)
    for number, batch in enumerate(plan_batches, start=1):
        left = int(deadline - time.monotonic())
        if left <= 0:
            for name in batch:
                why = f"not started: the rollback's time limit ({timeout_s} s) ran out"
                results[name] = VmRestore(vm=name, status="skipped", batch=number, error=why)
            continue
        vm_hosts = {
            name: {
                "overflyt_vm_placement": placements[name].model_dump(mode="json"),
                "overflyt_vm_target_datacenter": tgt_dc,
                "overflyt_vm_target_folder": plan.target.vm_folder,
            }
            for name in batch
        }
        log.info("site %s: rollback batch %d/%d: %s", site_id, number, len(plan_batches), ", ".join(batch))
        loads = {}
        for name in (n for n in batch if not settled(n)):
            there = _found(target, name, tgt_dc)
            now = there[0].datastores[:1] if there and there[0].datastores else []
            want = placements[name]
            loads[name] = _loads(
                plan, host=want.host, datastores=[want.datastore], target_datastore=now[0] if now else None
            )
        step = f"vm-rollback-{site_id}-{number}"
        try:
            result, _ = _run_batch(
                "rollback_vms.yml", step, plan, plan_path, run, credentials, vm_hosts,
                wave=wave_of, site_id=site_id, loads=loads, dry_run=dry_run, timeout_s=left, on_event=on_event,
            )  # fmt: skip
        except slots.SlotsUnavailable as exc:
            for name in batch:
                results[name] = VmRestore(vm=name, status="skipped", batch=number, error=f"not started: {exc}")
            continue
        for name in batch:
            results[name] = _restore(name, number, result)
    rollback = VmRollback(
        site=site_id,
        dry_run=dry_run,
        duration_s=round(time.monotonic() - started, 3),
        batches=plan_batches,
        vms={name: results[name] for name in names},
    )
    run.write(f"vm-rollback-{site_id}.json", rollback.model_dump_json(indent=2) + "\n")
    if rollback.failed:
        reasons = "; ".join(f"{n}: {rollback.vms[n].error}" for n in rollback.failed)
        raise VmRollbackFailed(f"VMs of site {site_id} not back where they were: {reasons}", rollback)
    return rollback


def _restore(name: str, batch: int, result: PlaybookResult) -> VmRestore:
    data = dict((result.result.get("vms") or {}).get(name) or {})
    failure = _host_failure(result, name)
    if not data:
        return VmRestore(vm=name, status="failed", batch=batch, error=failure or _no_result(result))
    status = str(data.get("status"))
    error = data.get("error") or None
    if status not in ("restored", "unchanged", "would_restore", "failed"):
        status, error = "failed", f"the role reported status {status!r}"
    if failure and status != "failed":
        status, error = "failed", failure
    return VmRestore(
        vm=name,
        status=status,
        batch=batch,
        before=_placement_of(data.get("before")),
        after=_placement_of(data.get("after")),
        seconds=float(data.get("seconds") or 0.0),
        leftover_removed=bool(data.get("leftover_removed")),
        error=str(error) if error else None,
    )


# -- helpers --------------------------------------------------------------------------------------


def _loads(plan: Plan, *, host: str, datastores: list[str], target_datastore: str | None) -> set[tuple[str, int]]:
    """What moving one VM between ``host``/``datastores`` (source) and ``target_datastore`` loads,
    as (resource, limit): the target vCenter, the source host, and both ends' datastores."""
    limits = plan.concurrency
    src = f"{plan.source.vcenter.hostport}/{plan.source.datacenter}"
    tgt = f"{plan.target.vcenter.hostport}/{plan.target.datacenter}"
    out = {
        (f"vcenter {plan.target.vcenter.hostport}", limits.global_),
        (f"host {plan.source.vcenter.hostport}/{host}", limits.per_host),
    }
    out |= {(f"datastore {src}/{ds}", limits.per_datastore) for ds in datastores}
    if target_datastore:
        out.add((f"datastore {tgt}/{target_datastore}", limits.per_datastore))
    return out


@contextlib.contextmanager
def _slots(
    plan: Plan, wave: int, site_id: str, loads: Mapping[str, set[tuple[str, int]]], *, dry_run: bool, timeout_s: float
) -> Iterator[float]:
    """Hold the move slots of a batch (see overflyt.steps.slots); a dry run moves nothing and takes none."""
    if dry_run:
        yield 0.0
        return
    counts: dict[tuple[str, int], int] = {}
    for load in loads.values():
        for key in load:
            counts[key] = counts.get(key, 0) + 1
    wanted = slots.needs(counts)
    holder = {"municipality": plan.municipality.code, "wave": wave, "site": site_id}

    def waiting(line: str) -> None:
        log.info("site %s: %s", site_id, line)

    with slots.hold(wanted, holder, timeout_s=max(0.0, timeout_s), on_wait=waiting) as waited:
        yield waited


def _run_batch(
    playbook: str,
    step: str,
    plan: Plan,
    plan_path: Path,
    run: Run,
    credentials: Mapping[str, ResolvedCredential],
    vm_hosts: Mapping[str, Mapping[str, Any]],
    *,
    wave: int,
    site_id: str,
    loads: Mapping[str, set[tuple[str, int]]],
    dry_run: bool,
    timeout_s: int,
    on_event: OnEvent | None,
) -> tuple[PlaybookResult, float]:
    """One batch: its VMs (``vm_hosts``) through ``playbook``, each VM a host, all at once (a dry run
    ``concurrency.global`` at a time), once the batch holds the move slots of each VM's ``loads``
    (see _loads). Returns the result and the seconds spent waiting for slots; raises
    SlotsUnavailable when they did not come within ``timeout_s``."""
    with _slots(plan, wave, site_id, loads, dry_run=dry_run, timeout_s=timeout_s) as waited:
        return _run_playbook(playbook, step, plan, plan_path, run, credentials, vm_hosts, dry_run=dry_run,
                             timeout_s=int(timeout_s - waited), on_event=on_event), waited  # fmt: skip


def _run_playbook(
    playbook: str,
    step: str,
    plan: Plan,
    plan_path: Path,
    run: Run,
    credentials: Mapping[str, ResolvedCredential],
    vm_hosts: Mapping[str, Mapping[str, Any]],
    *,
    dry_run: bool,
    timeout_s: int,
    on_event: OnEvent | None,
) -> PlaybookResult:
    forks = min(len(vm_hosts), plan.concurrency.global_) if dry_run else len(vm_hosts)
    inventory, secrets = build_inventory(
        plan,
        load_inventory(plan_path, plan),
        plan_path.parent,
        sites=[],
        credentials=credentials,
        vm_hosts=vm_hosts,
    )
    result = run_playbook(
        playbook,
        inventory,
        run.private_dir(step),
        run_id=run.record.run_id,
        dry_run=dry_run,
        secrets=secrets,
        forks=max(1, forks),
        timeout_s=max(1, timeout_s),
        on_event=on_event,
    )
    log.info("%s: %s in %.1fs", step, result.status, result.duration_s)
    return result


def _placement_of(data: Any) -> Placement | None:
    if not isinstance(data, dict) or not data:
        return None
    try:
        return Placement.model_validate(data)
    except ValidationError:
        log.warning("a role reported a placement overflyt cannot read: %s", data)
        return None


def _host_failure(result: PlaybookResult, host: str) -> str | None:
    """The last visible failure of ``host`` (a no_log task's message is hidden; the role repeats
    the reason in a task of its own)."""
    messages = [f.message for f in result.failures if f.host == host]
    visible = [m for m in messages if not m.startswith("(output hidden")]
    chosen = visible or messages
    return _first_line(chosen[-1]) if chosen else None


def _no_result(result: PlaybookResult) -> str:
    if result.status != "failed":
        return f"no result: the playbook ended {result.status}"
    return f"no result: {_failure_text(result)}"


def _failure_text(result: PlaybookResult) -> str:
    parts = [f"{f.host}: {f.task}: {_first_line(f.message)}" for f in result.failures]
    return "; ".join(parts) or f"the playbook ended {result.status} without a task failure (rc={result.rc})"


def _first_line(text: str) -> str:
    line = next((x.strip() for x in text.splitlines() if x.strip()), text.strip())
    return line[:500]
