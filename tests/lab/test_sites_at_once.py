"""Sites of a wave at once (``concurrency.sites: 2``), against the lab: a wave of three sites (the
care centre, the town hall, the school — test_window's plan, Djurslandstest Kommune) runs two of
them at a time. A kill -9 with two sites under way (the wave's first two, `--site`) and a rerun
move no VM twice, and the rerun's sites overlap in time (from its run record); a cancel with two sites under way restores both; with
``on_site_failure: stop`` a site that fails rolls back, the one running beside it finishes, and the
third never starts. Every test leaves the lab as it found it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from overflyt.cutover.wave import Approval, rollback_site, run_wave

from .labtools import LIGHT_VMS, ansible_processes, estate, find, wait
from .test_window import CARE_VMS, CODE, SITES, window_plan

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("lab_env")]

REPO = Path(__file__).resolve().parents[2]
APPROVAL = Approval("Mette Frederiksen (test)", "CHG-0019")
START = datetime.fromisoformat("2027-03-06T18:00:00+01:00")  # runs are --outside-window: it holds nothing


def two_at_once(lab: dict[str, Any], where: Path, on_site_failure: str = "continue") -> Path:
    path = window_plan(lab, where, START, START + timedelta(hours=12))
    text = path.read_text()
    for old, new in (
        ("  per_site: 2\n", "  per_site: 2\n  sites: 2\n"),
        ("on_site_failure: continue", f"on_site_failure: {on_site_failure}"),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    # the care centre's VMs depend on the town hall's domain controllers: with sites at once it would
    # wait for the town hall (tests/unit/test_sites_at_once.py); here the two run side by side
    care = "|".join(CARE_VMS)
    text, n = re.subn(rf"(\{{name: (?:{care}),[^\n]*?), depends_on: \[[^\]\n]*\]\}}", r"\1}", text)
    assert n == 3, n
    path.write_text(text)
    return path


def _state(tmp_path: Path) -> dict[str, Any]:
    file = tmp_path / "state" / CODE / "wave-1" / "state.json"
    sites: dict[str, Any] = json.loads(file.read_text())["sites"] if file.exists() else {}
    return sites


def _relocated(lab: dict[str, Any]) -> list[str]:
    """The VMs the simulator relocated, one line each, from its own log."""
    log = Path(lab["state_dir"]) / "vcsim" / "vcsim.log"
    lines = [line for line in log.read_text().splitlines() if "ofl-vcsim: relocate " in line]
    return [line.split(" name=")[1].split()[0] for line in lines]


def _both_under_way(tmp_path: Path) -> bool:
    sites = _state(tmp_path)
    return all(sites.get(s, {}).get("status") == "in_progress" for s in SITES[:2])


def _cli(plan: Path, *args: str) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "overflyt.cli", "wave", "run", str(plan), "--wave", "1",
        "--approved-by", "test", "--outside-window", "-q", *args,
    ]  # fmt: skip
    return subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def _until(process: subprocess.Popen[str], point: Any, what: str) -> None:
    deadline = time.monotonic() + 240
    while not point():
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail(f"the wave never reached {what}: {process.communicate()}")
        time.sleep(0.05)


def _rollback_all(plan: Path, sites: list[str]) -> None:
    for site in sites:
        assert rollback_site(plan, site).exit_code == 0, site


def test_killed_with_two_sites_under_way_resumes_moving_no_vm_twice(
    lab: dict[str, Any], si: Any, tmp_path: Path
) -> None:
    before = estate(si, lab)
    plan = two_at_once(lab, tmp_path)
    earlier = len(_relocated(lab))
    two = SITES[:2]  # the wave's first two sites only (--site): the rule for more is the unit tests'
    process = _cli(plan, *(f"--site={s}" for s in two))

    def mid_relocate() -> bool:
        moved = len(_relocated(lab)) - earlier
        return _both_under_way(tmp_path) and 0 < moved < len(CARE_VMS) + len(LIGHT_VMS)

    _until(process, mid_relocate, "two sites under way, mid-relocate")
    os.killpg(process.pid, signal.SIGKILL)  # the orchestrator and its ansible-playbooks die mid-cutover
    process.communicate()
    assert [_state(tmp_path)[s]["status"] for s in SITES[:2]] == ["in_progress", "in_progress"]
    try:
        outcome = run_wave(plan, 1, two, dry_run=False, approval=APPROVAL, outside_window=True)
        assert [(s.site, s.status) for s in outcome.sites] == [(s, "done") for s in two], outcome.sites
        moved = _relocated(lab)[earlier:]
        assert sorted(moved) == sorted(CARE_VMS + LIGHT_VMS), moved  # each VM relocated exactly once in all
        steps = json.loads((outcome.run_dir / "record.json").read_text())["steps"]
        spans = {
            s["subject"]: (datetime.fromisoformat(s["started_at"]), datetime.fromisoformat(s["finished_at"]))
            for s in steps
            if s["name"] == "cutover"
        }
        assert sorted(spans) == sorted(two)
        first, second = (spans[s] for s in two)
        assert max(first[0], second[0]) < min(first[1], second[1]), spans  # the two ran at once
    finally:
        _rollback_all(plan, two)
    assert estate(si, lab) == before


def test_cancel_with_two_sites_under_way_restores_both(lab: dict[str, Any], si: Any, tmp_path: Path) -> None:
    before = estate(si, lab)
    plan = two_at_once(lab, tmp_path)
    process = _cli(plan)

    def moving() -> bool:
        sites = _state(tmp_path)
        migrating = any(sites.get(s, {}).get("current") == "migrate" for s in SITES[:2])
        return _both_under_way(tmp_path) and migrating and bool(ansible_processes(tmp_path / "state"))

    _until(process, moving, "two sites under way, one moving its VMs")
    process.send_signal(signal.SIGTERM)  # what Prefect sends when a run is cancelled from the UI
    out, err = process.communicate(timeout=300)
    assert process.returncode == 1, (out, err)
    sites = _state(tmp_path)
    for site in SITES[:2]:
        assert sites[site]["status"] == "rolled_back", (site, sites[site])
        assert sites[site]["error"].endswith(": canceled (signal SIGTERM)"), sites[site]
        assert f"{site}: rolled_back — " in out, out
    assert sites[SITES[2]]["status"] == "pending"  # no new site starts after a cancel
    deadline = time.monotonic() + 10
    while ansible_processes(tmp_path / "state") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ansible_processes(tmp_path / "state") == {}, "ansible processes outlived the cancel"
    assert estate(si, lab) == before


def test_stop_policy_lets_the_running_site_finish_and_starts_no_new_one(
    lab: dict[str, Any], si: Any, tmp_path: Path
) -> None:
    """The care centre's target portgroup disappears once its VM moves have started: it fails and
    rolls back while the town hall is under way; the town hall (held at its post-check until then)
    finishes; the school is not started."""
    before = estate(si, lab)
    plan = two_at_once(lab, tmp_path, on_site_failure="stop")
    portgroup = find(si, vim.dvs.DistributedVirtualPortgroup, "NDJ-707-Pleje")
    switch, config = portgroup.config.distributedVirtualSwitch, portgroup.config
    failing, beside = SITES[0], SITES[1]
    rolled_back = threading.Event()
    destroyed: list[bool] = []

    def on_step(site: str, step: str, status: str) -> None:
        if (site, step, status) == (failing, "migrate", "started") and not destroyed:
            destroyed.append(True)
            wait(portgroup.Destroy_Task())
        if site == failing and step == "rollback" and status in ("done", "FAILED"):
            rolled_back.set()
        if (site, step, status) == (beside, "postcheck", "started"):
            assert rolled_back.wait(240), "the failing site never rolled back"

    try:
        outcome = run_wave(plan, 1, dry_run=False, approval=APPROVAL, outside_window=True, on_step=on_step)
        assert [(s.site, s.status) for s in outcome.sites] == [(failing, "rolled_back"), (beside, "done")], [
            (s.site, s.status, s.error) for s in outcome.sites
        ]
        assert outcome.exit_code == 1
        assert _state(tmp_path)[SITES[2]]["status"] == "pending"
        steps = json.loads((outcome.run_dir / "record.json").read_text())["steps"]
        assert SITES[2] not in {s["subject"] for s in steps if s["name"] == "cutover"}
    finally:
        spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
            name="NDJ-707-Pleje", type=config.type, numPorts=config.numPorts, defaultPortConfig=config.defaultPortConfig
        )
        wait(switch.AddDVPortgroup_Task([spec]))
        assert rollback_site(plan, beside).exit_code == 0
    assert estate(si, lab) == before
