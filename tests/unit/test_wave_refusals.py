"""`wave run` refuses what it cannot carry out, before it touches anything (no lab needed: the
refusal comes before credentials, locks or any connection)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from overflyt.cli import main
from overflyt.plan import load_plan

SAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs"


def test_a_plan_that_pulls_vms_ahead_of_their_site_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_dir = tmp_path / "norddjurs"
    shutil.copytree(SAMPLE, plan_dir)
    plan_file = plan_dir / "plan.yml"
    text = plan_file.read_text()
    subnet = "ndj-file01, ndj-file02, ndj-scan01, ndj-archive01, ndj-backup-proxy01, ndj-backup-proxy02"
    pulled = text.replace("    sites: [grenaa-raadhus]\n", f"    sites: [grenaa-raadhus]\n    vms: [{subnet}]\n", 1)
    assert pulled != text
    plan_file.write_text(pulled)
    assert [len(w.vms) for w in load_plan(plan_file).waves] == [6, 0, 0]  # a valid plan: a whole subnet ahead
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(tmp_path / "state"))

    for wave in ("1", "2"):
        assert main(["wave", "run", str(plan_file), "--wave", wave, "--dry-run", "-q"]) == 2
        assert capsys.readouterr().err == (
            "overflyt: the plan moves VMs ahead of their site's wave ("
            + ", ".join(f"{name} (wave 1)" for name in subnet.split(", "))
            + "): `wave run` does not carry out waves[].vms yet; put those VMs' sites in that wave or take them "
            "out of waves[].vms\n"
        )
    assert not (tmp_path / "state").exists()
