"""VM checks: every VM of the wave exists, matches the plan, and has nothing that stops it moving.

The VM is looked up by name in the plan's source datacenter, as the source vCenter sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pydantic import JsonValue

from overflyt.plan.model import VirtualMachine
from overflyt.precheck.facts import VMFacts
from overflyt.precheck.findings import Severity
from overflyt.precheck.registry import CheckContext, Evidence, Outcome, Subject, fail, ok, rule, skip


def vm_subject(vm: VirtualMachine) -> Subject:
    return Subject("vm", vm.name, vm.site)


def _observed(ctx: CheckContext, check: Callable[[VirtualMachine, Subject, VMFacts], Outcome]) -> Iterator[Outcome]:
    """Apply ``check`` to each wave VM found in the source; skip the others (their cause is reported)."""
    inventory, reason = ctx.inventory("source")
    for vm in ctx.vms:
        subject = vm_subject(vm)
        if inventory is None:
            yield skip(subject, reason)
            continue
        seen = ctx.source_vm(vm.name)
        if seen is None:
            yield skip(subject, f"{vm.name} was not found in the source vCenter (see vm.exists)")
            continue
        yield check(vm, subject, seen)


def _names(items: list[str]) -> str:
    return ", ".join(items)


@rule("vm.exists", title="VM exists in the source", severity=Severity.critical)
def vm_exists(ctx: CheckContext) -> Iterator[Outcome]:
    """Every VM the wave moves exists in the source datacenter under its planned name.

    Fires when no VM of that name is in `source.datacenter`. When the plan gives the VM's `uuid`
    and a VM with that UUID exists under another name, the message names it: the VM was renamed.
    Otherwise it may have been renamed or removed: find it (by its IP address or UUID) and update
    the plan, or take it out of the wave. The VM's other checks are skipped until this passes.
    """
    inventory, reason = ctx.inventory("source")
    endpoint = ctx.plan.source.vcenter.name
    datacenter = ctx.plan.source.datacenter
    for vm in ctx.vms:
        subject = vm_subject(vm)
        if inventory is None:
            yield skip(subject, reason)
            continue
        if ctx.source_vm(vm.name) is not None:
            yield ok(subject)
            continue
        evidence: Evidence = {
            "vcenter": endpoint,
            "datacenter": datacenter,
            "ip": str(vm.ip) if vm.ip else None,
            "uuid": str(vm.uuid) if vm.uuid else None,
        }
        renamed = None
        if vm.uuid is not None:
            renamed = next(
                (v for v in inventory.vms.values() if v.datacenter == datacenter and v.uuid == str(vm.uuid)),
                None,
            )
        if renamed is not None:
            yield fail(
                subject,
                f"VM {vm.name} was not found in datacenter {datacenter} of source vCenter {endpoint}, but a VM "
                f"with its UUID is there as {renamed.name}: it was renamed; rename it back or update the plan",
                {**evidence, "found_as": renamed.name},
            )
        else:
            yield fail(
                subject,
                f"VM {vm.name} was not found in datacenter {datacenter} of source vCenter {endpoint}; it may have "
                "been renamed or removed — find it (by IP address or UUID) and update the plan, or take it out "
                "of the wave",
                evidence,
            )


def _drift(vm: VirtualMachine, seen: VMFacts) -> dict[str, tuple[JsonValue, JsonValue]]:
    planned: dict[str, tuple[JsonValue, JsonValue]] = {
        "cpu": (vm.cpu, seen.cpu),
        "memory_mb": (vm.memory_mb, seen.memory_mb),
        "disks_gb": (list(vm.disks_gb), list(seen.disks_gb)),
        "portgroups": ([*sorted(vm.portgroups)], [*sorted(seen.portgroups)]),
        "power": (vm.power.value, seen.power),
    }
    return {name: pair for name, pair in planned.items() if pair[0] != pair[1]}


def _show(value: JsonValue) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


@rule("vm.drift", title="VM matches the plan", severity=Severity.warning)
def vm_drift(ctx: CheckContext) -> Iterator[Outcome]:
    """The VM's size and connections are what the plan says: cpu, memory_mb, disks_gb, portgroups, power.

    A difference is a warning listing each field with the planned and the actual value: the
    migration moves the VM as it is, but capacity, network and order decisions were made from the
    plan. Update the plan (or the VM) so they agree. Portgroups are compared as a set; a portgroup
    that is not in the network map also fails `netmap.mapped`.
    """

    def check(vm: VirtualMachine, subject: Subject, seen: VMFacts) -> Outcome:
        drift = _drift(vm, seen)
        if not drift:
            return ok(subject)
        listed = "; ".join(f"{name}: plan {_show(p)}, actual {_show(a)}" for name, (p, a) in drift.items())
        return fail(
            subject,
            f"{vm.name} differs from the plan ({listed}); update the plan or the VM so they agree",
            {name: {"plan": p, "actual": a} for name, (p, a) in drift.items()},
        )

    yield from _observed(ctx, check)


@rule("vm.placement", title="VM is where the plan says", severity=Severity.warning)
def vm_placement(ctx: CheckContext) -> Iterator[Outcome]:
    """The VM runs on the planned source host, cluster and (home) datastore.

    A VM elsewhere is a warning showing both places: the per-host and per-datastore concurrency
    limits and the storage map were planned from the plan's placement. Check that nothing moved it
    by mistake (DRS, an admin) and update the plan's `host` / `datastore`.
    """

    def check(vm: VirtualMachine, subject: Subject, seen: VMFacts) -> Outcome:
        home = seen.datastores[0] if seen.datastores else None
        moved: dict[str, tuple[str, str | None]] = {}
        if seen.host != vm.host:
            moved["host"] = (vm.host, seen.host)
        if seen.cluster is not None and seen.cluster != ctx.plan.source.cluster:
            moved["cluster"] = (ctx.plan.source.cluster, seen.cluster)
        if home != vm.datastore:
            moved["datastore"] = (vm.datastore, home)
        if not moved:
            return ok(subject)
        listed = "; ".join(f"{name}: plan {p}, actual {a}" for name, (p, a) in moved.items())
        return fail(
            subject,
            f"{vm.name} is not where the plan says ({listed}); check that nothing moved it by mistake and update "
            "the plan's host/datastore",
            {name: {"plan": p, "actual": a} for name, (p, a) in moved.items()},
        )

    yield from _observed(ctx, check)


@rule("vm.snapshots", title="VM has no snapshots", severity=Severity.critical)
def vm_snapshots(ctx: CheckContext) -> Iterator[Outcome]:
    """The VM has no snapshots.

    A VM with a snapshot chain is not relocated: consolidate or delete its snapshots (after
    checking with its owner that none is needed) before the wave.
    """

    def check(vm: VirtualMachine, subject: Subject, seen: VMFacts) -> Outcome:
        if not seen.snapshots:
            return ok(subject)
        count = len(seen.snapshots)
        return fail(
            subject,
            f"{vm.name} has {count} snapshot{'s' if count != 1 else ''} ({_names(seen.snapshots)}); delete or "
            "consolidate them before the wave",
            {"snapshots": list(seen.snapshots)},
        )

    yield from _observed(ctx, check)


@rule("vm.media", title="No CD-ROM/ISO connected", severity=Severity.critical)
def vm_media(ctx: CheckContext) -> Iterator[Outcome]:
    """No CD-ROM or floppy device of the VM is connected (or connects at power on).

    A connected ISO or host device ties the VM to a datastore or host that does not move with it.
    Disconnect the media (set the device to "client device" and not connected) before the wave.
    """

    def check(vm: VirtualMachine, subject: Subject, seen: VMFacts) -> Outcome:
        if not seen.connected_media:
            return ok(subject)
        return fail(
            subject,
            f"{vm.name} has connected CD-ROM/ISO media ({_names(seen.connected_media)}); disconnect them before "
            "the wave",
            {"devices": list(seen.connected_media)},
        )

    yield from _observed(ctx, check)


@rule("vm.shared_disks", title="No RDM or shared disks", severity=Severity.critical)
def vm_shared_disks(ctx: CheckContext) -> Iterator[Outcome]:
    """The VM has no raw device mapping (RDM), multi-writer or shared-bus disk.

    Such disks cannot be relocated with the VM. Convert them to virtual disks, or take the VM out
    of the wave and move it by hand with its storage team.
    """

    def check(vm: VirtualMachine, subject: Subject, seen: VMFacts) -> Outcome:
        if not seen.shared_disks:
            return ok(subject)
        return fail(
            subject,
            f"{vm.name} has RDM or shared disks ({_names(seen.shared_disks)}) that cannot be relocated; convert "
            "them to virtual disks or take the VM out of the wave",
            {"disks": list(seen.shared_disks)},
        )

    yield from _observed(ctx, check)


@rule("vm.passthrough", title="No passthrough devices", severity=Severity.critical)
def vm_passthrough(ctx: CheckContext) -> Iterator[Outcome]:
    """The VM has no USB, serial, parallel or PCI passthrough device.

    Such devices bind the VM to its host. Remove them (check with the VM's owner what uses them:
    licence dongles, modems), or take the VM out of the wave.
    """

    def check(vm: VirtualMachine, subject: Subject, seen: VMFacts) -> Outcome:
        if not seen.passthrough:
            return ok(subject)
        return fail(
            subject,
            f"{vm.name} has passthrough devices ({_names(seen.passthrough)}) that bind it to its host; remove "
            "them or take the VM out of the wave",
            {"devices": list(seen.passthrough)},
        )

    yield from _observed(ctx, check)


@rule("vm.tools", title="VMware Tools running", severity=Severity.critical)
def vm_tools(ctx: CheckContext) -> Iterator[Outcome]:
    """A powered-on VM has VMware Tools running (the cutover shuts the guest down through them and
    checks it comes back).

    Critical when the VM is powered on and Tools are not running or not installed: start or
    install them. Warning when they run but are out of date (`old`): upgrade them when convenient.
    A powered-off or suspended VM passes.
    """

    def check(vm: VirtualMachine, subject: Subject, seen: VMFacts) -> Outcome:
        if seen.power != "powered_on" or seen.tools == "ok":
            return ok(subject)
        evidence: Evidence = {"power": seen.power, "tools": seen.tools}
        if seen.tools == "old":
            return fail(
                subject,
                f"{vm.name} runs out-of-date VMware Tools; upgrade them when convenient",
                evidence,
                severity=Severity.warning,
            )
        state = "not running" if seen.tools == "not_running" else "not installed"
        action = "start" if seen.tools == "not_running" else "install"
        return fail(
            subject,
            f"{vm.name} is powered on but VMware Tools are {state}; {action} them before the wave",
            evidence,
        )

    yield from _observed(ctx, check)


@rule("vm.name_conflict", title="Name free in the target folder", severity=Severity.critical)
def vm_name_conflict(ctx: CheckContext) -> Iterator[Outcome]:
    """No VM of the same name exists in the target folder (`target.vm_folder` in `target.datacenter`).

    The migrated VM would clash with it. Find out what it is (a leftover of an earlier attempt, a
    namesake from another municipality) and rename or remove it there. The source VM itself is not
    a conflict even when the target vCenter also shows the source datacenter (as in the lab, where
    one simulator serves both).
    """
    inventory, reason = ctx.inventory("target")
    datacenter, folder = ctx.plan.target.datacenter, ctx.plan.target.vm_folder
    for vm in ctx.vms:
        subject = vm_subject(vm)
        if inventory is None:
            yield skip(subject, reason)
            continue
        clash = next(
            (
                v
                for v in inventory.vms.values()
                if v.name == vm.name and v.datacenter == datacenter and v.folder == folder
            ),
            None,
        )
        if clash is None:
            yield ok(subject)
            continue
        yield fail(
            subject,
            f"A VM named {vm.name} already exists in folder {folder} of datacenter {datacenter} (target vCenter "
            f"{ctx.plan.target.vcenter.name}); rename or remove it there before the wave",
            {"datacenter": datacenter, "folder": folder, "moid": clash.moid, "power": clash.power},
        )
