"""VMs named the way people name them — Danish letters, spaces, parentheses, an en dash, a ``/``
and a ``%`` — through discovery, pre-check, a dry run, a real cutover and its rollback.

The lab's wave 1 (the light plan: three VMs of the town hall) on a plan copy whose three VMs
carry such names, one of them the ``depends_on`` target of another. The simulator's VMs are
renamed the way a vSphere client renames a VM: through ``Rename_Task`` with the name escaped as
vCenter stores it (``/`` as ``%2f``, ``%`` as ``%25``), and named back afterwards.
"""

from __future__ import annotations

import contextlib
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyVmomi import vim

from overflyt.cli import main
from overflyt.cutover.wave import Approval, rollback_site, run_wave
from overflyt.plan import load_plan
from overflyt.plan.names import by_alias, vm_alias
from overflyt.providers.vsphere.names import escape

from .labtools import LIGHT_VMS, estate, find, light_plan, relocations, wait

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("lab_env")]

DASH = "\u2013"  # an en dash, as Word and Outlook put it in names
# lab name -> the name people gave it; the first is what the third depends on
NAMES = {
    "ndj-dc01": f"Test/Udvikling {DASH} gammel",
    "ndj-dc02": "SRV-ØKONOMI-01 (Grenå) 100%",
    "ndj-dhcp01": f"ESDH app (ny) {DASH} æøå",
}
# the town hall's VMs the light plan leaves out (vCenter still has them)
LEFT_OUT = ["ndj-pki01", "ndj-radius01", "ndj-wsus01", "ndj-mgmt01", "ndj-print01"]
APPROVAL = Approval("Mette Frederiksen (test)", "CHG-0024")


def named_plan(lab: dict[str, Any], where: Path) -> Path:
    """The light plan with NAMES in place of the lab's names, in the VMs and every depends_on."""
    path = light_plan(lab, where)
    text = path.read_text(encoding="utf-8")
    for old, new in NAMES.items():
        text = re.sub(rf"(?<=[\[{{ ,]){re.escape(old)}(?=[,\]}}])", json.dumps(new, ensure_ascii=False), text)
        text = text.replace(f"name: {old},", f"name: {json.dumps(new, ensure_ascii=False)},")
    path.write_text(text, encoding="utf-8")
    return path


def rename(si: Any, names: dict[str, str]) -> None:
    """Rename simulator VMs (stored name -> display name), sending the name escaped as vCenter stores it."""
    for old, new in names.items():
        wait(find(si, vim.VirtualMachine, old).Rename_Task(newName=escape(new)))


def test_vms_named_as_people_name_them_cut_over_and_roll_back(
    lab: dict[str, Any], si: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_path = named_plan(lab, tmp_path)
    plan = load_plan(plan_path)
    wave_vms = [vm.name for vm in plan.vms_of_wave(1)]
    assert sorted(wave_vms) == sorted(NAMES.values())
    assert sorted(NAMES) == sorted(LIGHT_VMS)
    assert vm_alias(NAMES["ndj-dc01"]).startswith("vm-test-udvikling-gammel-")
    assert next(vm for vm in plan.vms if vm.name == NAMES["ndj-dhcp01"]).depends_on == [NAMES["ndj-dc01"]]
    try:
        rename(si, NAMES)
        # the simulator stores them as vCenter does: escaped
        stored = f"Test%2fUdvikling {DASH} gammel"
        assert find(si, vim.VirtualMachine, stored).name == stored
        before = estate(si, lab)
        log_at = len(relocations(lab))

        # discovery reproduces the names as written (the plan lacks five of the town hall's VMs only)
        code = main(["discover", "vcenter", str(plan_path), "--compare"])
        out = capsys.readouterr().out
        assert code == 1
        assert sorted(out.splitlines()) == sorted(
            f"vm {n}: presence: plan says 'not in the plan', vCenter has 'present'" for n in LEFT_OUT
        ), out
        estate_file = tmp_path / "estate.yml"
        estate_file.write_text("vms: []\n", encoding="utf-8")
        assert main(["discover", "vcenter", str(plan_path), "--estate", str(estate_file)]) == 0
        found = {vm["name"] for vm in yaml.safe_load(estate_file.read_text(encoding="utf-8"))["vms"]}
        assert set(NAMES.values()) <= found
        assert not set(NAMES) & found
        assert "Grenå" in estate_file.read_text(encoding="utf-8")  # UTF-8, not \xe5

        # pre-check: each VM found and checked under its name
        junit = tmp_path / "precheck.xml"
        assert main(["precheck", str(plan_path), "--wave", "1", "--format", "junit", "--output", str(junit)]) == 0
        cases = {case.get("name") for case in ET.parse(junit).iter("testcase")}
        assert {f"vm {name}" for name in NAMES.values()} <= cases, cases

        # dry run: would move each, changes nothing
        dry = run_wave(plan_path, 1, dry_run=True)
        assert dry.exit_code == 0, [(s.site, s.status, s.error) for s in dry.sites]
        assert {n: vm["status"] for n, vm in dry.sites[0].vms["vms"].items()} == dict.fromkeys(wave_vms, "would_move")
        assert estate(si, lab) == before
        assert len(relocations(lab)) == log_at

        # real cutover: each VM moved exactly once, in dependency order, and reported under its name
        outcome = run_wave(plan_path, 1, dry_run=False, approval=APPROVAL, outside_window=True)
        assert outcome.exit_code == 0, [(s.site, s.status, s.error) for s in outcome.sites]
        moved = [re.search(r" name=(.*?) host=", line).group(1) for line in relocations(lab)[log_at:]]  # type: ignore[union-attr]
        assert Counter(moved) == Counter(escape(n) for n in NAMES.values()), moved
        assert moved.index(escape(NAMES["ndj-dc01"])) < moved.index(escape(NAMES["ndj-dhcp01"]))
        for name in NAMES.values():
            vm = find(si, vim.VirtualMachine, escape(name))
            assert vm.parent.name == "707-Norddjurs", name
        record = json.loads((outcome.run_dir / "vm-migration-grenaa-raadhus.json").read_text(encoding="utf-8"))
        assert {n: v["status"] for n, v in record["vms"].items()} == dict.fromkeys(wave_vms, "moved")
        # the aliases in the runner's records are read back through the record
        aliases = by_alias(record["vms"])
        assert {v["alias"]: n for n, v in record["vms"].items()} == aliases
        hosts: dict[str, Any] = {}
        for inventory in (outcome.run_dir / "ansible").glob("*vm-migrate-*/inventory/hosts.yml"):
            hosts |= yaml.safe_load(inventory.read_text(encoding="utf-8"))["all"]["children"]["vms"]["hosts"]
        assert {alias: h["overflyt_vm_name"] for alias, h in hosts.items()} == aliases
        assert all(re.fullmatch(r"vm-[a-z0-9-]+", alias) for alias in hosts)
        report = (outcome.run_dir / "report.md").read_text(encoding="utf-8")
        for name in NAMES.values():
            assert f"| {name} | flyttet |" in report, report  # Danish by default: moved

        # rollback: every VM back where it stood, each moved back once
        log_at = len(relocations(lab))
        back = rollback_site(plan_path, "grenaa-raadhus")
        assert back.exit_code == 0, [(s.site, s.status, s.error) for s in back.sites]
        assert estate(si, lab) == before
        moved_back = [re.search(r" name=(.*?) host=", line).group(1) for line in relocations(lab)[log_at:]]  # type: ignore[union-attr]
        assert Counter(moved_back) == Counter(escape(n) for n in NAMES.values()), moved_back
        rolled = (back.run_dir / "report.md").read_text(encoding="utf-8")
        for name in NAMES.values():
            assert f"| {name} | gendannet |" in rolled, rolled  # Danish by default: restored
    finally:  # the lab as `lab up` built it, for the tests after this one
        for old, new in NAMES.items():
            with contextlib.suppress(StopIteration):
                wait(find(si, vim.VirtualMachine, escape(new)).Rename_Task(newName=old))
