"""A server subnet that moves ahead of its site (issue 21) under the guarantees a site has, decided
in Python without peers: the stale-plan check refuses the subnet for what changed of it since the
pre-check (its VMs, its site's devices, the upstream core it changes too) and for nothing else; its
VMs' moves hold the move slots of the same resources a site's do, under the subnet's own key; a
cancel during its move rolls that unit back alone and `overflyt status` shows it so, on its own row.

The plan is the sample with Auning's file-and-backup subnet pulled into wave 1 (Grenaa Rådhus's).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from overflyt.ansible import cancel
from overflyt.ansible.step import StepContext
from overflyt.cutover import site as site_module
from overflyt.cutover.admission import Admission
from overflyt.cutover.itinerary import ItineraryStep
from overflyt.cutover.outcome import SiteOutcome, WaveOutcome
from overflyt.cutover.report import names_of
from overflyt.cutover.site import Cutover
from overflyt.cutover.state import WaveStore
from overflyt.cutover.status import plan_status
from overflyt.cutover.units import stale_reasons
from overflyt.cutover.wave import WaveRun
from overflyt.plan import LoadedPlan, load
from overflyt.plan.ahead import find_ahead, read_sites
from overflyt.precheck import fingerprint
from overflyt.precheck.facts import DeviceFacts, EstateFacts, VCenterFacts, VMFacts
from overflyt.record import Run
from overflyt.steps import slots, vm_batches
from overflyt.steps.slots import SlotsUnavailable
from overflyt.steps.vm_batches import site_vms

SAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs"
SUBNET = ["ndj-file01", "ndj-file02", "ndj-scan01", "ndj-backup-proxy01", "ndj-backup-proxy02", "ndj-archive01"]
KEY = "auning-adm:10.70.30.0-24"
TOWN_HALL = "grenaa-raadhus"


@pytest.fixture
def loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LoadedPlan:
    plan_dir = tmp_path / "norddjurs"
    shutil.copytree(SAMPLE, plan_dir)
    plan_file = plan_dir / "plan.yml"
    text = plan_file.read_text()
    plan_file.write_text(
        text.replace(
            "    sites: [grenaa-raadhus]\n", f"    sites: [grenaa-raadhus]\n    vms: [{', '.join(SUBNET)}]\n", 1
        )
    )
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(tmp_path / "state"))
    return load(plan_file)


@pytest.fixture
def no_cancel() -> Iterator[None]:
    cancel.reset_cancel()
    yield
    cancel.reset_cancel()


def _facts(loaded: LoadedPlan, configs: dict[str, str], host_of: dict[str, str] | None = None) -> EstateFacts:
    """What a pre-check of wave 1 reads: its VMs (the town hall's and the subnet's) and devices."""
    plan = loaded.plan
    vms = {
        vm.name: VMFacts(
            name=vm.name,
            moid=f"vm-{k}",
            datacenter=plan.source.datacenter,
            host=(host_of or {}).get(vm.name, vm.host),
            folder="Servere",
            datastores=[vm.datastore],
            cpu=vm.cpu,
            memory_mb=vm.memory_mb,
            disks_gb=list(vm.disks_gb),
            portgroups=list(vm.portgroups),
            power=vm.power.value,
            tools="ok",
        )
        for k, vm in enumerate(plan.vms_of_wave(1))
    }
    source = VCenterFacts(name=plan.source.vcenter.name, url=plan.source.vcenter.url, reachable=True, vms=vms)
    devices = {
        host: DeviceFacts(
            hostname=host, address="127.0.70.1", port=2222, reachable=True, login=True, running_config_sha256=sha
        )
        for host, sha in configs.items()
    }
    return EstateFacts(source=source, devices=devices)


CONFIGS = {"ndj-core-01": "a" * 64, "ndj-fw-01": "b" * 64, "ndj-sw-raadhus-01": "c" * 64}


def _wave_run(loaded: LoadedPlan, refused: dict[str, list[str]]) -> list[tuple[str, str, str | None]]:
    """Wave 1's cut_sites (the real phase) with ``refused`` from the stale check: each unit's outcome."""
    plan = loaded.plan
    units = (TOWN_HALL, KEY)
    run = Run.create("wave", plan.municipality.code, 1, list(units), dry_run=False)
    outcome = WaveOutcome(plan.municipality.code, 1, False, run.record.run_id, run.dir, names=names_of(plan, 1))
    phases = WaveRun(Admission(loaded, 1, units, {}, dry_run=False), run, outcome)
    phases.store = WaveStore(plan.municipality.code, 1)
    phases.refused = refused

    def site_runner(site_id: str, _cut: Callable[[], SiteOutcome]) -> SiteOutcome:
        return SiteOutcome(site_id, "done")

    phases.cut_sites(site_runner, lambda _s, _t, call: call())
    return [(s.site, s.status, s.error) for s in outcome.sites]


def test_a_stale_plan_refuses_a_subnet_ahead_for_what_changed_of_it_and_for_nothing_else(loaded: LoadedPlan) -> None:
    plan = loaded.plan
    saved = fingerprint.take(plan, 1, [TOWN_HALL], _facts(loaded, CONFIGS))
    assert set(SUBNET) <= set(saved["vms"])  # the subnet's VMs are in the wave's fingerprint
    moved = _facts(loaded, CONFIGS, {"ndj-file01": "ndj-esx05"})  # someone vMotioned one of its VMs
    refused = fingerprint.stale(plan, saved, fingerprint.take(plan, 1, [TOWN_HALL], moved))
    assert list(refused) == ["auning-adm"]
    rows = _wave_run(loaded, refused)
    assert [(site, status) for site, status, _ in rows] == [(TOWN_HALL, "done"), (KEY, "refused")]
    assert (rows[1][2] or "").startswith("stale plan: VM ndj-file01 changed since the pre-check"), rows
    assert "host ndj-esx0" in (rows[1][2] or "")

    # The core: the town hall's device, and a device the subnet's cutover changes: both are refused.
    core = fingerprint.stale(
        plan, saved, fingerprint.take(plan, 1, [TOWN_HALL], _facts(loaded, CONFIGS | {"ndj-core-01": "d" * 64}))
    )
    assert list(core) == [TOWN_HALL]
    assert stale_reasons(plan, KEY, core) == core[TOWN_HALL]
    rows = _wave_run(loaded, core)
    assert [(site, status) for site, status, _ in rows] == [(TOWN_HALL, "refused"), (KEY, "refused")]
    assert "device ndj-core-01's running config changed" in (rows[1][2] or "")

    # The town hall's firewall: the subnet's cutover does not touch it, so it is not refused for it.
    fw = fingerprint.stale(
        plan, saved, fingerprint.take(plan, 1, [TOWN_HALL], _facts(loaded, CONFIGS | {"ndj-fw-01": "e" * 64}))
    )
    assert list(fw) == [TOWN_HALL]
    assert stale_reasons(plan, KEY, fw) == []
    rows = _wave_run(loaded, fw)
    assert [(site, status) for site, status, _ in rows] == [(TOWN_HALL, "refused"), (KEY, "done")]


def test_the_gateway_of_a_subnets_site_is_read_and_a_change_there_refuses_the_subnet(loaded: LoadedPlan) -> None:
    """Auning's router routes the subnet moving ahead in wave 1 though Auning is cut over in wave 2:
    the pre-check reads and fingerprints it, and a change on it since then refuses the subnet alone."""
    plan = loaded.plan
    read = read_sites(plan, 1, [TOWN_HALL])
    assert read == [TOWN_HALL, "auning-adm"]
    configs = CONFIGS | {"ndj-auning-rtr-01": "f" * 64}
    saved = fingerprint.take(plan, 1, read, _facts(loaded, configs))
    assert saved["devices"]["ndj-auning-rtr-01"] == "f" * 64
    changed = fingerprint.stale(
        plan, saved, fingerprint.take(plan, 1, read, _facts(loaded, configs | {"ndj-auning-rtr-01": "0" * 64}))
    )
    assert list(changed) == ["auning-adm"]
    rows = _wave_run(loaded, changed)
    assert [(site, status) for site, status, _ in rows] == [(TOWN_HALL, "done"), (KEY, "refused")]
    assert "device ndj-auning-rtr-01's running config changed" in (rows[1][2] or "")
    assert read_sites(plan, 2, ["auning-adm"]) == ["auning-adm"]  # a wave without subnets ahead: its own


def test_a_subnets_vm_moves_hold_the_same_slots_as_a_sites_under_the_subnets_key(loaded: LoadedPlan) -> None:
    """Its VMs load the target vCenter, their source hosts and both ends' datastores (as a site's
    do); held, the slots name the subnet; another site's move needing a full one waits and is told
    the subnet holds it."""
    plan = loaded.plan
    storage = {m.source: m.target for m in plan.storage_map}
    vms = site_vms(plan, 1, KEY)
    assert sorted(vm.name for vm in vms) == sorted(SUBNET)
    host = vms[0].host
    mine = [vm for vm in vms if vm.host == host][: plan.concurrency.per_host]
    assert len(mine) == plan.concurrency.per_host  # enough of its VMs on one host to fill that host's slots
    loads = {
        vm.name: vm_batches.loads(plan, host=vm.host, datastores=[vm.datastore], target_datastore=storage[vm.datastore])
        for vm in mine
    }
    run = Run.create("wave", plan.municipality.code, 1, [KEY], dry_run=False)
    ctx = StepContext(loaded, 1, run, {})
    state = loaded.state
    full = (f"host {plan.source.vcenter.hostport}/{host}", plan.concurrency.per_host)
    assert all(full in load for load in loads.values())
    with vm_batches._slots(ctx, KEY, loads, dry_run=False, timeout_s=5):
        held = [json.loads(p.read_text()) for p in (state / "slots").glob("*/*") if p.read_text().strip()]
        assert held
        assert all(h["site"] == KEY and h["wave"] == 1 and h["municipality"] == "707" for h in held)
        # another site's move from that host waits for the subnet's and is told who holds the slots
        with (
            pytest.raises(SlotsUnavailable, match=f"held by municipality 707 wave 1 site {KEY}"),
            slots.hold(slots.needs({full: 1}), {"site": "kattegatskolen"}, timeout_s=0.3, base=state),
        ):
            pass
    with slots.hold(slots.needs({full: 1}), {"site": "kattegatskolen"}, timeout_s=1, base=state) as waited:
        assert waited < 1  # released with the subnet's batch


def test_a_cancel_during_a_subnets_move_rolls_that_unit_back_alone_and_status_shows_its_row(
    loaded: LoadedPlan, monkeypatch: pytest.MonkeyPatch, no_cancel: None
) -> None:
    plan = loaded.plan
    assert plan.rollback == "automatic"
    ran: list[tuple[str, str]] = []

    def step(name: str) -> ItineraryStep:
        return ItineraryStep(
            name, name, lambda work: ran.append((work.site, name)), in_dry_run=False, timeout="backup_s"
        )

    names = ("backup", "placements", "migrate", "configure")
    monkeypatch.setattr(site_module, "ITINERARY", tuple(step(n) for n in names))
    monkeypatch.setattr(site_module, "STEP_NAMES", names)

    def cancel_in_the_move(site: str, step: str, status: str) -> None:
        if (site, step, status) == (KEY, "migrate", "started"):
            cancel.request_cancel("SIGTERM")  # the operator cancels while the subnet's VMs move

    run = Run.create("wave", "707", 1, [TOWN_HALL, KEY], dry_run=False)
    store = WaveStore("707", 1)
    cutover = Cutover(StepContext(loaded, 1, run, {}), on_step=cancel_in_the_move)
    assert cutover.run_site(TOWN_HALL, store).status == "done"
    outcome = cutover.run_site(KEY, store)
    assert outcome.canceled
    assert outcome.status == "rolled_back", outcome.error
    assert (outcome.error or "").startswith("configure: canceled (SIGTERM)"), outcome.error
    assert ran[-2:] == [(KEY, "placements"), (KEY, "migrate")]  # nothing of it ran after the cancel
    saved = WaveStore("707", 1).state.sites
    assert saved[KEY].status == "rolled_back"
    assert (saved[KEY].error or "").startswith("configure: canceled (SIGTERM)")
    assert saved[TOWN_HALL].status == "done"  # the site of the wave is untouched by the subnet's cancel
    assert find_ahead(plan, KEY) is not None

    rows = {u["id"]: u for u in plan_status(plan, loaded.state)["waves"][0]["units"]}
    assert (rows[KEY]["kind"], rows[KEY]["state"]) == ("subnet", "rolled back")
    assert rows[KEY]["vms_moved"] == []
    assert (rows[TOWN_HALL]["kind"], rows[TOWN_HALL]["state"]) == ("site", "done")
