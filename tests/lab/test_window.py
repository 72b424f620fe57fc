"""The maintenance window is a promise, against the lab: a wave of three sites whose window closes
while the first is being cut over. The other two do not start — reported as not started because
of the window, with its time in Europe/Copenhagen, their devices and VMs untouched — and a rerun
with --outside-window (recorded: who and why) cuts them over. The lab is left as it was found:
every site cut over is rolled back, outside the window (always allowed).

The plan is not the sample: another municipality code and name, other site names, one site id
renamed, and a wave 1 the sample does not have (the care centre first, then the town hall, then
the school). The window ends a little after the wave starts; when the first site's post-check
starts, the clock the window is judged by (overflyt's own ``datetime.now`` in the modules that judge
it) is moved on to just past the window's end, rather than waiting up to WINDOW_S for it: the test
depends on no exact duration, only on the pre-check and the first site's first four steps fitting in
WINDOW_S. Everything else (vSphere, the routers, the records) runs in real time.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pyVmomi import vim

from overflyt import reports
from overflyt.cli import main
from overflyt.cutover.wave import Approval, rollback_site, run_wave
from overflyt.plan import load_plan

from .labtools import LIGHT_VMS, estate, find, light_plan, side_reached

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("lab_env")]

CPH = ZoneInfo("Europe/Copenhagen")
APPROVAL = Approval("Mette Frederiksen (test)", "CHG-0025")
CODE = "799"
SITES = ["digterparken", "grenaa-raadhus", "kattegat"]  # wave 1 of the plan below, in its order
CARE_VMS = ["ndj-nodkald01", "ndj-nodkald02", "ndj-omsorg-gw01", "ndj-adgang01"]
HELD_BACK_DEVICES = ["ndj-core-01", "ndj-fw-01", "ndj-sw-raadhus-01", "ndj-kattegat-rtr-01"]
# From writing the plan to the first site's post-check: admission, the pre-check of three sites and the
# care centre's backup, placements, four VM moves and network change (about a minute on 2 cores).
WINDOW_S = 180
# The estimate (the planner's, with these settings) fits the first site in what is left of the window.
POLICY = "window_policy: {site_minutes: 1, margin_min: 1, vm_minutes: 0, bandwidth_mbps: 10000000}"


class _MovedOn(datetime):
    """``datetime`` whose ``now()`` is the real one plus :attr:`ahead` (zero until the test moves it)."""

    ahead = timedelta(0)

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime.now(tz) + cls.ahead


# The modules that judge a window by the clock: the window gate, the pre-check's plan.window rule
# (through precheck.wave's moment), the next-wave choice and the status.
JUDGES = ("overflyt.cutover.window", "overflyt.precheck.wave", "overflyt.plan.select", "overflyt.cutover.status")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> type[_MovedOn]:
    monkeypatch.setattr(_MovedOn, "ahead", timedelta(0))
    for module in JUDGES:
        monkeypatch.setattr(f"{module}.datetime", _MovedOn)
    return _MovedOn


def window_plan(lab: dict[str, Any], where: Path, start: datetime, end: datetime) -> Path:
    """The light sample (the town hall moves three VMs) made Djurslandstest Kommune (799): wave 1 cuts
    over the care centre (four VMs; the gateway's dependency on a later wave's SQL server dropped), the
    town hall and the school (site id `kattegat`) in the window ``start``-``end``."""
    path = light_plan(lab, where, POLICY)
    text = path.read_text()
    edits = [
        ('code: "707"\n  name: Norddjurs Kommune', f'code: "{CODE}"\n  name: Djurslandstest Kommune'),
        ("  - id: kattegatskolen\n    name: Kattegatskolen", "  - id: kattegat\n    name: Skolen ved Kattegat"),
        ("site: kattegatskolen,", "site: kattegat,"),
        ("name: Plejecenter Digterparken", "name: Plejehjemmet Digterparken"),
        ("app_group: omsorg, criticality: high, depends_on: [ndj-sql02]}", "app_group: omsorg, criticality: high}"),
    ]
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    waves = f"""waves:
  - number: 1
    name: Pleje, rådhus og skole
    sites: [{", ".join(SITES)}]
    window: {{start: "{start.isoformat(timespec="seconds")}", end: "{end.isoformat(timespec="seconds")}"}}
  - number: 2
    name: Fagsystemer
    sites: [auning-adm, auning-skole]
    window: {{start: "2027-03-20 18:00", end: "2027-03-21 12:00"}}
  - number: 3
    name: Pleje, bibliotek og materielgård
    sites: [ostervang, grenaa-bibliotek, materielgaarden]
    window: {{start: "2027-04-03 18:00", end: "2027-04-04 06:00"}}
"""
    path.write_text(text[: text.index("\nwaves:\n") + 1] + waves)
    return path


def _clock(moment: datetime) -> str:
    local = moment.astimezone(CPH)
    return local.strftime("%H:%M:%S" if local.second else "%H:%M")


def _state(tmp_path: Path) -> dict[str, Any]:
    sites: dict[str, Any] = json.loads((tmp_path / "state" / CODE / "wave-1" / "state.json").read_text())["sites"]
    return sites


def test_the_window_closes_during_the_first_of_three_sites(
    lab: dict[str, Any], si: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], clock: type[_MovedOn]
) -> None:
    before = estate(si, lab)
    now = datetime.now(UTC).replace(microsecond=0)
    end = now + timedelta(seconds=WINDOW_S)
    plan = window_plan(lab, tmp_path, now - timedelta(hours=1), end)
    waited: list[float] = []

    def on_step(site: str, step: str, status: str) -> None:
        if (site, step, status) == ("digterparken", "backup", "started"):
            assert datetime.now(UTC) < end, "the pre-check took the whole window: raise WINDOW_S"
        if (site, step, status) == ("digterparken", "postcheck", "started"):
            # The window closes while the first site is being cut over: the clock moves on past its end.
            assert datetime.now(UTC) < end, "the first site's steps took the whole window: raise WINDOW_S"
            clock.ahead = end + timedelta(seconds=1) - datetime.now(UTC)
            waited.append(clock.ahead.total_seconds())

    try:
        outcome = run_wave(plan, 1, dry_run=False, approval=APPROVAL, on_step=on_step)
        assert waited, "the first site never reached its post-check"
        assert [(s.site, s.status) for s in outcome.sites] == [
            ("digterparken", "done"),
            ("grenaa-raadhus", "not_started"),
            ("kattegat", "not_started"),
        ], [(s.site, s.status, s.error) for s in outcome.sites]
        assert outcome.exit_code == 1
        closed = f"the window closed at {_clock(end)} (Europe/Copenhagen)"
        untouched = "its devices and VMs were not touched: rerun it in the next window, or with --outside-window"
        town_hall, school = outcome.sites[1].error, outcome.sites[2].error
        assert town_hall == (
            f"not started: {closed}; Grenaa Rådhus needs about 2 min (1 min estimated + 1 min margin); {untouched}"
        )
        assert school == (
            f"not started: {closed}; Skolen ved Kattegat needs about 2 min (1 min estimated + 1 min margin); "
            f"{untouched}"
        )
        ran_over = outcome.sites[0].window or ""
        assert re.fullmatch(
            r"ran over the window by (less than a minute|\d+ min): it closed at "
            + re.escape(_clock(end))
            + r" \(Europe/Copenhagen\), the site finished at \d\d:\d\d(:\d\d)? \(Europe/Copenhagen\) "
            r"\(on_window_end: finish\)",
            ran_over,
        ), ran_over

        # Untouched: the town hall's VMs and devices and the school's router are as they were ...
        after = estate(si, lab)
        assert {n: after["vms"][n] for n in LIGHT_VMS} == {n: before["vms"][n] for n in LIGHT_VMS}
        assert {d: after["devices"][d] for d in HELD_BACK_DEVICES} == {
            d: before["devices"][d] for d in HELD_BACK_DEVICES
        }
        # ... while the care centre's moved, and its router changed: the comparison can tell.
        assert all(find(si, vim.VirtualMachine, n).parent.name == "707-Norddjurs" for n in CARE_VMS)
        assert after["devices"]["ndj-digterparken-rtr-01"] != before["devices"]["ndj-digterparken-rtr-01"]
        assert side_reached(lab, "digterparken", "10.70.40.11") == "target"
        assert side_reached(lab, "grenaa-raadhus", "10.70.10.11") == "source"
        # The wave state, report.json and report.md say the same.
        state = _state(tmp_path)
        assert (state["grenaa-raadhus"]["status"], state["grenaa-raadhus"]["error"]) == ("pending", town_hall)
        assert (state["kattegat"]["status"], state["kattegat"]["error"]) == ("pending", school)
        assert state["digterparken"]["status"] == "done"
        data = json.loads((outcome.run_dir / "report.json").read_text())
        assert [(s["site"], s["status"], s["error"]) for s in data["sites"]][1:] == [
            ("grenaa-raadhus", "not_started", town_hall),
            ("kattegat", "not_started", school),
        ]
        assert datetime.fromisoformat(data["window"]["end"]) == end
        report = (outcome.run_dir / "report.md").read_text()  # Danish by default, sites by name and id
        wave = load_plan(plan).wave(1)
        assert report.startswith(
            "# Bølge 1 i Djurslandstest Kommune (799) — overflytning\n\nPleje, rådhus og skole: vindue "
            f"{reports.local_time(wave.window.start)} til {reports.local_time(wave.window.end)}.\n"
        )
        assert f"\n## Grenaa Rådhus (grenaa-raadhus): ikke startet\n\nFejl: {town_hall}\n" in report
        assert (
            "\nIkke startet (deres enheder og VM'er er ikke rørt): Grenaa Rådhus (grenaa-raadhus), "
            "Skolen ved Kattegat (kattegat).\n"
        ) in report
        assert "En tilbagerulning er altid tilladt uden for vinduet: den genskaber den aftalte tilstand." in report

        # A rerun with --outside-window, after the window has ended, carries on with them: recorded.
        capsys.readouterr()
        code = main([
            "wave", "run", str(plan), "--wave", "1", "--approved-by", "test", "--ticket", "CHG-0025",
            "--outside-window", "--reason", "the town hall agreed to Sunday morning",
        ])  # fmt: skip
        out, err = capsys.readouterr()
        assert code == 0, (out, err)
        assert out.splitlines() == ["digterparken: skipped", "grenaa-raadhus: done", "kattegat: done"], out
        [override] = [line for line in err.splitlines() if line.startswith("overflyt: override: ")]
        assert override.startswith("overflyt: override: run outside the wave's maintenance window (")
        assert override.endswith(": the town hall agreed to Sunday morning")
        assert all(_state(tmp_path)[s]["status"] == "done" for s in SITES)
        assert side_reached(lab, "grenaa-raadhus", "10.70.10.11") == "target"
        assert all(find(si, vim.VirtualMachine, n).parent.name == "707-Norddjurs" for n in LIGHT_VMS)
        run_dir = Path(err.split("overflyt: run record: ", 1)[1].split()[0])
        notes = json.loads((run_dir / "record.json").read_text())["notes"]
        assert notes["override"]["why"] == "the town hall agreed to Sunday morning"
        assert notes["override"]["by"] == json.loads((run_dir / "record.json").read_text())["operator"]
        precheck = json.loads((run_dir / "precheck.json").read_text())
        [window] = [f for r in precheck["results"] for f in r["findings"] if f["id"] == "plan.window"]
        assert window["severity"] == "warning"
        assert "— overridden: --outside-window by " in window["message"]
    finally:
        # Outside the window: a rollback is always allowed.
        state_file = tmp_path / "state" / CODE / "wave-1" / "state.json"
        recorded = json.loads(state_file.read_text())["sites"] if state_file.exists() else {}
        backs = [
            rollback_site(plan, s)
            for s in SITES
            if recorded.get(s, {}).get("backups") or recorded.get(s, {}).get("placements")
        ]
    assert [b.exit_code for b in backs] == [0, 0, 0]
    assert "En tilbagerulning er altid tilladt uden for vinduet" in (backs[0].run_dir / "report.md").read_text()
    assert estate(si, lab) == before
    assert side_reached(lab, "digterparken", "10.70.40.11") == "source"
    assert side_reached(lab, "grenaa-raadhus", "10.70.10.11") == "source"
