"""The planner's output with a subnet ahead runs (issue 21): a small synthetic municipality (Læsø's
shapes at 3 sites, 2 hosts, 14 VMs: :func:`overflyt.lab.synth.estate` with ``scale``), planned by
`overflyt plan waves` into 2.5 h windows so that its town hall needs two nights and its shared
services' subnet moves ahead of it in wave 1, then brought up as the lab (`overflyt lab up --plan`)
and dry-run wave by wave against those peers (the vCenter simulator, FRR routers over SSH).

What an engineer edits in the planner's draft before use is filled in with the lab's endpoints: the
CHANGE-ME placeholders (target datacentre, datastores, usernames), the vCenter URLs and trust
files, and the devices' management addresses (loopback, port 2222; the lab's routers are FRR, so
``platform: frr``). Sites, devices, VMs, subnets and waves stay exactly as the planner wrote them.

The lab is one per machine: this module takes the session's lab (the sample's) down, brings the
synthetic one up, and on leaving brings the sample's back (its fresh status replaces the session's,
passwords and all).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyVim.connect import Disconnect, SmartConnect

from overflyt.cli import main
from overflyt.discovery.estate import dump_estate
from overflyt.lab import down, status, synth, up
from overflyt.plan import load_plan
from overflyt.plan.ahead import ahead_subnets

from .labtools import SAMPLE_PLAN, estate

pytestmark = pytest.mark.lab

SCALE = (3, 2, 14)  # sites, hosts, VMs: the town hall holds every VM, in two subnets
PLANNER = ["--window-hours", "2.5", "--bandwidth-mbps", "4000", "--first-window", "2027-03-06 18:00", "-q"]


def lab_plan(planned: Path, state: Path) -> Path:
    """The planner's draft with the lab's endpoints filled in (what an engineer edits before use)."""
    data = yaml.safe_load(planned.read_text(encoding="utf-8"))
    users = {"source-vcenter": "administrator@vsphere.local", "target-vcenter": "svc-overflyt@lab.local"}
    for name, credential in data["credentials"].items():
        credential["username"] = users.get(name, "overflyt")
    tls = {"ca_file": str(state / "tls" / "ca.pem")}
    data["source"]["vcenter"] |= {"url": "https://127.0.0.1:18443/sdk", "tls": tls}
    data["target"] |= {"name": "Lab datacentre", "datacenter": "LAB-DC1", "cluster": "LAB-Cluster-01"}
    data["target"] |= {"datastores": ["lab-ds-01"]}
    data["target"]["vcenter"] |= {"url": "https://127.0.0.1:18444/sdk", "tls": tls}
    data["ssh"] = {"known_hosts": str(state / "known_hosts")}
    for mapping in data["storage_map"]:
        mapping["target"] = "lab-ds-01"
    for k, device in enumerate(data["devices"], start=1):
        device |= {"management": f"127.0.70.{k}", "port": 2222, "platform": "frr"}
    path = planned.with_name("lab-plan.yml")
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def planned(
    lab: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    """(the lab plan, the planner's draft as text, the synthetic lab's status)."""
    where = tmp_path_factory.mktemp("planned-ahead")
    (where / "estate.yml").write_text(dump_estate(synth.estate("825", scale=SCALE)), encoding="utf-8")
    assert main(["plan", "waves", str(where / "estate.yml"), "-o", str(where / "plan.yml"), *PLANNER]) == 0
    plan = lab_plan(where / "plan.yml", Path(lab["state_dir"]))
    down(SAMPLE_PLAN)
    try:
        state = up(plan)
        assert state["up"], state["problems"]
        yield plan, (where / "plan.yml").read_text(encoding="utf-8"), state
    finally:
        down(plan)
        fresh = up(SAMPLE_PLAN)  # the session's next tests find the sample's lab, as the fixture left it
        lab.clear()
        lab.update(fresh)


@pytest.fixture
def synth_si(planned: tuple[Path, str, dict[str, Any]]) -> Iterator[Any]:
    v = planned[2]["vcenters"][0]
    host, port = v["url"].removeprefix("https://").removesuffix("/sdk").split(":")
    context = ssl.create_default_context(cafile=v["ca_file"])
    conn = SmartConnect(host=host, port=int(port), user=v["user"], pwd=v["password"], sslContext=context)
    try:
        yield conn
    finally:
        Disconnect(conn)


def test_the_planners_waves_with_a_subnet_ahead_dry_run_against_the_lab_without_refusal(
    planned: tuple[Path, str, dict[str, Any]], synth_si: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_path, draft, state = planned
    for name, value in state["env"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(tmp_path / "state"))
    plan = load_plan(plan_path)
    units = ahead_subnets(plan)
    assert [(u.key, u.wave) for u in units] == [("raadhus:10.220.0.0-24", 1)]  # the planner's proposal
    (unit,) = units
    assert f"#   ahead: {unit.key}: subnet {unit.subnet} of site raadhus, 8 VMs" in draft
    assert {d["name"] for d in state["devices"]} == {d.hostname for d in plan.devices}
    before = estate(synth_si, state)

    for wave in plan.waves:
        report = tmp_path / f"wave-{wave.number}.json"
        args = ["wave", "run", str(plan_path), "--wave", str(wave.number), "--dry-run", "-q"]
        assert main([*args, "--format", "json", "--output", str(report)]) == 0, report.read_text()
        data = json.loads(report.read_text())
        ahead = [u for u in units if u.wave == wave.number]
        rows = [(s["site"], s["status"]) for s in data["sites"]]
        assert rows == [(s, "dry_run") for s in [*wave.sites, *(u.key for u in ahead)]], data["sites"]
        by_unit = {s["site"]: s for s in data["sites"]}
        for u in ahead:  # the subnet's own row: its VMs' planned moves, its route on its gateway and the core
            row = by_unit[u.key]
            assert sorted(row["vms"]["vms"]) == sorted(u.vms)
            pending = {h: d.get("pending_lines") or [] for h, d in row["devices"]["devices"].items()}
            assert any(line.startswith(f"ip route {u.subnet} ") for line in pending["k825-core-01"]), pending
        if wave.number == 2:  # the town hall's own night moves the rest of it, not the subnet again
            moves = by_unit["raadhus"]["vms"]["vms"]
            assert moves
            assert set(moves).isdisjoint(unit.vms)
    assert estate(synth_si, state) == before  # a dry run changes nothing
    assert not (tmp_path / "state" / "825" / "wave-1" / "state.json").exists()
    assert status(plan_path)["up"]
