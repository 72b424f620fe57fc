"""Waves against the lab: a site's VMs and network cut over together, and roll back together.

Every test starts from, and leaves, the lab as `lab up` built it. Faults are injected mid-run
through real actions on the peers (vSphere API, the device's sshd, kernel routes in the
datacentre core's namespace) from the run's own step callback, the way an outside event would
hit a real cutover.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from overflyt.cli import main
from overflyt.cutover.wave import Approval, WaveOutcome, rollback_site, run_wave
from overflyt.errors import UsageError
from overflyt.plan import load_plan
from overflyt.plan.names import vm_alias
from overflyt.record import RunLocked, municipality_lock
from overflyt.steps.slots import Need, hold

from .labtools import (
    LIGHT_VMS,
    ansible_processes,
    cut_ssh,
    estate,
    find,
    lab_sshd_alive,
    light_plan,
    relocated_names,
    relocations,
    side_reached,
    start_sshd,
    stop_sshd,
    task_hosts_started,
    wait,
)

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("lab_env")]

REPO = Path(__file__).resolve().parents[2]
PLAN = REPO / "inventories" / "norddjurs" / "plan.yml"
APPROVAL = Approval("Mette Frederiksen (test)", "CHG-0001")


def wave1(plan: Path = PLAN, **kwargs: Any) -> WaveOutcome:
    return run_wave(plan, 1, dry_run=False, approval=APPROVAL, outside_window=True, **kwargs)


@pytest.fixture
def light(lab: dict[str, Any], tmp_path: Path) -> Path:
    return light_plan(lab, tmp_path)


def traffic(lab: dict[str, Any]) -> dict[str, str | None]:
    """Which side of ndj-dc01 (10.70.10.11, wave 1's subnet) each of three sites reaches."""
    return {s: side_reached(lab, s, "10.70.10.11") for s in ("grenaa-raadhus", "kattegatskolen", "digterparken")}


def vm_parents(si: Any, names: list[str]) -> dict[str, str]:
    return {n: find(si, vim.VirtualMachine, n).parent.name for n in names}


WAVE1_VMS = [
    "ndj-dc01",
    "ndj-dc02",
    "ndj-dhcp01",
    "ndj-pki01",
    "ndj-radius01",
    "ndj-wsus01",
    "ndj-mgmt01",
    "ndj-print01",
]


def _vcenter_tasks(lab: dict[str, Any]) -> list[str]:
    """Every task (and synchronous change) the simulator was asked for, from its own log."""
    log = Path(lab["state_dir"]) / "vcsim" / "vcsim.log"
    return [line.split("ofl-vcsim: ", 1)[1] for line in log.read_text().splitlines() if "ofl-vcsim: task " in line]


def _frr_commands(namespace: str) -> dict[Path, int]:
    return {log: log.stat().st_size for log in Path(f"/var/run/frr/{namespace}").glob("*.log")}


def test_dry_run_changes_nothing_and_shows_the_moves_and_diffs(lab: dict[str, Any], si: Any) -> None:
    """A dry run asks vCenter for no task and sends no configuration command to any device: what
    the peers themselves recorded (the simulator's task log, FRR's command log) says so."""
    vtysh = ["vtysh", "-N", "ofl-core"]
    subprocess.run([*vtysh, "-c", "configure terminal", "-c", "log commands"], check=True, capture_output=True)
    try:
        before = estate(si, lab)
        tasks_before = len(_vcenter_tasks(lab))
        offsets = _frr_commands("ofl-core")
        outcome = run_wave(PLAN, 1, dry_run=True)
        received = [line for log, at in offsets.items() for line in log.read_text()[at:].splitlines()]
        assert estate(si, lab) == before
    finally:
        subprocess.run([*vtysh, "-c", "configure terminal", "-c", "no log commands"], check=True, capture_output=True)
    assert _vcenter_tasks(lab)[tasks_before:] == []
    commands = {line.split("@", 1)[-1] for line in received if "@" in line}
    assert "# do write terminal" in commands, received  # the device did record the dry run's reads ...
    changes = [c for c in commands if "configure" in c or "ip route" in c or " no " in c]
    assert changes == [], received  # ... and no configuration command
    assert outcome.exit_code == 0, outcome
    site = outcome.sites[0]
    assert site.status == "dry_run"
    assert {name: vm["status"] for name, vm in site.vms["vms"].items()} == dict.fromkeys(WAVE1_VMS, "would_move")
    core = site.devices["devices"]["ndj-core-01"]
    assert "ip route 10.70.10.0/24 10.255.70.1" in core["pending_lines"]
    assert core["pushed_lines"] == []
    assert not (Path(os.environ["OVERFLYT_STATE_DIR"]) / "707" / "wave-1" / "state.json").exists()
    report = (outcome.run_dir / "report.md").read_text()
    assert "ip route 10.70.10.0/24 10.255.70.1" in report


def test_a_whole_wave_cuts_over_and_rolls_back(lab: dict[str, Any], si: Any, caplog: pytest.LogCaptureFixture) -> None:
    before = estate(si, lab)
    assert traffic(lab) == dict.fromkeys(("grenaa-raadhus", "kattegatskolen", "digterparken"), "source")

    tasks_before = len(_vcenter_tasks(lab))
    # Another municipality's run holds every move slot of the shared vCenter for the wave's first
    # seconds: the wave waits for it (the plan's `global` limit holds across runs), then moves.
    plan = load_plan(PLAN)
    shared = Need(f"vcenter {plan.target.vcenter.hostport}", plan.concurrency.global_, plan.concurrency.global_)
    neighbour = {"municipality": "706", "wave": 1, "site": "ebeltoft-raadhus"}
    taken, waiting, released = threading.Event(), threading.Event(), threading.Event()
    said: list[str] = []

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waiting for move slots" in record.getMessage():
                said.append(record.getMessage())
                waiting.set()

    def hold_the_vcenter() -> None:
        with hold([shared], neighbour, timeout_s=5):
            taken.set()
            waiting.wait(300)
            time.sleep(2)
        released.set()

    watch = Watch()
    caplog.set_level(logging.INFO, logger="overflyt.steps")
    logging.getLogger("overflyt.steps").addHandler(watch)
    try:
        threading.Thread(target=hold_the_vcenter, daemon=True).start()
        assert taken.wait(10)
        outcome = wave1()
    finally:
        logging.getLogger("overflyt.steps").removeHandler(watch)
    assert outcome.exit_code == 0, [(s.site, s.status, s.error) for s in outcome.sites]
    assert [s.status for s in outcome.sites] == ["done"]
    assert released.is_set()
    record = next(Path(os.environ["OVERFLYT_STATE_DIR"]).glob("707/wave-1/wave/*/vm-migration-grenaa-raadhus.json"))
    waits = json.loads(record.read_text())["slot_waits_s"]
    assert list(waits) == ["1"], waits  # the first batch waited, the later ones found their slots free
    assert waits["1"] >= 2, waits
    assert "held by municipality 706 wave 1 site ebeltoft-raadhus" in said[0], said
    # the simulator's task log sees a real cutover (so the dry run's empty log means something)
    moves = [t for t in _vcenter_tasks(lab)[tasks_before:] if t.startswith("task method=RelocateVM_Task ")]
    assert len(moves) == len(WAVE1_VMS), moves
    # VMs are in the shared datacentre's folder, on the mapped portgroup, power as before.
    for name in WAVE1_VMS:
        vm = find(si, vim.VirtualMachine, name)
        assert vm.parent.name == "707-Norddjurs", name
        assert [n.name for n in vm.network] == ["NDJ-707-Faelles"], name
        assert vm.runtime.powerState == "poweredOn", name
    # Real traffic: every site's client now reaches the shared datacentre's copy of the servers.
    assert traffic(lab) == dict.fromkeys(("grenaa-raadhus", "kattegatskolen", "digterparken"), "target")
    # A rerun of the finished wave changes nothing.
    again = wave1()
    assert [s.status for s in again.sites] == ["skipped"]

    back = rollback_site(PLAN, "grenaa-raadhus")
    assert back.exit_code == 0, [(s.site, s.status, s.error) for s in back.sites]
    assert estate(si, lab) == before
    assert traffic(lab) == dict.fromkeys(("grenaa-raadhus", "kattegatskolen", "digterparken"), "source")


def _fault_at(step: str, inject: Callable[[], None]) -> Callable[[str, str, str], None]:
    fired: list[bool] = []

    def on_step(site: str, name: str, status: str) -> None:
        if name == step and status == "started" and not fired:
            fired.append(True)
            inject()

    return on_step


def test_relocate_failure_rolls_the_site_back(lab: dict[str, Any], si: Any, light: Path) -> None:
    """The target portgroup disappears once the VM moves have started (someone deletes it in the
    shared datacentre's vCenter): the moves fail and the site is rolled back."""
    before = estate(si, lab)
    portgroup = find(si, vim.dvs.DistributedVirtualPortgroup, "NDJ-707-Faelles")
    switch = portgroup.config.distributedVirtualSwitch
    vlan = portgroup.config.defaultPortConfig.vlan
    outcome = wave1(light, on_step=_fault_at("migrate", lambda: wait(portgroup.Destroy_Task())))
    try:
        assert outcome.exit_code == 1
        [site] = outcome.sites
        assert site.status == "rolled_back", site
        assert site.error is not None
        assert site.error.startswith("migrate: ")
        assert "NDJ-707-Faelles" in site.error
    finally:
        spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
            name="NDJ-707-Faelles",
            type="earlyBinding",
            numPorts=32,
            defaultPortConfig=vim.dvs.VmwareDistributedVirtualSwitch.VmwarePortConfigPolicy(vlan=vlan),
        )
        wait(switch.AddDVPortgroup_Task([spec]))
    assert estate(si, lab) == before
    assert traffic(lab)["kattegatskolen"] == "source"


def test_device_lost_mid_change_is_restored(lab: dict[str, Any], si: Any, light: Path) -> None:
    before = estate(si, lab)
    stopped: list[list[str]] = []

    def cut() -> None:
        stopped.append(stop_sshd(lab, "ndj-core-01"))

    def on_step(site: str, step: str, status: str) -> None:
        if step == "configure" and status == "started":
            cut()
        if step == "configure" and status == "failed":
            start_sshd(lab, "ndj-core-01", stopped[0])  # the device comes back: rollback can reach it

    outcome = wave1(light, on_step=on_step)
    assert outcome.exit_code == 1
    [site] = outcome.sites
    assert site.status == "rolled_back", site
    assert site.error is not None
    assert site.error.startswith("configure: ")
    assert site.rollback["classified"]["ndj-core-01"] == "not applied"  # re-read, not assumed
    assert estate(si, lab) == before
    assert traffic(lab)["kattegatskolen"] == "source"


def test_ssh_cut_right_after_the_push_is_reread_classified_and_restored(
    lab: dict[str, Any], si: Any, light: Path
) -> None:
    """The core router's SSH session drops the moment its new route is in (before the push is
    confirmed): the rollback re-reads the device, finds the change applied, and restores it."""
    before = estate(si, lab)
    show = ["vtysh", "-N", "ofl-core", "-c", "show running-config"]
    route = "ip route 10.70.10.0/24 10.255.70.1"  # the change: make the new route, then break the old
    [old] = [
        line
        for line in subprocess.run(show, capture_output=True, text=True).stdout.splitlines()
        if line.startswith("ip route 10.70.10.0/24 ")
    ]
    stopped: list[list[str]] = []

    def watch_and_cut() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            lines = subprocess.run(show, capture_output=True, text=True).stdout.splitlines()
            if route in lines and old not in lines:  # the whole push is in
                stopped.append(cut_ssh(lab, "ndj-core-01"))
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch_and_cut)

    def on_step(site: str, step: str, status: str) -> None:
        if step == "configure" and status == "started":
            watcher.start()
        if step == "configure" and status == "failed":
            watcher.join()
            start_sshd(lab, "ndj-core-01", stopped[0])  # the device comes back: it can be re-read

    try:
        outcome = wave1(light, on_step=on_step)
    finally:
        if watcher.is_alive():
            watcher.join()
        if stopped and not lab_sshd_alive(lab, "ndj-core-01"):
            start_sshd(lab, "ndj-core-01", stopped[0])
    assert stopped, "the route never reached the device"
    [site] = outcome.sites
    assert site.status == "rolled_back", site
    assert site.error is not None
    assert site.error.startswith("configure: ")
    assert site.rollback["classified"]["ndj-core-01"] == "applied"
    restored = site.rollback["devices"]["devices"]["ndj-core-01"]
    assert f"no {route}" in restored["pushed_lines"]
    assert old in restored["pushed_lines"]
    assert restored["restored"] is True
    assert estate(si, lab) == before
    assert traffic(lab)["kattegatskolen"] == "source"


def test_postcheck_traffic_failure_rolls_the_site_back(lab: dict[str, Any], si: Any, light: Path) -> None:
    before = estate(si, lab)
    dc_core = "ofl-dc-core"
    blackhole = ["ip", "netns", "exec", dc_core, "ip", "route", "replace", "blackhole", "10.70.10.11/32"]
    outcome = wave1(light, on_step=_fault_at("postcheck", lambda: subprocess.run(blackhole, check=True)))
    subprocess.run(["ip", "netns", "exec", dc_core, "ip", "route", "del", "blackhole", "10.70.10.11/32"], check=True)
    assert outcome.exit_code == 1
    [site] = outcome.sites
    assert site.status == "rolled_back", site
    assert site.error is not None
    assert site.error.startswith("postcheck: post-check of site grenaa-raadhus failed: 10.70.10.11 answered ")
    assert "(expected target)" in site.error
    assert estate(si, lab) == before


def test_verify_failure_rolls_back_that_site_only_and_the_wave_goes_on(
    lab: dict[str, Any], si: Any, tmp_path: Path
) -> None:
    """Wave 1 of a copy of the light plan cuts over kattegatskolen, then grenaa-raadhus. The school's
    router partly rejects its push (one invalid line, the way a template error would reach it):
    verification names the line, that site alone is restored, and the town hall still moves."""
    plan = light_plan(lab, tmp_path)
    text = plan.read_text()
    text = text.replace("sites: [grenaa-raadhus]", "sites: [kattegatskolen, grenaa-raadhus]")
    text = text.replace("sites: [auning-adm, kattegatskolen, auning-skole]", "sites: [auning-adm, auning-skole]")
    plan.write_text(text)
    bad = "ip route 10.70.99.0/33 10.255.70.9"  # vtysh answers "% Unknown command" and goes on
    (plan.parent / "host_vars" / "ndj-kattegat-rtr-01.yml").write_text(f"net_configure_extra_lines: [{bad!r}]\n")
    before = estate(si, lab)
    outcome = wave1(plan)
    try:
        assert outcome.exit_code == 1
        school, town_hall = outcome.sites
        assert (school.site, school.status) == ("kattegatskolen", "rolled_back"), school
        assert school.error is not None
        assert school.error.startswith("configure: ")
        assert f"ndj-kattegat-rtr-01 does not hold its desired state: missing: {bad}" in school.error
        assert (town_hall.site, town_hall.status) == ("grenaa-raadhus", "done"), town_hall
        # the school is exactly as it was; the town hall's VMs and network moved
        moved = estate(si, lab)
        assert moved["devices"]["ndj-kattegat-rtr-01"] == before["devices"]["ndj-kattegat-rtr-01"]
        assert moved["devices"]["ndj-core-01"] != before["devices"]["ndj-core-01"]
        assert vm_parents(si, LIGHT_VMS) == dict.fromkeys(LIGHT_VMS, "707-Norddjurs")
        assert traffic(lab)["grenaa-raadhus"] == "target"
    finally:
        back = rollback_site(plan, "grenaa-raadhus")
    assert back.exit_code == 0, [(s.site, s.status, s.error) for s in back.sites]
    assert estate(si, lab) == before


def test_a_second_run_of_the_same_municipality_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with municipality_lock("707", "wave 2 cutover (another engineer)"):
        with pytest.raises(RunLocked) as refused:
            run_wave(PLAN, 1, dry_run=True)
        assert str(refused.value).startswith("municipality 707 is busy: wave 2 cutover (another engineer) by ")
        assert main(["wave", "run", str(PLAN), "--wave", "1", "--dry-run"]) == 2
    assert "overflyt: municipality 707 is busy: " in capsys.readouterr().err


def test_bad_input_is_refused_before_anything_runs(capsys: pytest.CaptureFixture[str]) -> None:
    state = Path(os.environ["OVERFLYT_STATE_DIR"])
    assert main(["wave", "run", str(PLAN), "--wave", "1"]) == 2
    assert capsys.readouterr().err.endswith(
        "overflyt: wave 1 of Norddjurs Kommune needs approval before its cutover: give --approved-by NAME "
        "(and --ticket REF), or run it with --dry-run\n"
    )
    assert main(["wave", "run", str(PLAN), "--wave", "2", "--site", "grenaa-havn", "--dry-run"]) == 2
    assert "site 'grenaa-havn' is not in the plan" in capsys.readouterr().err
    assert main(["rollback", str(PLAN), "--site", "kattegatskolen"]) == 2
    assert capsys.readouterr().err.endswith(
        f"overflyt: site kattegatskolen has no recorded cutover in wave 2 (looked in {state}/707/wave-2/state.json): "
        "there is nothing to roll back\n"
    )
    with pytest.raises(UsageError):
        run_wave(PLAN, 4)
    assert not list(state.glob("707/wave-*/wave/*")), "a refused run left a run record"


def test_killed_orchestrator_resumes_without_moving_a_vm_twice(lab: dict[str, Any], si: Any, light: Path) -> None:
    """SIGKILL twice — mid-relocate, then (in the rerun) mid-configure — and a third run finishes
    the site: each VM relocated exactly once across the three runs, the site done, traffic moved."""
    before = estate(si, lab)
    relocations_before = len(relocations(lab))
    state_file = Path(os.environ["OVERFLYT_STATE_DIR"]) / "707" / "wave-1" / "state.json"
    command = [
        sys.executable, "-m", "overflyt.cli", "wave", "run", str(light), "--wave", "1",
        "--approved-by", "test", "--outside-window", "-q",
    ]  # fmt: skip

    def reached(point: str) -> bool:
        if not state_file.exists():
            return False
        site = json.loads(state_file.read_text())["sites"].get("grenaa-raadhus", {})
        if point == "mid-relocate":
            moved = len(relocations(lab)) - relocations_before
            return site.get("current") == "migrate" and 0 < moved < len(LIGHT_VMS)
        return site.get("current") == "configure"

    for point in ("mid-relocate", "mid-configure"):
        process = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 180
        while not reached(point):
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"the wave never reached the kill point {point}")
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)  # the orchestrator and its ansible-playbook die mid-cutover
        process.wait()
        site = json.loads(state_file.read_text())["sites"]["grenaa-raadhus"]
        assert site["status"] == "in_progress", point

    outcome = wave1(light)
    assert [s.status for s in outcome.sites] == ["done"], [(s.site, s.status, s.error) for s in outcome.sites]
    moved = relocations(lab)[relocations_before:]
    assert len(moved) == len(LIGHT_VMS), moved  # each VM relocated exactly once across the three runs
    assert sorted(line.split(" name=")[1].split()[0] for line in moved) == sorted(LIGHT_VMS)
    assert traffic(lab)["kattegatskolen"] == "target"

    assert rollback_site(light, "grenaa-raadhus").exit_code == 0
    assert estate(si, lab) == before


def test_stale_plan_refuses_what_changed_since_the_precheck(lab: dict[str, Any], si: Any) -> None:
    from overflyt.precheck.wave import precheck_wave

    assert not precheck_wave(PLAN, 1).report.blocked
    vm = find(si, vim.VirtualMachine, "ndj-dc01")
    home = vm.runtime.host
    other = find(si, vim.HostSystem, "ndj-esx02")
    wait(vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=other)))
    vtysh = ["vtysh", "-N", "ofl-core", "-c", "configure terminal", "-c", "ip route 192.0.2.0/24 Null0"]
    subprocess.run(vtysh, check=True, capture_output=True)
    try:
        before = estate(si, lab)
        outcome = wave1()
        assert estate(si, lab) == before, "a refused site was touched"
        assert outcome.exit_code == 1
        [site] = outcome.sites
        assert site.status == "refused"
        assert site.error is not None
        assert site.error.startswith("stale plan: VM ndj-dc01 changed since the pre-check ")
        assert "host ndj-esx01 -> ndj-esx02" in site.error
        assert "device ndj-core-01's running config changed since the pre-check " in site.error
    finally:
        wait(vm.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=home)))
        undo = ["vtysh", "-N", "ofl-core", "-c", "configure terminal", "-c", "no ip route 192.0.2.0/24 Null0"]
        subprocess.run(undo, check=True, capture_output=True)


def _ansible_processes() -> list[str]:
    """Every process Ansible started for a run of this test session (ansible-playbook, its workers
    and modules, the ansible-connection daemons), found by the run record's ANSIBLE_LOCAL_TEMP."""
    found = ansible_processes(Path(os.environ["OVERFLYT_STATE_DIR"]))
    return [f"{pid}: {name}" for pid, name in sorted(found.items())]


def test_cancel_mid_playbook_stops_ansible_and_restores_the_site(lab: dict[str, Any], si: Any, light: Path) -> None:
    before = estate(si, lab)
    state_file = Path(os.environ["OVERFLYT_STATE_DIR"]) / "707" / "wave-1" / "state.json"
    command = [
        sys.executable,
        "-m",
        "overflyt.cli",
        "wave",
        "run",
        str(light),
        "--wave",
        "1",
        "--approved-by",
        "test",
        "--outside-window",
        "-q",
    ]
    runs = state_file.parent / "wave"
    moves_before = len(relocations(lab))
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def moving() -> bool:
        """A VM's relocation has started in this run and is not done: the migrate step is mid-batch,
        with its playbook's remaining tasks still to run (the step's last batch can end within a
        second, so "the step is current and Ansible runs" alone could catch the next step)."""
        moved = {vm_alias(n) for n in relocated_names(relocations(lab)[moves_before:])}
        return any(task_hosts_started(run, "vm-migrate", "vm_relocate") - moved for run in runs.glob("*"))

    deadline = time.monotonic() + 120
    while not moving():
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("the wave never reached its VM moves")
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)  # what Prefect sends when a run is cancelled from the UI
    out, err = process.communicate(timeout=300)
    assert process.returncode == 1, (out, err)
    deadline = time.monotonic() + 10
    while _ansible_processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _ansible_processes() == [], "ansible processes outlived the cancel"
    site = json.loads(state_file.read_text())["sites"]["grenaa-raadhus"]
    assert site["error"] == "migrate: canceled (signal SIGTERM)"
    assert site["status"] == "rolled_back"
    assert "grenaa-raadhus: rolled_back — migrate: canceled (signal SIGTERM)" in out
    assert estate(si, lab) == before


def test_hung_device_is_stopped_at_the_step_timeout_and_the_site_restored(
    lab: dict[str, Any], si: Any, tmp_path: Path
) -> None:
    """The core router accepts SSH but never answers (its FRR daemons are frozen): the configure
    step is stopped hard at plan.timeouts.configure_s, reported as timed out, and rolled back."""
    plan = light_plan(lab, tmp_path, extra="timeouts: {configure_s: 20}\n")
    frozen = [
        int(p)
        for p in subprocess.run(["ip", "netns", "pids", "ofl-core"], capture_output=True, text=True).stdout.split()
    ]
    assert frozen, "the core router's FRR daemons were not found"
    before = estate(si, lab)

    def on_step(site: str, step: str, status: str) -> None:
        if step == "configure" and status == "started":
            for pid in frozen:
                os.kill(pid, signal.SIGSTOP)
        if step == "configure" and status in ("failed", "canceled"):
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)  # the device answers again: the rollback can reach it

    started = time.monotonic()
    try:
        outcome = wave1(plan, on_step=on_step)
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    [site] = outcome.sites
    assert site.status == "rolled_back", site
    assert site.error is not None
    assert site.error.startswith("configure: ")
    assert "(timeout)" in site.error
    assert site.steps.get("configure") is None  # the step never finished
    assert time.monotonic() - started < 300
    assert _ansible_processes() == []
    assert estate(si, lab) == before
