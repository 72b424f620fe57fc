"""Clean facts for the sample plan, and the helpers the other pre-check tests perturb them with.

``clean_facts()`` is what a perfect estate would look like to the fact gatherers: every VM of
inventories/norddjurs/plan.yml exactly as planned, the target cluster, datastores, portgroups and
folder present with room to spare, every device reachable with a matching host key, the declared
platform and a backup. As in the lab, one vCenter simulator serves both endpoints, so the source
and the target facts hold the same inventory (both datacenters). Objects are keyed by managed
object id, not name: the rules must not depend on how the gatherer keys its mappings.

The tests in this file pin down that baseline: clean facts give no critical and no warning.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from overflyt.plan import Plan, load_plan
from overflyt.precheck import CheckContext, Finding, PrecheckReport, exit_code, run_checks
from overflyt.precheck.facts import (
    ClusterFacts,
    DatastoreFacts,
    DeviceFacts,
    EstateFacts,
    HostFacts,
    PortgroupFacts,
    VCenterFacts,
    VMFacts,
)

SAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs" / "plan.yml"
PLAN = load_plan(SAMPLE)
CPH = ZoneInfo("Europe/Copenhagen")
NOW = datetime(2027, 3, 1, 12, 0, tzinfo=CPH)  # before every wave's window
SOURCE_FOLDER = "Servere"
TARGET_HOSTS = ("mj-esx01", "mj-esx02", "mj-esx03", "mj-esx04")
FINGERPRINT = "SHA256:2fZ0m3h6c1X5bq8Yp4u7Jt9Kx0aLrVs3dWnE1oQy6Hg"


def clean_facts(plan: Plan = PLAN) -> EstateFacts:
    src_dc, dst_dc = plan.source.datacenter, plan.target.datacenter
    vms = {
        f"vm-{100 + i}": VMFacts(
            name=vm.name,
            moid=f"vm-{100 + i}",
            uuid=str(vm.uuid) if vm.uuid else None,
            datacenter=src_dc,
            cluster=plan.source.cluster,
            host=vm.host,
            folder=SOURCE_FOLDER,
            datastores=[vm.datastore],
            cpu=vm.cpu,
            memory_mb=vm.memory_mb,
            disks_gb=list(vm.disks_gb),
            portgroups=list(vm.portgroups),
            power=vm.power.value,
            tools=vm.tools.value,
        )
        for i, vm in enumerate(plan.vms)
    }
    source_hosts = sorted({vm.host for vm in plan.vms})
    hosts = {
        f"host-{name}": HostFacts(
            name=name,
            datacenter=src_dc,
            cluster=plan.source.cluster,
            connected=True,
            maintenance=False,
            cpu_cores=16,
            cpu_mhz=16 * 2600,
            cpu_used_mhz=12000,
            memory_mb=262144,
            memory_used_mb=131072,
        )
        for name in source_hosts
    } | {
        f"host-{name}": HostFacts(
            name=name,
            datacenter=dst_dc,
            cluster=plan.target.cluster,
            connected=True,
            maintenance=False,
            cpu_cores=32,
            cpu_mhz=32 * 2900,
            cpu_used_mhz=20000,
            memory_mb=524288,
            memory_used_mb=100000,
        )
        for name in TARGET_HOSTS
    }
    clusters = {
        "domain-c1": ClusterFacts(
            name=plan.source.cluster,
            datacenter=src_dc,
            hosts=source_hosts,
            cpu_cores=16 * len(source_hosts),
            memory_mb=262144 * len(source_hosts),
            allocated_vcpu=sum(vm.cpu for vm in plan.vms),
            allocated_memory_mb=sum(vm.memory_mb for vm in plan.vms),
        ),
        "domain-c2": ClusterFacts(
            name=plan.target.cluster,
            datacenter=dst_dc,
            hosts=list(TARGET_HOSTS),
            cpu_cores=32 * len(TARGET_HOSTS),
            memory_mb=524288 * len(TARGET_HOSTS),
            allocated_vcpu=100,
            allocated_memory_mb=400000,
        ),
    }
    datastores = {
        f"ds-{name}": DatastoreFacts(name=name, datacenter=src_dc, capacity_gb=8192, free_gb=2048)
        for name in sorted({vm.datastore for vm in plan.vms})
    } | {
        f"ds-{name}": DatastoreFacts(name=name, datacenter=dst_dc, capacity_gb=20480, free_gb=18000)
        for name in plan.target.datastores
    }
    portgroups = {
        f"pg-{m.source}": PortgroupFacts(name=m.source, datacenter=src_dc, vlan=m.vlan - 1700) for m in plan.network_map
    } | {f"pg-{m.target}": PortgroupFacts(name=m.target, datacenter=dst_dc, vlan=m.vlan) for m in plan.network_map}
    folders = {src_dc: [SOURCE_FOLDER], dst_dc: ["Kommuner", plan.target.vm_folder]}
    inventory: dict[str, Any] = {
        "reachable": True,
        "tls": "verified",
        "version": "8.0.2",
        "vms": vms,
        "hosts": hosts,
        "clusters": clusters,
        "datastores": datastores,
        "portgroups": portgroups,
        "folders": folders,
    }
    devices = {
        d.hostname: DeviceFacts(
            hostname=d.hostname,
            address=str(d.management),
            port=d.port,
            reachable=True,
            host_key="match",
            host_key_fingerprint=FINGERPRINT,
            login=True,
            platform=d.platform.value,
            version="FRRouting 10.2.1",
            running_config_sha256=hashlib.sha256(d.hostname.encode()).hexdigest(),
            backup_file=f"backups/{d.hostname}.cfg",
        )
        for d in plan.devices
    }
    return EstateFacts(
        source=VCenterFacts(name=plan.source.vcenter.name, url=plan.source.vcenter.url, **inventory),
        target=VCenterFacts(name=plan.target.vcenter.name, url=plan.target.vcenter.url, **inventory),
        devices=devices,
    )


CLEAN = clean_facts()


# ------------------------------------------------------------------------------------------- perturbing


def _vcenter(vcenter: VCenterFacts | None) -> VCenterFacts:
    assert vcenter is not None
    return vcenter


def with_vm(facts: EstateFacts, vm_name: str, /, **changes: Any) -> EstateFacts:
    """The source VM of that name (in the source datacenter) changed; in both endpoints' facts."""
    source = _vcenter(facts.source)
    key = next(k for k, v in source.vms.items() if v.name == vm_name and v.datacenter == PLAN.source.datacenter)
    vms = {**source.vms, key: source.vms[key].model_copy(update=changes)}
    return facts.model_copy(
        update={
            "source": source.model_copy(update={"vms": vms}),
            "target": _vcenter(facts.target).model_copy(update={"vms": vms}),
        }
    )


def without_vm(facts: EstateFacts, name: str) -> EstateFacts:
    source = _vcenter(facts.source)
    vms = {k: v for k, v in source.vms.items() if v.name != name}
    return facts.model_copy(
        update={
            "source": source.model_copy(update={"vms": vms}),
            "target": _vcenter(facts.target).model_copy(update={"vms": vms}),
        }
    )


def with_source(facts: EstateFacts, **changes: Any) -> EstateFacts:
    return facts.model_copy(update={"source": _vcenter(facts.source).model_copy(update=changes)})


def with_target(facts: EstateFacts, **changes: Any) -> EstateFacts:
    return facts.model_copy(update={"target": _vcenter(facts.target).model_copy(update=changes)})


def with_target_item(facts: EstateFacts, collection: str, name: str, **changes: Any) -> EstateFacts:
    """One object of the target datacenter (cluster, datastore, portgroup, host) changed in the target facts."""
    target = _vcenter(facts.target)
    objects = getattr(target, collection)
    key = next(k for k, v in objects.items() if v.name == name and v.datacenter == PLAN.target.datacenter)
    return with_target(facts, **{collection: {**objects, key: objects[key].model_copy(update=changes)}})


def without_target_item(facts: EstateFacts, collection: str, name: str) -> EstateFacts:
    target = _vcenter(facts.target)
    objects = getattr(target, collection)
    kept = {k: v for k, v in objects.items() if not (v.name == name and v.datacenter == PLAN.target.datacenter)}
    return with_target(facts, **{collection: kept})


def with_device(facts: EstateFacts, hostname: str, **changes: Any) -> EstateFacts:
    devices = {**facts.devices, hostname: facts.devices[hostname].model_copy(update=changes)}
    return facts.model_copy(update={"devices": devices})


def check(
    facts: EstateFacts = CLEAN,
    wave: int = 1,
    *,
    sites: tuple[str, ...] = (),
    mode: str = "precheck",
    now: datetime = NOW,
    plan: Plan = PLAN,
) -> PrecheckReport:
    return run_checks(CheckContext(plan=plan, wave=wave, facts=facts, now=now, sites=sites, mode=mode))  # type: ignore[arg-type]


def problems(report: PrecheckReport) -> list[tuple[str, str, str]]:
    """(rule id, severity, subject) of every critical or warning finding."""
    return [(f.id, f.severity.value, f.subject) for f in report.findings if f.severity.value != "info"]


def only(report: PrecheckReport) -> Finding:
    """The one critical or warning finding of the report."""
    found = [f for f in report.findings if f.severity.value != "info"]
    assert len(found) == 1, [(f.id, f.subject, f.message) for f in found]
    return found[0]


# ------------------------------------------------------------------------------------------------ tests


def test_clean_facts_pass_every_wave() -> None:
    for wave in (1, 2, 3):
        report = check(CLEAN, wave)
        assert problems(report) == [], wave
        assert not report.blocked
        assert exit_code(report) == 0
        assert all(r.skipped is None for r in report.results), wave


def test_clean_facts_check_every_vm_and_device_of_the_wave() -> None:
    report = check(CLEAN, 2)
    checked_vms = {r.subject for r in report.results if r.rule_id == "vm.exists"}
    assert checked_vms == {vm.name for vm in PLAN.vms_of_wave(2)}
    assert len(checked_vms) == 27
    checked_devices = {r.subject for r in report.results if r.rule_id == "device.backup"}
    assert checked_devices == {"ndj-auning-rtr-01", "ndj-kattegat-rtr-01", "ndj-aunskole-rtr-01"}


def test_clean_facts_report_room_and_window_as_info() -> None:
    report = check(CLEAN, 1)
    info = {(f.id, f.subject): f.message for f in report.findings}
    assert info[("plan.window", "1")] == "Wave 1's window opens at 2027-03-06 18:00 CET (in 5 days 6 hours)"
    assert info[("capacity.cpu", "MJ-Kommuner-01")] == (
        "MJ-Kommuner-01 has room for wave 1's CPU: needs 16 vCPU, 309 vCPU available"
    )
    assert info[("capacity.memory", "MJ-Kommuner-01")] == (
        "MJ-Kommuner-01 has room for wave 1's memory: needs 53248 MB, 1277721 MB available"
    )
    assert info[("capacity.datastore", "mj-ds-gold-01")] == (
        "mj-ds-gold-01 has room for wave 1's disk space: needs 1060 GB, 13904 GB available"
    )
