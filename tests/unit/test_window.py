"""The maintenance window while a wave runs: no site starts after it has closed, nor when what is
left of it is shorter than the site's estimate — the planner's own — plus the plan's margin; a
site under way at its end finishes or is rolled back as the plan says; --outside-window lifts it,
recorded with who and why. No lab: the plan is one the planner proposed for a made-up municipality
(not the sample), the clock is set, and the sites' cutovers are stood in for (the lab test,
tests/lab/test_window.py, runs the real ones)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from overflyt.ansible.step import StepContext
from overflyt.cli import main
from overflyt.cli.wave import _print_wave
from overflyt.cutover import site as site_module
from overflyt.cutover.admission import Admission
from overflyt.cutover.itinerary import ItineraryStep
from overflyt.cutover.outcome import SiteOutcome, WaveOutcome
from overflyt.cutover.report import names_of, report_data, report_markdown
from overflyt.cutover.site import Cutover, WindowClosed
from overflyt.cutover.state import WaveStore
from overflyt.cutover.wave import WaveRun
from overflyt.cutover.window import WindowGate
from overflyt.discovery.estate import Estate
from overflyt.plan import LoadedPlan, load
from overflyt.plan.model import WindowPolicy
from overflyt.planning.waves import PlanningOptions, WavePlan, plan_waves, render_plan
from overflyt.record import Run

CPH = ZoneInfo("Europe/Copenhagen")
FIRST = datetime(2027, 3, 6, 18, 0)  # a Saturday: wave 1 18:00-06:00, wave 2 a week later
WAVE1_END = datetime(2027, 3, 7, 6, 0, tzinfo=CPH)
WAVE2_END = datetime(2027, 3, 14, 6, 0, tzinfo=CPH)


def _vm(name: str, host: str, pg: str, ip: str, disk: int, **extra: Any) -> dict[str, Any]:
    vm = {"name": f"v998-{name}", "host": f"v998-{host}", "datastore": f"ds-{host}", "cpu": 2, "memory_mb": 4096}
    return vm | {"disks_gb": [disk], "portgroups": [pg], "ip": ip, "power": "powered_on"} | extra


def vindeby() -> dict[str, Any]:
    """Vindeby (998): the town hall's two domain controllers (80 GB each), a school and a library
    without servers, and a care centre whose three 750 GB servers on one host need the domain."""

    def uplink(n: int) -> dict[str, Any]:
        return {"device": "v998-core-01", "subnet": f"172.16.98.{4 * n}/30", "bandwidth_mbps": 1000}

    sites = [("skole", "Vindeby Skole", "school"), ("bibliotek", "Vindeby Bibliotek", "library"),
             ("solbakken", "Plejecenter Solbakken", "care_centre")]  # fmt: skip
    return {
        "municipality": {"code": "998", "name": "Vindeby Kommune"},
        "vcenters": [{"name": "v998-vc", "url": "https://vc.v998.invalid/sdk", "datacenter": "DC", "cluster": "C1"}],
        "hosts": [
            {"name": f"v998-esx0{n}", "vcenter": "v998-vc", "site": s, "cpu_cores": 32, "memory_mb": 262144}
            for n, s in ((1, "raadhus"), (2, "raadhus"), (3, "solbakken"))
        ],
        "sites": [
            {"id": "raadhus", "name": "Vindeby Rådhus", "kind": "town_hall", "address_block": "10.98.0.0/24"},
            *(
                {"id": i, "name": name, "kind": kind, "address_block": f"10.98.{n}.0/24", "uplink": uplink(n)}
                for n, (i, name, kind) in enumerate(sites, 1)
            ),
        ],
        "portgroups": [
            {"name": "VM-Faelles", "vlan": 10, "subnet": "10.98.10.0/24"},
            {"name": "VM-Pleje", "vlan": 40, "subnet": "10.98.40.0/24"},
        ],
        "vms": [
            _vm("dc01", "esx01", "VM-Faelles", "10.98.10.11", 80, role="ad"),
            _vm("dc02", "esx02", "VM-Faelles", "10.98.10.12", 80, role="ad"),
            *(
                _vm(f"pleje0{i}", "esx03", "VM-Pleje", f"10.98.40.1{i}", 750, depends_on=["v998-dc01"])
                for i in (1, 2, 3)
            ),
        ],
        "devices": [
            {"hostname": "v998-core-01", "site": "raadhus", "role": "core", "platform": "ios",
             "management": "172.24.98.1"},
            *(
                {"hostname": f"v998-{s}-rtr", "site": s, "role": "distribution", "platform": "ios",
                 "management": f"172.24.98.{n}"}
                for n, s in ((2, "skole"), (3, "bibliotek"), (4, "solbakken"))
            ),
        ],
    }  # fmt: skip


@pytest.fixture
def proposed() -> WavePlan:
    result = plan_waves(Estate.model_validate(vindeby()), PlanningOptions(first_window=FIRST))
    assert [(w.number, w.sites) for w in result.plan.waves] == [(1, ["raadhus", "skole", "bibliotek"]),
                                                                 (2, ["solbakken"])]  # fmt: skip
    return result


@pytest.fixture
def loaded(proposed: WavePlan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LoadedPlan:
    """The proposed plan as its file, loaded as a run loads it; run records under tmp_path."""
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(tmp_path / "state"))
    path = tmp_path / "vindeby" / "plan.yml"
    path.parent.mkdir()
    path.write_text(render_plan(proposed, "vindeby.yml"), encoding="utf-8")
    return load(path)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now.astimezone(UTC)


def test_a_sites_estimate_is_the_planners_own(proposed: WavePlan) -> None:
    """The cutover's estimate of a site is the planner's: the care centre's wave (one site, one unit)
    is estimated at 325 min by both — 2,250 GB at 1,000 Mbps (300 min), 2 batches x 5 min, the site 15."""
    plan = proposed.plan
    first, second = proposed.estimates
    assert second.minutes == pytest.approx(325.0)
    assert WindowGate(plan, 2).estimate("solbakken") == pytest.approx(second.minutes)
    # wave 1: three sites, one of them with VMs (one unit): the same sum
    assert sum(WindowGate(plan, 1).estimate(s) for s in first.sites) == pytest.approx(first.minutes)
    # the plan's settings are what the estimate assumes: ten times the bandwidth, a tenth of the transfer
    faster = plan.model_copy(update={"window_policy": WindowPolicy(bandwidth_mbps=10000)})
    assert WindowGate(faster, 2).estimate("solbakken") == pytest.approx(15 + 30 + 2 * 5)


def test_not_enough_window_left_the_site_does_not_start(proposed: WavePlan) -> None:
    """5 h 25 min estimated + 15 min margin: with 5 h 30 min left the care centre does not start;
    with 5 h 40 min (or more) left it does."""
    plan = proposed.plan
    clock = Clock(WAVE2_END - timedelta(hours=5, minutes=30))
    gate = WindowGate(plan, 2, clock=clock)
    assert gate.refusal("solbakken", "pending") == (
        "not started: the window closes at 06:00 (Europe/Copenhagen), in 5 h 30 min; Plejecenter Solbakken "
        "needs about 5 h 40 min (5 h 25 min estimated + 15 min margin); its devices and VMs were not touched: "
        "rerun it in the next window, or with --outside-window"
    )
    assert gate.refusal("solbakken", "rolled_back") == gate.refusal("solbakken", "pending")
    clock.now = WAVE2_END - timedelta(hours=5, minutes=40)
    assert gate.refusal("solbakken", "pending") is None
    clock.now = WAVE2_END - timedelta(hours=5, minutes=40) + timedelta(seconds=1)
    assert gate.refusal("solbakken", "pending") is not None
    # The margin is the plan's: without it, 5 h 30 min left hold the 5 h 25 min.
    clock.now = WAVE2_END - timedelta(hours=5, minutes=30)
    no_margin = plan.model_copy(update={"window_policy": WindowPolicy(margin_min=0)})
    assert WindowGate(no_margin, 2, clock=clock).refusal("solbakken", "pending") is None
    # Local time of the window's zone (the clock says UTC), with the date when it is not today's.
    clock.now = datetime(2027, 3, 13, 23, 30, tzinfo=CPH)
    long_margin = plan.model_copy(update={"window_policy": WindowPolicy(margin_min=600)})
    assert WindowGate(long_margin, 2, clock=clock).refusal("solbakken", "pending") == (
        "not started: the window closes at 2027-03-14 06:00 (Europe/Copenhagen), in 6 h 30 min; Plejecenter "
        "Solbakken needs about 15 h 25 min (5 h 25 min estimated + 10 h margin); its devices and VMs were not "
        "touched: rerun it in the next window, or with --outside-window"
    )


def test_after_the_window_no_site_starts_and_one_left_part_done_is_not_resumed(proposed: WavePlan) -> None:
    clock = Clock(WAVE1_END + timedelta(seconds=10))
    gate = WindowGate(proposed.plan, 1, clock=clock)
    assert gate.refusal("skole", "pending") == (
        "not started: the window closed at 06:00 (Europe/Copenhagen); Vindeby Skole needs about 30 min (15 min "
        "estimated + 15 min margin); its devices and VMs were not touched: rerun it in the next window, or with "
        "--outside-window"
    )
    assert gate.refusal("raadhus", "in_progress") == (
        "not started: the window closed at 06:00 (Europe/Copenhagen); Vindeby Rådhus needs about 56 min (41 min "
        "estimated + 15 min margin); an earlier run left it part done: finish it with --outside-window or roll it "
        "back (overflyt rollback)"
    )
    assert gate.refusal("raadhus", "done") is None  # nothing left to start: the cutover skips it
    clock.now = WAVE1_END + timedelta(days=1, minutes=1)
    assert gate.refusal("skole", "pending") is not None
    assert "the window closed at 2027-03-07 06:00 (Europe/Copenhagen);" in (gate.refusal("skole", "pending") or "")
    # Inside the window a site an earlier run left part done goes on, whatever is left: it is under way.
    clock.now = WAVE1_END - timedelta(minutes=5)
    assert gate.refusal("raadhus", "in_progress") is None
    assert gate.refusal("raadhus", "pending") is not None


def test_at_a_step_boundary_a_closed_window_finishes_or_rolls_back_as_the_plan_says(proposed: WavePlan) -> None:
    clock = Clock(WAVE1_END - timedelta(minutes=1))
    said: list[tuple[str, str, str]] = []
    finish = WindowGate(proposed.plan, 1, clock=clock, on_step=lambda *a: said.append(a))
    finish.before_step("raadhus", "backup")
    clock.now = WAVE1_END
    for step in ("placements", "migrate", "configure", "postcheck"):
        finish.before_step("raadhus", step)  # finish: never stops a site under way
    assert said == [
        ("raadhus", "placements", "the window closed at 06:00 (Europe/Copenhagen): finishing the site "
         "(on_window_end: finish)"),
    ]  # fmt: skip
    clock.now = WAVE1_END + timedelta(minutes=12, seconds=5)
    assert finish.ran_over(SiteOutcome("raadhus", "done")) == (
        "ran over the window by 12 min: it closed at 06:00 (Europe/Copenhagen), the site finished at 06:12:05 "
        "(Europe/Copenhagen) (on_window_end: finish)"
    )
    assert finish.ran_over(SiteOutcome("raadhus", "rolled_back")) is None
    clock.now = WAVE1_END + timedelta(seconds=20)
    assert (finish.ran_over(SiteOutcome("raadhus", "done")) or "").startswith(
        "ran over the window by less than a minute: it closed at 06:00 (Europe/Copenhagen), the site finished at "
        "06:00:20 (Europe/Copenhagen)"
    )
    clock.now = WAVE1_END - timedelta(seconds=1)
    assert finish.ran_over(SiteOutcome("raadhus", "done")) is None

    plan = proposed.plan.model_copy(update={"window_policy": WindowPolicy(on_window_end="rollback")})
    clock.now = WAVE1_END - timedelta(minutes=1)
    rollback = WindowGate(plan, 1, clock=clock)
    rollback.before_step("raadhus", "backup")
    rollback.before_step("raadhus", "placements")
    clock.now = WAVE1_END
    with pytest.raises(WindowClosed) as closed:
        rollback.before_step("raadhus", "migrate")
    assert str(closed.value) == (
        "the window closed at 06:00 (Europe/Copenhagen) before the site's VM moves had finished (checked before its "
        "migrate step); on_window_end: rollback"
    )
    # The VM moves ran in this run and finished after the window closed: rolled back before the network change.
    clock.now = WAVE1_END - timedelta(minutes=1)
    rollback.before_step("skole", "migrate")
    clock.now = WAVE1_END
    with pytest.raises(WindowClosed, match="before its configure step"):
        rollback.before_step("skole", "configure")
    # Moves finished by an earlier run (resumed here at the network change), or the change already made: finish.
    rollback.before_step("bibliotek", "configure")
    rollback.before_step("bibliotek", "postcheck")
    # Inside the migrate step: no further VM batch starts once the window has closed (rollback), any may (finish).
    assert rollback.stop_moves("raadhus") == "the window closed at 06:00 (Europe/Copenhagen) (on_window_end: rollback)"
    assert finish.stop_moves("raadhus") is None
    clock.now = WAVE1_END - timedelta(seconds=1)
    assert rollback.stop_moves("raadhus") is None


def test_a_site_the_window_closes_on_is_rolled_back_even_when_rollback_is_manual(
    loaded: LoadedPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """on_window_end: rollback is the plan's explicit word for that case, whatever `rollback` says for
    failures; nothing was recorded before the stop, so the rollback has nothing to restore."""
    plan = loaded.plan.model_copy(
        update={"rollback": "manual", "window_policy": WindowPolicy(on_window_end="rollback")}
    )
    ran: list[str] = []

    def step(name: str) -> ItineraryStep:
        return ItineraryStep(name, name, lambda work: ran.append(name), in_dry_run=False, timeout="backup_s")

    monkeypatch.setattr(site_module, "ITINERARY", tuple(step(n) for n in ("backup", "placements", "migrate")))
    monkeypatch.setattr(site_module, "STEP_NAMES", ("backup", "placements", "migrate"))
    clock = Clock(WAVE1_END - timedelta(minutes=1))

    def close_after_placements(site: str, step: str, status: str) -> None:
        if (step, status) == ("placements", "done"):
            clock.now = WAVE1_END + timedelta(seconds=1)

    run = Run.create("wave", "998", 1, ["raadhus"], dry_run=False)
    store = WaveStore("998", 1)
    gate = WindowGate(plan, 1, clock=clock)
    ctx = StepContext(LoadedPlan(plan, loaded.path, loaded.connections), 1, run, {})
    cutover = Cutover(ctx, on_step=close_after_placements, before_step=gate.before_step)
    outcome = cutover.run_site("raadhus", store)
    assert ran == ["backup", "placements"]
    assert outcome.status == "rolled_back"
    assert outcome.error == (
        "cutover: the window closed at 06:00 (Europe/Copenhagen) before the site's VM moves had finished (checked "
        "before its migrate step); on_window_end: rollback"
    )
    assert outcome.window == outcome.error.removeprefix("cutover: ")
    assert WaveStore("998", 1).site("raadhus").status == "rolled_back"


def phases_of(loaded: LoadedPlan, clock: Clock, said: list[tuple[str, str, str]]) -> WaveRun:
    plan = loaded.plan
    sites = tuple(plan.wave(1).sites)
    run = Run.create("wave", plan.municipality.code, 1, list(sites), dry_run=False)
    outcome = WaveOutcome(plan.municipality.code, 1, False, run.record.run_id, run.dir, names=names_of(plan, 1))
    admission = Admission(loaded, 1, sites, {}, dry_run=False)
    phases = WaveRun(admission, run, outcome, on_step=lambda *a: said.append(a), clock=clock)
    phases.store = WaveStore(plan.municipality.code, 1)
    return phases


def runner(clock: Clock, results: dict[str, str], cut: list[str]) -> Callable[..., SiteOutcome]:
    """Stands in for each site's cutover: the first one takes the window past its end."""

    def site_runner(site_id: str, _cut: Callable[[], SiteOutcome]) -> SiteOutcome:
        cut.append(site_id)
        clock.now = WAVE1_END + timedelta(minutes=3)
        return SiteOutcome(site_id, results.get(site_id, "done"))

    return site_runner


def test_the_window_closes_during_the_first_of_three_sites(
    loaded: LoadedPlan, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = Clock(WAVE1_END - timedelta(hours=2))
    said: list[tuple[str, str, str]] = []
    phases = phases_of(loaded, clock, said)
    phases.hold_window(False, None)
    cut: list[str] = []
    phases.cut_sites(runner(clock, {}, cut), lambda site, step, call: call())
    outcome = phases.finish()

    assert cut == ["raadhus"]
    assert [(s.site, s.status) for s in outcome.sites] == [
        ("raadhus", "done"),
        ("skole", "not_started"),
        ("bibliotek", "not_started"),
    ]
    assert outcome.exit_code == 1
    skole = (
        "not started: the window closed at 06:00 (Europe/Copenhagen); Vindeby Skole needs about 30 min (15 min "
        "estimated + 15 min margin); its devices and VMs were not touched: rerun it in the next window, or with "
        "--outside-window"
    )
    assert outcome.sites[1].error == skole
    assert outcome.sites[0].window == (
        "ran over the window by 3 min: it closed at 06:00 (Europe/Copenhagen), the site finished at 06:03 "
        "(Europe/Copenhagen) (on_window_end: finish)"
    )
    assert ("skole", "cutover", skole) in said
    # The wave state: nothing of them is in place, and it says why; a rerun carries on with them.
    state = WaveStore("998", 1).state.sites
    assert (state["skole"].status, state["skole"].error, state["skole"].attempts) == ("pending", skole, 0)
    assert state["bibliotek"].status == "pending"
    # The run record, report.json and report.md.
    record = json.loads((outcome.run_dir / "record.json").read_text())
    steps = {(s["name"], s["subject"]): (s["status"], s["detail"]) for s in record["steps"]}
    assert steps[("cutover", "skole")] == ("skipped", {"status": "not_started", "error": skole})
    assert steps[("cutover", "raadhus")][1]["window"] == outcome.sites[0].window
    data = json.loads((outcome.run_dir / "report.json").read_text())
    assert [(s["site"], s["status"], s["error"]) for s in data["sites"]][1] == ("skole", "not_started", skole)
    assert data["window"]["held"] is True
    assert data["window"]["end"] == "2027-03-07T06:00:00+01:00"
    assert data["window"]["note"] == (
        "Wave 1's window: 2027-03-06 18:00 to 2027-03-07 06:00 (Europe/Copenhagen). A site starts only while "
        "what is left of the window holds the site's estimate plus a 15 min margin; a site under way when it "
        "closes is finished (reported as running over) (on_window_end: finish). A rollback is always allowed "
        "outside the window: it restores the agreed state."
    )
    report = (outcome.run_dir / "report.md").read_text()
    assert report.startswith("# Bølge 1 i Vindeby Kommune (998) — overflytning\n")  # Danish by default
    assert f"\n## Vindeby Skole (skole): ikke startet\n\nFejl: {skole}\n" in report
    assert report.endswith(
        "\n## Vindue\n\nEn lokation starter kun, mens resten af vinduet rækker til lokationens estimat plus 15 min "
        "margen; en lokation, der er i gang, når vinduet lukker, gøres færdig (og rapporteres som overskridelse) "
        "(on_window_end: finish). En tilbagerulning er altid tilladt uden for vinduet: den genskaber den aftalte "
        "tilstand.\n\nIkke startet (deres enheder og VM'er er ikke rørt): "
        f"Vindeby Skole (skole), Vindeby Bibliotek (bibliotek).\n\n- **Vindeby Rådhus (raadhus)**: "
        f"{outcome.sites[0].window}\n"
    )
    assert "\n\n\n" not in report
    assert report == report_markdown(outcome)
    # What the command line prints.
    assert _print_wave(report_data(outcome), quiet=True) == 1
    assert capsys.readouterr().out == (
        "raadhus: done\n"
        f"raadhus: window — {outcome.sites[0].window}\n"
        f"skole: not_started — {skole}\n"
        f"bibliotek: not_started — {skole.replace('Vindeby Skole', 'Vindeby Bibliotek')}\n"
        "wave 1: not started because of the window: skole, bibliotek (untouched); rerun in the next window, or "
        "with --outside-window\n"
    )

    # A rerun with --outside-window carries on with them, and says who overrode the window and why.
    rerun = phases_of(loaded, clock, said)
    rerun.hold_window(True, "the library asked for Sunday morning")
    assert rerun.gate is None
    cut.clear()
    rerun.cut_sites(runner(clock, {}, cut), lambda site, step, call: call())
    again = rerun.finish()
    assert cut == ["raadhus", "skole", "bibliotek"]  # the stand-in does not skip done sites; the real one does
    assert [s.status for s in again.sites] == ["done", "done", "done"]
    assert all(s.window is None for s in again.sites)
    operator = rerun.run.record.operator
    assert again.overrides == [
        "run outside the wave's maintenance window (2027-03-06 18:00 to 2027-03-07 06:00 (Europe/Copenhagen)) with "
        f"--outside-window, by {operator}: the library asked for Sunday morning"
    ]
    assert rerun.override == f"--outside-window by {operator}: the library asked for Sunday morning"
    notes = json.loads((again.run_dir / "record.json").read_text())["notes"]["override"]
    assert (notes["by"], notes["why"], notes["held"]) == (operator, "the library asked for Sunday morning", False)
    assert "Ikke holdt: kørslen blev startet med --outside-window" in (again.run_dir / "report.md").read_text()


def test_a_failed_site_after_the_window_closed_still_names_the_sites_held_back(loaded: LoadedPlan) -> None:
    """on_site_failure: stop ends a wave at a failed site without a word about the rest; when the
    window has closed by then, the rest are named as not started because of it."""
    assert loaded.plan.on_site_failure == "stop"
    clock = Clock(WAVE1_END - timedelta(hours=2))
    phases = phases_of(loaded, clock, [])
    phases.hold_window(False, None)
    cut: list[str] = []
    phases.cut_sites(runner(clock, {"raadhus": "rolled_back"}, cut), lambda site, step, call: call())
    assert [(s.site, s.status) for s in phases.outcome.sites] == [
        ("raadhus", "rolled_back"), ("skole", "not_started"), ("bibliotek", "not_started"),
    ]  # fmt: skip
    assert phases.outcome.sites[0].window is None


def test_an_on_demand_rollback_says_it_is_allowed_outside_the_window() -> None:
    outcome = WaveOutcome("998", 1, False, "run-1", Path("/x"), kind="rollback")
    outcome.window = {"note": "A rollback is always allowed outside the window: it restores the agreed state."}
    outcome.sites = [SiteOutcome("raadhus", "rolled_back")]
    assert report_markdown(outcome).endswith(
        "\n## Vindue\n\nEn tilbagerulning er altid tilladt uden for vinduet: den genskaber den aftalte tilstand.\n"
    )
    outcome.lang = "en"
    assert report_markdown(outcome).endswith(
        "\n## Window\n\nA rollback is always allowed outside the window: it restores the agreed state.\n"
    )
    assert report_data(outcome)["window"] == outcome.window


def test_reason_goes_with_outside_window(capsys: pytest.CaptureFixture[str]) -> None:
    plan = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs" / "plan.yml"
    assert main(["wave", "run", str(plan), "--wave", "1", "--reason", "the school asked", "-q"]) == 2
    assert capsys.readouterr().err == (
        "overflyt: --reason says why a wave runs outside its window: give it with --outside-window\n"
    )
