"""The vSphere provider against the lab's vCenter simulator: TLS trust modes, login, bulk facts that
match the plan, bounded PropertyCollector traffic, a cross-vCenter move and back, check mode through
Ansible, and snapshots. Every test leaves the lab as it found it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ansible_runner
import pytest
import yaml
from pydantic import SecretStr

from overflyt.errors import MigrationStepFailed, ProviderUnreachable
from overflyt.plan import Plan, load_plan
from overflyt.providers import vsphere
from overflyt.providers.vsphere import LoginFailed, RelocationTarget, VCenterConnection, VSphereSession

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / "collections"
VM = "ndj-print01"
TARGET = RelocationTarget(
    datacenter="MJ-DC1",
    cluster="MJ-Kommuner-01",
    host="mj-esx01",
    datastore="mj-ds-gold-01",
    folder="Kommuner/707-Norddjurs",
    portgroups={"VM-Faelles-10": "NDJ-707-Faelles"},
)


def endpoint(lab: dict[str, Any], name: str, **tls: Any) -> VCenterConnection:
    """The lab's vCenter ``name``; trusted through the lab CA unless ``tls`` says otherwise."""
    v = next(v for v in lab["vcenters"] if v["name"] == name)
    url = urlsplit(v["url"])
    return VCenterConnection(
        name=name,
        hostname=url.hostname or "",
        port=url.port or 443,
        username=v["user"],
        password=v["password"],
        **(tls or {"ca_file": v["ca_file"]}),
    )


def where(lab: dict[str, Any], name: str) -> str:
    return f"vCenter {name} ({next(v['url'] for v in lab['vcenters'] if v['name'] == name)})"


@pytest.fixture(scope="module")
def plan(lab_plan: Path) -> Plan:
    return load_plan(lab_plan)


@pytest.fixture(scope="module")
def source(lab: dict[str, Any]) -> Iterator[VSphereSession]:
    with vsphere.connect(endpoint(lab, "ndj-vcenter")) as session:
        yield session


@pytest.fixture(scope="module")
def target(lab: dict[str, Any]) -> Iterator[VSphereSession]:
    with vsphere.connect(endpoint(lab, "mj-vcenter")) as session:
        yield session


@pytest.fixture(scope="module")
def throwaway_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ca")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(directory / "ca.key"), "-out", str(directory / "ca.pem"), "-days", "1",
         "-subj", "/CN=not the lab CA"],
        check=True, capture_output=True,
    )  # fmt: skip
    return directory / "ca.pem"


# -- TLS and login --------------------------------------------------------------------------------


def test_lab_ca_verifies_the_certificate(lab: dict[str, Any]) -> None:
    facts = vsphere.collect_facts(endpoint(lab, "ndj-vcenter"), ["NDJ-DC"])
    assert (facts.reachable, facts.login_failed, facts.error, facts.tls) == (True, False, None, "verified")
    assert facts.certificate_sha256 == next(v["thumbprint_sha256"] for v in lab["vcenters"])
    assert facts.version
    assert facts.instance_uuid


def test_another_ca_is_refused_as_unknown_ca(lab: dict[str, Any], throwaway_ca: Path) -> None:
    with pytest.raises(ProviderUnreachable) as caught:
        vsphere.connect(endpoint(lab, "ndj-vcenter", ca_file=str(throwaway_ca)))
    assert str(caught.value) == (
        f"{where(lab, 'ndj-vcenter')}: TLS verification failed: unknown CA: the certificate is not issued by a CA "
        f"in CA file {throwaway_ca} (unable to get local issuer certificate)"
    )


def test_system_ca_store_does_not_trust_the_lab(lab: dict[str, Any]) -> None:
    facts = vsphere.collect_facts(endpoint(lab, "mj-vcenter", insecure=False), ["MJ-DC1"])
    assert (facts.reachable, facts.tls, facts.vms) == (False, None, {})
    assert facts.error == (
        f"{where(lab, 'mj-vcenter')}: TLS verification failed: unknown CA: the certificate is not issued by a CA "
        "in the system CA store (unable to get local issuer certificate)"
    )


def test_pinned_thumbprint_is_accepted(lab: dict[str, Any]) -> None:
    pin = lab["vcenters"][1]["thumbprint_sha256"].lower()  # case does not matter
    with vsphere.connect(endpoint(lab, "mj-vcenter", thumbprint=pin)) as session:
        facts = vsphere.gather_facts(session, ["MJ-DC1"])
    assert facts.tls == "thumbprint"
    assert facts.certificate_sha256 == pin.upper()


def test_wrong_thumbprint_is_refused_naming_both(lab: dict[str, Any]) -> None:
    actual = lab["vcenters"][1]["thumbprint_sha256"]
    wrong = ":".join(["AB"] * 32)
    with pytest.raises(ProviderUnreachable) as caught:
        vsphere.connect(endpoint(lab, "mj-vcenter", thumbprint=wrong))
    assert str(caught.value) == (
        f"{where(lab, 'mj-vcenter')}: TLS verification failed: fingerprint mismatch (expected {wrong}, got {actual})"
    )


def test_insecure_connects_and_says_so(lab: dict[str, Any]) -> None:
    facts = vsphere.collect_facts(endpoint(lab, "ndj-vcenter", insecure=True), ["NDJ-DC"])
    assert (facts.reachable, facts.tls, len(facts.vms)) == (True, "insecure", 39)


def test_bad_password_is_a_login_failure_that_never_shows_the_password(lab: dict[str, Any]) -> None:
    good = endpoint(lab, "ndj-vcenter")
    secret = "wrong-" + good.password.get_secret_value()
    bad = good.model_copy(update={"password": SecretStr(secret)})
    with pytest.raises(LoginFailed) as caught:
        vsphere.connect(bad)
    message = (
        f"{where(lab, 'ndj-vcenter')}: login failed for user {good.username}: "
        "Cannot complete login due to an incorrect user name or password."
    )
    assert str(caught.value) == message
    facts = vsphere.collect_facts(bad, ["NDJ-DC"])
    assert (facts.reachable, facts.login_failed, facts.error) == (True, True, message)
    assert secret not in facts.model_dump_json()
    assert secret not in repr(bad)


# -- facts ----------------------------------------------------------------------------------------


def test_facts_match_the_plan_for_every_vm(source: VSphereSession, plan: Plan) -> None:
    facts = vsphere.gather_facts(source, [plan.source.datacenter])
    assert sorted(facts.vms) == sorted(vm.name for vm in plan.vms)
    for planned in plan.vms:
        vm = facts.vms[planned.name]
        assert (
            vm.datacenter, vm.cluster, vm.host, vm.datastores[0], vm.folder, vm.cpu, vm.memory_mb, vm.disks_gb,
            vm.portgroups, vm.power, vm.tools,
        ) == (
            plan.source.datacenter, plan.source.cluster, planned.host, planned.datastore, "Servere", planned.cpu,
            planned.memory_mb, planned.disks_gb, planned.portgroups, planned.power.value, planned.tools.value,
        ), planned.name  # fmt: skip
        assert (vm.snapshots, vm.connected_media, vm.shared_disks, vm.passthrough) == ([], [], [], [])
    cluster = facts.clusters[plan.source.cluster]
    assert cluster.hosts == sorted({vm.host for vm in plan.vms})
    assert (cluster.allocated_vcpu, cluster.allocated_memory_mb) == (
        sum(vm.cpu for vm in plan.vms),
        sum(vm.memory_mb for vm in plan.vms),
    )
    assert cluster.cpu_cores == sum(facts.hosts[h].cpu_cores for h in cluster.hosts)
    assert {m.source for m in plan.network_map} <= {pg.name for pg in facts.portgroups.values()}
    assert facts.folders == {plan.source.datacenter: ["Servere"]}


def test_target_facts_show_the_shared_datacentre(target: VSphereSession, plan: Plan) -> None:
    facts = vsphere.gather_facts(target, [plan.target.datacenter])
    assert {ds.name for ds in facts.datastores.values()} == set(plan.target.datastores)
    assert {m.target for m in plan.network_map} <= {pg.name for pg in facts.portgroups.values()}
    assert plan.target.vm_folder in facts.folders[plan.target.datacenter]
    assert list(facts.clusters) == [plan.target.cluster]
    assert all(ds.free_gb <= ds.capacity_gb for ds in facts.datastores.values())


def counted_calls(session: VSphereSession, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """The vSphere API calls ``session`` makes from now on, by method name."""
    calls: Counter[str] = Counter()
    stub = session.si._stub
    invoke = stub.InvokeMethod

    def counting(mo: Any, info: Any, args: Any, *rest: Any) -> Any:
        calls[info.wsdlName] += 1
        return invoke(mo, info, args, *rest)

    monkeypatch.setattr(stub, "InvokeMethod", counting)
    return calls


def test_gather_facts_makes_a_fixed_number_of_calls(source: VSphereSession, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counted_calls(source, monkeypatch)
    full = vsphere.gather_facts(source, ["NDJ-DC"])  # 39 VMs
    with_vms = dict(calls)
    calls.clear()
    empty = vsphere.gather_facts(source, ["MJ-DC1"])  # none
    assert (len(full.vms), len(empty.vms)) == (39, 0)
    # Datacenters: one view, one read; then one view per datacenter and one paged read of everything.
    assert with_vms == dict(calls) == {"CreateContainerView": 2, "RetrievePropertiesEx": 2, "DestroyView": 2}


def test_facts_scoped_to_some_vms_read_only_those_and_the_same_as_a_whole_read(
    source: VSphereSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = vsphere.gather_facts(source, ["NDJ-DC"])
    calls = counted_calls(source, monkeypatch)
    asked = ["ndj-dc02", "ndj-file01", "no-such-vm"]
    scoped = vsphere.gather_facts(source, ["NDJ-DC"], asked)
    assert sorted(scoped.vms) == ["ndj-dc02", "ndj-file01"]
    assert scoped.vms == {name: whole.vms[name] for name in ("ndj-dc02", "ndj-file01")}
    assert scoped.vms_read == sorted(asked)
    assert whole.vms_read is None
    # the rest of the datacenter as a whole read has it (only the VMs are scoped)
    assert (scoped.hosts, scoped.datastores, scoped.portgroups, scoped.folders) == (
        whole.hosts, whole.datastores, whole.portgroups, whole.folders,
    )  # fmt: skip
    # one call more than the whole read: the properties of the VMs of those names
    assert dict(calls) == {"CreateContainerView": 2, "RetrievePropertiesEx": 3, "DestroyView": 2}
    calls.clear()
    assert vsphere.gather_facts(source, ["NDJ-DC"], ["no-such-vm"]).vms == {}
    assert dict(calls) == {"CreateContainerView": 2, "RetrievePropertiesEx": 2, "DestroyView": 2}


# -- migration ------------------------------------------------------------------------------------


def test_relocate_into_the_shared_datacentre_and_back(
    source: VSphereSession, target: VSphereSession, plan: Plan
) -> None:
    planned = next(vm for vm in plan.vms if vm.name == VM)
    original = vsphere.vm_placement(source, VM, datacenter="NDJ-DC")
    assert (original.host, original.datastore, original.folder, original.portgroups, original.power) == (
        planned.host, planned.datastore, "Servere", planned.portgroups, planned.power.value,
    )  # fmt: skip
    try:
        vsphere.ensure_folder(target, TARGET.datacenter, TARGET.folder)
        seen: list[int] = []
        moved = vsphere.relocate_vm(source, VM, "NDJ-DC", TARGET, target_session=target, progress=seen.append)
        assert (moved.changed, moved.cross_vcenter, moved.before, seen[-1:]) == (True, True, original, [100])
        vm = vsphere.gather_facts(target, ["MJ-DC1"]).vms[VM]
        assert (vm.datacenter, vm.cluster, vm.host, vm.datastores[0], vm.folder, vm.portgroups, vm.power) == (
            "MJ-DC1", "MJ-Kommuner-01", "mj-esx01", "mj-ds-gold-01", "Kommuner/707-Norddjurs",
            ["NDJ-707-Faelles"], "powered_on",
        )  # fmt: skip
        assert VM not in vsphere.gather_facts(source, ["NDJ-DC"]).vms
        again = vsphere.relocate_vm(source, VM, "NDJ-DC", TARGET, target_session=target)
        assert (again.changed, again.message) == (False, f"vm {VM} is already at {moved.after.describe()}")
    finally:
        back = vsphere.relocate_vm(
            target, VM, "MJ-DC1", RelocationTarget.from_placement(original), target_session=source
        )
        assert back.after.model_dump(exclude={"moid"}) == original.model_dump(exclude={"moid"})
    assert vsphere.vm_placement(source, VM, datacenter="NDJ-DC") == original
    assert vsphere.gather_facts(source, ["NDJ-DC"]).vms[VM].portgroups == planned.portgroups


def test_a_cross_vcenter_move_sends_the_target_vcenters_service_locator(
    lab: dict[str, Any], source: VSphereSession, target: VSphereSession
) -> None:
    """The simulator logs each RelocateVM_Task's ServiceLocator (lab/README.md): the move names the
    target vCenter (its own instance UUID, URL, SHA-1 thumbprint, service account and a password that
    logs in there), the move back names the source; no password ever reaches the log."""
    log = Path(lab["state_dir"]) / "vcsim" / "vcsim.log"
    start = log.stat().st_size
    assert source.instance_uuid != target.instance_uuid  # two vCenters, as in a real estate
    original = vsphere.vm_placement(source, VM, datacenter="NDJ-DC")
    vsphere.ensure_folder(target, TARGET.datacenter, TARGET.folder)
    try:
        assert vsphere.relocate_vm(source, VM, "NDJ-DC", TARGET, target_session=target).cross_vcenter
    finally:
        vsphere.relocate_vm(target, VM, "MJ-DC1", RelocationTarget.from_placement(original), target_session=source)
    with log.open(errors="replace") as f:
        f.seek(start)
        sent = [line.split("ofl-vcsim: ", 1)[1].rstrip() for line in f if "ofl-vcsim: relocate-service " in line]

    def locator(to: VSphereSession, name: str, via: str) -> str:
        v = next(v for v in lab["vcenters"] if v["name"] == name)
        return (
            f"relocate-service vm={original.moid} name={VM} listener={via} service: "
            f"url=https://{to.endpoint.hostname}:{to.endpoint.port} instanceUuid={to.instance_uuid} ({name}) "
            f"sslThumbprint={v['thumbprint_sha1']} credential=ServiceLocatorNamePassword username={v['user']} "
            f"password=redacted(valid for {name})"
        )

    assert sent == [locator(target, "mj-vcenter", "ndj-vcenter"), locator(source, "ndj-vcenter", "mj-vcenter")]
    text = log.read_text(errors="replace")
    assert all(v["password"] not in text for v in lab["vcenters"])


def test_relocate_to_a_missing_host_changes_nothing(source: VSphereSession, target: VSphereSession) -> None:
    before = vsphere.vm_placement(source, VM, datacenter="NDJ-DC")
    with pytest.raises(MigrationStepFailed) as caught:
        vsphere.relocate_vm(source, VM, "NDJ-DC", TARGET.model_copy(update={"host": "mj-esx99"}), target_session=target)
    assert str(caught.value) == (
        f"{target.endpoint.where}, datacenter MJ-DC1: no host mj-esx99 in cluster MJ-Kommuner-01"
    )
    assert vsphere.vm_placement(source, VM, datacenter="NDJ-DC") == before


def _inventory_vcenter(lab: dict[str, Any], name: str) -> dict[str, Any]:
    e = endpoint(lab, name)
    return {
        "name": e.name, "hostname": e.hostname, "port": e.port, "username": e.username,
        "password": e.password.get_secret_value(), "ca_file": e.ca_file, "thumbprint": None, "insecure": False,
    }  # fmt: skip


def test_vm_relocate_check_mode_through_ansible_changes_nothing(
    lab: dict[str, Any], source: VSphereSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    before = vsphere.vm_placement(source, VM, datacenter="NDJ-DC")
    # The vCenters as the generated inventory gives them, in a 0600 vars file (not in the command).
    secrets = tmp_path / "vcenters.yml"
    secrets.write_text(yaml.safe_dump({"overflyt_vcenters": {
        "source": _inventory_vcenter(lab, "ndj-vcenter"), "target": _inventory_vcenter(lab, "mj-vcenter"),
    }}))  # fmt: skip
    secrets.chmod(0o600)
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "move.yml").write_text(
        yaml.safe_dump([{
            "name": "Move one VM (check mode)", "hosts": "localhost", "gather_facts": False,
            "vars_files": [str(secrets)],
            "tasks": [
                {"name": "Facts", "overflyt.vsphere.estate_facts": {
                    "vcenter": "{{ overflyt_vcenters.source }}", "datacenters": ["NDJ-DC"]}},
                {"name": "Move", "overflyt.vsphere.vm_relocate": {
                    "vcenter": "{{ overflyt_vcenters.source }}", "target_vcenter": "{{ overflyt_vcenters.target }}",
                    "vm": VM, "source_datacenter": "NDJ-DC", "target": TARGET.model_dump(exclude={"nics"}),
                    "create_folder": True}},
                {"name": "Power", "overflyt.vsphere.vm_power": {
                    "vcenter": "{{ overflyt_vcenters.source }}", "vm": VM, "datacenter": "NDJ-DC",
                    "state": "powered_off"}},
            ],
        }], sort_keys=False)
    )  # fmt: skip
    run = ansible_runner.run(
        private_data_dir=str(tmp_path),
        playbook="move.yml",
        inventory="localhost ansible_connection=local",
        cmdline="--check --diff",
        envvars={
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        },
        quiet=True,
    )
    results = {
        e["event_data"]["task"]: e["event_data"]["res"]
        for e in run.events
        if e["event"] in ("runner_on_ok", "runner_on_failed")
    }
    assert run.status == "successful", run.stdout.read()[-3000:]
    move, power = results["Move"], results["Power"]
    facts = results["Facts"]
    assert (facts["changed"], facts["vcenter_facts"]["vms"][VM]["host"]) == (False, before.host)
    assert facts["invocation"]["module_args"]["vcenter"]["password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert (move["changed"], move["before"], move["diff"]["before"]) == (
        True, before.model_dump(exclude={"moid"}), before.model_dump(exclude={"moid"}),
    )  # fmt: skip
    assert {k: move["after"][k] for k in ("datacenter", "host", "datastore", "folder", "portgroups")} == {
        "datacenter": "MJ-DC1", "host": "mj-esx01", "datastore": "mj-ds-gold-01",
        "folder": "Kommuner/707-Norddjurs", "portgroups": ["NDJ-707-Faelles"],
    }  # fmt: skip
    assert (power["changed"], power["before"], power["after"]) == (True, "powered_on", "powered_off")
    assert vsphere.vm_placement(source, VM, datacenter="NDJ-DC") == before
    rendered = "".join(json.dumps(e) for e in run.events)
    assert all(v["password"] not in rendered for v in lab["vcenters"])


def test_a_snapshot_shows_in_facts_until_removed(source: VSphereSession) -> None:
    vm = source.content.searchIndex.FindByInventoryPath("NDJ-DC/vm/Servere/ndj-dc01")
    wait(vm.CreateSnapshot_Task(name="before-move", description="overflyt test", memory=False, quiesce=False))
    try:
        assert vsphere.gather_facts(source, ["NDJ-DC"]).vms["ndj-dc01"].snapshots == ["before-move"]
    finally:
        snapshot = vm.snapshot.rootSnapshotList[0].snapshot
        wait(snapshot.RemoveSnapshot_Task(removeChildren=True))
    assert vsphere.gather_facts(source, ["NDJ-DC"]).vms["ndj-dc01"].snapshots == []


def wait(task: Any) -> None:
    deadline = time.monotonic() + 30
    while task.info.state not in ("success", "error"):
        assert time.monotonic() < deadline, "task did not finish"
        time.sleep(0.1)
    assert task.info.state == "success", task.info.error
