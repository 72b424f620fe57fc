"""A server subnet that moves ahead of its site (issue 21), against the lab: its own unit of an
earlier wave — its VMs, its route on its site's gateway and the municipal core, real traffic from
its site — the site's own cutover later without moving them again, and `overflyt rollback --site`
undoing both, latest first, each byte-equal to its own backup.

Two plan copies, each a few VMs light: the sample's case (a subnet of Auning's server room ahead in
wave 1 with Grenaa Rådhus) and a different plan (the care centre's subnet ahead in wave 1 with a
school that moves no VMs), the latter with a failure injected in the subnet's configure step and a
SIGKILL mid-move.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from overflyt.cli import main
from overflyt.cutover.wave import Approval, WaveOutcome, rollback_site, run_wave
from overflyt.errors import UsageError

from .labtools import estate, find, light_plan, plan_copy, relocated_names, relocations, side_reached, vtysh

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("lab_env")]

REPO = Path(__file__).resolve().parents[2]
APPROVAL = Approval("Mette Frederiksen (test)", "CHG-0021")
FILES = ["ndj-file01", "ndj-scan01", "ndj-backup-proxy01"]  # VM-Fil-Backup-30, 10.70.30.0/24 (light)
FILES_KEY = "auning-adm:10.70.30.0-24"
AUNING_REST = ["ndj-monitor01", "ndj-log01"]  # VM-Fagsystemer-20, 10.70.20.0/24 (light)
CARE = ["ndj-nodkald01", "ndj-nodkald02", "ndj-omsorg-gw01", "ndj-adgang01"]  # VM-Pleje-40
CARE_KEY = "digterparken:10.70.40.0-24"


def run(plan: Path, wave: int, sites: tuple[str, ...] = (), **kwargs: Any) -> WaveOutcome:
    return run_wave(plan, wave, sites, dry_run=False, approval=APPROVAL, outside_window=True, **kwargs)


def rows(outcome: WaveOutcome) -> list[tuple[str, str]]:
    return [(s.site, s.status) for s in outcome.sites]


def folders(si: Any, names: list[str]) -> set[str]:
    return {find(si, vim.VirtualMachine, n).parent.name for n in names}


def state(wave: int) -> dict[str, Any]:
    path = Path(os.environ["OVERFLYT_STATE_DIR"]) / "707" / f"wave-{wave}" / "state.json"
    data: dict[str, Any] = json.loads(path.read_text())["sites"]
    return data


def test_a_subnet_of_auning_ahead_in_wave_1_then_its_site_in_wave_2_then_rolled_back(
    lab: dict[str, Any], si: Any, tmp_path: Path
) -> None:
    plan = light_plan(lab, tmp_path)
    text = re.sub(
        r"\n  - \{name: ndj-(sql0\d|sbsys-\w+|opus-int01|selvbetjening0\d|adfs0\d|rds0\d|rdgw01|intra01|gis01|bi01|"
        r"tele01|vikar01|file02|backup-proxy02|archive01|omsorg-gw01),[^\n]*",
        "",
        plan.read_text(),
    )
    plan.write_text(
        text.replace("    sites: [grenaa-raadhus]\n", f"    sites: [grenaa-raadhus]\n    vms: [{', '.join(FILES)}]\n")
    )
    before = estate(si, lab)
    at_backup: dict[str, str] = {}

    def on_step(site: str, step: str, status: str) -> None:
        if site == FILES_KEY and step == "backup" and status == "started":
            at_backup.update(estate(si, lab)["devices"])  # the devices just before this unit

    try:
        _auning_ahead_then_its_site(lab, si, plan, before, at_backup, on_step)
    finally:  # whatever failed, the lab is left as this test found it for the session's next tests
        for site in ("auning-adm", "grenaa-raadhus"):
            with contextlib.suppress(UsageError):
                rollback_site(plan, site)


def _auning_ahead_then_its_site(
    lab: dict[str, Any], si: Any, plan: Path, before: dict[str, Any], at_backup: dict[str, str], on_step: Any
) -> None:
    first = run(plan, 1, on_step=on_step)
    assert rows(first) == [("grenaa-raadhus", "done"), (FILES_KEY, "done")], [s.error for s in first.sites]
    assert folders(si, FILES) == {"707-Norddjurs"}
    assert folders(si, AUNING_REST) == {"Servere"}
    # the subnet's route only: to the datacentre on Auning's gateway and on the core; the other stays
    assert "10.70.30.0/24 [1/0] via 10.255.70.5" in vtysh(lab, "ndj-auning-rtr-01", "show ip route static")
    assert "10.70.30.0/24 [1/0] via 10.255.70.1" in vtysh(lab, "ndj-core-01", "show ip route static")
    assert side_reached(lab, "auning-adm", "10.70.30.11") == "target"  # real traffic from its site
    assert side_reached(lab, "kattegatskolen", "10.70.30.11") == "target"
    assert side_reached(lab, "auning-adm", "10.70.20.92") == "source"  # the site's other subnet stays
    assert state(1)[FILES_KEY]["subnets"] == ["10.70.30.0/24"]
    assert state(1)[FILES_KEY]["site"] == "auning-adm"

    moved_before = len(relocations(lab))
    second = run(plan, 2, ("auning-adm",))
    assert rows(second) == [("auning-adm", "done")], [s.error for s in second.sites]
    assert sorted(relocated_names(relocations(lab)[moved_before:])) == sorted(AUNING_REST)  # not FILES again
    assert side_reached(lab, "auning-adm", "10.70.20.92") == "target"
    assert state(2)["auning-adm"]["subnets"] == ["10.70.20.0/24"]
    assert state(2)["auning-adm"]["runs"] == [second.run_id]
    assert state(1)[FILES_KEY]["runs"] == [first.run_id]

    # The town hall's backup of the core predates the subnet's change: its rollback is refused, named.
    assert main(["rollback", str(plan), "--site", "grenaa-raadhus", "-q"]) == 2
    back = rollback_site(plan, "auning-adm")
    assert rows(back) == [("auning-adm", "rolled_back"), (FILES_KEY, "rolled_back")], [s.error for s in back.sites]
    after = estate(si, lab)
    assert after["devices"]["ndj-auning-rtr-01"] == before["devices"]["ndj-auning-rtr-01"]
    assert after["devices"]["ndj-core-01"] == at_backup["ndj-core-01"]  # byte-equal to the unit's own backup
    assert {n: after["vms"][n] for n in FILES + AUNING_REST} == {n: before["vms"][n] for n in FILES + AUNING_REST}
    assert side_reached(lab, "auning-adm", "10.70.30.11") == "source"
    assert rollback_site(plan, "grenaa-raadhus").exit_code == 0
    assert estate(si, lab) == before


def test_a_different_plan_failure_in_the_subnets_configure_restores_it_alone_and_a_kill_mid_move_resumes(
    lab: dict[str, Any], si: Any, tmp_path: Path
) -> None:
    """Wave 1 cuts over Kattegatskolen (no VMs) and moves the care centre's subnet ahead of its site:
    a dry run, a run whose subnet fails verification (restored alone, the school stays done), a run
    killed mid-move, the run that resumes it, the care centre's rollback."""
    plan = plan_copy(lab, tmp_path)
    text = plan.read_text()
    for name in CARE:  # what the care centre's servers need moves later in this plan: no depends_on
        text = re.sub(rf"(\{{name: {name},[^\n]*?), depends_on: \[[^\]]*\]", r"\1", text)
    text = text.replace("    sites: [grenaa-raadhus]\n", f"    sites: [kattegatskolen]\n    vms: [{', '.join(CARE)}]\n")
    text = text.replace(
        "sites: [auning-adm, kattegatskolen, auning-skole]", "sites: [grenaa-raadhus, auning-adm, auning-skole]"
    )
    plan.write_text(text)
    bad = "ip route 10.70.99.0/33 10.255.70.17"  # vtysh answers "% Unknown command": verify names it
    host_vars = plan.parent / "host_vars" / "ndj-digterparken-rtr-01.yml"
    host_vars.write_text(f"net_configure_extra_lines: [{bad!r}]\n")
    before = estate(si, lab)

    try:
        _care_centre_ahead(lab, si, plan, before, bad, host_vars)
    finally:
        with contextlib.suppress(UsageError):
            rollback_site(plan, "digterparken")


def _care_centre_ahead(
    lab: dict[str, Any], si: Any, plan: Path, before: dict[str, Any], bad: str, host_vars: Path
) -> None:
    dry = run_wave(plan, 1, dry_run=True)  # the subnet is its own row of the dry run; nothing recorded
    assert rows(dry) == [("kattegatskolen", "dry_run"), (CARE_KEY, "dry_run")], [s.error for s in dry.sites]
    assert not (Path(os.environ["OVERFLYT_STATE_DIR"]) / "707" / "wave-1" / "state.json").exists()
    failed = run(plan, 1)
    assert rows(failed) == [("kattegatskolen", "done"), (CARE_KEY, "rolled_back")], [s.error for s in failed.sites]
    error = failed.sites[1].error or ""
    assert error.startswith("configure: "), error
    assert bad in error, error
    assert estate(si, lab) == before  # the subnet alone restored: devices byte-equal, VMs where they stood
    host_vars.unlink()

    moved_before = len(relocations(lab))
    command = [
        sys.executable, "-m", "overflyt.cli", "wave", "run", str(plan), "--wave", "1",
        "--approved-by", "test", "--outside-window", "-q",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 180
    while True:
        unit = state(1).get(CARE_KEY, {}) if (Path(os.environ["OVERFLYT_STATE_DIR"]) / "707").exists() else {}
        moved = len(relocations(lab)) - moved_before
        if unit.get("current") == "migrate" and unit.get("attempts") == 2 and 0 < moved < len(CARE):
            break
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("the wave never reached the subnet's VM moves")
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the orchestrator and its ansible-playbook die mid-move
    process.wait()
    assert state(1)[CARE_KEY]["status"] == "in_progress"

    resumed = run(plan, 1)
    assert rows(resumed) == [("kattegatskolen", "skipped"), (CARE_KEY, "done")], [s.error for s in resumed.sites]
    assert sorted(relocated_names(relocations(lab)[moved_before:])) == sorted(CARE)  # each moved once
    assert side_reached(lab, "digterparken", "10.70.40.11") == "target"
    assert side_reached(lab, "ostervang", "10.70.40.11") == "target"

    back = rollback_site(plan, "digterparken")
    assert rows(back) == [(CARE_KEY, "rolled_back")], [s.error for s in back.sites]
    assert estate(si, lab) == before
    assert side_reached(lab, "digterparken", "10.70.40.11") == "source"
