"""Pre-checks against the lab's real peers.

A clean lab passes. Then each blocker is injected through the real APIs (vSphere API of the
simulator, the device's own sshd and host key), the pre-check runs, and the test asserts the
exact finding, its severity and the exit code — and that the pre-check itself changed nothing in
vCenter or on any device. Every injection is undone before the next test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from overflyt.cli import main
from overflyt.precheck import PrecheckReport
from overflyt.precheck.wave import precheck_wave

from .labtools import arg_after, device, estate, find, pid_of, running_config_sha, sshd_cmdline, wait, wait_port

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("lab_env")]

REPO = Path(__file__).resolve().parents[2]
PLAN = REPO / "inventories" / "norddjurs" / "plan.yml"


def run(wave: int, sites: tuple[str, ...] = ()) -> PrecheckReport:
    return precheck_wave(PLAN, wave, sites).report


def criticals(report: PrecheckReport) -> list[tuple[str, str, str]]:
    return [(f.id, f.subject, f.message) for f in report.findings if f.severity == "critical"]


def unchanged_by_precheck(
    si: Any, lab: dict[str, Any], check: Callable[[], PrecheckReport], skip: tuple[str, ...] = ()
) -> PrecheckReport:
    before = estate(si, lab, skip)
    report = check()
    assert estate(si, lab, skip) == before, "the pre-check changed the estate"
    return report


def test_clean_lab_passes_and_writes_junit_and_ctrf(
    lab: dict[str, Any], si: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = estate(si, lab)
    junit, ctrf = tmp_path / "precheck.xml", tmp_path / "precheck.ctrf.json"
    assert main(["precheck", str(PLAN), "--wave", "1", "--format", "junit", "--output", str(junit)]) == 0
    assert main(["precheck", str(PLAN), "--wave", "1", "--format", "ctrf", "--output", str(ctrf), "-q"]) == 0
    assert estate(si, lab) == before
    err = capsys.readouterr().err
    assert re.search(r"wave 1 ready; run record: .*/state/707/wave-1/precheck/", err), err

    suites = ET.parse(junit).getroot()
    assert suites.tag == "testsuites"
    cases = suites.findall(".//testcase")
    assert len(cases) > 100
    assert suites.findall(".//failure") == []
    assert {c.get("classname") for c in cases} >= {"vm.snapshots", "device.host_key", "capacity.memory", "vcenter.tls"}

    report = json.loads(ctrf.read_text())
    assert report["reportFormat"] == "CTRF"
    summary = report["results"]["summary"]
    assert summary["failed"] == 0
    assert summary["tests"] == len(report["results"]["tests"]) == len(cases)
    assert {t["status"] for t in report["results"]["tests"]} == {"passed"}


def test_snapshot_blocks_the_wave(lab: dict[str, Any], si: Any) -> None:
    vm = find(si, vim.VirtualMachine, "ndj-dc02")
    wait(vm.CreateSnapshot_Task(name="for-patching", description="", memory=False, quiesce=False))
    try:
        report = unchanged_by_precheck(si, lab, lambda: run(1))
        assert criticals(report) == [
            (
                "vm.snapshots",
                "ndj-dc02",
                "ndj-dc02 has 1 snapshot (for-patching); delete or consolidate them before the wave",
            )
        ]
        assert report.blocked
    finally:
        wait(vm.RemoveAllSnapshots_Task())


def test_connected_iso_blocks_the_wave(lab: dict[str, Any], si: Any) -> None:
    vm = find(si, vim.VirtualMachine, "ndj-dhcp01")
    ide = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualIDEController))
    cdrom = vim.vm.device.VirtualCdrom(
        key=-1,
        controllerKey=ide.key,
        unitNumber=0,
        backing=vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName="[ndj-ds-grenaa-01] iso/win2022.iso"),
        connectable=vim.vm.device.VirtualDevice.ConnectInfo(
            connected=True, startConnected=True, allowGuestControl=True
        ),
    )
    change = vim.vm.device.VirtualDeviceSpec(operation="add", device=cdrom)
    wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[change])))
    try:
        report = unchanged_by_precheck(si, lab, lambda: run(1))
        found = criticals(report)
        assert [(i, s) for i, s, _ in found] == [("vm.media", "ndj-dhcp01")], found
        assert found[0][2].startswith("ndj-dhcp01 has connected CD-ROM/ISO media (")
        assert found[0][2].endswith("); disconnect them before the wave")
    finally:
        added = next(
            d
            for d in find(si, vim.VirtualMachine, "ndj-dhcp01").config.hardware.device
            if isinstance(d, vim.vm.device.VirtualCdrom)
        )
        wait(
            vm.ReconfigVM_Task(
                spec=vim.vm.ConfigSpec(deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="remove", device=added)])
            )
        )


def test_big_vm_in_the_target_cluster_blocks_on_memory(lab: dict[str, Any], si: Any) -> None:
    cluster = find(si, vim.ClusterComputeResource, "MJ-Kommuner-01")
    datacenter = find(si, vim.Datacenter, "MJ-DC1")
    free_mb = sum(h.hardware.memorySize // 2**20 for h in cluster.host)
    spec = vim.vm.ConfigSpec(
        name="mj-other-kommune-sql",
        numCPUs=4,
        memoryMB=free_mb,
        guestId="otherGuest64",
        files=vim.vm.FileInfo(vmPathName="[mj-ds-gold-01]"),
    )
    big = wait(datacenter.vmFolder.CreateVM_Task(config=spec, pool=cluster.resourcePool))
    try:
        report = unchanged_by_precheck(si, lab, lambda: run(1))
        found = criticals(report)
        assert [(i, s) for i, s, _ in found] == [("capacity.memory", "MJ-Kommuner-01")], found
        assert found[0][2].startswith("MJ-Kommuner-01 lacks memory for wave 1")
    finally:
        wait(big.Destroy_Task())


def test_missing_target_portgroup_blocks_the_wave(lab: dict[str, Any], si: Any) -> None:
    portgroup = find(si, vim.dvs.DistributedVirtualPortgroup, "NDJ-707-Faelles")
    switch = portgroup.config.distributedVirtualSwitch
    vlan = portgroup.config.defaultPortConfig.vlan
    wait(portgroup.Destroy_Task())
    try:
        report = unchanged_by_precheck(si, lab, lambda: run(1))
        found = criticals(report)
        assert [(i, s) for i, s, _ in found] == [("netmap.target_exists", "NDJ-707-Faelles")], found
        assert found[0][2].startswith(
            "Target portgroup NDJ-707-Faelles (mapped from VM-Faelles-10) does not exist in datacenter MJ-DC1 of "
            "target vCenter mj-vcenter; create it with VLAN 1710"
        )
    finally:
        spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
            name="NDJ-707-Faelles",
            type="earlyBinding",
            numPorts=32,
            defaultPortConfig=vim.dvs.VmwareDistributedVirtualSwitch.VmwarePortConfigPolicy(vlan=vlan),
        )
        wait(switch.AddDVPortgroup_Task([spec]))


def test_renamed_vm_is_not_found(lab: dict[str, Any], si: Any) -> None:
    vm = find(si, vim.VirtualMachine, "ndj-pki01")
    wait(vm.Rename_Task("ndj-pki01-gammel"))
    try:
        report = unchanged_by_precheck(si, lab, lambda: run(1))
        found = criticals(report)
        assert [(i, s) for i, s, _ in found] == [("vm.exists", "ndj-pki01")], found
        assert found[0][2].startswith("VM ndj-pki01 was not found in datacenter NDJ-DC of source vCenter ndj-vcenter")
    finally:
        wait(vm.Rename_Task("ndj-pki01"))


def test_stopped_sshd_blocks_the_wave(lab: dict[str, Any], si: Any) -> None:
    d = device(lab, "ndj-fw-01")
    command = sshd_cmdline(d["sshd_pid"])
    os.kill(d["sshd_pid"], signal.SIGTERM)
    try:
        report = unchanged_by_precheck(si, lab, lambda: run(1), skip=("ndj-fw-01",))
        found = criticals(report)
        assert [(i, s) for i, s, _ in found] == [("device.reachable", "ndj-fw-01")], found
        assert found[0][2].startswith("Device ndj-fw-01 is not reachable over SSH at 127.0.70.2:2222: ")
        assert exit_code_of(report) == 1
    finally:
        subprocess.run(command, check=True)  # sshd daemonizes: same config, key and pid file
        wait_port(d["address"], d["port"])
        d["sshd_pid"] = pid_of(command)


def test_replaced_host_key_blocks_the_wave(lab: dict[str, Any], si: Any, tmp_path: Path) -> None:
    d = device(lab, "ndj-kattegat-rtr-01")
    config = Path(arg_after(sshd_cmdline(d["sshd_pid"]), "-f"))
    key_file = Path(next(line.split()[1] for line in config.read_text().splitlines() if line.startswith("HostKey ")))
    original = key_file.read_bytes(), Path(str(key_file) + ".pub").read_bytes()
    new = tmp_path / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(new)], check=True)
    key_file.write_bytes(new.read_bytes())
    Path(str(key_file) + ".pub").write_bytes(Path(str(new) + ".pub").read_bytes())
    os.kill(d["sshd_pid"], signal.SIGHUP)  # sshd re-executes itself and loads the new key
    time.sleep(0.5)
    try:
        report = unchanged_by_precheck(si, lab, lambda: run(2, ("kattegatskolen",)), skip=("ndj-kattegat-rtr-01",))
        found = criticals(report)
        assert [(i, s) for i, s, _ in found] == [("device.host_key", "ndj-kattegat-rtr-01")], found
        assert found[0][2].startswith("Host key of ndj-kattegat-rtr-01 (127.0.70.5:2222) has CHANGED from the one in ")
    finally:
        key_file.write_bytes(original[0])
        Path(str(key_file) + ".pub").write_bytes(original[1])
        os.kill(d["sshd_pid"], signal.SIGHUP)
        time.sleep(0.5)
    assert running_config_sha(lab, "ndj-kattegat-rtr-01")  # the original key is trusted again


def test_unknown_wave_and_site_are_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["precheck", str(PLAN), "--wave", "7"]) == 2
    assert capsys.readouterr().err.endswith("overflyt: wave 7 is not in the plan (its waves: 1, 2, 3)\n")
    assert main(["precheck", str(PLAN), "--wave", "1", "--site", "kattegatskolen"]) == 2
    assert capsys.readouterr().err.endswith(
        "overflyt: site 'kattegatskolen' is in wave 2, not wave 1 (wave 1's sites: grenaa-raadhus)\n"
    )
    assert not (tmp_path / "state").exists(), "a refused pre-check left a run record"


def test_missing_secret_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OVERFLYT_NDJ_NETWORK_PASSWORD")
    assert main(["precheck", str(PLAN), "--wave", "1"]) == 2
    assert capsys.readouterr().err.endswith(
        "overflyt: credentials 'ndj-network': environment variable OVERFLYT_NDJ_NETWORK_PASSWORD is not set\n"
    )
    assert not (tmp_path / "state").exists()


def exit_code_of(report: PrecheckReport) -> int:
    from overflyt.precheck import exit_code

    return exit_code(report)
