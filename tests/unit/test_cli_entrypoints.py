"""The ways to start the command — ``python -m overflyt``, ``python -m overflyt.cli``, ``python -m
overflyt.lab`` and the ``overflyt`` console script — each in a process of its own: the same parser,
output and exit codes; and building the command line imports none of the heavy libraries."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import overflyt.cli
from overflyt.plan import load_plan

REPO = Path(__file__).resolve().parents[2]
SAMPLE = "inventories/norddjurs/plan.yml"
COMMANDS = ("plan", "precheck", "wave", "rollback", "status", "report", "lab", "serve", "discover")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, COLUMNS="200"),
    )


def test_python_m_overflyt_help_lists_every_command_group() -> None:
    done = run("-m", "overflyt", "--help")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("usage: overflyt [-h] [--version] [-v] COMMAND ...\n")
    commands = done.stdout.split("\n  COMMAND\n", 1)[1].split("\n\n")[0]
    listed = [line.split()[0] for line in commands.splitlines() if line.startswith("    ") and line[4] != " "]
    assert listed == list(COMMANDS)
    assert done.stdout.endswith(
        "exit codes: 0 ok; 1 checks or migration failed (and were rolled back);\n"
        "2 bad input or usage; 3 rollback itself failed (a human must act)\n"
    )


def test_python_m_overflyt_validates_the_sample_plan() -> None:
    plan = load_plan(REPO / SAMPLE)
    done = run("-m", "overflyt", "plan", "validate", SAMPLE)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        f"{SAMPLE}: valid — {plan.municipality.name} ({plan.municipality.code}), {len(plan.waves)} waves, "
        f"{len(plan.sites)} sites, {len(plan.vms)} VMs, {len(plan.devices)} devices\n"
    )


def test_python_m_overflyt_passes_on_the_exit_code_of_bad_input_and_usage() -> None:
    missing = run("-m", "overflyt", "plan", "validate", "no-such-plan.yml")
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr == "overflyt: plan invalid: 1 error\n  no-such-plan.yml: file not found\n"
    usage = run("-m", "overflyt")
    assert (usage.returncode, usage.stdout) == (2, "")
    assert usage.stderr == (
        "usage: overflyt [-h] [--version] [-v] COMMAND ...\n"
        "overflyt: error: the following arguments are required: COMMAND\n"
    )


def test_python_m_overflyt_cli_and_overflyt_lab_are_the_same_command() -> None:
    assert run("-m", "overflyt.cli", "--help").stdout == run("-m", "overflyt", "--help").stdout
    lab = run("-m", "overflyt.lab", "status", "--help")
    assert (lab.returncode, lab.stderr) == (0, "")
    assert lab.stdout == run("-m", "overflyt", "lab", "status", "--help").stdout
    assert lab.stdout.startswith("usage: overflyt lab status [-h] [--plan PLAN] [--json]\n")


def test_the_console_script_is_cli_main() -> None:
    [script] = entry_points(group="console_scripts", name="overflyt")
    assert script.value == "overflyt.cli:main"
    assert script.load() is overflyt.cli.main


def test_building_the_command_line_imports_no_heavy_library() -> None:
    heavy = ("prefect", "ansible_runner", "paramiko", "pyVmomi", "flows")
    code = (
        "import sys\n"
        "from overflyt.cli import build_parser\n"
        "build_parser().format_help()\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    done = run("-c", code)
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "[]\n")
