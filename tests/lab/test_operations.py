"""Operations against the lab: waivers, `overflyt status` and the state home, in one wave.

The plan is a project of its own (its playbooks/ and roles/ are this one's) holding a copy of the
sample that differs from Norddjurs: another municipality name and site names, wave 1 cuts over
Kattegatskolen (whose router rejects a line of its push) and then the town hall, and a failed site is
left for a person (`rollback: manual`). Neither OVERFLYT_STATE_DIR nor OVERFLYT_PROJECT_DIR is set:
the state lives in the plan's project, whatever the working directory.

1. ndj-dc02 has a snapshot; its waiver in waivers.yml expired yesterday: the wave is blocked by
   vm.snapshots before any change, and the expired waiver is a warning.
2. The waiver is renewed: the wave runs. The snapshot finding is a warning marked waived (who, why,
   until) in the pre-check's reports; Kattegatskolen fails and stays failed, the town hall is cut over.
3. `overflyt status --json` (from the first directory) shows the town hall done (the run, who approved
   it, the VMs moved, the devices changed) and Kattegatskolen failed with why.
4. From a second directory, `overflyt rollback` finds the same state and rolls both sites back;
   `overflyt status` shows both rolled back. The lab is as it was.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pyVmomi import vim

from overflyt.cli import main
from overflyt.cutover.wave import rollback_site

from .labtools import LIGHT_VMS, estate, find, light_plan, wait

pytestmark = [pytest.mark.lab, pytest.mark.timeout(1500)]  # includes waiting for the lab lock

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "tests" / "output"
APPROVER, TICKET = "Jens Kirk (drift)", "CHG-2027-0412"
BAD = "ip route 10.70.99.0/33 10.255.70.9"  # vtysh answers "% Unknown command": verification fails
REASON = "kommunen beholder snapshot til arkivet er kopieret (SAG-4411)"


def project_plan(lab: dict[str, Any], tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "inventories").mkdir(parents=True)
    for name in ("playbooks", "roles", "collections", "templates"):
        (project / name).symlink_to(REPO / name)
    light = light_plan(lab, tmp_path)
    shutil.move(str(light.parent), str(project / "inventories" / "djursland"))
    plan = project / "inventories" / "djursland" / "plan.yml"
    text = plan.read_text()
    edits = [
        ("  name: Norddjurs Kommune", "  name: Djurslandstest Kommune"),
        ("    name: Grenaa Rådhus\n", "    name: Rådhuset i Grenå\n"),
        ("    name: Kattegatskolen\n", "    name: Skolen ved Kattegat\n"),
        ("sites: [grenaa-raadhus]", "sites: [kattegatskolen, grenaa-raadhus]"),
        ("sites: [auning-adm, kattegatskolen, auning-skole]", "sites: [auning-adm, auning-skole]"),
        ("\nrollback: automatic ", "\nrollback: manual    "),
    ]
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    plan.write_text(text)
    (plan.parent / "host_vars" / "ndj-kattegat-rtr-01.yml").write_text(f"net_configure_extra_lines: [{BAD!r}]\n")
    return plan


def waivers(plan: Path, expires: str) -> None:
    (plan.parent / "waivers.yml").write_text(
        f"waivers:\n  - finding: vm.snapshots\n    item: ndj-dc02\n    reason: {REASON}\n"
        f"    approved_by: Mette Holm\n    expires: {expires}\n"
    )


def status(plan: Path, capsys: pytest.CaptureFixture[str], name: str) -> dict[str, Any]:
    assert main(["status", str(plan)]) == 0
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / f"status-{name}.txt").write_text(capsys.readouterr().out)  # README's "Status" shows one
    assert main(["status", str(plan), "--json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return {u["id"]: u for u in data["waves"][0]["units"]}


def test_waivers_status_and_the_state_home(
    lab: dict[str, Any], si: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, value in lab["env"].items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("OVERFLYT_STATE_DIR", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    plan = project_plan(lab, tmp_path)
    monkeypatch.delenv("OVERFLYT_PROJECT_DIR")  # found from the plan: the project it lies in
    home = plan.parents[2] / ".overflyt" / "state" / "707"
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    before = estate(si, lab)
    vm = find(si, vim.VirtualMachine, "ndj-dc02")
    wait(vm.CreateSnapshot_Task(name="arkiv", description="", memory=False, quiesce=False))
    today = datetime.now(ZoneInfo("Europe/Copenhagen")).date()
    run = ["wave", "run", str(plan), "--wave", "1", "--approved-by", APPROVER, "--ticket", TICKET, "--outside-window"]
    try:
        monkeypatch.chdir(first)
        # 1. the waiver expired yesterday: blocked before any change, and the expired waiver is a warning
        waivers(plan, (today - timedelta(days=1)).isoformat())
        assert main([*run, "-q"]) == 1
        out = capsys.readouterr()
        assert "critical vm.snapshots vm ndj-dc02: ndj-dc02 has 1 snapshot (arkiv)" in out.out + out.err
        [blocked] = list(home.glob("wave-1/wave/*/precheck.json"))
        found = {f["id"]: f for r in json.loads(blocked.read_text())["results"] for f in r["findings"]}
        assert (found["vm.snapshots"]["severity"], found["vm.snapshots"]["waiver"]) == ("critical", None)
        assert found["waiver.expired"]["severity"] == "warning"
        assert estate(si, lab)["devices"] == before["devices"]

        # 2. renewed: the wave runs; the school fails (and stays failed), the town hall is cut over
        until = (today + timedelta(days=30)).isoformat()
        waivers(plan, until)
        assert main([*run, "-q"]) == 1
        capsys.readouterr()
        [ran] = [p for p in home.glob("wave-1/wave/*/precheck.json") if p != blocked]
        found = {f["id"]: f for r in json.loads(ran.read_text())["results"] for f in r["findings"]}
        assert found["vm.snapshots"]["severity"] == "warning"
        assert found["vm.snapshots"]["waiver"]["approved_by"] == "Mette Holm"
        assert "waiver.expired" not in found
        assert f"dispenseret af Mette Holm til og med {until}: {REASON}" in (ran.parent / "precheck.md").read_text()

        # 3. status, from the first directory
        units = status(plan, capsys, "after-the-wave")
        town_hall, school = units["grenaa-raadhus"], units["kattegatskolen"]
        assert (town_hall["state"], town_hall["name"]) == ("done", "Rådhuset i Grenå")
        assert town_hall["run"]["id"] == ran.parent.name
        assert town_hall["run"]["kind"] == "cutover"
        assert (town_hall["approved_by"], town_hall["ticket"]) == (APPROVER, TICKET)
        assert sorted(town_hall["vms_moved"]) == sorted(LIGHT_VMS)
        assert "ndj-core-01" in town_hall["devices_changed"]
        assert school["state"] == "failed"
        assert f"ndj-kattegat-rtr-01 does not hold its desired state: missing: {BAD}" in school["error"]

        # 4. from a second directory: the same state, both sites rolled back
        monkeypatch.chdir(second)
        assert main(["rollback", str(plan), "--site", "grenaa-raadhus", "-q"]) == 0
        assert main(["rollback", str(plan), "--site", "kattegatskolen", "-q"]) == 0
        capsys.readouterr()
        units = status(plan, capsys, "after-the-rollbacks")
        for site in ("grenaa-raadhus", "kattegatskolen"):
            assert (units[site]["state"], units[site]["run"]["kind"]) == ("rolled back", "rollback"), units[site]
        assert units["grenaa-raadhus"]["vms_moved"] == []
        assert not (first / ".overflyt").exists()
        assert not (second / ".overflyt").exists()
    finally:
        monkeypatch.chdir(tmp_path)
        state = home / "wave-1" / "state.json"
        if state.exists():
            for site, recorded in json.loads(state.read_text())["sites"].items():
                if recorded["status"] not in ("pending", "rolled_back"):
                    rollback_site(plan, site)  # leave the lab as `lab up` built it
        wait(vm.snapshot.rootSnapshotList[0].snapshot.RemoveSnapshot_Task(removeChildren=False))
    assert estate(si, lab) == before
