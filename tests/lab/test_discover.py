"""Discovery against the lab: what the simulator's vCenter holds is exactly the sample plan's VMs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from overflyt.cli import main
from overflyt.plan import load_plan

from .labtools import SAMPLE_PLAN

pytestmark = pytest.mark.lab


@pytest.fixture(autouse=True)
def lab_env(lab: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in lab["env"].items():
        monkeypatch.setenv(name, value)


def test_discovery_reproduces_the_sample_plans_vms(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["discover", "vcenter", str(SAMPLE_PLAN), "--compare"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert out == ""
    assert f"{len(load_plan(SAMPLE_PLAN).vms)} VMs in NDJ-DC" in err
    assert "0 difference(s)" in err


def test_discovery_updates_an_estate_file_and_keeps_a_persons_fields(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    estate = tmp_path / "estate.yml"
    estate.write_text("vms:\n  - {name: ndj-dc01, host: ndj-esx09, cpu: 1, role: ad, criticality: critical}\n")
    assert main(["discover", "vcenter", str(SAMPLE_PLAN), "--estate", str(estate)]) == 0
    err = capsys.readouterr().err
    plan = load_plan(SAMPLE_PLAN)
    vms = {vm["name"]: vm for vm in yaml.safe_load(estate.read_text())["vms"]}
    assert sorted(vms) == sorted(vm.name for vm in plan.vms)
    dc01 = next(vm for vm in plan.vms if vm.name == "ndj-dc01")
    assert (vms["ndj-dc01"]["host"], vms["ndj-dc01"]["cpu"]) == (dc01.host, dc01.cpu)
    assert (vms["ndj-dc01"]["role"], vms["ndj-dc01"]["criticality"]) == ("ad", "critical")
    assert "changed: ndj-dc01: " in err
    assert f"{len(plan.vms)} VMs" in err
