"""Which VMs a site's cutover moves, to which hosts, and how: :func:`run_batch` runs VMs that start
together once they hold their move slots (:mod:`overflyt.steps.slots`) through
:func:`~overflyt.ansible.step.run_step`, freeing each VM's slots as its relocation ends;
:func:`run_pool` starts them as a pool (:class:`overflyt.planning.batches.Pool`), for the migration
and for the rollback (which goes on past a failure, and no cancel or window stops).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

from overflyt.ansible.cancel import POLL_S, cancel_reason, cancel_requested, is_shielded, shielded
from overflyt.ansible.runner import AnsibleEvent, PlaybookResult
from overflyt.ansible.step import StepContext, first_line, run_step
from overflyt.errors import MigrationStepFailed, UsageError
from overflyt.plan import Plan
from overflyt.plan.ahead import find_ahead
from overflyt.plan.model import VirtualMachine
from overflyt.plan.names import vm_alias
from overflyt.planning.batches import Pool, Schedulable, schedule
from overflyt.precheck.facts import VCenterFacts
from overflyt.steps import slots
from overflyt.steps.vm_results import VmMove, VmRestore

log = logging.getLogger(__name__)


def site_vms(plan: Plan, wave: int, site_id: str, vms: Sequence[str] | None = None) -> list[VirtualMachine]:
    """The VMs the cutover of ``site_id`` in ``wave`` moves (plan order): the wave's VMs of that
    site, or, for the key of a subnet that moves ahead of its site, that subnet's VMs; ``vms``
    narrows them (each must be one of them)."""
    if wave not in {w.number for w in plan.waves}:
        raise UsageError(f"wave {wave}: not in the plan")
    ahead = find_ahead(plan, site_id)
    if ahead is not None:  # a subnet moving ahead of its site: its VMs
        if ahead.wave != wave:
            raise UsageError(f"subnet {ahead.subnet} of site {ahead.site} moves ahead in wave {ahead.wave}, not {wave}")
        own = [vm for vm in plan.vms if vm.name in ahead.vms]
    else:
        if site_id not in {s.id for s in plan.sites}:
            raise UsageError(f"site {site_id!r}: not in the plan")
        if site_id not in plan.wave(wave).sites:
            raise UsageError(f"site {site_id} is not cut over in wave {wave}")
        own = [vm for vm in plan.vms_of_wave(wave) if vm.site == site_id]  # without what moved ahead
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
    return schedule_vms(plan, site_vms(plan, wave, site_id, vms))


def schedule_vms(plan: Plan, chosen: Sequence[VirtualMachine]) -> list[list[str]]:
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


def loads(plan: Plan, *, host: str, datastores: list[str], target_datastore: str | None) -> set[tuple[str, int]]:
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
    ctx: StepContext, site_id: str, loads: Mapping[str, set[tuple[str, int]]], *, dry_run: bool, timeout_s: float
) -> Iterator[tuple[float, Callable[[str], None]]]:
    """Hold the move slots of the VMs of ``loads`` (see overflyt.steps.slots), all or none; yields
    the seconds waited and ``release(vm)``, which frees one VM's slots. A dry run moves nothing and
    takes none."""
    if dry_run:
        yield 0.0, lambda name: None
        return
    groups = {name: slots.needs(dict.fromkeys(load, 1)) for name, load in loads.items()}
    holder = {"municipality": ctx.plan.municipality.code, "wave": ctx.wave, "site": site_id}

    def waiting(line: str) -> None:
        log.info("site %s: %s", site_id, line)

    with slots.hold_each(groups, holder, timeout_s=max(0.0, timeout_s), base=ctx.loaded.state, on_wait=waiting) as held:
        yield held


def run_batch(
    ctx: StepContext,
    playbook: str,
    step: str,
    vm_hosts: Mapping[str, Mapping[str, Any]],
    *,
    site_id: str,
    loads: Mapping[str, set[tuple[str, int]]],
    dry_run: bool,
    timeout_s: int,
    released_by: str | None = None,
    on_released: Callable[[str], None] | None = None,
) -> tuple[PlaybookResult, float]:
    """VMs that start together (``vm_hosts``, VM name → variables) through ``playbook``, each VM a
    host, all at once (a dry run ``concurrency.global`` at a time), once they hold the move slots of
    each VM's ``loads`` (see :func:`loads`). Each VM's host is its alias
    (:func:`~overflyt.plan.names.vm_alias`), its name the variable ``overflyt_vm_name``; the result
    and the progress events come back with the names (:func:`by_name`). When the task named
    ``released_by`` (the role's relocation) has ended for a VM, ok or not, that VM's slots are freed
    and ``on_released(name)`` is called (from the runner's thread), while the playbook goes on with
    the others. Returns the result and the seconds spent waiting for slots; raises SlotsUnavailable
    when they did not come within ``timeout_s``."""
    hosts = {vm_alias(name): {"overflyt_vm_name": name, **values} for name, values in vm_hosts.items()}
    names = {alias: str(values["overflyt_vm_name"]) for alias, values in hosts.items()}
    with _slots(ctx, site_id, loads, dry_run=dry_run, timeout_s=timeout_s) as (waited, release):
        sink = ctx.on_event

        def progress(event: AnsibleEvent) -> None:
            name = names.get(event.host or "", event.host)
            if released_by is not None and event.task == released_by and event.status != "start" and name:
                release(name)
                if on_released is not None:
                    on_released(name)
            if sink is not None:  # progress for people: the VM's name, not its alias
                sink(event.model_copy(update={"host": name}))

        forks = min(len(hosts), ctx.plan.concurrency.global_) if dry_run else len(hosts)
        result = run_step(
            dataclasses.replace(ctx, on_event=progress), playbook, step, vm_hosts=hosts, dry_run=dry_run,
            forks=forks, timeout_s=int(timeout_s - waited), devices_home=False,
        )  # fmt: skip
        return by_name(result, names), waited


def by_name(result: PlaybookResult, names: Mapping[str, str]) -> PlaybookResult:
    """``result`` of a playbook over VM hosts (aliases) with each alias read back as the VM's name
    (``names``: alias → name, the inventory's ``overflyt_vm_name``): its failures, host stats and
    the roles' ``overflyt_result.vms``. The runner's artifacts keep the aliases, beside the
    inventory that maps them."""
    vms = result.result.get("vms")
    return result.model_copy(
        update={
            "failures": [f.model_copy(update={"host": names.get(f.host, f.host)}) for f in result.failures],
            "hosts": {names.get(h, h): stats for h, stats in result.hosts.items()},
            "result": {**result.result, "vms": {names.get(k, k): v for k, v in vms.items()}}
            if isinstance(vms, dict)
            else result.result,
        }
    )


# -- the pool: VMs start as slots free ------------------------------------------------------------


COALESCE_S = 2.0  # after a move's slots free, how long to gather others before VMs start together


R = TypeVar("R", VmMove, VmRestore)


@dataclasses.dataclass(frozen=True)
class Launched(Generic[R]):
    """What a launch (VMs started together, one playbook run) came back with."""

    vms: dict[str, R]
    waited_s: float


def run_pool(
    ctx: StepContext,
    site_id: str,
    done: list[str],
    moving: Sequence[Schedulable],
    launch: Callable[[int, list[str], Callable[[str], None] | None], Launched[R]],
    deadline: float,
    timeout_s: int,
    *,
    result_type: type[R],
    rollback: bool = False,
) -> tuple[list[list[str]], dict[str, R], dict[int, float]]:
    """Move ``moving`` as a pool (:class:`overflyt.planning.batches.Pool`): VMs start, together in one
    playbook run (a *launch*, its own thread), as soon as their dependencies have moved and the
    plan's limits have room; a VM's slots free when its relocation task ends, and the VMs that fit
    then start (gathered for up to COALESCE_S, or at once when a launch ends) while the others
    still move. ``done`` (already where they should be) are only checked, in a launch of their own.

    No launch starts once a VM has failed, the run is canceled, the wave's window says stop, or the
    time limit has run out; the launches under way end (a cancel stops their playbooks) and the VMs
    not started are ``skipped`` with the reason. A ``rollback`` (``moving`` as
    :func:`overflyt.planning.batches.returns` gives them) puts back as much as it can: a failed VM
    stops nothing and the VMs it depends on still go back, and only its time limit stops new
    launches (it runs shielded from a cancel, and no window stops it). Returns the launches in the
    order they started, every VM's result (``result_type``), and the seconds launches waited for
    slots other runs held."""
    plan = ctx.plan
    what = "rollback" if rollback else "migration"
    pool = Pool(moving, {m.source: m.target for m in plan.storage_map}, plan.concurrency)
    events: queue.Queue[tuple[str, int, str, Launched[R] | None, BaseException | None]] = queue.Queue()
    launches: list[list[str]] = []
    results: dict[str, R] = {}
    slot_waits: dict[int, float] = {}
    under_way = 0
    error: BaseException | None = None
    shield = is_shielded()  # a thread starts without this one's context: the shield is handed on

    def start(batch: list[str]) -> None:
        nonlocal under_way
        number = len(launches) + 1
        launches.append(batch)
        under_way += 1
        log.info("site %s: %s: moving %s (launch %d; %d moving, %d waiting)", site_id, what, ", ".join(batch),
                 number, len(pool.running), len(pool.pending))  # fmt: skip

        def work() -> None:
            try:
                with shielded() if shield else contextlib.nullcontext():
                    launched = launch(number, batch, lambda name: events.put(("released", number, name, None, None)))
            except BaseException as exc:  # noqa: BLE001 - handed to the site's thread, raised there
                events.put(("ended", number, "", None, exc))
            else:
                events.put(("ended", number, "", launched, None))

        threading.Thread(target=work, name=f"overflyt-vms-{site_id}-{number}", daemon=True).start()

    if done:
        start(done)
    stopped: str | None = None
    failed_launch: int | None = None
    may_take, freed_at = True, None
    while True:
        if stopped is None:
            if error is not None:
                stopped = f"an error in launch {len(launches)}: {first_line(str(error))}"
            elif failed_launch is not None and not rollback:
                stopped = f"batch {failed_launch} failed"
            elif deadline - time.monotonic() <= 0:
                stopped = f"the {what}'s time limit ({timeout_s} s) ran out"
            elif rollback:
                pass
            elif cancel_requested():
                stopped = f"the run was canceled ({cancel_reason()})"
            elif may_take and pool.pending and ctx.stop_moves is not None:
                stopped = ctx.stop_moves(site_id)
        if stopped is None and may_take and pool.pending:
            taken = pool.take()
            if taken:
                start(taken)
            may_take, freed_at = False, None
        if under_way == 0:
            break
        try:
            kind, number, name, launched, exc = events.get(timeout=POLL_S)
        except queue.Empty:
            if freed_at is not None and time.monotonic() - freed_at >= COALESCE_S:
                may_take = True
            continue
        if kind == "released":
            if pool.release(name) and freed_at is None:
                freed_at = time.monotonic()
            continue
        under_way -= 1
        may_take = True
        if exc is not None:
            error = error or exc
            why = f"{type(exc).__name__}: {exc}"
            failed = {n: result_type(vm=n, status="failed", batch=number, error=why) for n in launches[number - 1]}
            launched = Launched(failed, 0.0)
        assert launched is not None
        if launched.waited_s >= 1:
            slot_waits[number] = round(launched.waited_s, 1)
        for vm_name, move in launched.vms.items():
            results[vm_name] = move
            if vm_name in pool.running:
                pool.finish(vm_name, moved=rollback or move.status in ("moved", "unchanged"))
            if move.status == "failed":
                failed_launch = failed_launch or number
    if error is not None:
        raise error
    for vm_name in pool.pending:  # stopped is set: a failure stops the pool before a dependent could wait on it
        why = f"not started: {stopped or 'what it depends on did not move'}"
        results[vm_name] = result_type(vm=vm_name, status="skipped", batch=len(launches) + 1, error=why)
    if pool.pending:
        launches.append(pool.pending)  # the VMs not started, as one last batch of the record
    return launches, results, slot_waits
