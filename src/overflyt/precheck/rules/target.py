"""Target checks: the shared datacentre has the folder, cluster and datastores, and room for the wave.

Capacity is judged for all the VMs checked together (the whole wave when no site is selected),
using each VM's observed size (its planned size when it was not found), and keeps the plan's
`target.headroom_pct` free.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from overflyt.plan.model import VirtualMachine
from overflyt.precheck.facts import ClusterFacts
from overflyt.precheck.findings import Severity
from overflyt.precheck.registry import CheckContext, Outcome, Subject, fail, find, ok, rule, skip

# vCPUs a physical core may carry in the target cluster (overcommit ratio 4:1). capacity.cpu
# counts cluster cores x VCPU_PER_CORE, less the headroom, less the vCPUs already allocated.
VCPU_PER_CORE = 4


@dataclass(frozen=True)
class _Size:
    cpu: int
    memory_mb: int
    disk_gb: int


def _size(ctx: CheckContext, vm: VirtualMachine) -> _Size:
    seen = ctx.source_vm(vm.name)
    if seen is not None:
        return _Size(seen.cpu, seen.memory_mb, sum(seen.disks_gb))
    return _Size(vm.cpu, vm.memory_mb, sum(vm.disks_gb))


def _cluster(ctx: CheckContext) -> tuple[ClusterFacts | None, str, Subject]:
    """The target cluster's facts, or None and why the capacity checks are skipped."""
    subject = Subject("cluster", ctx.plan.target.cluster)
    inventory, reason = ctx.inventory("target")
    if inventory is None:
        return None, reason, subject
    found = find(inventory.clusters, ctx.plan.target.cluster, ctx.plan.target.datacenter)
    if found is None:
        return None, f"cluster {ctx.plan.target.cluster} was not found (see target.cluster)", subject
    return found, "", subject


def _target_datastores(ctx: CheckContext) -> dict[str, list[VirtualMachine]]:
    """Target datastore -> the VMs whose (planned) source datastore the storage map sends there."""
    mapped = {m.source: m.target for m in ctx.plan.storage_map}
    result: dict[str, list[VirtualMachine]] = defaultdict(list)
    for vm in ctx.vms:
        if vm.datastore in mapped:
            result[mapped[vm.datastore]].append(vm)
    return dict(result)


def _where(ctx: CheckContext) -> str:
    return f"datacenter {ctx.plan.target.datacenter} of target vCenter {ctx.plan.target.vcenter.name}"


@rule("target.folder", title="Target VM folder exists", severity=Severity.critical)
def target_folder(ctx: CheckContext) -> Iterator[Outcome]:
    """The VM folder the wave moves into (`target.vm_folder`) exists in the target datacenter.

    Create the folder (with the permissions the migration account needs), or fix
    `target.vm_folder` in the plan.
    """
    subject = Subject("folder", ctx.plan.target.vm_folder)
    inventory, reason = ctx.inventory("target")
    if inventory is None:
        yield skip(subject, reason)
        return
    folders = inventory.folders.get(ctx.plan.target.datacenter, [])
    if ctx.plan.target.vm_folder in folders:
        yield ok(subject)
        return
    yield fail(
        subject,
        f"VM folder {ctx.plan.target.vm_folder} does not exist in {_where(ctx)}; create it or fix target.vm_folder "
        "in the plan",
        {"datacenter": ctx.plan.target.datacenter, "folder": ctx.plan.target.vm_folder, "folders": list(folders)},
    )


@rule("target.cluster", title="Target cluster exists", severity=Severity.critical)
def target_cluster(ctx: CheckContext) -> Iterator[Outcome]:
    """The target cluster (`target.cluster`) exists in the target datacenter.

    Fix the name in the plan or give the account read access to it. The capacity checks of the
    cluster are skipped until this passes.
    """
    subject = Subject("cluster", ctx.plan.target.cluster)
    inventory, reason = ctx.inventory("target")
    if inventory is None:
        yield skip(subject, reason)
    elif find(inventory.clusters, ctx.plan.target.cluster, ctx.plan.target.datacenter) is None:
        yield fail(
            subject,
            f"Cluster {ctx.plan.target.cluster} was not found in {_where(ctx)}; fix target.cluster in the plan or "
            "give the account read access to it",
            {"datacenter": ctx.plan.target.datacenter, "cluster": ctx.plan.target.cluster},
        )
    else:
        yield ok(subject)


@rule("target.hosts", title="Target hosts available", severity=Severity.warning)
def target_hosts(ctx: CheckContext) -> Iterator[Outcome]:
    """Every host of the target cluster is connected and not in maintenance mode.

    A warning: the cluster's capacity figures may still count such hosts, so the capacity checks
    can be optimistic. Bring the hosts back, or make sure the remaining ones can take the wave.
    """
    cluster, reason, subject = _cluster(ctx)
    inventory = ctx.vcenter("target")
    if cluster is None or inventory is None:
        yield skip(subject, reason)
        return
    unavailable: dict[str, str] = {}
    for name in cluster.hosts:
        host = find(inventory.hosts, name, ctx.plan.target.datacenter)
        if host is None:
            unavailable[name] = "not reported"
        elif not host.connected:
            unavailable[name] = "disconnected"
        elif host.maintenance:
            unavailable[name] = "in maintenance"
    if not unavailable:
        yield ok(subject)
        return
    listed = ", ".join(f"{name} ({state})" for name, state in unavailable.items())
    yield fail(
        subject,
        f"Hosts of cluster {cluster.name} are not available: {listed}; bring them back or make sure the other hosts "
        "can take the wave",
        {"hosts": dict(unavailable)},
    )


@rule("target.datastore", title="Target datastores exist", severity=Severity.critical)
def target_datastore(ctx: CheckContext) -> Iterator[Outcome]:
    """Every target datastore the storage map sends the wave's VMs to exists in the target datacenter.

    Fix the datastore name (`storage_map[].target`, `target.datastores`) or give the account read
    access. The datastore's capacity check is skipped until this passes.
    """
    inventory, reason = ctx.inventory("target")
    for name, vms in _target_datastores(ctx).items():
        subject = Subject("datastore", name)
        if inventory is None:
            yield skip(subject, reason)
        elif find(inventory.datastores, name, ctx.plan.target.datacenter) is None:
            yield fail(
                subject,
                f"Datastore {name} (target of {len(vms)} VMs of this wave) was not found in {_where(ctx)}; fix "
                "storage_map/target.datastores in the plan or give the account read access to it",
                {"datacenter": ctx.plan.target.datacenter, "vms": [vm.name for vm in vms]},
            )
        else:
            yield ok(subject)


def _num(value: float) -> str:
    """1234 or 1234.5: whole numbers without a decimal point, never in exponent notation."""
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _capacity(
    subject: Subject,
    what: str,
    unit: str,
    needed: float,
    available: float,
    evidence: dict[str, int | float],
    wave: int,
    action: str,
) -> Outcome:
    full = {"needed": needed, "available": available, **evidence}
    if needed <= available:
        return ok(
            subject,
            f"{subject.name} has room for wave {wave}'s {what}: needs {_num(needed)} {unit}, "
            f"{_num(available)} {unit} available",
            dict(full),
        )
    return fail(
        subject,
        f"{subject.name} lacks {what} for wave {wave}: needs {_num(needed)} {unit}, "
        f"only {_num(available)} {unit} available after {evidence['headroom_pct']}% headroom; {action}",
        dict(full),
    )


@rule("capacity.cpu", title="Target cluster has CPU for the wave", severity=Severity.critical)
def capacity_cpu(ctx: CheckContext) -> Iterator[Outcome]:
    """The target cluster has room for the wave's vCPUs.

    Available = cluster cores x `VCPU_PER_CORE` (4) x (1 - headroom_pct/100) - vCPUs already
    allocated, rounded down. Needed = the sum of the wave's VMs' vCPUs. Evidence shows both, the
    headroom and the parts of the sum. When it fires: add hosts to the cluster, free capacity, or
    move fewer VMs in this wave. Passes with an info finding showing the room left.
    """
    cluster, reason, subject = _cluster(ctx)
    if cluster is None:
        yield skip(subject, reason)
        return
    headroom = ctx.plan.target.headroom_pct
    needed = sum(_size(ctx, vm).cpu for vm in ctx.vms)
    available = math.floor(cluster.cpu_cores * VCPU_PER_CORE * (1 - headroom / 100)) - cluster.allocated_vcpu
    yield _capacity(
        subject,
        "CPU",
        "vCPU",
        needed,
        available,
        {
            "headroom_pct": headroom,
            "cpu_cores": cluster.cpu_cores,
            "vcpu_per_core": VCPU_PER_CORE,
            "allocated_vcpu": cluster.allocated_vcpu,
        },
        ctx.wave,
        "add hosts or free capacity in the cluster, or move fewer VMs in this wave",
    )


@rule("capacity.memory", title="Target cluster has memory for the wave", severity=Severity.critical)
def capacity_memory(ctx: CheckContext) -> Iterator[Outcome]:
    """The target cluster has room for the wave's memory.

    Available = cluster memory x (1 - headroom_pct/100) - memory already allocated, in MB, rounded
    down. Needed = the sum of the wave's VMs' memory_mb. When it fires: add hosts or memory, free
    capacity, or move fewer VMs in this wave. Passes with an info finding showing the room left.
    """
    cluster, reason, subject = _cluster(ctx)
    if cluster is None:
        yield skip(subject, reason)
        return
    headroom = ctx.plan.target.headroom_pct
    needed = sum(_size(ctx, vm).memory_mb for vm in ctx.vms)
    available = math.floor(cluster.memory_mb * (1 - headroom / 100)) - cluster.allocated_memory_mb
    yield _capacity(
        subject,
        "memory",
        "MB",
        needed,
        available,
        {
            "headroom_pct": headroom,
            "memory_mb": cluster.memory_mb,
            "allocated_memory_mb": cluster.allocated_memory_mb,
        },
        ctx.wave,
        "add hosts or memory or free capacity in the cluster, or move fewer VMs in this wave",
    )


@rule("capacity.datastore", title="Target datastores have room for the wave", severity=Severity.critical)
def capacity_datastore(ctx: CheckContext) -> Iterator[Outcome]:
    """Each target datastore has room for the disks the storage map sends there in this wave.

    Available = free_gb - capacity_gb x headroom_pct/100. Needed = the sum of the disks_gb of the
    wave's VMs mapped to it (full size: thin disks may grow to it). When it fires: free space, add
    capacity, map some source datastores elsewhere (`storage_map`) or move fewer VMs in this wave.
    Passes with an info finding showing the room left.
    """
    inventory, reason = ctx.inventory("target")
    headroom = ctx.plan.target.headroom_pct
    for name, vms in _target_datastores(ctx).items():
        subject = Subject("datastore", name)
        if inventory is None:
            yield skip(subject, reason)
            continue
        datastore = find(inventory.datastores, name, ctx.plan.target.datacenter)
        if datastore is None:
            yield skip(subject, f"datastore {name} was not found (see target.datastore)")
            continue
        needed = sum(_size(ctx, vm).disk_gb for vm in vms)
        available = math.floor((datastore.free_gb - datastore.capacity_gb * headroom / 100) * 10) / 10
        yield _capacity(
            subject,
            "disk space",
            "GB",
            needed,
            available,
            {"headroom_pct": headroom, "capacity_gb": datastore.capacity_gb, "free_gb": datastore.free_gb},
            ctx.wave,
            "free or add space, map some source datastores elsewhere (storage_map), or move fewer VMs in this wave",
        )
