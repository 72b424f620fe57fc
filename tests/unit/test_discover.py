"""Discovery's pure parts: merging what vCenter holds into an estate, comparing it with a plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from overflyt.cli import main
from overflyt.discovery.vcenter import compare, merge
from overflyt.plan import load_plan

SAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs" / "plan.yml"


def _found(name: str, **changes: Any) -> dict[str, Any]:
    vm = {
        "name": name,
        "uuid": "4211c6f4-0000-0000-0000-000000000001",
        "host": "ndj-esx01",
        "datastore": "ndj-ds-grenaa-01",
        "folder": "Servere",
        "cpu": 2,
        "memory_mb": 8192,
        "disks_gb": [80],
        "portgroups": ["VM-Faelles-10"],
        "power": "powered_on",
        "tools": "ok",
    }
    return vm | changes


def test_merge_replaces_what_vcenter_knows_and_keeps_what_a_person_wrote() -> None:
    existing = [
        {**_found("ndj-dc01"), "role": "ad", "app_group": "ad", "criticality": "critical", "ip": "10.70.10.11"},
        {**_found("ndj-old01"), "role": "file"},
    ]
    vms, changes = merge(existing, [_found("ndj-dc01", host="ndj-esx02", cpu=4), _found("ndj-new01")])
    assert [v["name"] for v in vms] == ["ndj-dc01", "ndj-new01"]
    dc01 = vms[0]
    assert (dc01["host"], dc01["cpu"]) == ("ndj-esx02", 4)
    assert (dc01["role"], dc01["app_group"], dc01["criticality"], dc01["ip"]) == ("ad", "ad", "critical", "10.70.10.11")
    assert changes == [
        "changed: ndj-dc01: host, cpu",
        "new: ndj-new01",
        "gone: ndj-old01 (vCenter no longer has it)",
    ]


def test_merge_of_the_same_estate_changes_nothing() -> None:
    vms, changes = merge([_found("ndj-dc01")], [_found("ndj-dc01")])
    assert vms == [_found("ndj-dc01")]
    assert changes == []


def test_compare_names_each_field_that_differs_and_each_vm_only_one_side_has() -> None:
    plan = load_plan(SAMPLE)
    found = [
        {
            "name": vm.name,
            "uuid": None,
            "host": vm.host,
            "datastore": vm.datastore,
            "folder": "Servere",
            "cpu": vm.cpu,
            "memory_mb": vm.memory_mb,
            "disks_gb": list(vm.disks_gb),
            "portgroups": list(vm.portgroups),
            "power": vm.power.value,
            "tools": vm.tools.value,
        }
        for vm in plan.vms
    ]
    assert compare(plan, found) == []
    found[0]["cpu"] = 16
    gone = found.pop(1)["name"]
    found.append({**found[0], "name": "ndj-stranger01"})
    lines = [str(d) for d in compare(plan, found)]
    assert lines == [
        f"vm {plan.vms[0].name}: cpu: plan says {plan.vms[0].cpu!r}, vCenter has 16",
        f"vm {gone}: presence: plan says 'in the plan', vCenter has 'no such VM'",
        "vm ndj-stranger01: presence: plan says 'not in the plan', vCenter has 'present'",
    ]


def test_a_bad_estate_file_is_refused_before_vcenter_is_asked(tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "estate.yml"
    bad.write_text("- just a list\n")
    assert main(["discover", "vcenter", str(SAMPLE), "--estate", str(bad)]) == 2
    assert capsys.readouterr().err == f"overflyt: {bad}: an estate file is a mapping whose vms is a list\n"
    assert bad.read_text() == "- just a list\n"


def test_a_malformed_estate_file_is_refused_with_its_line(tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "estate.yml"
    bad.write_text("vms:\n  - {name: ndj-dc01, cpu: [2}\n")
    assert main(["discover", "vcenter", str(SAMPLE), "--estate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("overflyt: estate invalid: 1 error\n")
    assert f"{bad}:2: malformed YAML" in err, err
