"""The lab's real peers: both vCenters over pyvmomi, every device over paramiko and Ansible
network_cli, real traffic that follows a route change, and a `lab down` that leaves nothing."""

from __future__ import annotations

import json
import os
import pwd
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ansible_runner
import paramiko
import pytest
import yaml
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from overflyt.lab import lab_processes, probe

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
PLAN_FILE = REPO / "inventories" / "norddjurs" / "plan.yml"
PLAN = yaml.safe_load(PLAN_FILE.read_text())
POWER = {"powered_on": "poweredOn", "powered_off": "poweredOff", "suspended": "suspended"}


def lab_cli(*args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "overflyt.lab", *args, "--plan", str(PLAN_FILE)]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO, timeout=120)


def vcenter(lab: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in lab["vcenters"] if v["name"] == name)


@pytest.fixture(scope="module", params=["ndj-vcenter", "mj-vcenter"])
def si(request: pytest.FixtureRequest, lab: dict[str, Any]) -> Iterator[Any]:
    v = vcenter(lab, request.param)
    port = int(v["url"].split(":")[2].split("/")[0])
    conn = SmartConnect(
        host="127.0.0.1",
        port=port,
        user=v["user"],
        pwd=v["password"],
        sslContext=ssl.create_default_context(cafile=v["ca_file"]),
    )
    yield conn
    Disconnect(conn)


def objects(si: Any, kind: type) -> dict[str, Any]:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [kind], True)
    try:
        return {o.name: o for o in view.view}
    finally:
        view.Destroy()


def wait_task(task: Any) -> None:
    deadline = time.monotonic() + 30
    while task.info.state not in ("success", "error"):
        assert time.monotonic() < deadline, "task did not finish"
        time.sleep(0.1)
    assert task.info.state == "success", task.info.error


# -- status --------------------------------------------------------------------------------------


def test_status_json_lists_both_vcenters_every_device_clients_and_servers(lab: dict[str, Any]) -> None:
    done = lab_cli("status", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["up"] is True
    assert [(v["name"], v["url"]) for v in status["vcenters"]] == [
        ("ndj-vcenter", PLAN["source"]["vcenter"]["url"]),
        ("mj-vcenter", PLAN["target"]["vcenter"]["url"]),
    ]
    assert all(Path(v["ca_file"]).is_file() and len(v["thumbprint_sha256"]) == 95 for v in status["vcenters"])
    assert [(d["name"], d["address"], d["port"]) for d in status["devices"]] == [
        (d["hostname"], d["management"], d["port"]) for d in PLAN["devices"]
    ]
    assert all(d["host_key_fingerprint"].startswith("SHA256:") for d in status["devices"])
    assert [c["site"] for c in status["clients"]] == [s["id"] for s in PLAN["sites"]]
    assert sorted((s["subnet"], s["side"]) for s in status["servers"]) == sorted(
        (m["subnet"], side) for m in PLAN["network_map"] for side in ("source", "target")
    )
    assert set(status["env"]) == {
        "OVERFLYT_NDJ_VCENTER_PASSWORD",
        "OVERFLYT_MJ_VCENTER_PASSWORD",
        "OVERFLYT_NDJ_NETWORK_PASSWORD",
    }
    known_hosts = Path(status["known_hosts"]).read_text().splitlines()
    assert [line.split()[0] for line in known_hosts] == [
        f"[{d['management']}]:{d['port']}" for d in PLAN["devices"]
    ] + [f"[{c['ssh']['address']}]:{c['ssh']['port']}" for c in status["clients"]]  # then each site's probe host
    assert [c["ssh"]["address"] for c in status["clients"]] == [
        f"127.0.71.{n}" for n in range(1, len(PLAN["sites"]) + 1)
    ]


def test_lab_up_again_is_quick_and_changes_nothing(lab: dict[str, Any]) -> None:
    started = time.monotonic()
    done = lab_cli("up", "--json")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 15
    again = json.loads(done.stdout)
    assert again["vcsim_pid"] == lab["vcsim_pid"]
    assert [d["sshd_pid"] for d in again["devices"]] == [d["sshd_pid"] for d in lab["devices"]]
    assert again["env"] == lab["env"]


def test_lab_commands_need_root(lab: dict[str, Any]) -> None:
    done = lab_cli("status", "--json", user="nobody")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "overflyt: the lab needs root (it creates network namespaces, a user and daemons); run it as root\n"
    )


# -- vSphere -------------------------------------------------------------------------------------


def test_vcenter_holds_the_sample_vms_as_planned(si: Any) -> None:
    vms = objects(si, vim.VirtualMachine)
    assert sorted(vms) == sorted(vm["name"] for vm in PLAN["vms"])
    for planned in PLAN["vms"]:
        vm = vms[planned["name"]]
        disks = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
        assert (
            vm.config.hardware.numCPU,
            vm.config.hardware.memoryMB,
            [d.capacityInKB // (1024 * 1024) for d in disks],
            vm.runtime.powerState,
            vm.runtime.host.name,
            [ds.name for ds in vm.datastore],
            [n.name for n in vm.network],
            vm.guest.ipAddress,
        ) == (
            planned["cpu"],
            planned["memory_mb"],
            planned["disks_gb"],
            POWER[planned["power"]],
            planned["host"],
            [planned["datastore"]],
            planned["portgroups"],
            planned["ip"],
        ), planned["name"]
        assert vm.resourcePool.owner.name == PLAN["source"]["cluster"]


def test_vcenter_holds_the_target_datacentre_empty_and_roomy(si: Any) -> None:
    dcs = objects(si, vim.Datacenter)
    assert set(dcs) == {PLAN["source"]["datacenter"], PLAN["target"]["datacenter"]}
    target = dcs[PLAN["target"]["datacenter"]]
    clusters = {c.name: c for c in target.hostFolder.childEntity}
    cluster = clusters[PLAN["target"]["cluster"]]
    assert len(cluster.host) >= 2
    datastores = {ds.name: ds for ds in target.datastore}
    assert set(datastores) == set(PLAN["target"]["datastores"])
    wave_gb = sum(sum(vm["disks_gb"]) for vm in PLAN["vms"])
    assert sum(ds.summary.freeSpace for ds in datastores.values()) > wave_gb * 2**30
    assert {n.name for n in target.network} >= {m["target"] for m in PLAN["network_map"]}
    folder = target.vmFolder
    for part in PLAN["target"]["vm_folder"].split("/"):
        folder = next(f for f in folder.childEntity if f.name == part)
    assert list(folder.childEntity) == []
    source = dcs[PLAN["source"]["datacenter"]]
    for ds in source.datastore:
        assert ds.summary.freeSpace > 0, ds.name


def test_vcenter_rejects_a_wrong_password(lab: dict[str, Any]) -> None:
    v = vcenter(lab, "ndj-vcenter")
    with pytest.raises(vim.fault.InvalidLogin):
        SmartConnect(
            host="127.0.0.1",
            port=18443,
            user=v["user"],
            pwd=v["password"] + "x",
            sslContext=ssl.create_default_context(cafile=v["ca_file"]),
        )


def test_snapshot_create_and_remove(si: Any) -> None:
    """pyvmomi reads an unset `snapshot` through Fetch; the launcher's guard keeps that working."""
    vm = objects(si, vim.VirtualMachine)["ndj-vikar01"]
    assert vm.snapshot is None
    wait_task(vm.CreateSnapshot_Task(name="lab-test", description="", memory=False, quiesce=False))
    assert [s.name for s in vm.snapshot.rootSnapshotList] == ["lab-test"]
    wait_task(vm.snapshot.rootSnapshotList[0].snapshot.RemoveSnapshot_Task(removeChildren=False))
    assert vm.snapshot is None


# -- devices -------------------------------------------------------------------------------------


def ssh(lab: dict[str, Any], device: dict[str, Any]) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(lab["known_hosts"])
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        device["address"],
        port=device["port"],
        username=device["user"],
        password=device["password"],
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    return client


def run_cli(lab: dict[str, Any], name: str, command: str) -> str:
    device = next(d for d in lab["devices"] if d["name"] == name)
    client = ssh(lab, device)
    try:
        _, stdout, stderr = client.exec_command(command, timeout=20)
        out = stdout.read().decode()
        assert stdout.channel.recv_exit_status() == 0, stderr.read().decode()
        return out
    finally:
        client.close()


def test_every_device_shows_its_running_config_over_ssh(lab: dict[str, Any]) -> None:
    for device in lab["devices"]:
        config = run_cli(lab, device["name"], "show running-config")
        assert f"hostname {device['name']}\n" in config
        assert "ip route " in config


def test_device_refuses_a_wrong_password(lab: dict[str, Any]) -> None:
    device = {**lab["devices"][0], "password": "wrong"}
    with pytest.raises(paramiko.AuthenticationException):
        ssh(lab, device)


def test_ansible_network_cli_runs_ios_command_and_ios_config(lab: dict[str, Any], tmp_path: Path) -> None:
    device = next(d for d in lab["devices"] if d["name"] == "ndj-fw-01")
    inventory = {
        "all": {
            "hosts": {
                device["name"]: {
                    "ansible_host": device["address"],
                    "ansible_port": device["port"],
                    "ansible_user": device["user"],
                    "ansible_password": device["password"],
                    "ansible_connection": "ansible.netcommon.network_cli",
                    "ansible_network_os": "cisco.ios.ios",
                    # host keys are verified by the paramiko test; the runner adapter wires
                    # known_hosts for Ansible in its own issue
                    "ansible_host_key_checking": False,
                }
            }
        }
    }
    playbook = [
        {
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Set a description",
                    "cisco.ios.ios_config": {
                        "lines": ["description lab test"],
                        "parents": ["interface to-core"],
                    },
                },
                {
                    "name": "Read the running config",
                    "cisco.ios.ios_command": {"commands": ["show running-config"]},
                    "register": "shown",
                },
                {"ansible.builtin.set_stats": {"data": {"config": "{{ shown.stdout[0] }}"}}},
            ],
        }
    ]
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "check.yml").write_text(yaml.safe_dump(playbook))
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory))
    result = ansible_runner.run(
        private_data_dir=str(tmp_path),
        playbook="check.yml",
        quiet=True,
        envvars={"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "ANSIBLE_COLLECTIONS_PATH": ""},
    )
    assert (result.status, result.rc) == ("successful", 0), "\n".join(str(e.get("stdout", "")) for e in result.events)
    stats = [e for e in result.events if e["event"] == "playbook_on_stats"]
    config = stats[-1]["event_data"]["artifact_data"]["config"]
    assert "hostname ndj-fw-01" in config
    assert " description lab test" in config
    run_cli(lab, "ndj-fw-01", "configure terminal\ninterface to-core\nno description")


# -- traffic -------------------------------------------------------------------------------------


def test_every_client_reaches_every_server_subnet_on_its_source_side(lab: dict[str, Any]) -> None:
    sources = [s for s in lab["servers"] if s["side"] == "source"]
    targets = [(address, s["port"]) for s in sources for address in s["addresses"]]
    for client in lab["clients"]:
        assert probe(client["namespace"], targets) == [f"source {a}" for a, _ in targets], client["site"]


def test_route_change_on_the_device_moves_real_traffic(lab: dict[str, Any]) -> None:
    client = next(c for c in lab["clients"] if c["site"] == "kattegatskolen")
    dc_peer = "10.255.70.9"  # first host of kattegatskolen's dc_link: the shared-datacentre core
    server = [("10.70.20.21", 7070)]
    assert probe(client["namespace"], server) == ["source 10.70.20.21"]
    route = f"ip route 10.70.20.0/24 {dc_peer}"
    run_cli(lab, "ndj-kattegat-rtr-01", f"configure terminal\n{route}")
    try:
        assert route in run_cli(lab, "ndj-kattegat-rtr-01", "show running-config")
        assert probe(client["namespace"], server) == ["target 10.70.20.21"]
        other = next(c for c in lab["clients"] if c["site"] == "auning-skole")
        assert probe(other["namespace"], server) == ["source 10.70.20.21"]
    finally:
        run_cli(lab, "ndj-kattegat-rtr-01", f"configure terminal\nno {route}")
    assert probe(client["namespace"], server) == ["source 10.70.20.21"]


def test_a_blackholed_route_really_drops_traffic(lab: dict[str, Any]) -> None:
    client = next(c for c in lab["clients"] if c["site"] == "kattegatskolen")
    run_cli(lab, "ndj-kattegat-rtr-01", "configure terminal\nip route 10.70.20.21/32 blackhole")
    try:
        [answer] = probe(client["namespace"], [("10.70.20.21", 7070)], timeout=1.0)
        assert answer.startswith("error: "), answer
    finally:
        run_cli(lab, "ndj-kattegat-rtr-01", "configure terminal\nno ip route 10.70.20.21/32 blackhole")
    assert probe(client["namespace"], [("10.70.20.21", 7070)]) == ["source 10.70.20.21"]


# -- down (ordered last by tests/conftest.py) -----------------------------------------------------


def test_lab_down_leaves_nothing_behind(lab: dict[str, Any]) -> None:
    state = Path(lab["state_dir"])
    done = lab_cli("down")
    assert done.returncode == 0, done.stderr
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert [line for line in netns.splitlines() if line.startswith("ofl-")] == []
    assert lab_processes(state, "overflyt") == {}
    for pid in [lab["vcsim_pid"], lab["agent_pid"], *(d["sshd_pid"] for d in lab["devices"])]:
        assert not Path(f"/proc/{pid}/cmdline").exists() or not Path(f"/proc/{pid}/cmdline").read_bytes()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert [line for line in links.splitlines() if "veth" in line or " to-" in line] == []
    with pytest.raises(KeyError):
        pwd.getpwnam("overflyt")
    assert not state.exists()
    assert list(Path("/etc/frr").glob("ofl-*")) == []
    assert list(Path("/var/run/frr").glob("ofl-*")) == []
    probe_hosts = [(c["ssh"]["address"], c["ssh"]["port"]) for c in lab["clients"]]
    for endpoint in [
        ("127.0.0.1", 18443),
        ("127.0.0.1", 18444),
        *((d["address"], d["port"]) for d in lab["devices"]),
        *probe_hosts,
    ]:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(endpoint, timeout=2).close()
    status = lab_cli("status", "--json")
    assert status.returncode == 1
    assert json.loads(status.stdout)["up"] is False
    assert status.stderr == f"overflyt: the lab is not up: nothing in {state} (run 'overflyt lab up')\n"
    again = lab_cli("down")
    assert (again.returncode, again.stdout) == (0, "lab down: nothing to remove\n")
    assert os.geteuid() == 0
