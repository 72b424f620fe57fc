"""The evidence pack against the lab: after a real wave 1 whose first attempt failed its post-check
and was rolled back, and whose second, approved, attempt (the CLI, with who approved it and the
ticket) cut the site over, `overflyt report` writes HTML and PDF from the run records alone.
Headless Chromium (Debian's, through Playwright) opens the HTML — its screenshot lands in
tests/output/ — and the page says, in Danish: the site's name, the approver and the ticket, a moved
VM's from and to, a pushed device line, the rollback and a time in Europe/Copenhagen. The PDF has
pages (pdfinfo). Then the plan changes under the recorded wave: the report is refused.

The plan is a copy of the sample with a lighter wave 1 and another name for the town hall, so
nothing is read from the sample by accident.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import sync_playwright

from overflyt.cli import main
from overflyt.cutover.wave import Approval, rollback_site, run_wave

from .labtools import LIGHT_VMS, estate, light_plan

pytestmark = [pytest.mark.lab, pytest.mark.timeout(1500)]  # includes waiting for the lab lock

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "tests" / "output"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
SITE = "grenaa-raadhus"
SITE_NAME = "Grenå Rådhus og Borgerservice"
APPROVER, TICKET = "Mette Holm (lab)", "CHG-2027-0306"
DC_CORE = "ofl-dc-core"
BLACKHOLE = ["ip", "netns", "exec", DC_CORE, "ip", "route", "replace", "blackhole", "10.70.10.11/32"]


@pytest.fixture(autouse=True)
def lab_env(lab: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for name, value in lab["env"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    return lab


def _postcheck_fails(site: str, step: str, status: str) -> None:
    """The shared datacentre's core drops the town hall's traffic to its moved DC: the post-check fails."""
    if step == "postcheck" and status == "started":
        subprocess.run(BLACKHOLE, check=True)


def test_the_evidence_pack_after_a_rolled_back_attempt_and_an_approved_cutover(
    lab: dict[str, Any], si: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = light_plan(lab, tmp_path)
    text = plan.read_text()
    assert "    name: Grenaa Rådhus\n" in text
    plan.write_text(text.replace("    name: Grenaa Rådhus\n", f"    name: {SITE_NAME}\n", 1))
    before = estate(si, lab)
    out = tmp_path / "report"
    try:
        # 1. the first attempt fails its post-check and is rolled back
        try:
            first = run_wave(plan, 1, dry_run=False, approval=Approval(APPROVER, TICKET), outside_window=True,
                             on_step=_postcheck_fails)  # fmt: skip
        finally:
            subprocess.run(["ip", "netns", "exec", DC_CORE, "ip", "route", "del", "blackhole", "10.70.10.11/32"],
                           check=False)  # fmt: skip
        assert [(s.site, s.status) for s in first.sites] == [(SITE, "rolled_back")], first.sites
        assert estate(si, lab) == before
        # 2. the approved cutover, as an engineer runs it
        code = main([
            "wave", "run", str(plan), "--wave", "1", "--approved-by", APPROVER, "--ticket", TICKET,
            "--outside-window", "--reason", "lab: the evidence pack", "-q",
        ])  # fmt: skip
        assert code == 0, capsys.readouterr()
        capsys.readouterr()
        # 3. the pack, as HTML and as PDF
        assert main(["report", str(plan), "--output", str(out)]) == 0
        assert main(["report", str(plan), "--output", str(out), "--format", "pdf"]) == 0
        html, pdf = out / "evidence-707.html", out / "evidence-707.pdf"
        assert capsys.readouterr().out.split() == [str(html), str(pdf)]

        # what the page must show, from the run records (read here as an auditor would)
        state = Path(os.environ["OVERFLYT_STATE_DIR"]) / "707" / "wave-1"
        reports = [json.loads(p.read_text()) for p in sorted(state.glob("wave/*/report.json"))]
        done = next(r for r in reports if r["sites"][0]["status"] == "done")
        vm = done["sites"][0]["vms"]["vms"][LIGHT_VMS[0]]
        source = f"{vm['before']['host']} / {vm['before']['datastore']} / {', '.join(vm['before']['portgroups'])}"
        target = f"{vm['after']['host']} / {vm['after']['datastore']} / {', '.join(vm['after']['portgroups'])}"
        assert source != target
        approved_at = datetime.fromisoformat(done["approval"]["at"]).astimezone(ZoneInfo("Europe/Copenhagen"))
        offset = approved_at.strftime("%z")
        local = f"{approved_at:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]}"

        OUTPUT.mkdir(exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 900})
                page.goto(html.as_uri())
                page.screenshot(path=str(OUTPUT / "evidence-pack.png"), full_page=True)
                page.screenshot(path=str(OUTPUT / "evidence-pack-top.png"))
                body = page.inner_text("body")
                requests: list[str] = []
                page.on("request", lambda r: requests.append(r.url))
                page.reload()
            finally:
                browser.close()
        # self-contained: the page asks for nothing but itself, and names no other resource
        assert all(url == html.as_uri() for url in requests), requests
        source_html = html.read_text()
        assert not [marker for marker in ("src=", "href=", "url(", "@import") if marker in source_html]
        assert "Dokumentation af migreringen: Norddjurs Kommune (kommune 707)" in body
        assert f"{SITE_NAME} ({SITE})" in body
        assert f"Godkendt af {APPROVER}" in body
        assert f"sag {TICKET}" in body
        assert f"tidspunkt {local}" in body, local  # Europe/Copenhagen, with its offset
        assert source in body
        assert target in body
        assert "ip route 10.70.10.0/24 10.255.70.1" in body  # pushed to the core router
        assert "Overflytning: rullet tilbage" in body  # the first attempt ...
        assert "postcheck: post-check of site grenaa-raadhus failed" in body  # ... and why
        assert "Tilbagerulning" in body
        assert "Overflytning: gennemført" in body
        assert "Bølger gennemført" in body
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
        assert pages >= 1, info

        # 4. the plan's wave 1 changes (its site is renamed): the recorded state is another plan version
        plan.write_text(plan.read_text().replace(f"    name: {SITE_NAME}\n", "    name: Grenaa Rådhus\n", 1))
        assert main(["report", str(plan), "--output", str(tmp_path / "refused")]) == 2
        err = capsys.readouterr().err
        assert f"{state / 'state.json'}: wave 1's state was written from another version of the plan" in err
        assert "report from the plan version that ran it" in err
        assert not (tmp_path / "refused").exists()
    finally:
        recorded = state_file_status(Path(os.environ["OVERFLYT_STATE_DIR"]))
        if recorded not in (None, "pending", "rolled_back"):
            assert rollback_site(plan, SITE).exit_code == 0  # leave the lab as `lab up` built it
    assert estate(si, lab) == before


def state_file_status(base: Path) -> str | None:
    path = base / "707" / "wave-1" / "state.json"
    if not path.exists():
        return None
    status: str = json.loads(path.read_text())["sites"].get(SITE, {}).get("status", "pending")
    return status
