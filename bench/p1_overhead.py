"""P1 — orchestration overhead: a lab wave through overflyt against the same playbooks run plainly.

1. The lab comes up from the sample plan; an untimed dry run of the wave warms both sides' caches
   (Python bytecode, Prefect's database, the collections).
2. **overflyt**: ``overflyt wave run PLAN --wave W`` — the Prefect flow, its pre-checks, the site
   cutover (network backup, VM moves in batches, network change + verify, post-check) through
   ansible-runner — timed from process start to exit.
3. The lab is rebuilt fresh, and the **same ansible-playbook command lines** that run made are
   replayed in the same order with plain ``ansible-playbook``: the exact argv (playbook,
   inventory file, forks, extra vars, limit), working directory and environment ansible-runner
   recorded in each playbook's ``artifacts/*/command`` — minus ansible-runner's own event callback
   — with the secret files and the run's known_hosts re-created where the inventory expects them.
   Each replayed run must end with the return code the original run had.

Target: overflyt's wall time at most 1.10 times the plain runs'. The table lists every playbook
with both sides' time, so what overflyt adds outside the playbooks (Python and Prefect start-up,
the flow's bookkeeping, vSphere reads) is visible.

    python bench/p1_overhead.py [--wave N] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from common import (
    REPO,
    WORK,
    BenchError,
    commit,
    lab_down,
    lab_lock,
    lab_up,
    load,
    machine,
    record,
    run_overflyt,
    table,
)

TARGET_RATIO = 1.10
PLAN = REPO / "inventories" / "norddjurs" / "plan.yml"
RUNNER_ONLY = ("ANSIBLE_STDOUT_CALLBACK", "ANSIBLE_CALLBACK_PLUGINS", "RUNNER_", "AWX_", "ANSIBLE_CACHE_PLUGIN")


def invocations(record_dir: Path) -> list[dict[str, Any]]:
    """What ansible-runner ran for each playbook of one run record, in order."""
    found = []
    for private in sorted((record_dir / "ansible").iterdir()):
        commands = sorted(private.glob("artifacts/*/command"))
        if len(commands) != 1:
            raise BenchError(f"{private}: expected one artifacts/*/command, found {len(commands)}")
        command = json.loads(commands[0].read_text())
        rc = int((commands[0].parent / "rc").read_text().strip())
        found.append({"step": private.name, "command": command, "rc": rc, "private": private})
    return found


def replay(step: dict[str, Any], secrets: dict[str, str], known_hosts: Path, log: Path) -> float:
    """Run one recorded ansible-playbook command line plainly; its wall time."""
    command = step["command"]
    env = {k: v for k, v in command["env"].items() if not k.startswith(RUNNER_ONLY)}
    inventory = yaml.safe_load((step["private"] / "inventory" / "hosts.yml").read_text())
    files = ((inventory.get("all") or {}).get("vars") or {}).get("overflyt_secret_files") or {}
    for reference, path in files.items():
        secret = Path(path)
        secret.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        secret.write_text(secrets[reference])
        secret.chmod(0o600)
    if env.get("HOME"):
        ssh = Path(env["HOME"]) / ".ssh"
        ssh.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copyfile(known_hosts, ssh / "known_hosts")
    if env.get("ANSIBLE_PERSISTENT_CONTROL_PATH_DIR"):
        Path(env["ANSIBLE_PERSISTENT_CONTROL_PATH_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    started = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n== {step['step']}: {' '.join(command['command'])}\n")
        out.flush()
        done = subprocess.run(
            command["command"], cwd=command["cwd"], env=env, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    seconds = time.perf_counter() - started
    for path in files.values():
        shutil.rmtree(Path(path).parent, ignore_errors=True)
    if done.returncode != step["rc"]:
        raise BenchError(f"replay of {step['step']}: ansible-playbook exited {done.returncode}, not {step['rc']}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--wave", type=int, default=1, help="the sample plan's wave to run (default 1)")
    parser.add_argument("--no-record", action="store_true", help="do not append the result to bench/RESULTS.md")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("p1: the lab needs root", file=sys.stderr)
        return 2
    state = WORK / "state-p1"
    shutil.rmtree(state, ignore_errors=True)
    os.environ["OVERFLYT_STATE_DIR"] = str(state)
    os.environ.setdefault("PREFECT_HOME", str(REPO / ".overflyt" / "prefect"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    logs = WORK / "p1-logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    started_load = load()
    wave = ["wave", "run", str(PLAN), "--wave", str(args.wave)]
    real = [*wave, "--approved-by", "bench P1", "--ticket", "P1", "--outside-window"]
    try:
        with lab_lock():
            try:
                lab_up(PLAN)
                print("warm-up: dry run of the wave (untimed) ...", flush=True)
                run_overflyt([*wave, "--dry-run"], logs / "dry-run.log")
                print("overflyt: the wave for real ...", flush=True)
                ofl_seconds, ofl_playbooks = run_overflyt(real, logs / "overflyt.log")
                record_dir = max((state / "707" / f"wave-{args.wave}" / "wave").iterdir(), key=lambda p: p.name)
                steps = invocations(record_dir)
                ofl_times = [seconds for _, seconds in ofl_playbooks]
                if len(ofl_times) != len(steps):
                    raise BenchError(f"overflyt logged {len(ofl_times)} playbook times for {len(steps)} playbooks")
                print(f"plain ansible-playbook: the same {len(steps)} command lines on a fresh lab ...", flush=True)
                lab_up(PLAN)
                from overflyt.credentials import resolve_all
                from overflyt.plan import load_plan

                resolved = resolve_all(load_plan(PLAN), PLAN.parent)
                secrets = {ref: c.secret.get_secret_value() for ref, c in resolved.items()}
                known_hosts = REPO / "lab" / ".state" / "known_hosts"
                plain_started = time.perf_counter()
                plain_times = [replay(step, secrets, known_hosts, logs / "plain.log") for step in steps]
                plain_seconds = time.perf_counter() - plain_started
            finally:
                lab_down()
    except BenchError as exc:
        print(f"p1: {exc}", file=sys.stderr)
        return 2
    ratio = ofl_seconds / plain_seconds
    met = ratio <= TARGET_RATIO
    rows = [
        [step["step"], f"{ofl:.2f}", f"{plain:.2f}"]
        for step, ofl, plain in zip(steps, ofl_times, plain_times, strict=True)
    ]
    in_playbooks = sum(ofl_times)
    rows.append(["playbooks together", f"{in_playbooks:.2f}", f"{sum(plain_times):.2f}"])
    outside = [ofl_seconds - in_playbooks, plain_seconds - sum(plain_times)]
    rows.append(["outside the playbooks", f"{outside[0]:.2f}", f"{outside[1]:.2f}"])
    rows.append(["**wall time**", f"**{ofl_seconds:.2f}**", f"**{plain_seconds:.2f}**"])
    lines = [
        f"## P1 orchestration overhead — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {machine()}; load average {started_load} at start",
        f"- commit: {commit()}",
        f"- input: wave {args.wave} of inventories/norddjurs/plan.yml in the lab; {len(steps)} ansible-playbook runs",
        "",
        *table(["playbook run", "overflyt (s)", "plain ansible-playbook (s)"], rows),
        "",
        f"target overflyt ≤ {TARGET_RATIO:.2f}x plain: **{'met' if met else 'MISSED'}** ({ratio:.2f}x)",
    ]
    if not met:
        runner_extra = in_playbooks - sum(plain_times)
        lines.append(
            f"- why: {ofl_seconds - in_playbooks:.1f} s outside the playbooks (the CLI's and Prefect's start-up, the"
            f" flow's records, vSphere reads, slots) and {runner_extra:+.1f} s inside them (ansible-runner's"
            " event callback and artifacts against plain output)"
        )
    record("\n".join(lines) + "\n", not args.no_record)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
