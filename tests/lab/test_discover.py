"""Discovery against the lab: what the simulator's vCenter holds is exactly the sample plan's VMs, and
what the lab's devices say over SSH is exactly the sample plan's devices."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from overflyt.cli import main
from overflyt.discovery import devices as dd
from overflyt.plan import Plan, load_plan
from overflyt.plan.credentials import resolve_all
from overflyt.record import Run
from overflyt.steps.network import backup_site

from .labtools import SAMPLE_PLAN, plan_copy, step_ctx, vtysh

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


# -- devices ---------------------------------------------------------------------------------------

VOLATILE = ("Building configuration", "Current configuration")  # what FRR's running-config holds of them
KATTEGAT = "ndj-kattegat-rtr-01"


def normalised(lab: dict[str, Any], name: str) -> str:
    """The device's running configuration read through vtysh directly, normalised as net_backup does."""
    lines = [line.rstrip() for line in vtysh(lab, name, "show running-config").splitlines()]
    return "\n".join(line for line in lines if not line.startswith(VOLATILE)).strip("\n") + "\n"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def read_all(plan: Plan, plan_path: Path = SAMPLE_PLAN) -> dict[str, dd.DeviceRead]:
    credentials = dd.device_credentials(plan, plan_path.parent)
    reads = dd.read_devices(plan, credentials, dd.known_hosts_file(plan, plan_path.parent), plan_path=plan_path)
    return {r.hostname: r for r in reads}


def test_device_discovery_reproduces_the_sample_plans_devices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = load_plan(SAMPLE_PLAN)
    assert main(["discover", "devices", str(SAMPLE_PLAN), "--compare"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1] == f"overflyt: 10 devices read; 0 difference(s) from {SAMPLE_PLAN}"
    assert len([line for line in err.splitlines() if ": frr 8.4.4, " in line]) == 10  # one line per device

    # the table: what each device says it is, where it was reached
    assert main(["discover", "devices", str(SAMPLE_PLAN)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["HOSTNAME", "MANAGEMENT", "PLATFORM", "VERSION", "INTERFACES", "CONFIG", "SHA256"]
    assert [(r[0], r[1], r[2]) for r in rows[1:]] == [
        (d.hostname, f"{d.management}:{d.port}", d.platform.value) for d in plan.devices
    ]

    # an estate file holding the plan's sites gets every device, with the plan's site and role
    sites = [
        {"id": s.id, "name": s.name, "kind": s.kind.value, "address_block": str(s.address_block)} for s in plan.sites
    ]
    estate = tmp_path / "estate.yml"
    estate.write_text(yaml.safe_dump({"municipality": {"code": "707", "name": "Norddjurs Kommune"}, "sites": sites}))
    assert main(["discover", "devices", str(SAMPLE_PLAN), "--estate", str(estate)]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == f"overflyt: {estate}: 10 devices, 10 change(s)"
    written = yaml.safe_load(estate.read_text())["devices"]
    keys = ("hostname", "site", "role", "platform", "management", "port")
    assert [{k: d[k] for k in keys} for d in written] == [
        {k: v for k, v in d.model_dump(mode="json").items() if k in keys} for d in plan.devices
    ]
    core = next(d for d in written if d["hostname"] == "ndj-core-01")
    assert {"name": "lan", "state": "up", "addresses": ["10.70.100.1/24"]} in core["interfaces"]
    assert len(core["interfaces"]) == 13
    # a second discovery changes nothing
    before = estate.read_text()
    assert main(["discover", "devices", str(SAMPLE_PLAN), "--estate", str(estate)]) == 0
    assert capsys.readouterr().err.splitlines()[-1] == f"overflyt: {estate}: 10 devices, 0 change(s)"
    assert estate.read_text() == before


def test_config_hash_is_the_backups_sha256_and_follows_a_change(
    lab: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = load_plan(SAMPLE_PLAN)
    reads = read_all(plan)
    # the same as the configuration read another way (vtysh on the device, not over SSH) ...
    original = {name: normalised(lab, name) for name in reads}
    assert {name: r.config_sha256 for name, r in reads.items()} == {n: sha(c) for n, c in original.items()}
    assert {name: r.host_key_fingerprint for name, r in reads.items()} == {
        d["name"]: d["host_key_fingerprint"] for d in lab["devices"]
    }
    # ... and as the net_backup role's backup of it (Ansible, network_cli, its own normalisation)
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(tmp_path / "state"))
    run = Run.create("wave", plan.municipality.code, 2, ["kattegatskolen"], dry_run=True)
    backups = backup_site(
        step_ctx(plan, SAMPLE_PLAN, 2, run, resolve_all(plan, SAMPLE_PLAN.parent)), "kattegatskolen", dry_run=True
    )
    assert backups[KATTEGAT].sha256 == reads[KATTEGAT].config_sha256

    # a harmless line changed: the hash changes with it; put back: the hash is the original again
    description = "description client LAN kattegatskolen"
    assert f" {description}\n" in original[KATTEGAT]
    try:
        vtysh(lab, KATTEGAT, "configure terminal", "interface lan", "description changed by test_discover")
        changed = read_all(plan)
        assert changed[KATTEGAT].config_sha256 == sha(normalised(lab, KATTEGAT)) != reads[KATTEGAT].config_sha256
        assert {n: r.config_sha256 for n, r in changed.items() if n != KATTEGAT} == {
            n: r.config_sha256 for n, r in reads.items() if n != KATTEGAT
        }
    finally:
        vtysh(lab, KATTEGAT, "configure terminal", "interface lan", description)
    assert normalised(lab, KATTEGAT) == original[KATTEGAT]  # the device exactly as it was
    assert read_all(plan)[KATTEGAT].config_sha256 == reads[KATTEGAT].config_sha256


def test_a_wrong_host_key_or_login_fails_that_device_and_leaves_the_estate_file_alone(
    lab: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ndj-core-01's entry in known_hosts holds ndj-fw-01's key (changed), ndj-sw-raadhus-01 has none
    (unknown), ndj-auning-rtr-01 logs in with a wrong password; the other seven are fine, among them
    ndj-kattegat-rtr-01, without a known_hosts entry but in ssh.insecure_host_keys (read, and said so)."""
    plan_path = plan_copy(lab, tmp_path)
    known = {line.split()[0]: line for line in Path(lab["known_hosts"]).read_text().splitlines(keepends=True)}
    lines = {d["name"]: known[f"[{d['address']}]:{d['port']}"] for d in lab["devices"]}
    core, fw = lines["ndj-core-01"].split(), lines["ndj-fw-01"].split()
    lines["ndj-core-01"] = f"{core[0]} {fw[1]} {fw[2]}\n"
    del lines["ndj-sw-raadhus-01"], lines[KATTEGAT]
    (plan_path.parent / "known_hosts").write_text("".join(lines.values()))
    text = plan_path.read_text().replace(
        f"known_hosts: {lab['state_dir']}/known_hosts", f"known_hosts: known_hosts\n  insecure_host_keys: [{KATTEGAT}]"
    )
    text = text.replace(
        "credentials:\n",
        "credentials:\n  ndj-wrong:\n    username: overflyt\n    secret: {env: OVERFLYT_TEST_WRONG}\n",
        1,
    )
    text = text.replace(
        "management: 127.0.70.4, port: 2222, credentials: ndj-network",
        "management: 127.0.70.4, port: 2222, credentials: ndj-wrong",
    )
    plan_path.write_text(text)
    monkeypatch.setenv("OVERFLYT_TEST_WRONG", "not-the-password")
    estate = tmp_path / "estate.yml"
    estate.write_text("devices:\n  - {hostname: ndj-core-01, site: grenaa-raadhus, role: core, platform: ios}\n")
    before = estate.read_bytes()

    assert main(["discover", "devices", str(plan_path), "--estate", str(estate)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    fingerprint = {d["name"]: d["host_key_fingerprint"] for d in lab["devices"]}
    failures = sorted(line for line in err.splitlines() if ": not read: " in line)
    assert failures == [
        "overflyt: ndj-auning-rtr-01 (127.0.70.4:2222): not read: login refused for user 'overflyt' (credentials 'ndj-wrong')",
        f"overflyt: ndj-core-01 (127.0.70.1:2222): not read: host key {fingerprint['ndj-core-01']} differs from the one in the plan's known_hosts ({fingerprint['ndj-fw-01']})",
        f"overflyt: ndj-sw-raadhus-01 (127.0.70.3:2222): not read: host key {fingerprint['ndj-sw-raadhus-01']} is not in the plan's known_hosts",
    ]
    assert err.splitlines()[-1] == f"overflyt: 3 of 10 devices could not be read; {estate} not changed"
    insecure = [line for line in err.splitlines() if line.startswith(f"overflyt: {KATTEGAT} ")]
    assert len(insecure) == 1
    assert insecure[0].endswith("; host key NOT verified (ssh.insecure_host_keys)"), insecure
    assert "Traceback" not in err
    assert len(err.splitlines()) == 12  # the start, a line per device, the verdict
    assert estate.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["estate.yml", "norddjurs-copy"]

    assert main(["discover", "devices", str(plan_path), "--compare"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        err.splitlines()[-1]
        == f"overflyt: 7 devices read; 0 difference(s) from {plan_path}; 3 of 10 devices could not be read"
    )
