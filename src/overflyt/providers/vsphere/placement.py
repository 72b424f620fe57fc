"""What the VM roles decide about one VM, as pure functions of what was read and done.

The roles ``vm_migrate`` and ``vm_rollback`` read the facts of their VMs in both datacenters once
per launch or batch (and again after its moves) with ``overflyt.vsphere.estate_facts``, scoped to
those VMs (every VM of their names, so a duplicate still shows); per VM they then ask,
through the ``overflyt.vsphere`` modules ``vm_locate`` (before the move) and ``vm_report`` (after):

* :func:`locate_for_migration` / :func:`locate_for_rollback` — where the VM is (source or
  target datacenter, its placement) and why it must be left alone, if it must: missing,
  ambiguous, or a VM of its name in the way (a rollback also proves a leftover it may delete);
* :func:`report_migration` / :func:`report_rollback` — the entry the role hands overflyt through
  ``set_stats`` (``overflyt.steps`` reads it; its shape and wording are that contract), after
  :func:`check_migrated` / :func:`check_restored` found what is wrong with the VM after the moves.

No I/O, no pyVmomi: facts in, decisions out. Messages are the ones users see in reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from overflyt.precheck.facts import VCenterFacts, VMFacts
from overflyt.providers.vsphere.models import Placement, PowerState, RelocationTarget, ToolsState

Side = Literal["source", "target"]
MoveStatus = Literal["moved", "unchanged", "would_move", "failed"]
RestoreStatus = Literal["restored", "unchanged", "would_restore", "failed"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Located(_Model):
    """Where a VM is, as read before a batch's moves, and whether the role may go on with it.

    ``placement``/``side``/``datacenter``: the VM in the source datacenter, else in the target
    one (None when in neither). ``refusal``: why nothing is done with it (None: go on).
    ``leftover`` (rollback only): the VM of its name in the target folder is provably a leftover
    of a half-done move and may be deleted."""

    vm: str
    placement: Placement | None
    side: Side | None
    datacenter: str | None
    leftover: bool = False
    refusal: str | None = None


class Wanted(_Model):
    """Where a VM should be after its move, and in which power state."""

    datacenter: str
    cluster: str | None
    host: str
    datastore: str
    folder: str
    portgroups: list[str]
    power: PowerState


class Checked(_Model):
    """A VM as read after the moves. ``placement``: the VM where it should be (None unless exactly
    one VM of its name is in that datacenter). ``message``: what is wrong (None: nothing)."""

    vm: str
    placement: Placement | None
    problems: list[str]
    message: str | None


class Relocated(_Model):
    """What ``overflyt.vsphere.vm_relocate`` reported for a VM that it moved (or found in place)."""

    changed: bool
    before: Placement
    after: Placement
    seconds: float


class MoveReport(_Model):
    """vm_migrate's report of one VM (``overflyt_result.vms[<vm>]``)."""

    status: MoveStatus
    before: Placement | None
    after: Placement | None
    seconds: float
    error: str | None


class RestoreReport(_Model):
    """vm_rollback's report of one VM (``overflyt_result.vms[<vm>]``)."""

    status: RestoreStatus
    before: Placement | None
    after: Placement | None
    seconds: float
    leftover_removed: bool
    error: str | None


# -- reading facts --------------------------------------------------------------------------------


def vms_named(facts: VCenterFacts, vm: str, datacenter: str) -> list[VMFacts]:
    """The VMs called ``vm`` in ``datacenter`` of ``facts``, in the order they were read."""
    return [v for v in facts.vms.values() if v.name == vm and v.datacenter == datacenter]


def placement_of(vm: VMFacts) -> Placement:
    """A VM's facts as a placement (its home datastore; "" when it has none)."""
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


def _moids(vms: list[VMFacts]) -> str:
    return ", ".join(v.moid for v in vms)


def _found(vm: str, in_source: list[VMFacts], in_target: list[VMFacts], source_dc: str, target_dc: str) -> Located:
    if in_source:
        return Located(vm=vm, placement=placement_of(in_source[0]), side="source", datacenter=source_dc)
    if in_target:
        return Located(vm=vm, placement=placement_of(in_target[0]), side="target", datacenter=target_dc)
    return Located(vm=vm, placement=None, side=None, datacenter=None)


# -- before the moves -----------------------------------------------------------------------------


def locate_for_migration(
    vm: str, source: VCenterFacts, target: VCenterFacts, source_datacenter: str, target_datacenter: str
) -> Located:
    """Find ``vm`` for its move: in the source datacenter, or (moved already) in the target one.

    Refused, the first that applies: in neither; more than one of its name in the source; one of
    its name in the target while it is still in the source (a leftover of an earlier attempt:
    never move onto a name clash); more than one of its name in the target."""
    src = vms_named(source, vm, source_datacenter)
    tgt = vms_named(target, vm, target_datacenter)
    refusal: str | None = None
    if not src and not tgt:
        refusal = f"vm {vm}: not found in datacenter {source_datacenter} nor in datacenter {target_datacenter}"
    elif len(src) > 1:
        refusal = (
            f"vm {vm}: {len(src)} VMs of that name in datacenter {source_datacenter} ({_moids(src)}): "
            "not moving any of them"
        )
    elif src and tgt:
        clash = tgt[0]
        refusal = (
            f"vm {vm}: datacenter {target_datacenter} already holds a VM of that name (folder {clash.folder or '/'}, "
            f"{clash.power}, {clash.moid}) while the VM is still in {source_datacenter} ({src[0].moid}): "
            "not moving it onto a name clash (a leftover of an earlier attempt? a rollback removes provable leftovers)"
        )
    elif len(tgt) > 1:
        refusal = f"vm {vm}: {len(tgt)} VMs of that name in datacenter {target_datacenter} ({_moids(tgt)})"
    found = _found(vm, src, tgt, source_datacenter, target_datacenter)
    return found.model_copy(update={"refusal": refusal})


def locate_for_rollback(
    vm: str,
    source: VCenterFacts,
    target: VCenterFacts,
    recorded: Placement,
    target_datacenter: str,
    target_folder: str,
) -> Located:
    """Find ``vm`` to put it back at ``recorded``: in its recorded (source) datacenter, or in the
    target one.

    A VM of its name in the target is provably a leftover of a half-done move only when the VM
    itself is in the source datacenter with its recorded managed object id, and the copy is the
    only one, directly in ``target_folder`` and not powered on. Refused, the first that applies:
    in neither; more than one of its name in either datacenter; one in each that is not such a
    leftover (nothing is deleted on a guess)."""
    source_dc = recorded.datacenter
    src = vms_named(source, vm, source_dc)
    tgt = vms_named(target, vm, target_datacenter)
    leftover = (
        len(src) == 1
        and src[0].moid == recorded.moid
        and len(tgt) == 1
        and tgt[0].folder == target_folder
        and tgt[0].power != "powered_on"
    )
    refusal: str | None = None
    if not src and not tgt:
        refusal = f"vm {vm}: in neither datacenter {source_dc} nor {target_datacenter}: cannot put it back"
    elif len(src) > 1:
        refusal = f"vm {vm}: {len(src)} VMs of that name in datacenter {source_dc} ({_moids(src)})"
    elif len(tgt) > 1:
        refusal = f"vm {vm}: {len(tgt)} VMs of that name in datacenter {target_datacenter} ({_moids(tgt)})"
    elif src and tgt and not leftover:
        here, there = src[0], tgt[0]
        refusal = (
            f"vm {vm}: a VM of that name is in {source_dc} (folder {here.folder or '/'}, {here.power}, {here.moid}) "
            f"and in {target_datacenter} (folder {there.folder or '/'}, {there.power}, {there.moid}); "
            f"the recorded one is {recorded.moid}: cannot prove which is a leftover (only a VM that is not "
            f"powered on, directly in folder {target_folder}, beside the recorded VM is): resolve by hand"
        )
    found = _found(vm, src, tgt, source_dc, target_datacenter)
    return found.model_copy(update={"leftover": leftover, "refusal": refusal})


# -- after the moves ------------------------------------------------------------------------------


def _differences(it: VMFacts, wanted: Wanted) -> list[str]:
    datastore = it.datastores[0] if it.datastores else ""
    problems: list[str] = []
    if it.cluster != wanted.cluster:
        problems.append(f"cluster is {it.cluster}, not {wanted.cluster}")
    if it.host != wanted.host:
        problems.append(f"host is {it.host}, not {wanted.host}")
    if datastore != wanted.datastore:
        problems.append(f"datastore is {datastore}, not {wanted.datastore}")
    if it.folder != wanted.folder:
        problems.append(f"folder is {it.folder}, not {wanted.folder}")
    if it.portgroups != wanted.portgroups:
        problems.append(f"portgroups are {', '.join(it.portgroups)}, not {', '.join(wanted.portgroups)}")
    return problems


def _checked(vm: str, now: list[VMFacts], problems: list[str], heading: str) -> Checked:
    return Checked(
        vm=vm,
        placement=placement_of(now[0]) if len(now) == 1 else None,
        problems=problems,
        message=f"{heading}: {'; '.join(problems)}" if problems else None,
    )


def _where_it_is(facts: VCenterFacts, vm: str, wanted: Wanted) -> tuple[list[VMFacts], list[str]]:
    """The VMs named ``vm`` in ``wanted``'s datacenter, and what is wrong with where they are: not
    exactly one, or its placement other than ``wanted``."""
    now = vms_named(facts, vm, wanted.datacenter)
    problems: list[str] = []
    if len(now) != 1:
        problems.append(f"{len(now)} VMs of that name in datacenter {wanted.datacenter}")
    if now:
        problems += _differences(now[0], wanted)
    return now, problems


def check_migrated(vm: str, facts: VCenterFacts, wanted: Wanted, tools: ToolsState) -> Checked:
    """What is wrong with ``vm`` after its move, read from the target's ``facts``: not exactly one
    of its name in the target datacenter, placement or power other than ``wanted`` (its power
    before the move), or VMware Tools not running in a powered-on VM whose ``tools`` the plan
    says are ok."""
    now, problems = _where_it_is(facts, vm, wanted)
    if now:
        it = now[0]
        if it.power != wanted.power:
            problems.append(f"power is {it.power}, not {wanted.power} as before the move")
        if it.power == "powered_on" and tools == "ok" and it.tools != "ok":
            problems.append(f"VMware Tools are {it.tools}, the plan says ok")
    return _checked(vm, now, problems, f"vm {vm} is not as it should be after its move")


def check_restored(
    vm: str, facts: VCenterFacts, wanted: Wanted, moved_from: VCenterFacts, moved_from_datacenter: str
) -> Checked:
    """What is wrong with ``vm`` after its rollback, read from the source's ``facts``: not exactly
    one of its name in its recorded datacenter, placement or power other than recorded
    (``wanted``), or a VM of its name still in ``moved_from_datacenter`` of ``moved_from``."""
    now, problems = _where_it_is(facts, vm, wanted)
    if now and now[0].power != wanted.power:
        problems.append(f"power is {now[0].power}, not {wanted.power}")
    left = vms_named(moved_from, vm, moved_from_datacenter)
    if left:
        problems.append(f"a VM of that name is still in {moved_from_datacenter} ({_moids(left)})")
    return _checked(vm, now, problems, f"vm {vm} is not back as recorded")


# -- the report -----------------------------------------------------------------------------------


def relocation_of(result: Mapping[str, Any], moid: str) -> Relocated | None:
    """vm_relocate's registered ``result`` (placements without moid; ``moid`` is the VM's as
    located), or None when it did not run or failed."""
    if not result or result.get("failed") or "before" not in result:
        return None
    return Relocated(
        changed=bool(result.get("changed")),
        before=Placement.model_validate({**result["before"], "moid": moid}),
        after=Placement.model_validate({**result["after"], "moid": moid}),
        seconds=float(result.get("duration_s") or 0.0),
    )


def wanted_after_migration(target: RelocationTarget, moved: Relocated) -> Wanted:
    """Where a migrated VM should be: at ``target``, each NIC where the move put it, in the power
    state it had before the move."""
    return Wanted(
        datacenter=target.datacenter,
        cluster=target.cluster,
        host=target.host,
        datastore=target.datastore,
        folder=target.folder,
        portgroups=moved.after.portgroups,
        power=moved.before.power,
    )


def report_migration(
    vm: str,
    target: RelocationTarget,
    tools: ToolsState,
    located: Placement | None,
    moved: Relocated | None,
    *,
    power_changed: bool,
    after: VCenterFacts | None,
    check_mode: bool,
    error: str | None = None,
) -> MoveReport:
    """vm_migrate's report of one VM, checking it first.

    ``located``: where vm_locate found the VM; ``moved``: what vm_relocate reported (None: it did
    not run, or failed); ``after``: the target's facts read after the moves (None: not read, as in
    check mode); ``error``: why the role failed (from its rescue). Without an error, a VM that
    :func:`check_migrated` finds wrong in ``after`` fails with that message.

    ``before`` is where the move found the VM (where it was located when the move did not run);
    ``after`` where it was read after the moves, else where the move put it (would put it, in check
    mode); a failed VM has an ``after`` only when the move changed something."""
    checked = None
    if after is not None and moved is not None:
        checked = check_migrated(vm, after, wanted_after_migration(target, moved), tools)
        error = error if error is not None else checked.message
    read_after = checked.placement if checked is not None else None
    if error is not None:
        return MoveReport(
            status="failed",
            before=moved.before if moved is not None else located,
            after=(read_after or moved.after) if moved is not None and moved.changed else None,
            seconds=moved.seconds if moved is not None else 0.0,
            error=error,
        )
    if moved is None:
        raise ValueError("a report without an error needs the move's result")
    changed = moved.changed or power_changed
    return MoveReport(
        status=("would_move" if check_mode else "moved") if changed else "unchanged",
        before=moved.before,
        after=read_after or moved.after,
        seconds=moved.seconds,
        error=None,
    )


def report_rollback(
    vm: str,
    recorded: Placement,
    target_datacenter: str,
    located: Placement | None,
    moved: Relocated | None,
    *,
    power_changed: bool,
    leftover_removed: bool,
    after: tuple[VCenterFacts, VCenterFacts] | None,
    check_mode: bool,
    error: str | None = None,
) -> RestoreReport:
    """vm_rollback's report of one VM, checking it first; arguments as :func:`report_migration`'s,
    ``recorded`` the placement it is put back to and ``after`` the source's and the target's facts
    read after the moves. Without an error, a VM that :func:`check_restored` finds not back (or
    still in ``target_datacenter``) fails with that message.

    ``before`` is where the VM was located; ``after`` where it was read after the moves, else where
    the move put it, with its recorded power state; a failed VM has an ``after`` only when the move
    ran."""
    checked = None
    if after is not None:
        wanted = Wanted(**recorded.model_dump(exclude={"vm", "moid"}))
        checked = check_restored(vm, after[0], wanted, after[1], target_datacenter)
        error = error if error is not None else checked.message
    placed = None
    if moved is not None:
        read_after = checked.placement if checked is not None else None
        placed = read_after or moved.after.model_copy(update={"power": recorded.power})
    if error is not None:
        return RestoreReport(
            status="failed",
            before=located,
            after=placed,
            seconds=moved.seconds if moved is not None else 0.0,
            leftover_removed=leftover_removed,
            error=error,
        )
    if moved is None:
        raise ValueError("a report without an error needs the move's result")
    changed = moved.changed or power_changed or leftover_removed
    return RestoreReport(
        status=("would_restore" if check_mode else "restored") if changed else "unchanged",
        before=located,
        after=placed,
        seconds=moved.seconds,
        leftover_removed=leftover_removed,
        error=None,
    )
