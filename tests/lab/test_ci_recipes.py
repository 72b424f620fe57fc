"""The CI recipes of docs/ci/ cannot rot: both are parsed, and their overflyt commands run, as the
recipe's shell would run them, against the lab — in a repository of plans laid out as the recipes
expect (inventories/<kommune>/), on a plan that differs from the sample (a lighter wave 1).

The dry run's JUnit lists one case per site step (and one for the wave's pre-check), and its
standard output shows, per site, each VM's planned move and each device's diff.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from overflyt.cutover.itinerary import dry_run_itinerary

from .labtools import LIGHT_VMS, light_plan

pytestmark = [pytest.mark.lab, pytest.mark.timeout(1500)]  # includes waiting for the lab lock

REPO = Path(__file__).resolve().parents[2]
CI = REPO / "docs" / "ci"
KOMMUNE = "norddjurs-light"  # the folder light_plan writes


def gitlab_commands() -> tuple[list[str], dict[str, str]]:
    doc = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    job = doc["plan-check"]
    assert job["rules"] == [{"changes": ["inventories/$KOMMUNE/**/*"]}]
    assert job["artifacts"]["reports"]["junit"] == ["precheck-$KOMMUNE.junit.xml", "dry-run-$KOMMUNE.junit.xml"]
    return [line for line in job["script"] if line.startswith("overflyt ")], {"WAVE": doc["variables"]["WAVE"]}


def github_commands() -> tuple[list[str], dict[str, str]]:
    doc = yaml.safe_load((CI / "github-actions.yml").read_text())
    job = doc["jobs"]["plan-check"]
    assert doc[True]["pull_request"]["paths"] == ["inventories/**"]  # YAML 1.1 reads `on:` as true
    runs = [step["run"] for step in job["steps"] if str(step.get("run", "")).startswith("overflyt ")]
    assert any("junit" in str(step.get("uses", "")) for step in job["steps"])
    return runs, {"WAVE": job["env"]["WAVE"]}


def test_both_recipes_parse_and_run_the_same_three_commands() -> None:
    (gitlab, gl_env), (github, gh_env) = gitlab_commands(), github_commands()
    assert gitlab == github
    assert [c.split()[1] for c in gitlab] == ["plan", "precheck", "wave"]
    assert gl_env == gh_env


def _cases(path: Path) -> list[tuple[str, str, str]]:
    """(suite, case, outcome) of a JUnit file."""
    out = []
    for suite in ET.parse(path).getroot().iter("testsuite"):
        for case in suite.iter("testcase"):
            outcome = (
                "failed"
                if case.find("failure") is not None
                else "skipped"
                if case.find("skipped") is not None
                else "passed"
            )
            out.append((suite.get("name", ""), case.get("name", ""), outcome))
    return out


def test_the_recipes_commands_run_green_against_the_lab(lab: dict[str, Any], tmp_path: Path) -> None:
    """Both recipes run the same commands with the same variables (the test above): they run once."""
    commands, variables = gitlab_commands()
    repo = tmp_path / "plans"
    light_plan(lab, repo / "inventories")
    env = {
        **os.environ,
        **lab["env"],
        **variables,
        "KOMMUNE": KOMMUNE,
        "OVERFLYT_STATE_DIR": str(tmp_path / "state"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    outputs = []
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=repo, env=env, capture_output=True, text=True, timeout=900)
        outputs.append(done.stdout)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    precheck = _cases(repo / f"precheck-{KOMMUNE}.junit.xml")
    assert precheck
    assert all(outcome != "failed" for *_, outcome in precheck), precheck
    dry_run = _cases(repo / f"dry-run-{KOMMUNE}.junit.xml")
    steps = [step.name for step in dry_run_itinerary()]
    assert [(case, outcome) for suite, case, outcome in dry_run if suite.endswith("/ grenaa-raadhus")] == [
        (step, "passed") for step in steps
    ], dry_run
    assert [(case, outcome) for suite, case, outcome in dry_run if suite.endswith("/ wave-wide")] == [
        ("precheck", "passed")
    ]
    # the dry run's standard output: what a reviewer reads in the CI log
    shown = outputs[-1].splitlines()
    assert "grenaa-raadhus:" in shown, outputs[-1]
    for vm in LIGHT_VMS:
        [line] = [line for line in shown if line.startswith(f"  VM {vm} (would_move): ")]
        source, target = line.split(": ", 1)[1].split(" -> ")
        assert source != target, line
        assert "NDJ-707-Faelles" in target, line
    assert "    + ip route 10.70.10.0/24 10.255.70.1" in shown, outputs[-1]
