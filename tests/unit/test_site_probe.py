"""The plan's post-check probe per site (`sites[].probe`: netns, ssh or gateway): each bad probe
gets one clear error naming its place; a site without one is warned about by the pre-check and
reported as "no proof", never as "done"."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from overflyt.cli import main
from overflyt.cutover.outcome import shown_status
from overflyt.plan import load_plan
from overflyt.precheck import CheckContext, run_checks
from overflyt.precheck.facts import EstateFacts

SAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs"
NETNS = "probe: {netns: ofl-cl-kattegatskolen, port: 7070}"


def write_plan(tmp_path: Path, probe: str | None) -> Path:
    text = (SAMPLE / "plan.yml").read_text(encoding="utf-8")
    assert NETNS in text
    text = text.replace(NETNS, probe if probe is not None else "", 1)
    path = tmp_path / "plan.yml"
    path.write_text(text, encoding="utf-8")
    return path


def validate(tmp_path: Path, capsys: pytest.CaptureFixture[str], probe: str) -> tuple[int, str]:
    path = write_plan(tmp_path, probe)
    code = main(["plan", "validate", str(path)])
    line = next(n for n, text in enumerate(path.read_text().splitlines(), start=1) if probe in text)
    err = capsys.readouterr().err
    return code, err.replace(f"{path}:{line}:", "HERE:")


@pytest.mark.parametrize(
    "probe",
    [
        "probe: {ssh: {host: 10.70.102.5, credentials: ndj-network}}",
        "probe: {ssh: {host: probe.kattegat.example, port: 2200, credentials: ndj-network}, port: 443}",
        "probe: {gateway: {source: Vlan102}}",
        "probe: {gateway: {device: ndj-kattegat-rtr-01, source: 10.70.102.1, count: 5}}",
    ],
)
def test_a_probe_host_or_the_gateway_ping_is_a_valid_probe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], probe: str
) -> None:
    assert main(["plan", "validate", str(write_plan(tmp_path, probe))]) == 0, capsys.readouterr().err


@pytest.mark.parametrize(
    ("probe", "error"),
    [
        (
            "probe: {netns: ofl-cl-kattegatskolen, gateway: {source: Vlan102}}",
            "sites[2].probe: a site probe takes exactly one of netns, ssh, gateway (given: netns, gateway)",
        ),
        ("probe: {port: 7070}", "sites[2].probe: a site probe takes exactly one of netns, ssh, gateway (given: none)"),
        (
            "probe: {ssh: {host: 10.70.102.5, credentials: ndj-probe}}",
            "sites[2].probe.ssh.credentials: credentials reference resolves to nothing "
            "(known: mj-vcenter, ndj-network, ndj-vcenter) (value: 'ndj-probe')",
        ),
        (
            "probe: {gateway: {device: ndj-core-01, source: Vlan102}}",
            "sites[2].probe.gateway.device: device ndj-core-01 is at site grenaa-raadhus, not at this site "
            "(value: 'ndj-core-01')",
        ),
        (
            "probe: {gateway: {device: ndj-kattegat-rtr-09, source: Vlan102}}",
            "sites[2].probe.gateway.device: not a device of the plan (value: 'ndj-kattegat-rtr-09')",
        ),
    ],
)
def test_a_bad_probe_is_named_with_its_place_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], probe: str, error: str
) -> None:
    code, err = validate(tmp_path, capsys, probe)
    assert code == 2
    assert f"HERE: {error}" in err, err
    assert "Traceback" not in err


def test_the_gateway_ping_needs_a_platform_with_a_ping_module(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_plan(tmp_path, "probe: {gateway: {source: 1/1/1}}")
    text = path.read_text().replace(
        "{hostname: ndj-kattegat-rtr-01, site: kattegatskolen, role: distribution, platform: frr",
        "{hostname: ndj-kattegat-rtr-01, site: kattegatskolen, role: distribution, platform: aoscx",
    )
    assert "platform: aoscx" in text
    path.write_text(text)
    assert main(["plan", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert (
        "sites[2].probe.gateway.device: no gateway ping for platform aoscx (only ios, frr); use a probe host "
        "(probe.ssh) (value: 'ndj-kattegat-rtr-01')"
    ) in err, err


def test_a_site_without_a_probe_is_warned_about_and_reported_as_no_proof(tmp_path: Path) -> None:
    plan = load_plan(write_plan(tmp_path, None))
    wave = next(w.number for w in plan.waves if "kattegatskolen" in w.sites)
    report = run_checks(CheckContext(plan=plan, wave=wave, facts=EstateFacts(), now=datetime.now(UTC)))
    [result] = [r for r in report.results if r.rule_id == "plan.traffic_proof"]
    assert [(f.severity.value, f.subject, f.message) for f in result.findings] == [
        (
            "warning",
            "kattegatskolen",
            "Site kattegatskolen has no post-check probe: it will be cut over without a traffic proof "
            "(give it sites[].probe: ssh or gateway)",
        )
    ]
    skipped = {"skipped": True, "reason": "the site has no probe (plan site.probe)", "probes": {}}
    assert shown_status("done", skipped) == "no_proof"
    assert shown_status("done", {"skipped": False, "probes": {"10.70.10.11": {}}}) == "done"
    assert shown_status("rolled_back", skipped) == "rolled_back"
    # a site with a probe and no moved server to probe (a school without servers) has nothing to prove
    nothing = {"skipped": True, "reason": "no moved server to probe", "via": "netns", "probes": {}}
    assert shown_status("done", nothing) == "done"
