"""templates/ and its one renderer (overflyt.reports): every template renders from the data its wing
builds, a field the data lacks is an error (StrictUndefined), never an empty line, and HTML is escaped."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from overflyt import reports
from overflyt.cutover.outcome import Approval, Names, SiteOutcome, WaveOutcome
from overflyt.cutover.report import markdown_view, report_markdown, rollback_view
from overflyt.errors import UsageError

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def outcome() -> WaveOutcome:
    o = WaveOutcome("563", 2, False, "run-7", Path("/x"), precheck={"critical": 0, "warning": 1})
    o.approval = Approval("Mette Holm", "CHG-4711", "2026-12-05T23:10:00+00:00")
    o.overrides = ["run outside the wave's maintenance window (--outside-window)"]
    o.sites = [
        SiteOutcome(
            "fanoe-skole",
            "done",
            steps={"backup": 2.5, "migrate": 10.0},
            vms={"vms": {"fan-web01": {"status": "moved", "after": {"host": "esx-9", "datastore": "ds-2"}}}},
            devices={"devices": {"fan-rtr-01": {"pending_lines": ["ip route 10.5.6.0/24 10.255.5.1"]}}},
        ),
        SiteOutcome("fanoe-havn", "rolled_back", error="configure: fan-rtr-02 refused a line", rollback={"devices": 1}),
    ]
    return o


FANOE = Names(
    municipality="Fanø Kommune",
    wave="Øen",
    window={"start": "2027-03-06T18:00:00+01:00", "end": "2027-03-07T05:00:00+00:00"},
    sites={"fanoe-skole": "Fanø Skole", "fanoe-havn": "Fanø Havn"},
)


def test_the_wave_report_shows_every_part_of_the_outcome_in_danish_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(reports.LANG_ENV, raising=False)
    o = outcome()
    o.names = FANOE
    o.lang = reports.default_lang()
    text = report_markdown(o)
    assert text.startswith(
        "# Bølge 2 i Fanø Kommune (563) — overflytning\n\n"
        "Øen: vindue 2027-03-06 18:00:00 +01:00 til 2027-03-07 06:00:00 +01:00.\n\n"
        "Kørsel `run-7`. Forhåndstjek: 0 kritisk, 1 advarsel.\n"
    )
    assert "\n**Tilsidesættelse:** run outside the wave's maintenance window (--outside-window)\n" in text
    assert "\nGodkendt af **Mette Holm** 2026-12-06 00:10:00 +01:00, sag CHG-4711.\n" in text
    assert "\nHvem kunne have skrevet godkendelsen: shared credential.\n" in text
    assert "\n## Fanø Skole (fanoe-skole): gennemført\n" in text
    assert "\n| trin | sekunder |\n| --- | ---: |\n| backup | 2.5 |\n" in text
    assert "\n| fan-web01 | flyttet | esx-9 / ds-2 |\n" in text
    assert "\n**fan-rtr-01**: 1 linje(r)\n\n```\nip route 10.5.6.0/24 10.255.5.1\n```\n" in text
    assert "\n## Fanø Havn (fanoe-havn): rullet tilbage\n\nFejl: configure: fan-rtr-02 refused a line\n" in text
    assert text.endswith("\nTilbagerulning: enheder\n")
    assert "\n\n\n" not in text


def test_the_wave_report_in_english_keeps_its_wording() -> None:
    o = outcome()
    o.lang = "en"
    text = report_markdown(o)  # no names known: the ids stand alone
    assert text.startswith(
        "# Wave 2 of municipality 563 — cutover\n\nRun `run-7`. Pre-checks: 0 critical, 1 warning.\n"
    )
    assert "\n**Override:** run outside the wave's maintenance window (--outside-window)\n" in text
    assert "\nApproved by **Mette Holm** at 2026-12-06 00:10:00 +01:00, ticket CHG-4711.\n" in text
    assert "\nWho could have typed it: shared credential.\n" in text
    assert "\n| fan-web01 | moved | esx-9 / ds-2 |\n" in text
    assert "\n**fan-rtr-01**: 1 line(s)\n\n```\nip route 10.5.6.0/24 10.255.5.1\n```\n" in text
    assert "\n## fanoe-havn: rolled back\n\nError: configure: fan-rtr-02 refused a line\n" in text
    assert text.endswith("\nRollback: devices\n")
    assert "\n\n\n" not in text
    o.names = FANOE
    assert report_markdown(o).startswith(
        "# Wave 2 of Fanø Kommune (563) — cutover\n\n"
        "Øen: window 2027-03-06 18:00:00 +01:00 to 2027-03-07 06:00:00 +01:00.\n\n"
    )
    # the window's section, from the facts the run recorded
    o.window = {"held": True, "on_window_end": "rollback", "margin_min": 20, "note": "(recorded)"}
    assert report_markdown(o).endswith(
        "\n## Window\n\nA site starts only while what is left of the window holds the site's estimate plus a 20 "
        "min margin; a site under way when it closes is rolled back (on_window_end: rollback). A rollback is always "
        "allowed outside the window: it restores the agreed state.\n"
    )
    o.window = {"held": False, "on_window_end": "finish", "margin_min": 15, "note": "(recorded)"}
    assert "\n## Window\n\nNot held: this run was started with --outside-window (see the override). A " in (
        report_markdown(o)
    )
    o.window = {"note": "Wave 2's window: as an older run recorded it."}  # before the facts were recorded
    assert report_markdown(o).endswith("\n## Window\n\nWave 2's window: as an older run recorded it.\n")


def test_the_language_comes_from_overflyt_lang_and_an_unknown_one_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(reports.LANG_ENV, "en")
    assert outcome().lang == "en"
    monkeypatch.delenv(reports.LANG_ENV)
    assert outcome().lang == "da" == reports.DEFAULT_LANG
    o = outcome()
    o.lang = "xx"
    with pytest.raises(UsageError, match="unknown language 'xx': reports are written in da, en"):
        report_markdown(o)


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.j2")))
def test_a_missing_field_is_an_error_not_an_empty_line(template: str) -> None:
    with pytest.raises(jinja2.UndefinedError):
        reports.render(template, TEMPLATES, r={}, l=reports.labels("da", TEMPLATES))


def test_a_missing_site_field_is_an_error() -> None:
    view = markdown_view(outcome())
    del view["sites"][0]["steps"]
    with pytest.raises(jinja2.UndefinedError, match="steps"):
        reports.render("wave.md.j2", TEMPLATES, r=view, l=view["l"])


def test_html_templates_are_escaped_and_markdown_cells_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.html.j2").write_text("<p>{{ name }}</p>\n")
    (tmp_path / "x.md.j2").write_text("| {{ name | md_cell }} |\n")
    assert reports.render("x.html.j2", tmp_path, name="<b>Grenå</b>") == "<p>&lt;b&gt;Grenå&lt;/b&gt;</p>\n"
    assert reports.render("x.md.j2", tmp_path, name="a|b\n<c>\x1b") == "| a\\|b &lt;c&gt;\ufffd |\n"


def test_an_on_demand_rollback_has_its_own_report() -> None:
    o = WaveOutcome("563", 2, False, "run-9", Path("/x"), kind="rollback")
    o.window = {"note": "A rollback is always allowed outside the window: it restores the agreed state."}
    restored = {"restored": True, "backup_sha256": "ab" * 32, "after_sha256": "ab" * 32}
    o.sites = [
        SiteOutcome(
            "fanoe-havn",
            "rolled_back",
            steps={"rollback": 75.0},
            rollback={
                "devices": {"devices": {"fan-rtr-02": restored}},
                "classified": {"fan-rtr-02": "applied"},
                "vms": {"vms": {"fan-web01": {"status": "restored", "after": {"host": "esx-1", "datastore": "ds-1",
                                                                              "portgroups": ["VLAN 10"]}}}},
            },
        )
    ]  # fmt: skip
    o.lang = "en"
    text = report_markdown(o)
    assert text.startswith("# Rollback in wave 2 of municipality 563\n\nRun `run-9`.\n\n## fanoe-havn: rolled back\n")
    assert f"\n| fan-rtr-02 | yes | `{'ab' * 32}` | `{'ab' * 32}` | applied |\n" in text
    assert "\n| fan-web01 | restored | esx-1 / ds-1 / VLAN 10 |\n" in text
    assert "\nTook 1 min 15 s.\n" in text
    assert text.endswith(
        "\n## Window\n\nA rollback is always allowed outside the window: it restores the agreed state.\n"
    )
    assert "\n\n\n" not in text
    o.lang, o.names = "da", FANOE
    text = report_markdown(o)
    assert text.startswith(
        "# Tilbagerulning i bølge 2 i Fanø Kommune (563)\n\n"
        "Øen: vindue 2027-03-06 18:00:00 +01:00 til 2027-03-07 06:00:00 +01:00.\n\n"
        "Kørsel `run-9`.\n\n## Fanø Havn (fanoe-havn): rullet tilbage\n"
    )
    assert f"\n| fan-rtr-02 | ja | `{'ab' * 32}` | `{'ab' * 32}` | anvendt |\n" in text
    assert "\n| fan-web01 | gendannet | esx-1 / ds-1 / VLAN 10 |\n" in text
    assert "\nVarede 1 min 15 s.\n" in text
    assert "\n## Vindue\n\n" in text
    view = rollback_view(o)
    del view["sites"][0]["devices"][0]["found"]
    with pytest.raises(jinja2.UndefinedError, match="found"):
        reports.render("rollback.md.j2", TEMPLATES, r=view, l=view["l"])


SAMPLE = TEMPLATES.parent / "inventories" / "norddjurs" / "plan.yml"


@pytest.mark.parametrize(
    "command",
    [
        ["precheck", str(SAMPLE), "--wave", "1"],
        ["wave", "run", str(SAMPLE), "--wave", "1", "--dry-run"],
        ["rollback", str(SAMPLE), "--site", "grenaa-raadhus"],
        ["report", str(SAMPLE)],
    ],
)
@pytest.mark.parametrize("how", ["--lang", "OVERFLYT_LANG"])
def test_an_unknown_language_is_refused_before_anything_runs(
    command: list[str], how: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from overflyt.cli import main

    state = tmp_path / "state"
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(state))
    monkeypatch.chdir(tmp_path)
    if how == "--lang":
        command = [*command, "--lang", "fr"]
    else:
        monkeypatch.setenv(reports.LANG_ENV, "fr")
    assert main(command) == 2
    assert capsys.readouterr().err == "overflyt: unknown language 'fr': reports are written in da, en\n"
    assert not state.exists()  # no run record, nothing contacted
    assert list(tmp_path.iterdir()) == []
