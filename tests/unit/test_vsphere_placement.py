"""What the VM roles decide about one VM (overflyt.providers.vsphere.placement): the exact
refusals, post-move problems and reports that vm_migrate and vm_rollback hand to overflyt, whose
wording overflyt.steps and the lab tests rely on."""

from __future__ import annotations

from typing import Any

import pytest

from overflyt.precheck.facts import VCenterFacts, VMFacts
from overflyt.providers.vsphere import (
    Placement,
    RelocationTarget,
    Wanted,
    check_migrated,
    check_restored,
    locate_for_migration,
    locate_for_rollback,
    relocation_of,
    report_migration,
    report_rollback,
    wanted_after_migration,
)

VM = "ndj-print01"
SRC, TGT, FOLDER = "NDJ-DC", "MJ-DC1", "Kommuner/707-Norddjurs"


def vm(datacenter: str, moid: str, **fields: Any) -> VMFacts:
    values: dict[str, Any] = {
        "name": VM, "moid": moid, "datacenter": datacenter, "cluster": "NDJ-Cluster-01", "host": "ndj-esx02",
        "folder": "Servere", "datastores": ["ndj-ds-grenaa-01"], "cpu": 2, "memory_mb": 2048, "disks_gb": [40],
        "portgroups": ["VM-Faelles-10"], "power": "powered_on", "tools": "ok",
    }  # fmt: skip
    values.update(fields)
    return VMFacts(**values)


def facts(*vms: VMFacts) -> VCenterFacts:
    return VCenterFacts(
        name="vc", url="https://vc/sdk", reachable=True, vms={f"{v.datacenter}/{v.moid}": v for v in vms}
    )


AT_TARGET = {
    "cluster": "MJ-Kommuner-01", "host": "mj-esx01", "folder": FOLDER,
    "datastores": ["mj-ds-gold-01"], "portgroups": ["NDJ-707-Faelles"],
}  # fmt: skip
WANTED = Wanted(
    datacenter=TGT, cluster="MJ-Kommuner-01", host="mj-esx01", datastore="mj-ds-gold-01", folder=FOLDER,
    portgroups=["NDJ-707-Faelles"], power="powered_on",
)  # fmt: skip
RECORDED = Placement(
    vm=VM, moid="vm-52", datacenter=SRC, cluster="NDJ-Cluster-01", host="ndj-esx02", datastore="ndj-ds-grenaa-01",
    folder="Servere", portgroups=["VM-Faelles-10"], power="powered_on",
)  # fmt: skip
EMPTY = facts()


# -- locate for a migration -----------------------------------------------------------------------


def test_a_vm_in_the_source_is_located_there_with_its_placement() -> None:
    other = vm(SRC, "vm-9", name="ndj-dc01")
    located = locate_for_migration(VM, facts(other, vm(SRC, "vm-52")), EMPTY, SRC, TGT)
    assert (located.refusal, located.side, located.datacenter) == (None, "source", SRC)
    assert located.placement == RECORDED


def test_a_vm_moved_already_is_located_in_the_target() -> None:
    located = locate_for_migration(VM, EMPTY, facts(vm(TGT, "vm-1043", **AT_TARGET)), SRC, TGT)
    assert (located.refusal, located.side, located.datacenter) == (None, "target", TGT)
    assert located.placement is not None
    assert (located.placement.moid, located.placement.host) == ("vm-1043", "mj-esx01")


def test_a_vm_in_another_datacenter_of_the_source_is_not_found() -> None:
    located = locate_for_migration(VM, facts(vm("OTHER-DC", "vm-52")), EMPTY, SRC, TGT)
    assert located.refusal == f"vm {VM}: not found in datacenter {SRC} nor in datacenter {TGT}"
    assert (located.placement, located.side, located.datacenter) == (None, None, None)


def test_two_of_a_name_in_the_source_are_refused_naming_both() -> None:
    located = locate_for_migration(VM, facts(vm(SRC, "vm-52"), vm(SRC, "vm-53")), EMPTY, SRC, TGT)
    assert located.refusal == f"vm {VM}: 2 VMs of that name in datacenter {SRC} (vm-52, vm-53): not moving any of them"
    assert located.placement is not None
    assert located.placement.moid == "vm-52"


def test_a_name_clash_in_the_target_is_refused_as_a_possible_leftover() -> None:
    clash = vm(TGT, "vm-2001", folder=FOLDER, power="powered_off")
    located = locate_for_migration(VM, facts(vm(SRC, "vm-52")), facts(clash), SRC, TGT)
    assert located.refusal == (
        f"vm {VM}: datacenter {TGT} already holds a VM of that name (folder {FOLDER}, powered_off, vm-2001) while "
        f"the VM is still in {SRC} (vm-52): not moving it onto a name clash (a leftover of an earlier attempt? a "
        "rollback removes provable leftovers)"
    )
    assert located.side == "source"


def test_a_name_clash_in_the_target_root_folder_says_slash() -> None:
    located = locate_for_migration(VM, facts(vm(SRC, "vm-52")), facts(vm(TGT, "vm-2001", folder="")), SRC, TGT)
    assert located.refusal is not None
    assert "(folder /, powered_on, vm-2001)" in located.refusal


def test_two_of_a_name_in_the_target_are_refused() -> None:
    located = locate_for_migration(VM, EMPTY, facts(vm(TGT, "vm-1"), vm(TGT, "vm-2")), SRC, TGT)
    assert located.refusal == f"vm {VM}: 2 VMs of that name in datacenter {TGT} (vm-1, vm-2)"


def test_refusals_apply_in_order_two_in_the_source_before_the_clash() -> None:
    located = locate_for_migration(VM, facts(vm(SRC, "vm-1"), vm(SRC, "vm-2")), facts(vm(TGT, "vm-3")), SRC, TGT)
    assert located.refusal == f"vm {VM}: 2 VMs of that name in datacenter {SRC} (vm-1, vm-2): not moving any of them"


# -- locate for a rollback ------------------------------------------------------------------------


def test_a_vm_in_the_target_is_put_back_from_there() -> None:
    located = locate_for_rollback(VM, EMPTY, facts(vm(TGT, "vm-1043", **AT_TARGET)), RECORDED, TGT, FOLDER)
    assert (located.refusal, located.side, located.datacenter, located.leftover) == (None, "target", TGT, False)


def test_a_powered_off_copy_in_the_target_folder_beside_the_recorded_vm_is_a_leftover() -> None:
    copy = vm(TGT, "vm-2001", folder=FOLDER, power="powered_off")
    located = locate_for_rollback(VM, facts(vm(SRC, "vm-52")), facts(copy), RECORDED, TGT, FOLDER)
    assert (located.refusal, located.side, located.datacenter, located.leftover) == (None, "source", SRC, True)
    assert located.placement == RECORDED


@pytest.mark.parametrize(
    ("source_moid", "copy"),
    [
        ("vm-52", {"power": "powered_on", "folder": FOLDER}),  # powered on: not a leftover
        ("vm-52", {"power": "powered_off", "folder": "Elsewhere"}),  # not in the target folder
        ("vm-99", {"power": "powered_off", "folder": FOLDER}),  # the source VM is not the recorded one
    ],
)
def test_two_of_a_name_that_are_not_provably_a_leftover_are_refused(source_moid: str, copy: dict[str, str]) -> None:
    there = vm(TGT, "vm-2001", **copy)
    located = locate_for_rollback(VM, facts(vm(SRC, source_moid)), facts(there), RECORDED, TGT, FOLDER)
    assert located.leftover is False
    assert located.refusal == (
        f"vm {VM}: a VM of that name is in {SRC} (folder Servere, powered_on, {source_moid}) and in {TGT} "
        f"(folder {copy['folder']}, {copy['power']}, vm-2001); the recorded one is vm-52: cannot prove which is a "
        f"leftover (only a VM that is not powered on, directly in folder {FOLDER}, beside the recorded VM is): "
        "resolve by hand"
    )


def test_a_vm_in_neither_datacenter_cannot_be_put_back() -> None:
    located = locate_for_rollback(VM, EMPTY, EMPTY, RECORDED, TGT, FOLDER)
    assert located.refusal == f"vm {VM}: in neither datacenter {SRC} nor {TGT}: cannot put it back"


def test_two_of_a_name_in_either_datacenter_are_refused_for_a_rollback() -> None:
    two = facts(vm(SRC, "vm-52"), vm(SRC, "vm-53"))
    assert locate_for_rollback(VM, two, EMPTY, RECORDED, TGT, FOLDER).refusal == (
        f"vm {VM}: 2 VMs of that name in datacenter {SRC} (vm-52, vm-53)"
    )
    two = facts(vm(TGT, "vm-1"), vm(TGT, "vm-2", folder=FOLDER, power="powered_off"))
    assert locate_for_rollback(VM, facts(vm(SRC, "vm-52")), two, RECORDED, TGT, FOLDER).refusal == (
        f"vm {VM}: 2 VMs of that name in datacenter {TGT} (vm-1, vm-2)"
    )


# -- after a migration ----------------------------------------------------------------------------


def test_a_vm_where_it_should_be_has_no_problem_and_its_placement() -> None:
    checked = check_migrated(VM, facts(vm(TGT, "vm-1043", **AT_TARGET)), WANTED, "ok")
    assert (checked.problems, checked.message) == ([], None)
    assert checked.placement is not None
    assert (checked.placement.moid, checked.placement.folder) == ("vm-1043", FOLDER)


def test_every_difference_after_a_move_is_named_in_order() -> None:
    wrong = vm(TGT, "vm-1043", **{**AT_TARGET, "cluster": None, "host": "mj-esx02", "datastores": [], "folder": "",
                                  "portgroups": ["A", "B"], "power": "suspended"})  # fmt: skip
    checked = check_migrated(VM, facts(wrong), WANTED, "ok")
    assert checked.message == (
        f"vm {VM} is not as it should be after its move: cluster is None, not MJ-Kommuner-01; host is mj-esx02, "
        "not mj-esx01; datastore is , not mj-ds-gold-01; folder is , not Kommuner/707-Norddjurs; portgroups are "
        "A, B, not NDJ-707-Faelles; power is suspended, not powered_on as before the move"
    )
    assert checked.placement is not None  # one VM of its name: read, even when wrong


@pytest.mark.parametrize(
    ("power", "tools", "plan", "problem"),
    [
        ("powered_on", "not_running", "ok", "VMware Tools are not_running, the plan says ok"),
        ("powered_on", "not_running", "not_running", None),  # the plan knows
        ("powered_off", "not_running", "ok", None),  # off: tools never run
    ],
)
def test_tools_must_run_in_a_powered_on_vm_whose_plan_says_ok(
    power: str, tools: str, plan: str, problem: str | None
) -> None:
    now = vm(TGT, "vm-1043", **AT_TARGET, power=power, tools=tools)
    checked = check_migrated(VM, facts(now), WANTED.model_copy(update={"power": power}), plan)
    assert checked.problems == ([problem] if problem else [])


def test_not_exactly_one_after_the_move_is_a_problem() -> None:
    none = check_migrated(VM, EMPTY, WANTED, "ok")
    assert (none.message, none.placement) == (
        f"vm {VM} is not as it should be after its move: 0 VMs of that name in datacenter {TGT}",
        None,
    )
    two = check_migrated(VM, facts(vm(TGT, "vm-1", **AT_TARGET), vm(TGT, "vm-2")), WANTED, "ok")
    assert two.problems == [f"2 VMs of that name in datacenter {TGT}"]  # the first one is as wanted
    assert two.placement is None


# -- after a rollback -----------------------------------------------------------------------------


def test_a_vm_exactly_back_and_gone_from_the_target_has_no_problem() -> None:
    wanted = Wanted(**RECORDED.model_dump(exclude={"vm", "moid"}))
    checked = check_restored(VM, facts(vm(SRC, "vm-52")), wanted, EMPTY, TGT)
    assert (checked.message, checked.placement) == (None, RECORDED)


def test_a_rollback_names_what_differs_and_what_is_left_in_the_target() -> None:
    wanted = Wanted(**RECORDED.model_dump(exclude={"vm", "moid"}))
    now = vm(SRC, "vm-52", power="powered_off", host="ndj-esx01")
    left = facts(vm(TGT, "vm-2001"), vm(TGT, "vm-2002"))
    checked = check_restored(VM, facts(now), wanted, left, TGT)
    assert checked.message == (
        f"vm {VM} is not back as recorded: host is ndj-esx01, not ndj-esx02; power is powered_off, not powered_on; "
        f"a VM of that name is still in {TGT} (vm-2001, vm-2002)"
    )


# -- reports --------------------------------------------------------------------------------------

BEFORE = RECORDED.model_dump(mode="json", exclude={"moid"})
AFTER = {**BEFORE, "datacenter": TGT, "cluster": "MJ-Kommuner-01", "host": "mj-esx01", "datastore": "mj-ds-gold-01",
         "folder": FOLDER, "portgroups": ["NDJ-707-Faelles"]}  # fmt: skip
MOVE = {"changed": True, "before": BEFORE, "after": AFTER, "duration_s": 2.5, "msg": "moved", "cross_vcenter": True}
TARGET = RelocationTarget(
    datacenter=TGT, cluster="MJ-Kommuner-01", host="mj-esx01", datastore="mj-ds-gold-01", folder=FOLDER,
    portgroups={"VM-Faelles-10": "NDJ-707-Faelles"},
)  # fmt: skip
THERE = facts(vm(TGT, "vm-1043", **AT_TARGET))
READ_AFTER = Placement(**{**AFTER, "moid": "vm-1043"})


def migrated(move: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """report_migration of RECORDED moved by ``move``, as a role's set_stats entry."""
    moved = relocation_of(move if move is not None else MOVE, "vm-52")
    args: dict[str, Any] = {"power_changed": False, "after": THERE, "check_mode": False, **kwargs}
    return report_migration(VM, TARGET, "ok", RECORDED, moved, **args).model_dump(mode="json")


def test_the_relocation_result_gets_the_located_moid_and_none_when_it_failed_or_did_not_run() -> None:
    moved = relocation_of(MOVE, "vm-52")
    assert moved is not None
    assert (moved.changed, moved.before, moved.after.moid, moved.seconds) == (True, RECORDED, "vm-52", 2.5)
    assert relocation_of({}, "vm-52") is None
    assert relocation_of({"failed": True, "msg": "no host"}, "vm-52") is None
    assert relocation_of({"changed": False, "skipped": True}, "vm-52") is None


def test_a_migrated_vm_is_checked_against_the_target_its_nics_and_its_power_before() -> None:
    moved = relocation_of({**MOVE, "after": {**AFTER, "power": "powered_off", "portgroups": ["X"]}}, "vm-52")
    assert moved is not None
    assert wanted_after_migration(TARGET, moved) == WANTED.model_copy(update={"portgroups": ["X"]})


def test_a_moved_vm_reports_where_it_was_and_where_it_was_read_after() -> None:
    report = migrated()
    assert report == {
        "status": "moved", "before": RECORDED.model_dump(mode="json"), "after": READ_AFTER.model_dump(mode="json"),
        "seconds": 2.5, "error": None,
    }  # fmt: skip
    assert list(report) == ["status", "before", "after", "seconds", "error"]


@pytest.mark.parametrize(
    ("changed", "power_changed", "check_mode", "status"),
    [
        (True, False, True, "would_move"),
        (False, False, False, "unchanged"),
        (False, True, False, "moved"),  # only the power state was brought back
        (False, False, True, "unchanged"),
    ],
)
def test_migration_status(changed: bool, power_changed: bool, check_mode: bool, status: str) -> None:
    report = migrated({**MOVE, "changed": changed}, power_changed=power_changed, after=None, check_mode=check_mode)
    assert report["status"] == status
    assert report["after"] == {**AFTER, "moid": "vm-52"}  # not read again: where the move put it


def test_a_vm_wrong_after_its_move_fails_its_report_with_the_problems() -> None:
    wrong = facts(vm(TGT, "vm-1043", **{**AT_TARGET, "host": "mj-esx02"}))
    report = migrated(after=wrong)
    assert report["status"] == "failed"
    assert report["error"] == f"vm {VM} is not as it should be after its move: host is mj-esx02, not mj-esx01"
    assert report["after"] == {**AFTER, "host": "mj-esx02", "moid": "vm-1043"}  # as read
    gone = migrated(after=EMPTY)
    assert gone["error"] == f"vm {VM} is not as it should be after its move: 0 VMs of that name in datacenter {TGT}"
    assert gone["after"] == {**AFTER, "moid": "vm-52"}  # not read: where the move put it
    unmoved = migrated({**MOVE, "changed": False}, after=wrong)
    assert (unmoved["status"], unmoved["after"]) == ("failed", None)  # nothing moved: no after


def test_a_refused_vm_reports_where_it_was_found_and_no_after() -> None:
    report = report_migration(
        VM, TARGET, "ok", RECORDED, None, power_changed=False, after=None, check_mode=False, error="vm x: no"
    )
    assert report.model_dump(mode="json") == {
        "status": "failed", "before": RECORDED.model_dump(mode="json"), "after": None, "seconds": 0.0,
        "error": "vm x: no",
    }  # fmt: skip
    missing = report_migration(
        VM, TARGET, "ok", None, None, power_changed=False, after=None, check_mode=False, error="e"
    )
    assert (missing.before, missing.after) == (None, None)


def test_an_earlier_failure_is_the_error_even_when_the_check_finds_more() -> None:
    report = migrated(after=EMPTY, error="vCenter refused setting vm ndj-print01 powered_on")
    assert (report["status"], report["error"]) == ("failed", "vCenter refused setting vm ndj-print01 powered_on")


def test_a_report_without_an_error_needs_the_move() -> None:
    with pytest.raises(ValueError, match="needs the move's result"):
        report_migration(VM, TARGET, "ok", RECORDED, None, power_changed=False, after=None, check_mode=False)


BACK = {**MOVE, "before": AFTER, "after": {**BEFORE, "power": "powered_off"}}
BACK_THERE = (facts(vm(SRC, "vm-52")), EMPTY)


def restored(move: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """report_rollback of the VM found at READ_AFTER, moved back by ``move``, as a set_stats entry."""
    moved = relocation_of(move if move is not None else BACK, "vm-1043")
    args: dict[str, Any] = {
        "power_changed": False, "leftover_removed": False, "after": BACK_THERE, "check_mode": False, **kwargs,
    }  # fmt: skip
    return report_rollback(VM, RECORDED, TGT, READ_AFTER, moved, **args).model_dump(mode="json")


def test_a_restored_vm_reports_where_it_was_found_and_where_it_was_read_after() -> None:
    report = restored(power_changed=True)
    assert report == {
        "status": "restored", "before": READ_AFTER.model_dump(mode="json"), "after": RECORDED.model_dump(mode="json"),
        "seconds": 2.5, "leftover_removed": False, "error": None,
    }  # fmt: skip
    assert list(report) == ["status", "before", "after", "seconds", "leftover_removed", "error"]


def test_a_restored_vm_not_read_again_reports_its_recorded_power() -> None:
    report = restored(after=None)
    assert report["after"] == {**BEFORE, "moid": "vm-1043", "power": "powered_on"}


@pytest.mark.parametrize(
    ("changed", "power_changed", "leftover_removed", "check_mode", "status"),
    [
        (False, False, False, False, "unchanged"),
        (False, False, True, False, "restored"),  # only the leftover was removed
        (True, False, False, True, "would_restore"),
        (False, True, False, False, "restored"),
    ],
)
def test_rollback_status(
    changed: bool, power_changed: bool, leftover_removed: bool, check_mode: bool, status: str
) -> None:
    report = restored(
        {**BACK, "changed": changed}, power_changed=power_changed, leftover_removed=leftover_removed,
        check_mode=check_mode,
    )  # fmt: skip
    assert (report["status"], report["leftover_removed"]) == (status, leftover_removed)


def test_a_vm_not_back_fails_its_report_and_one_not_moved_has_no_after() -> None:
    still = (facts(vm(SRC, "vm-52")), facts(vm(TGT, "vm-2001")))
    report = restored(after=still)
    assert (report["status"], report["after"]) == ("failed", RECORDED.model_dump(mode="json"))
    assert report["error"] == f"vm {VM} is not back as recorded: a VM of that name is still in {TGT} (vm-2001)"
    refused = report_rollback(
        VM, RECORDED, TGT, RECORDED, None, power_changed=False, leftover_removed=True, after=None,
        check_mode=False, error="vm x: refused",
    )  # fmt: skip
    assert refused.model_dump(mode="json") == {
        "status": "failed", "before": RECORDED.model_dump(mode="json"), "after": None, "seconds": 0.0,
        "leftover_removed": True, "error": "vm x: refused",
    }  # fmt: skip


def test_a_rollback_report_without_an_error_needs_the_move() -> None:
    with pytest.raises(ValueError, match="needs the move's result"):
        report_rollback(
            VM, RECORDED, TGT, RECORDED, None, power_changed=False, leftover_removed=False, after=None,
            check_mode=False,
        )  # fmt: skip
