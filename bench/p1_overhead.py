"""P1 — orchestration overhead: a lab wave through overflyt against the same playbooks run plainly.

1. The lab comes up from the sample plan; an untimed dry run of the wave warms both sides' caches
   (Python bytecode, Prefect's database, the collections).
2. **overflyt**: ``overflyt wave run PLAN --wave W`` — the Prefect flow, its pre-checks, the site
   cutover (network backup, VM moves in batches, network change + verify, post-check) through
   ansible-runner — timed from process start to exit. Twice, each on a freshly built lab: as the CLI
   runs by default (it starts Prefect's temporary API server), and against a Prefect server that is
   already running (PREFECT_API_URL), as it is under `overflyt serve` and its workers.
3. The lab is rebuilt fresh, and the **same ansible-playbook command lines** that run made are
   replayed in the same order with plain ``ansible-playbook``: the exact argv (playbook,
   inventory file, forks, extra vars, limit), working directory and environment ansible-runner
   recorded in each playbook's ``artifacts/*/command`` — minus ansible-runner's own event callback
   and overflyt's process guard — with the secret files and the run's known_hosts re-created where
   the inventory expects them.
   Each replayed run must end with the return code the original run had.

Target: overflyt's wall time at most 1.10 times the plain runs', both as the CLI runs by default
(temporary API) and against the running server (PREFECT_API_URL: the run checks its ``/health`` and
starts no server of its own); each has its verdict, and the benchmark meets its target only when
both do. The table lists every playbook
with both sides' time, so what overflyt adds outside the playbooks (Python and Prefect start-up,
the flow's bookkeeping, vSphere reads) is visible.

    python bench/p1_overhead.py [--wave N] [--no-record]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
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


@contextlib.contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    """A Prefect API server of its own, as `overflyt serve` and the workers use in production; its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    prefect = Path(sys.executable).parent / "prefect"
    with (home.parent / "prefect-server.log").open("w") as out:
        server = subprocess.Popen(
            [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-services"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the Prefect server did not start; see {home.parent / 'prefect-server.log'}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(30)


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


def unguarded(argv: list[str]) -> list[str]:
    """The ansible-playbook command line of a recorded command: without the process guard overflyt
    runs it under (``python -m overflyt.ansible.guard --parent PID ... -- ansible-playbook ...``),
    whose parent, the measured run, is gone by the replay (the guard then refuses to start)."""
    if "overflyt.ansible.guard" in argv and "--" in argv:
        return argv[argv.index("--") + 1 :]
    return argv


def replay(step: dict[str, Any], secrets: dict[str, str], known_hosts: Path, log: Path) -> float:
    """Run one recorded ansible-playbook command line plainly; its wall time."""
    command = step["command"]
    env = {k: v for k, v in command["env"].items() if not k.startswith(RUNNER_ONLY)}
    argv = unguarded(command["command"])
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
        out.write(f"\n== {step['step']}: {' '.join(argv)}\n")
        out.flush()
        done = subprocess.run(argv, cwd=command["cwd"], env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
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
                print("overflyt against a running Prefect server: the wave on a fresh lab ...", flush=True)
                lab_up(PLAN)
                with prefect_server(WORK / "p1-prefect") as api:
                    served_env = {**os.environ, "PREFECT_API_URL": api, "OVERFLYT_STATE_DIR": str(WORK / "state-p1s")}
                    shutil.rmtree(WORK / "state-p1s", ignore_errors=True)
                    served_seconds, served_playbooks = run_overflyt(real, logs / "overflyt-served.log", served_env)
                print(f"plain ansible-playbook: the same {len(steps)} command lines on a fresh lab ...", flush=True)
                lab_up(PLAN)
                from overflyt.plan import load_plan
                from overflyt.plan.credentials import resolve_all

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
    served_ratio = served_seconds / plain_seconds
    met_cli = ratio <= TARGET_RATIO
    met_served = served_ratio <= TARGET_RATIO
    met = met_cli and met_served
    served_times = [seconds for _, seconds in served_playbooks]
    if len(served_times) != len(steps):
        served_times = [float("nan")] * len(steps)  # shown as nan: the runs differed in their playbooks
    rows = [
        [step["step"], f"{ofl:.2f}", f"{served:.2f}", f"{plain:.2f}"]
        for step, ofl, served, plain in zip(steps, ofl_times, served_times, plain_times, strict=True)
    ]
    in_playbooks = sum(ofl_times)
    rows.append(["playbooks together", f"{in_playbooks:.2f}", f"{sum(served_times):.2f}", f"{sum(plain_times):.2f}"])
    outside = [ofl_seconds - in_playbooks, served_seconds - sum(served_times), plain_seconds - sum(plain_times)]
    rows.append(["outside the playbooks", *(f"{x:.2f}" for x in outside)])
    rows.append(["**wall time**", f"**{ofl_seconds:.2f}**", f"**{served_seconds:.2f}**", f"**{plain_seconds:.2f}**"])
    rows.append(["ratio to plain", f"{ratio:.2f}", f"{served_ratio:.2f}", "1.00"])
    lines = [
        f"## P1 orchestration overhead — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {machine()}; load average {started_load} at start",
        f"- commit: {commit()}",
        f"- input: wave {args.wave} of inventories/norddjurs/plan.yml in the lab; {len(steps)} ansible-playbook runs",
        "",
        *table(
            ["playbook run", "overflyt CLI (s)", "overflyt, Prefect server running (s)", "plain ansible-playbook (s)"],
            rows,
        ),
        "",
        f"target overflyt ≤ {TARGET_RATIO:.2f}x plain: **{'met' if met_cli else 'MISSED'}** ({ratio:.2f}x) as the"
        " CLI runs it (Prefect's temporary API server started by the run);"
        f" **{'met' if met_served else 'MISSED'}** ({served_ratio:.2f}x) with a Prefect server already running"
        " (`prefect server start` on loopback, named by PREFECT_API_URL: the run starts no server)",
    ]
    if not met:
        runner_extra = in_playbooks - sum(plain_times)
        lines.append(
            f"- why: {ofl_seconds - in_playbooks:.1f} s outside the playbooks (the CLI's and Prefect's start-up, the"
            f" flow's records, vSphere reads, slots) and {runner_extra:+.1f} s inside them (ansible-runner's"
            " event callback and artifacts against plain output); of the outside part, starting Prefect's"
            f" temporary API server is ≈{outside[0] - outside[1]:.1f} s (the difference to the run against a"
            " running server, outside the playbooks)"
        )
    record("\n".join(lines) + "\n", not args.no_record)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
