"""Helpers for tests against the lab: find vSphere objects, wait for tasks, read devices, and take a
snapshot of everything a run may or may not change (VM placements, portgroups, device configs)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import paramiko
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

REPO = Path(__file__).resolve().parents[2]
SAMPLE_PLAN = REPO / "inventories" / "norddjurs" / "plan.yml"


def find(si: Any, kind: type, name: str) -> Any:
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [kind], True)
    try:
        return next(o for o in view.view if o.name == name)
    finally:
        view.Destroy()


def wait(task: Any) -> Any:
    deadline = time.monotonic() + 60
    while task.info.state not in ("success", "error"):
        assert time.monotonic() < deadline, "vSphere task did not finish"
        time.sleep(0.1)
    assert task.info.state == "success", task.info.error
    return task.info.result


def device(lab: dict[str, Any], name: str) -> dict[str, Any]:
    return next(d for d in lab["devices"] if d["name"] == name)


def running_config_sha(lab: dict[str, Any], name: str) -> str:
    d = device(lab, name)
    client = paramiko.SSHClient()
    client.load_host_keys(str(Path(lab["state_dir"]) / "known_hosts"))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        d["address"],
        port=d["port"],
        username=d["user"],
        password=d["password"],
        timeout=10,
        allow_agent=False,
        look_for_keys=False,
    )
    try:
        _, out, _ = client.exec_command("show running-config", timeout=20)
        return hashlib.sha256(out.read()).hexdigest()
    finally:
        client.close()


def estate(si: Any, lab: dict[str, Any], skip_devices: tuple[str, ...] = ()) -> dict[str, Any]:
    """What a pre-check must never change: every VM's placement, hardware, power and snapshots, the
    portgroups and every reachable device's running config."""
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
    vms = {
        vm.name: (
            vm.runtime.host.name,
            tuple(ds.name for ds in vm.datastore),
            vm.runtime.powerState,
            vm.config.hardware.numCPU,
            vm.config.hardware.memoryMB,
            tuple(sorted(n.name for n in vm.network)),
            vm.snapshot is not None,
            vm.parent.name,
        )
        for vm in view.view
    }
    view.Destroy()
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.Network], True)
    networks = sorted(n.name for n in view.view)
    view.Destroy()
    names = [d["name"] for d in lab["devices"] if d["name"] not in skip_devices]
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        devices = dict(zip(names, pool.map(lambda n: running_config_sha(lab, n), names), strict=True))
    return {"vms": vms, "networks": networks, "devices": devices}


def sshd_cmdline(pid: int) -> list[str]:
    """The command that started a lab sshd. sshd rewrites its process title to
    "sshd: /usr/sbin/sshd -f CONFIG -E LOG [listener] ...", so take the words between."""
    words = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().split()
    start = words.index("/usr/sbin/sshd")
    end = next((i for i, w in enumerate(words) if w.startswith("[")), len(words))
    return words[start:end]


def arg_after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def wait_port(address: str, port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((address, port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"{address}:{port} did not come back")


def pid_of(command: list[str]) -> int:
    """The pid of a restarted lab sshd, from its pid file. sshd listens before it daemonizes and
    writes that file, so an open port does not mean the file is there yet: wait up to 10 s."""
    config = Path(arg_after(command, "-f"))
    pidfile = Path(next(line.split()[1] for line in config.read_text().splitlines() if line.startswith("PidFile ")))
    deadline = time.monotonic() + 10
    while True:
        try:
            text = pidfile.read_text().strip()
        except FileNotFoundError:
            text = ""
        if text.isdigit() and Path(f"/proc/{text}").exists():
            return int(text)
        if time.monotonic() > deadline:
            raise AssertionError(f"{pidfile} did not name a running sshd within 10 s (it holds {text!r})")
        time.sleep(0.05)


def stop_sshd(lab: dict[str, Any], name: str) -> list[str]:
    """Stop a device's sshd (its management plane); returns the command that starts it again."""
    d = device(lab, name)
    command = sshd_cmdline(d["sshd_pid"])
    import os
    import signal

    os.kill(d["sshd_pid"], signal.SIGTERM)
    return command


def cut_ssh(lab: dict[str, Any], name: str) -> list[str]:
    """Cut a device's management plane mid-session: stop its sshd and kill every session it
    serves (the TCP connections drop); returns the command that starts the sshd again."""
    import os
    import signal

    d = device(lab, name)
    command = sshd_cmdline(d["sshd_pid"])
    sessions = [pid for pid in _descendants(d["sshd_pid"])]
    os.kill(d["sshd_pid"], signal.SIGTERM)
    for pid in sessions:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return command


def lab_sshd_alive(lab: dict[str, Any], name: str) -> bool:
    d = device(lab, name)
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((d["address"], d["port"])) == 0


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def start_sshd(lab: dict[str, Any], name: str, command: list[str]) -> None:
    import subprocess

    d = device(lab, name)
    subprocess.run(command, check=True)  # sshd daemonizes: same config, key and pid file
    wait_port(d["address"], d["port"])
    d["sshd_pid"] = pid_of(command)


def side_reached(lab: dict[str, Any], site: str, address: str, port: int = 7070) -> str | None:
    """Which copy of a server address a site's client reaches: 'source', 'target' or None."""
    from overflyt.lab import probe

    client = next(c for c in lab["clients"] if c["site"] == site)
    answer = probe(client["namespace"], [(address, port)])[0]
    for side in ("source", "target"):
        if side in answer.split():
            return side
    return None


# The fault tests cut over a lighter wave 1: the sample plan without five of the town hall's eight
# VMs (nothing depends on them), so the site still moves VMs in two batches (ndj-dc01 and
# ndj-dc02, then ndj-dhcp01) together with its network, in half the time.
LIGHT_VMS = ["ndj-dc01", "ndj-dc02", "ndj-dhcp01"]


def light_plan(lab: dict[str, Any], where: Path, extra: str = "") -> Path:
    """A copy of the sample plan whose wave 1 moves only LIGHT_VMS (``extra``: top-level YAML to add)."""
    plan_dir = where / "norddjurs-light"
    shutil.copytree(SAMPLE_PLAN.parent, plan_dir)
    text = (plan_dir / "plan.yml").read_text().replace("../../lab/.state/", f"{lab['state_dir']}/")
    text = re.sub(r"\n  - \{name: ndj-(pki01|radius01|wsus01|mgmt01|print01),[^\n]*", "", text)
    (plan_dir / "plan.yml").write_text(text.replace("\nwaves:\n", f"\n{extra}\nwaves:\n", 1) if extra else text)
    return plan_dir / "plan.yml"


@contextlib.contextmanager
def source_vcenter(lab: dict[str, Any]) -> Iterator[Any]:
    """A pyVmomi session on the municipality's vCenter (the lab's ndj-vcenter), trusting the lab's CA."""
    v = next(x for x in lab["vcenters"] if x["name"] == "ndj-vcenter")
    host, port = v["url"].removeprefix("https://").removesuffix("/sdk").split(":")
    context = ssl.create_default_context(cafile=v["ca_file"])
    conn = SmartConnect(host=host, port=int(port), user=v["user"], pwd=v["password"], sslContext=context)
    try:
        yield conn
    finally:
        Disconnect(conn)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def serving(lab: dict[str, Any], home: Path, args: Sequence[str] = ()) -> Iterator[tuple[str, Path]]:
    """`overflyt serve` (server, the deployments, one worker) on a free port with its Prefect home and
    run records under ``home``, ARGS added to its command line: yields (UI URL, state dir). On leaving it is stopped with SIGTERM,
    which must end it cleanly (exit 0, "overflyt: stopped") and leave nothing on its port."""
    port = free_port()
    state = home / "state"
    env = dict(
        os.environ,
        **lab["env"],
        OVERFLYT_STATE_DIR=str(state),
        PREFECT_HOME=str(home / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_WORKER_QUERY_SECONDS="2",
    )
    env.pop("PREFECT_API_URL", None)
    out = home / "serve.out"
    with open(out, "w") as sink:
        command = [sys.executable, "-m", "overflyt.cli", "serve", "--port", str(port), *args]
        proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while f"overflyt: Prefect UI: {url}\n" not in out.read_text():
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.5)
        yield url, state
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError("overflyt serve did not stop on SIGTERM within 90 s") from None
    assert proc.returncode == 0, out.read_text()
    assert out.read_text().endswith("overflyt: stopped\n")
    assert not port_open(port), "the Prefect server outlived overflyt serve"


def vtysh(lab: dict[str, Any], name: str, *commands: str) -> str:
    """Commands run by vtysh on the device's FRR instance directly (not over its SSH): its output."""
    namespace = device(lab, name)["namespace"]
    args = ["vtysh", "-N", namespace]
    for command in commands:
        args += ["-c", command]
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=20)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def plan_copy(lab: dict[str, Any], where: Path) -> Path:
    """A copy of the sample plan's directory whose paths into the lab's state are absolute."""
    plan_dir = where / "norddjurs-copy"
    shutil.copytree(SAMPLE_PLAN.parent, plan_dir)
    plan = plan_dir / "plan.yml"
    plan.write_text(plan.read_text().replace("../../lab/.state/", f"{lab['state_dir']}/"))
    return plan


# -- Molecule: the scenarios of molecule/ run against this lab ------------------------------------

MOLECULE_DEVICE = "ndj-kattegat-rtr-01"  # one router: kattegatskolen's, whose cutover adds one route
MOLECULE_SITE = "kattegatskolen"
MOLECULE_WAVE = 2
MOLECULE_VM = "ndj-print01"  # one powered-on VM with one NIC
MOLECULE_VM_TARGET_HOST = "mj-esx01"


def molecule_env(lab: dict[str, Any], directory: Path) -> dict[str, str]:
    """Write the Molecule scenarios' inventory for the running lab into ``directory`` and return
    the environment that points the scenarios at it (molecule/config.yml reads it).

    The inventory is the one overflyt itself generates (``overflyt.ansible.inventory.build_inventory``)
    for one router and one VM of the sample plan, with the desired state the orchestrator would
    give them; secrets are 0600 files under ``directory/secrets`` read through lookups, as the
    runner does. ``directory/home/.ssh/known_hosts`` holds the lab's device keys (host keys are
    checked). The VM's recorded placement (``overflyt_vm_placement``) is where it is now, read
    from the lab's vCenter before any scenario moves it."""
    import yaml

    from overflyt.ansible.inventory import build_inventory
    from overflyt.plan import load_inventory, load_plan
    from overflyt.plan.credentials import resolve_all
    from overflyt.providers import vsphere
    from overflyt.steps.device_changes import device_changes

    plan_path = SAMPLE_PLAN
    saved = dict(os.environ)
    os.environ.update(lab["env"])
    try:
        plan = load_plan(plan_path)
        credentials = resolve_all(plan, plan_path.parent)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    [vm] = [v for v in plan.vms if v.name == MOLECULE_VM]
    storage = {m.source: m.target for m in plan.storage_map}
    v = next(x for x in lab["vcenters"] if x["name"] == plan.source.vcenter.name)
    host, port = v["url"].removeprefix("https://").removesuffix("/sdk").split(":")
    endpoint = vsphere.VCenterConnection(
        name=v["name"], hostname=host, port=int(port), username=v["user"], password=v["password"], ca_file=v["ca_file"]
    )
    with vsphere.connect(endpoint) as session:
        placement = vsphere.vm_placement(session, MOLECULE_VM, datacenter=plan.source.datacenter)
    change = device_changes(plan, MOLECULE_WAVE, MOLECULE_SITE)[MOLECULE_DEVICE]
    client = next(c for c in lab["clients"] if c["site"] == MOLECULE_SITE)
    inventory, secrets = build_inventory(
        plan,
        load_inventory(plan_path, plan),
        plan_path.parent,
        sites=[MOLECULE_SITE],
        credentials=credentials,
        device_vars={MOLECULE_DEVICE: change.device_vars()},
        controller_vars={
            "vm_facts_datacenters": {"source": [plan.source.datacenter], "target": [plan.target.datacenter]},
        },
        vm_hosts={
            MOLECULE_VM: {
                "overflyt_vm_name": MOLECULE_VM,
                "overflyt_vm_source_datacenter": plan.source.datacenter,
                "overflyt_vm_target": {
                    "datacenter": plan.target.datacenter,
                    "cluster": plan.target.cluster,
                    "host": MOLECULE_VM_TARGET_HOST,
                    "datastore": storage[vm.datastore],
                    "folder": plan.target.vm_folder,
                    "portgroups": {m.source: m.target for m in plan.network_map},
                },
                "overflyt_vm_tools": vm.tools.value,
                "overflyt_vm_placement": placement.model_dump(mode="json"),
                "overflyt_vm_target_datacenter": plan.target.datacenter,
                "overflyt_vm_target_folder": plan.target.vm_folder,
            }
        },
    )
    assert list(inventory["all"]["children"]["network"]["hosts"]) == [MOLECULE_DEVICE]
    secret_dir = directory / "secrets"
    secret_dir.mkdir(parents=True, mode=0o700)
    files: dict[str, str] = {}
    for i, (name, value) in enumerate(sorted(secrets.items())):
        file = secret_dir / f"s{i}"
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value.get_secret_value())
        files[name] = str(file)
    work = directory / "work"
    work.mkdir(mode=0o700)
    inventory["all"]["vars"].update(
        {
            "overflyt_secret_files": files,
            # what the scenarios' own plays need to find the lab's peers and their records
            "molecule_lab_dir": str(work),
            "molecule_lab_ca_file": v["ca_file"],
            "molecule_lab_vcsim_log": str(Path(lab["state_dir"]) / "vcsim" / "vcsim.log"),
            "molecule_lab_client_netns": client["namespace"],
        }
    )
    inventory_file = directory / "inventory.yml"
    inventory_file.write_text(yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
    ssh = directory / "home" / ".ssh"
    ssh.mkdir(parents=True, mode=0o700)
    shutil.copyfile(lab["known_hosts"], ssh / "known_hosts")
    return {
        "OVERFLYT_MOLECULE_INVENTORY": str(inventory_file),
        "OVERFLYT_MOLECULE_HOME": str(directory / "home"),
        "OVERFLYT_MOLECULE_STATS": str(work / "stats.jsonl"),
        "OVERFLYT_MOLECULE_CONTROL": str(directory / "pc"),
        "MOLECULE_EPHEMERAL_DIRECTORY": str(directory / "molecule"),
    }


def vms_placed(si: Any) -> list[tuple[str, ...]]:
    """Every VM of the simulator (both datacenters): moid, name, host, datastores, folder, power."""
    view = si.content.viewManager.CreateContainerView(si.content.rootFolder, [vim.VirtualMachine], True)
    try:
        return sorted(
            (vm._moId, vm.name, vm.runtime.host.name, ",".join(ds.name for ds in vm.datastore), vm.parent.name,
             str(vm.runtime.powerState))
            for vm in view.view
        )  # fmt: skip
    finally:
        view.Destroy()


def step_ctx(plan: Any, plan_path: Path, wave: int, run: Any, credentials: Any) -> Any:
    """A StepContext for calling one step directly: the plan at ``plan_path`` as loaded, with
    ``plan`` in its place (a test may pass a modified copy of it)."""
    import dataclasses

    from overflyt.ansible.step import StepContext
    from overflyt.plan import load

    loaded = load(plan_path)
    if plan is not loaded.plan:
        loaded = dataclasses.replace(loaded, plan=plan)
    return StepContext(loaded, wave, run, credentials)


# -- Processes a run's Ansible started, and where a run stands (tests/lab/test_orphans.py) ---------


def relocations(lab: dict[str, Any]) -> list[str]:
    """Every relocation the simulator performed, from its own log ("ofl-vcsim: relocate vm=... name=...")."""
    log = Path(lab["state_dir"]) / "vcsim" / "vcsim.log"
    return [line for line in log.read_text().splitlines() if "ofl-vcsim: relocate " in line]


def relocated_names(lines: list[str]) -> list[str]:
    return [line.split(" name=")[1].split()[0] for line in lines]


def ansible_processes(state: Path) -> dict[int, str]:
    """pid -> name of every running process that Ansible started for a run under the state dir
    ``state``: ansible-playbook gets ANSIBLE_LOCAL_TEMP inside its run record, and everything it
    starts (the guard before it, workers, modules, ansible-connection daemons, probes) inherits it."""
    from overflyt.ansible import processes

    marker = f"ANSIBLE_LOCAL_TEMP={state.resolve()}/".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and processes.identify(int(entry.name)) is not None:
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in environ:
                found[int(entry.name)] = processes.name_of(int(entry.name))
    return found


def task_hosts_started(run_dir: Path, steps: str, action: str) -> set[str]:
    """The hosts a task of module ``action`` (say ``vm_relocate``) has started on, in the playbook
    calls ``ansible/*<steps>*`` of a run, from ansible-runner's job events (a VM's host is its
    alias, overflyt.plan.names.vm_alias)."""
    import json

    hosts: set[str] = set()
    for event in run_dir.glob(f"ansible/*{steps}*/artifacts/*/job_events/*.json"):
        try:
            data = json.loads(event.read_text())
        except (OSError, ValueError):  # being written
            continue
        fields = data.get("event_data") or {}
        if data.get("event") == "runner_on_start" and str(fields.get("resolved_action", "")).endswith(action):
            hosts.add(str(fields.get("host")))
    return hosts
