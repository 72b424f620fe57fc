"""`wave run` refuses what it cannot carry out, before it touches anything (no lab needed: the
refusal comes before credentials, locks or any connection); a whole server subnet moving ahead
of its site is carried out, as its own unit of the wave (issue 21)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from overflyt.cli import main
from overflyt.cutover.admission import admit
from overflyt.cutover.state import BackupRef, SiteState, WaveStore
from overflyt.cutover.units import later_changes, to_undo
from overflyt.discovery.estate import dump_estate
from overflyt.lab import synth
from overflyt.plan import load_plan
from overflyt.plan.ahead import ahead_subnets, unit_name, unit_site, unit_subnets
from overflyt.plan.select import select_units
from overflyt.steps.ahead import ahead_device_changes, ahead_postcheck_targets
from overflyt.steps.vm_batches import site_vms

SAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs"
SUBNET = ["ndj-file01", "ndj-file02", "ndj-scan01", "ndj-backup-proxy01", "ndj-backup-proxy02", "ndj-archive01"]
KEY = "auning-adm:10.70.30.0-24"


def _pulled(tmp_path: Path, names: list[str]) -> Path:
    plan_dir = tmp_path / "norddjurs"
    shutil.copytree(SAMPLE, plan_dir)
    plan_file = plan_dir / "plan.yml"
    text = plan_file.read_text()
    pulled = text.replace(
        "    sites: [grenaa-raadhus]\n", f"    sites: [grenaa-raadhus]\n    vms: [{', '.join(names)}]\n", 1
    )
    assert pulled != text
    plan_file.write_text(pulled)
    return plan_file


def test_a_plan_that_splits_a_subnet_ahead_of_its_site_is_refused_naming_the_vms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_file = _pulled(tmp_path, SUBNET[:2])
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(tmp_path / "state"))
    assert main(["plan", "validate", str(plan_file)]) == 2
    err = capsys.readouterr().err
    assert (
        "waves[0].vms: splits server subnet 10.70.30.0/24 (VM-Fil-Backup-30): ndj-file01, ndj-file02 would move "
        "ahead in wave 1 and leave ndj-scan01, ndj-backup-proxy01, ndj-backup-proxy02, ndj-archive01 behind; a "
        "subnet moves whole: list every VM of it or none (value: 'VM-Fil-Backup-30')"
    ) in err, err
    for wave in ("1", "2"):
        assert main(["wave", "run", str(plan_file), "--wave", wave, "--dry-run", "-q"]) == 2
        err = capsys.readouterr().err
        assert "splits server subnet 10.70.30.0/24" in err, err
        assert "Traceback" not in err
    assert not (tmp_path / "state").exists()


def test_a_whole_subnet_ahead_is_a_unit_of_its_wave_with_its_own_devices_vms_and_route(tmp_path: Path) -> None:
    plan = load_plan(_pulled(tmp_path, SUBNET))
    [unit] = ahead_subnets(plan)
    assert (unit.key, unit.site, unit.wave, unit.vms) == (KEY, "auning-adm", 1, tuple(SUBNET))
    assert select_units(plan, 1) == ["grenaa-raadhus", KEY]  # the wave's sites, then its ahead subnets
    assert select_units(plan, 1, ["auning-adm"]) == [KEY]  # a site names its subnets moving ahead in the wave
    assert select_units(plan, 1, [KEY]) == [KEY]
    assert select_units(plan, 2) == ["auning-adm", "kattegatskolen", "auning-skole"]
    assert unit_site(plan, KEY) == "auning-adm"
    assert unit_site(plan, "auning-adm") == "auning-adm"
    assert unit_name(plan, KEY) == "Administrationscenter Auning: subnet 10.70.30.0/24 (VM-Fil-Backup-30), ahead"
    # its VMs, and the site's own cutover later moves the rest and not them again
    assert [vm.name for vm in site_vms(plan, 1, KEY)] == SUBNET
    later = [vm.name for vm in site_vms(plan, 2, "auning-adm")]
    assert later
    assert not set(later) & set(SUBNET)
    assert unit_subnets(plan, 1, KEY) == ["10.70.30.0/24"]
    assert unit_subnets(plan, 2, "auning-adm") == ["10.70.20.0/24"]
    # only the subnet's route, on the site's gateway (to its dc_link) and the upstream core (to its own)
    changes = {h: c.device_vars()["overflyt_routes"] for h, c in ahead_device_changes(plan, unit).items()}
    assert changes == {
        "ndj-auning-rtr-01": [{"prefix": "10.70.30.0/24", "next_hop": "10.255.70.5"}],
        "ndj-core-01": [{"prefix": "10.70.30.0/24", "next_hop": "10.255.70.1"}],
    }
    assert ahead_postcheck_targets(plan, unit) == [
        "10.70.30.11", "10.70.30.12", "10.70.30.13", "10.70.30.21", "10.70.30.22",
    ]  # fmt: skip


def test_a_site_whose_subnet_ahead_has_not_moved_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_file = _pulled(tmp_path, SUBNET)
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(tmp_path / "state"))
    assert main(["wave", "run", str(plan_file), "--wave", "2", "--approved-by", "x", "-q"]) == 2
    assert capsys.readouterr().err == (
        "overflyt: site auning-adm: its subnet 10.70.30.0/24 (VM-Fil-Backup-30) moves ahead in wave 1, which has "
        "not moved it (not run): run wave 1 first\n"
    )
    assert not (tmp_path / "state" / "707" / "wave-2").exists()


def _unit(store: WaveStore, key: str, site: str, devices: list[str], minute: int) -> None:
    store.state.sites[key] = SiteState(
        status="done",
        site=site,
        started_at=datetime(2027, 3, 6, 18, minute, tzinfo=UTC),
        backups={d: BackupRef(file=f"/b/{key}-{d}", sha256="0" * 64) for d in devices},
        runs=[f"run-{minute}"],
    )
    store.save()


def test_rollback_order_is_latest_first_and_another_sites_later_change_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_file = _pulled(tmp_path, SUBNET)
    plan = load_plan(plan_file)
    base = tmp_path / "state"
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(base))
    wave1, wave2 = WaveStore("707", 1, base), WaveStore("707", 2, base)
    _unit(wave1, "grenaa-raadhus", "grenaa-raadhus", ["ndj-core-01", "ndj-fw-01"], 0)
    _unit(wave1, KEY, "auning-adm", ["ndj-auning-rtr-01", "ndj-core-01"], 30)
    _unit(wave2, "auning-adm", "auning-adm", ["ndj-auning-rtr-01"], 40)
    assert [r.key for r in to_undo(plan, "auning-adm", base)] == ["auning-adm", KEY]
    assert later_changes(plan, "auning-adm", to_undo(plan, "auning-adm", base), base) == []
    # the town hall's backup of the core was taken before the subnet's change: restoring it would undo it
    assert main(["rollback", str(plan_file), "--site", "grenaa-raadhus", "-q"]) == 2
    assert capsys.readouterr().err == (
        "overflyt: rollback of grenaa-raadhus refused, nothing changed: Administrationscenter Auning: subnet "
        "10.70.30.0/24 (VM-Fil-Backup-30), ahead (wave 1, runs run-30) changed ndj-core-01 after Grenaa Rådhus "
        "(wave 1) backed it up: roll back auning-adm first (overflyt rollback PLAN --site auning-adm)\n"
    )
    state = json.loads((base / "707" / "wave-1" / "state.json").read_text())
    assert state["sites"][KEY]["status"] == "done"


def test_the_planners_proposal_with_subnets_ahead_is_admitted_unit_by_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A synthetic municipality (825) whose proposed plan moves 26 VMs ahead of their site: every
    wave is admitted for a dry run (nothing refused), and what it moves ahead is whole subnets, each
    a unit with its devices, VMs and estimate row."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "estate.yml").write_text(dump_estate(synth.estate("825")), encoding="utf-8")
    assert main(["plan", "waves", "estate.yml", "-o", "plan.yml", "--first-window", "2027-03-06 18:00"]) == 0
    text = (tmp_path / "plan.yml").read_text(encoding="utf-8")
    plan = load_plan(tmp_path / "plan.yml")
    for credential in plan.credentials.values():
        if credential.secret.env:
            monkeypatch.setenv(credential.secret.env, "not used: nothing is contacted")
    units = ahead_subnets(plan)
    assert len(units) == 4
    assert sorted(n for u in units for n in u.vms) == sorted(n for w in plan.waves for n in w.vms)
    for wave in plan.waves:
        admitted = admit(tmp_path / "plan.yml", wave.number, dry_run=True, approval_given=False, can_ask=False)
        ahead = [u for u in units if u.wave == wave.number]
        assert admitted.sites == (*wave.sites, *(u.key for u in ahead))
        for unit in ahead:
            assert [vm.name for vm in site_vms(plan, wave.number, unit.key)] == list(unit.vms)
            assert ahead_device_changes(plan, unit)  # at least its site's gateway
            assert f"  #   ahead: {unit.key}: subnet {unit.subnet} of site {unit.site}, " in text
    capsys.readouterr()


def test_status_shows_a_subnet_moved_ahead_as_its_own_row(tmp_path: Path) -> None:
    """`overflyt status`: wave 1's rows are its site, then the subnet it moved ahead of Auning (kind
    `subnet`), each with its own state; wave 2 (Auning's own night) still pending."""
    from overflyt.cutover.status import plan_status

    plan = load_plan(_pulled(tmp_path, SUBNET))
    base = tmp_path / "state"
    wave1 = WaveStore("707", 1, base)
    _unit(wave1, KEY, "auning-adm", ["ndj-auning-rtr-01", "ndj-core-01"], 30)
    wave1.state.sites[KEY] = wave1.state.sites[KEY].model_copy(update={"moved": list(SUBNET)})
    wave1.save()
    data = plan_status(plan, base)
    rows = [(u["kind"], u["id"], u["state"], len(u["vms_moved"]), u["vms"]) for u in data["waves"][0]["units"]]
    assert rows == [
        ("site", "grenaa-raadhus", "pending", 0, len(site_vms(plan, 1, "grenaa-raadhus"))),
        ("subnet", KEY, "done", len(SUBNET), len(SUBNET)),
    ]
    assert [u["kind"] for u in data["waves"][1]["units"]] == ["site"] * len(data["waves"][1]["units"])
    assert data["waves"][1]["state"] == "pending"
