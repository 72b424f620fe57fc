"""Each pre-check rule: clean facts of the sample plan with one thing changed, and the exact finding.

Every test perturbs one fact (or one plan field) and asserts the rule id, severity, subject,
message and, where it matters, the evidence and the exit code.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from test_precheck_facts import (
    CLEAN,
    CPH,
    FINGERPRINT,
    NOW,
    PLAN,
    check,
    only,
    problems,
    with_device,
    with_source,
    with_target,
    with_target_item,
    with_vm,
    without_target_item,
    without_vm,
)

from overflyt.plan.model import Plan
from overflyt.precheck import exit_code
from overflyt.precheck.facts import VMFacts

KNOWN_HOSTS = "../../lab/.state/known_hosts"


def plan_with(**changes: Any) -> Plan:
    return PLAN.model_copy(update=changes)


def target_with(**changes: Any) -> Plan:
    return plan_with(target=PLAN.target.model_copy(update=changes))


def vm_plan(name: str, **changes: Any) -> Plan:
    return plan_with(vms=[vm.model_copy(update=changes) if vm.name == name else vm for vm in PLAN.vms])


def skipped(report: Any, rule_id: str) -> dict[str, str | None]:
    return {r.subject: r.skipped for r in report.results if r.rule_id == rule_id}


# ---------------------------------------------------------------------------------------------- vCenter


def test_source_vcenter_not_gathered_is_critical_and_skips_its_vm_checks() -> None:
    report = check(CLEAN.model_copy(update={"source": None}))
    finding = only(report)
    assert (finding.id, finding.severity, finding.subject_kind, finding.subject, finding.site) == (
        "vcenter.reachable",
        "critical",
        "vcenter",
        "ndj-vcenter",
        None,
    )
    assert finding.message == (
        "Source vCenter ndj-vcenter was not checked: no facts were gathered from https://127.0.0.1:18443/sdk; "
        "gather facts for it and run the pre-check again"
    )
    assert set(skipped(report, "vm.snapshots").values()) == {
        "source vCenter ndj-vcenter was not checked (see vcenter.reachable)"
    }
    assert report.blocked
    assert exit_code(report) == 1


def test_target_vcenter_unreachable_names_endpoint_and_error() -> None:
    facts = with_target(CLEAN, reachable=False, error="connection refused", vms={}, clusters={})
    finding = only(check(facts))
    assert (finding.id, finding.severity, finding.subject) == ("vcenter.reachable", "critical", "mj-vcenter")
    assert finding.message == (
        "Target vCenter mj-vcenter at https://127.0.0.1:18444/sdk is not reachable: connection refused; check the "
        "address, firewalls and that vCenter is up, then run the pre-check again"
    )
    assert finding.evidence == {"role": "target", "url": "https://127.0.0.1:18444/sdk", "error": "connection refused"}


def test_vcenter_login_refused_is_critical_login_not_reachability() -> None:
    facts = with_source(
        CLEAN,
        reachable=True,
        login_failed=True,
        error="Cannot complete login due to an incorrect user name or password",
    )
    finding = only(check(facts))
    assert (finding.id, finding.severity, finding.subject) == ("vcenter.login", "critical", "ndj-vcenter")
    assert finding.message == (
        "Source vCenter ndj-vcenter refused the login of administrator@vsphere.local: Cannot complete login due to "
        "an incorrect user name or password; check credentials entry ndj-vcenter (user and secret) and that the "
        "account is neither locked nor expired"
    )
    assert "secret" not in finding.evidence
    assert finding.evidence["credentials"] == "ndj-vcenter"


def test_vcenter_insecure_tls_allowed_by_plan_is_a_warning() -> None:
    endpoint = PLAN.target.vcenter.model_copy(
        update={"tls": PLAN.target.vcenter.tls.model_copy(update={"ca_file": None, "insecure": True})}
    )
    report = check(with_target(CLEAN, tls="insecure"), plan=target_with(vcenter=endpoint))
    finding = only(report)
    assert (finding.id, finding.severity, finding.subject) == ("vcenter.tls", "warning", "mj-vcenter")
    assert finding.message == (
        "Certificate not verified: explicit insecure override for mj-vcenter (target.vcenter.tls); give a ca_file "
        "or thumbprint instead"
    )
    assert not report.blocked
    assert exit_code(report) == 0


def test_vcenter_insecure_tls_not_allowed_by_plan_is_critical() -> None:
    finding = only(check(with_source(CLEAN, tls="insecure")))
    assert (finding.id, finding.severity, finding.subject) == ("vcenter.tls", "critical", "ndj-vcenter")
    assert finding.message.startswith("Certificate of source vCenter ndj-vcenter was not verified although the plan")


def test_vcenter_tls_not_reported_is_a_warning() -> None:
    finding = only(check(with_target(CLEAN, tls=None)))
    assert (finding.id, finding.severity, finding.subject) == ("vcenter.tls", "warning", "mj-vcenter")


def test_datacenter_missing_is_critical_and_skips_vm_checks() -> None:
    plan = plan_with(source=PLAN.source.model_copy(update={"datacenter": "NDJ-DC2"}))
    report = check(plan=plan)
    finding = only(report)
    assert (finding.id, finding.severity, finding.subject) == ("vcenter.datacenter", "critical", "ndj-vcenter")
    assert finding.message == (
        "Datacenter NDJ-DC2 was not found in source vCenter ndj-vcenter (it shows: MJ-DC1, NDJ-DC); fix "
        "source.datacenter in the plan or give the account read access to it"
    )
    assert set(skipped(report, "vm.exists").values()) == {
        "source vCenter ndj-vcenter has no datacenter NDJ-DC2 (see vcenter.datacenter)"
    }


# --------------------------------------------------------------------------------------------------- VMs


def test_vm_missing_is_critical_and_suggests_rename() -> None:
    report = check(without_vm(CLEAN, "ndj-pki01"))
    finding = only(report)
    assert (finding.id, finding.severity, finding.subject_kind, finding.subject, finding.site) == (
        "vm.exists",
        "critical",
        "vm",
        "ndj-pki01",
        "grenaa-raadhus",
    )
    assert finding.message == (
        "VM ndj-pki01 was not found in datacenter NDJ-DC of source vCenter ndj-vcenter; it may have been renamed or "
        "removed — find it (by IP address or UUID) and update the plan, or take it out of the wave"
    )
    assert finding.evidence == {"vcenter": "ndj-vcenter", "datacenter": "NDJ-DC", "ip": "10.70.10.14", "uuid": None}
    assert (
        skipped(report, "vm.snapshots")["ndj-pki01"] == "ndj-pki01 was not found in the source vCenter (see vm.exists)"
    )
    assert exit_code(report) == 1


def test_vm_renamed_is_found_by_uuid() -> None:
    uuid = "4215a1b2-0000-4000-8000-00000000dc01"
    plan = vm_plan("ndj-dc01", uuid=UUID(uuid))
    facts = with_vm(CLEAN, "ndj-dc01", name="ndj-dc01-gammel", uuid=uuid)
    finding = only(check(facts, plan=plan))
    assert (finding.id, finding.subject) == ("vm.exists", "ndj-dc01")
    assert finding.message == (
        "VM ndj-dc01 was not found in datacenter NDJ-DC of source vCenter ndj-vcenter, but a VM with its UUID is "
        "there as ndj-dc01-gammel: it was renamed; rename it back or update the plan"
    )


def test_vm_of_same_name_in_other_datacenter_does_not_count_as_found() -> None:
    facts = with_vm(CLEAN, "ndj-pki01", datacenter="MJ-DC1", folder="Andet")
    assert problems(check(facts)) == [("vm.exists", "critical", "ndj-pki01")]


def test_vm_drift_is_a_warning_with_the_differences() -> None:
    facts = with_vm(CLEAN, "ndj-wsus01", cpu=4, memory_mb=16384, disks_gb=[60, 400, 100])
    report = check(facts)
    finding = only(report)
    assert (finding.id, finding.severity, finding.subject, finding.site) == (
        "vm.drift",
        "warning",
        "ndj-wsus01",
        "grenaa-raadhus",
    )
    assert finding.message == (
        "ndj-wsus01 differs from the plan (cpu: plan 2, actual 4; memory_mb: plan 8192, actual 16384; disks_gb: "
        "plan [60, 400], actual [60, 400, 100]); update the plan or the VM so they agree"
    )
    assert finding.evidence == {
        "cpu": {"plan": 2, "actual": 4},
        "memory_mb": {"plan": 8192, "actual": 16384},
        "disks_gb": {"plan": [60, 400], "actual": [60, 400, 100]},
    }
    assert exit_code(report) == 0


def test_vm_power_drift_is_a_warning() -> None:
    finding = only(check(with_vm(CLEAN, "ndj-print01", power="powered_off")))
    assert (finding.id, finding.subject) == ("vm.drift", "ndj-print01")
    assert finding.evidence == {"power": {"plan": "powered_on", "actual": "powered_off"}}


def test_vm_on_other_host_and_datastore_is_a_placement_warning() -> None:
    finding = only(check(with_vm(CLEAN, "ndj-dc02", host="ndj-esx01", datastores=["ndj-ds-auning-01"])))
    assert (finding.id, finding.severity, finding.subject) == ("vm.placement", "warning", "ndj-dc02")
    assert finding.message == (
        "ndj-dc02 is not where the plan says (host: plan ndj-esx02, actual ndj-esx01; datastore: plan "
        "ndj-ds-grenaa-01, actual ndj-ds-auning-01); check that nothing moved it by mistake and update the plan's "
        "host/datastore"
    )
    assert finding.evidence == {
        "host": {"plan": "ndj-esx02", "actual": "ndj-esx01"},
        "datastore": {"plan": "ndj-ds-grenaa-01", "actual": "ndj-ds-auning-01"},
    }


BLOCKERS = [
    (
        {"snapshots": ["før opdatering", "efter opdatering"]},
        "vm.snapshots",
        "ndj-radius01 has 2 snapshots (før opdatering, efter opdatering); delete or consolidate them before the wave",
    ),
    (
        {"connected_media": ["CD/DVD drive 1 ([ndj-ds-grenaa-01] iso/win2022.iso)"]},
        "vm.media",
        "ndj-radius01 has connected CD-ROM/ISO media (CD/DVD drive 1 ([ndj-ds-grenaa-01] iso/win2022.iso)); "
        "disconnect them before the wave",
    ),
    (
        {"shared_disks": ["Hard disk 2 (RDM, physical)"]},
        "vm.shared_disks",
        "ndj-radius01 has RDM or shared disks (Hard disk 2 (RDM, physical)) that cannot be relocated; convert them "
        "to virtual disks or take the VM out of the wave",
    ),
    (
        {"passthrough": ["USB controller (licence dongle)", "Serial port 1"]},
        "vm.passthrough",
        "ndj-radius01 has passthrough devices (USB controller (licence dongle), Serial port 1) that bind it to its "
        "host; remove them or take the VM out of the wave",
    ),
    (
        {"tools": "not_running"},
        "vm.tools",
        "ndj-radius01 is powered on but VMware Tools are not running; start them before the wave",
    ),
    (
        {"tools": "not_installed"},
        "vm.tools",
        "ndj-radius01 is powered on but VMware Tools are not installed; install them before the wave",
    ),
]


@pytest.mark.parametrize(
    ("change", "rule_id", "message"), BLOCKERS, ids=[b[1] + str(i) for i, b in enumerate(BLOCKERS)]
)
def test_each_vm_blocker_is_critical_and_blocks(change: dict[str, Any], rule_id: str, message: str) -> None:
    report = check(with_vm(CLEAN, "ndj-radius01", **change))
    finding = only(report)
    assert (finding.id, finding.severity, finding.subject_kind, finding.subject, finding.site) == (
        rule_id,
        "critical",
        "vm",
        "ndj-radius01",
        "grenaa-raadhus",
    )
    assert finding.message == message
    assert report.blocked
    assert exit_code(report) == 1


def test_tools_not_running_on_a_powered_off_vm_is_fine() -> None:
    facts = with_vm(CLEAN, "ndj-archive01", power="powered_off", tools="not_running")
    report = check(facts, 2)
    assert problems(report) == []
    assert [r.passed for r in report.results if r.rule_id == "vm.tools" and r.subject == "ndj-archive01"] == [True]


def test_old_tools_are_a_warning() -> None:
    finding = only(check(with_vm(CLEAN, "ndj-dc02", tools="old")))
    assert (finding.id, finding.severity, finding.subject) == ("vm.tools", "warning", "ndj-dc02")
    assert finding.message == "ndj-dc02 runs out-of-date VMware Tools; upgrade them when convenient"


def _target_vm(name: str, folder: str) -> VMFacts:
    return VMFacts(
        name=name,
        moid="vm-9001",
        datacenter="MJ-DC1",
        host="mj-esx01",
        folder=folder,
        datastores=["mj-ds-gold-01"],
        cpu=2,
        memory_mb=4096,
        disks_gb=[60],
        portgroups=["NDJ-707-Faelles"],
        power="powered_off",
        tools="not_running",
    )


def test_vm_of_same_name_in_target_folder_is_a_name_conflict() -> None:
    target = CLEAN.target
    assert target is not None
    facts = with_target(CLEAN, vms={**target.vms, "vm-9001": _target_vm("ndj-dhcp01", "Kommuner/707-Norddjurs")})
    finding = only(check(facts))
    assert (finding.id, finding.severity, finding.subject) == ("vm.name_conflict", "critical", "ndj-dhcp01")
    assert finding.message == (
        "A VM named ndj-dhcp01 already exists in folder Kommuner/707-Norddjurs of datacenter MJ-DC1 (target vCenter "
        "mj-vcenter); rename or remove it there before the wave"
    )
    assert finding.evidence == {
        "datacenter": "MJ-DC1",
        "folder": "Kommuner/707-Norddjurs",
        "moid": "vm-9001",
        "power": "powered_off",
    }


def test_same_name_elsewhere_in_target_or_the_source_vm_itself_is_no_conflict() -> None:
    # The clean facts already show every source VM through the target endpoint (one simulator).
    target = CLEAN.target
    assert target is not None
    facts = with_target(CLEAN, vms={**target.vms, "vm-9001": _target_vm("ndj-dhcp01", "Kommuner/710-Favrskov")})
    assert problems(check(facts)) == []


# ------------------------------------------------------------------------------------- target, capacity


def test_target_folder_missing_is_critical() -> None:
    finding = only(check(with_target(CLEAN, folders={"MJ-DC1": ["Kommuner"], "NDJ-DC": ["Servere"]})))
    assert (finding.id, finding.severity, finding.subject_kind, finding.subject, finding.site) == (
        "target.folder",
        "critical",
        "folder",
        "Kommuner/707-Norddjurs",
        None,
    )
    assert finding.message == (
        "VM folder Kommuner/707-Norddjurs does not exist in datacenter MJ-DC1 of target vCenter mj-vcenter; create "
        "it or fix target.vm_folder in the plan"
    )


def test_target_cluster_missing_is_critical_and_skips_capacity() -> None:
    report = check(without_target_item(CLEAN, "clusters", "MJ-Kommuner-01"))
    finding = only(report)
    assert (finding.id, finding.severity, finding.subject_kind, finding.subject) == (
        "target.cluster",
        "critical",
        "cluster",
        "MJ-Kommuner-01",
    )
    assert finding.message == (
        "Cluster MJ-Kommuner-01 was not found in datacenter MJ-DC1 of target vCenter mj-vcenter; fix target.cluster "
        "in the plan or give the account read access to it"
    )
    assert skipped(report, "capacity.cpu") == {
        "MJ-Kommuner-01": "cluster MJ-Kommuner-01 was not found (see target.cluster)"
    }


def test_cpu_short_is_critical_with_evidence() -> None:
    report = check(with_target_item(CLEAN, "clusters", "MJ-Kommuner-01", allocated_vcpu=400))
    finding = only(report)
    assert (finding.id, finding.severity, finding.subject_kind, finding.subject, finding.site) == (
        "capacity.cpu",
        "critical",
        "cluster",
        "MJ-Kommuner-01",
        None,
    )
    # 128 cores x 4 vCPU x 0.8 = 409 (rounded down) - 400 allocated = 9; wave 1 has 8 VMs x 2 vCPU.
    assert finding.message == (
        "MJ-Kommuner-01 lacks CPU for wave 1: needs 16 vCPU, only 9 vCPU available after 20% headroom; add hosts or "
        "free capacity in the cluster, or move fewer VMs in this wave"
    )
    assert finding.evidence == {
        "needed": 16,
        "available": 9,
        "headroom_pct": 20,
        "cpu_cores": 128,
        "vcpu_per_core": 4,
        "allocated_vcpu": 400,
    }
    assert exit_code(report) == 1


def test_capacity_uses_the_observed_size() -> None:
    facts = with_target_item(CLEAN, "clusters", "MJ-Kommuner-01", allocated_vcpu=393)  # 16 available
    assert problems(check(facts)) == []
    drifted = with_vm(facts, "ndj-dc01", cpu=3)
    assert problems(check(drifted)) == [
        ("capacity.cpu", "critical", "MJ-Kommuner-01"),
        ("vm.drift", "warning", "ndj-dc01"),
    ]


def test_capacity_headroom_comes_from_the_plan() -> None:
    facts = with_target_item(CLEAN, "clusters", "MJ-Kommuner-01", allocated_memory_mb=1_650_000)
    # 2097152 MB x 0.8 = 1677721 - 1650000 = 27721 < 53248 needed
    finding = only(check(facts))
    assert (finding.id, finding.subject) == ("capacity.memory", "MJ-Kommuner-01")
    assert finding.message == (
        "MJ-Kommuner-01 lacks memory for wave 1: needs 53248 MB, only 27721 MB available after 20% headroom; add "
        "hosts or memory or free capacity in the cluster, or move fewer VMs in this wave"
    )
    # with no headroom: 2097152 - 1650000 = 447152 is enough
    assert problems(check(facts, plan=target_with(headroom_pct=0))) == []


def test_datastore_short_is_critical() -> None:
    facts = with_target_item(CLEAN, "datastores", "mj-ds-gold-01", free_gb=5000.0)
    finding = only(check(facts))
    assert (finding.id, finding.severity, finding.subject_kind, finding.subject) == (
        "capacity.datastore",
        "critical",
        "datastore",
        "mj-ds-gold-01",
    )
    # 5000 free - 20% of 20480 (4096) = 904 < 1060 needed by wave 1's disks
    assert finding.message == (
        "mj-ds-gold-01 lacks disk space for wave 1: needs 1060 GB, only 904 GB available after 20% headroom; free or "
        "add space, map some source datastores elsewhere (storage_map), or move fewer VMs in this wave"
    )
    assert finding.evidence["needed"] == 1060
    assert finding.evidence["available"] == 904


def test_target_datastore_missing_is_critical() -> None:
    report = check(without_target_item(CLEAN, "datastores", "mj-ds-silver-01"), 3)
    finding = only(report)
    assert (finding.id, finding.severity, finding.subject) == ("target.datastore", "critical", "mj-ds-silver-01")
    assert finding.message == (
        "Datastore mj-ds-silver-01 (target of 4 VMs of this wave) was not found in datacenter MJ-DC1 of target vCenter "
        "mj-vcenter; fix storage_map/target.datastores in the plan or give the account read access to it"
    )


def test_target_host_in_maintenance_is_a_warning() -> None:
    finding = only(check(with_target_item(CLEAN, "hosts", "mj-esx03", maintenance=True)))
    assert (finding.id, finding.severity, finding.subject) == ("target.hosts", "warning", "MJ-Kommuner-01")
    assert finding.message == (
        "Hosts of cluster MJ-Kommuner-01 are not available: mj-esx03 (in maintenance); bring them back or make sure "
        "the other hosts can take the wave"
    )


# ----------------------------------------------------------------------------------------------- network


def test_unmapped_portgroup_a_vm_is_connected_to_is_critical() -> None:
    facts = with_vm(CLEAN, "ndj-print01", portgroups=["VM-Faelles-10", "VM-Print-50"])
    report = check(facts)
    assert problems(report) == [("netmap.mapped", "critical", "VM-Print-50"), ("vm.drift", "warning", "ndj-print01")]
    finding = report.findings[0]
    assert (finding.subject_kind, finding.site) == ("portgroup", "grenaa-raadhus")
    assert finding.message == (
        "Portgroup VM-Print-50 (used by ndj-print01) has no network_map entry; add one with its target portgroup, "
        "VLAN and subnet, or disconnect the NIC"
    )


def test_mapped_portgroups_are_passed_test_cases() -> None:
    results = [r for r in check(CLEAN, 2).results if r.rule_id == "netmap.mapped"]
    assert {(r.subject, r.passed) for r in results} == {("VM-Fagsystemer-20", True), ("VM-Fil-Backup-30", True)}


def test_missing_target_portgroup_is_critical() -> None:
    report = check(without_target_item(CLEAN, "portgroups", "NDJ-707-Pleje"), 3)
    finding = only(report)
    assert (finding.id, finding.severity, finding.subject, finding.site) == (
        "netmap.target_exists",
        "critical",
        "NDJ-707-Pleje",
        "digterparken",
    )
    assert finding.message == (
        "Target portgroup NDJ-707-Pleje (mapped from VM-Pleje-40) does not exist in datacenter MJ-DC1 of target "
        "vCenter mj-vcenter; create it with VLAN 1740 or fix network_map"
    )
    assert skipped(report, "netmap.vlan") == {
        "NDJ-707-Pleje": "portgroup NDJ-707-Pleje does not exist (see netmap.target_exists)"
    }


def test_target_portgroup_on_wrong_vlan_is_critical() -> None:
    finding = only(check(with_target_item(CLEAN, "portgroups", "NDJ-707-Faelles", vlan=1799)))
    assert (finding.id, finding.severity, finding.subject) == ("netmap.vlan", "critical", "NDJ-707-Faelles")
    assert finding.message == (
        "Target portgroup NDJ-707-Faelles has VLAN 1799, the network map says 1710; fix the portgroup or network_map"
    )
    assert finding.evidence == {"plan": 1710, "actual": 1799}


def test_target_portgroup_without_vlan_passes_with_info() -> None:
    report = check(with_target_item(CLEAN, "portgroups", "NDJ-707-Faelles", vlan=None))
    assert problems(report) == []
    [info] = [f for f in report.findings if f.id == "netmap.vlan"]
    assert info.severity == "info"


# ----------------------------------------------------------------------------------------------- devices


def test_device_without_facts_is_critical_and_later_checks_skip() -> None:
    devices = {k: v for k, v in CLEAN.devices.items() if k != "ndj-fw-01"}
    report = check(CLEAN.model_copy(update={"devices": devices}))
    finding = only(report)
    assert (finding.id, finding.severity, finding.subject_kind, finding.subject, finding.site) == (
        "device.reachable",
        "critical",
        "device",
        "ndj-fw-01",
        "grenaa-raadhus",
    )
    assert finding.message == (
        "Device ndj-fw-01 (127.0.70.2:2222) was not checked: no facts were gathered; gather facts for it and run the "
        "pre-check again"
    )
    for rule_id in ("device.host_key", "device.login", "device.platform", "device.backup"):
        assert skipped(report, rule_id)["ndj-fw-01"] == "ndj-fw-01 is not reachable (see device.reachable)"


def test_device_unreachable_names_the_error() -> None:
    finding = only(check(with_device(CLEAN, "ndj-core-01", reachable=False, error="timed out", login=False)))
    assert (finding.id, finding.subject) == ("device.reachable", "ndj-core-01")
    assert finding.message == (
        "Device ndj-core-01 is not reachable over SSH at 127.0.70.1:2222: timed out; check its management address, "
        "port and ACLs, then run the pre-check again"
    )


def test_unknown_host_key_is_critical_and_says_verify_not_accept() -> None:
    facts = with_device(CLEAN, "ndj-sw-raadhus-01", host_key="unknown", login=False, platform=None)
    report = check(facts)
    finding = only(report)
    assert (finding.id, finding.severity, finding.subject) == ("device.host_key", "critical", "ndj-sw-raadhus-01")
    assert finding.message == (
        f"Host key of ndj-sw-raadhus-01 (127.0.70.3:2222) is unknown: it is not in {KNOWN_HOSTS}; do not just accept "
        f"it — compare fingerprint {FINGERPRINT} with the one shown on the device's console, and only then put the "
        f"key into {KNOWN_HOSTS}"
    )
    assert finding.evidence["fingerprint"] == FINGERPRINT
    assert skipped(report, "device.login")["ndj-sw-raadhus-01"] == (
        "ndj-sw-raadhus-01's host key is not trusted (see device.host_key)"
    )


def test_changed_host_key_is_critical() -> None:
    finding = only(check(with_device(CLEAN, "ndj-core-01", host_key="changed", login=False)))
    assert (finding.id, finding.severity, finding.subject) == ("device.host_key", "critical", "ndj-core-01")
    assert finding.message == (
        f"Host key of ndj-core-01 (127.0.70.1:2222) has CHANGED from the one in {KNOWN_HOSTS}: the device or its key "
        "was replaced, or someone is in the middle; do not just accept it — find out who changed it, compare "
        f"fingerprint {FINGERPRINT} with the one shown on the device's console, and only then put the key into "
        f"{KNOWN_HOSTS}"
    )


def test_host_key_not_checked_is_critical() -> None:
    finding = only(check(with_device(CLEAN, "ndj-core-01", host_key="not_checked")))
    assert (finding.id, finding.severity) == ("device.host_key", "critical")


def test_insecure_host_key_override_in_plan_is_a_warning() -> None:
    plan = plan_with(ssh=PLAN.ssh.model_copy(update={"insecure_host_keys": ["ndj-fw-01"]}))
    report = check(with_device(CLEAN, "ndj-fw-01", host_key="insecure_override"), plan=plan)
    finding = only(report)
    assert (finding.id, finding.severity, finding.subject) == ("device.host_key", "warning", "ndj-fw-01")
    assert finding.message.startswith(
        "Host key of ndj-fw-01 is not verified: explicit insecure override (ssh.insecure_host_keys); compare"
    )
    assert exit_code(report) == 0


def test_insecure_host_key_without_plan_override_is_critical() -> None:
    finding = only(check(with_device(CLEAN, "ndj-fw-01", host_key="insecure_override")))
    assert (finding.id, finding.severity, finding.subject) == ("device.host_key", "critical", "ndj-fw-01")


def test_device_login_refused_is_critical() -> None:
    report = check(with_device(CLEAN, "ndj-kattegat-rtr-01", login=False, error="Authentication failed."), 2)
    finding = only(report)
    assert (finding.id, finding.severity, finding.subject, finding.site) == (
        "device.login",
        "critical",
        "ndj-kattegat-rtr-01",
        "kattegatskolen",
    )
    assert finding.message == (
        "Login to ndj-kattegat-rtr-01 as overflyt failed: Authentication failed.; check credentials entry "
        "ndj-network (user and secret) and the device's AAA"
    )


def test_device_answering_as_another_platform_is_critical() -> None:
    finding = only(check(with_device(CLEAN, "ndj-core-01", platform="ios")))
    assert (finding.id, finding.severity, finding.subject) == ("device.platform", "critical", "ndj-core-01")
    assert finding.message == (
        "ndj-core-01 answers as ios, the plan declares frr; fix devices[].platform in the plan or check that its "
        "management address reaches the right device"
    )


def test_device_without_backup_is_critical() -> None:
    finding = only(check(with_device(CLEAN, "ndj-fw-01", backup_file=None)))
    assert (finding.id, finding.severity, finding.subject) == ("device.backup", "critical", "ndj-fw-01")
    assert finding.message == (
        "Running config of ndj-fw-01 could not be backed up; a cutover without a backup cannot be rolled back — check "
        "that the account may read the running configuration, then run the pre-check again"
    )


def test_only_devices_of_selected_sites_are_checked() -> None:
    facts = with_device(CLEAN, "ndj-auning-rtr-01", reachable=False, error="timed out")
    assert problems(check(facts, 2, sites=("kattegatskolen",))) == []
    assert problems(check(facts, 2, sites=("auning-adm",))) == [("device.reachable", "critical", "ndj-auning-rtr-01")]


# -------------------------------------------------------------------------------------------------- plan


def test_dependency_in_a_later_wave_is_critical() -> None:
    plan = vm_plan("ndj-pki01", depends_on=["ndj-dc01", "ndj-sql01"])
    finding = only(check(plan=plan))
    assert (finding.id, finding.severity, finding.subject_kind, finding.subject, finding.site) == (
        "plan.dependencies",
        "critical",
        "vm",
        "ndj-pki01",
        "grenaa-raadhus",
    )
    assert finding.message == (
        "ndj-pki01 (wave 1) depends on ndj-sql01, which moves in wave 2; move ndj-sql01 to wave 1 or earlier, or "
        "ndj-pki01 later"
    )
    assert finding.evidence == {"dependency": "ndj-sql01", "dependency_wave": 2, "wave": 1}


def test_pulled_forward_dependency_counts_as_moved_in_its_wave() -> None:
    waves = [w.model_copy(update={"vms": ["ndj-sql01"]}) if w.number == 1 else w for w in PLAN.waves]
    plan = vm_plan("ndj-pki01", depends_on=["ndj-sql01"]).model_copy(update={"waves": waves})
    report = check(plan=plan)
    assert [r.passed for r in report.results if r.rule_id == "plan.dependencies" and r.subject == "ndj-pki01"] == [True]
    # the pulled VM is checked with wave 1, under its own site
    assert ("vm", "ndj-sql01", "auning-adm") in {(r.subject_kind, r.subject, r.site) for r in report.results}


def test_run_mode_wants_earlier_waves_dependencies_in_the_target() -> None:
    now = datetime(2027, 3, 20, 20, 0, tzinfo=CPH)  # wave 2's window is open
    report = check(CLEAN, 2, mode="run", now=now, sites=("auning-adm",))
    assert problems(report)[0] == ("plan.dependencies", "critical", "ndj-sql01")
    sql01 = next(r for r in report.results if r.rule_id == "plan.dependencies" and r.subject == "ndj-sql01")
    assert [f.message for f in sql01.findings] == [
        "ndj-sql01 depends on ndj-dc01 (wave 1), which is not in the target folder Kommuner/707-Norddjurs yet; "
        "finish wave 1 first"
    ]
    # once wave 1 has moved (its VMs are in the target folder), it passes
    target = CLEAN.target
    assert target is not None
    moved = {
        f"moved-{vm.name}": _target_vm(vm.name, "Kommuner/707-Norddjurs").model_copy(update={"moid": f"vm-m{i}"})
        for i, vm in enumerate(PLAN.vms_of_wave(1))
    }
    after = with_target(CLEAN, vms={**target.vms, **moved})
    assert [p for p in problems(check(after, 2, mode="run", now=now)) if p[0] == "plan.dependencies"] == []


def test_window_in_the_past_is_critical() -> None:
    report = check(CLEAN, 1, now=datetime(2027, 3, 8, 9, 0, tzinfo=CPH))
    finding = only(report)
    assert (finding.id, finding.severity, finding.subject_kind, finding.subject, finding.site) == (
        "plan.window",
        "critical",
        "wave",
        "1",
        None,
    )
    assert finding.message == ("Wave 1's window ended at 2027-03-07 06:00 CET; set a new window for wave 1 in the plan")


def test_run_mode_before_the_window_is_critical() -> None:
    finding = only(check(CLEAN, 1, mode="run"))
    assert (finding.id, finding.severity) == ("plan.window", "critical")
    assert finding.message == (
        "Wave 1's window opens only at 2027-03-06 18:00 CET (in 5 days 6 hours); wait for it or change the plan"
    )


def test_run_mode_inside_the_window_passes() -> None:
    now = datetime(2027, 3, 6, 18, 0, tzinfo=CPH) + timedelta(minutes=5)
    report = check(CLEAN, 1, mode="run", now=now)
    assert problems(report) == []
    [info] = [f for f in report.findings if f.id == "plan.window"]
    assert info.message == "Wave 1's window is open until 2027-03-07 06:00 CET"


def test_now_in_utc_is_shown_in_the_window_zone() -> None:
    report = check(CLEAN, 3, now=NOW.astimezone(UTC))
    [info] = [f for f in report.findings if f.id == "plan.window"]
    assert info.message == "Wave 3's window opens at 2027-04-03 18:00 CEST (in 33 days 5 hours)"
