"""Whether the lab is up: probes from inside a namespace, the self-check after ``up``, and the
problems ``status`` reports."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from overflyt.lab.common import (
    FRR_DAEMONS,
    FRR_RUN,
    LabError,
    Paths,
    alive,
    netns_list,
    port_open,
    read_pid,
    run,
)
from overflyt.lab.simulator import transfer_setting


def probe(namespace: str, targets: Iterable[tuple[str, int]], timeout: float = 2.0) -> list[str]:
    """Connect from inside ``namespace`` to each (address, port); the first line each answered.

    A target that cannot be reached gives ``"error: <reason>"`` instead of an answer.
    """
    code = (
        "import socket,sys\n"
        "for t in sys.argv[2:]:\n"
        "    a,p=t.rsplit(':',1)\n"
        "    try:\n"
        "        s=socket.create_connection((a,int(p)),timeout=float(sys.argv[1]))\n"
        "        print(s.makefile().readline().strip() or 'error: empty answer')\n"
        "        s.close()\n"
        "    except OSError as e:\n"
        "        print('error: '+(e.strerror or type(e).__name__))\n"
    )
    args = [f"{a}:{p}" for a, p in targets]
    out = run(["ip", "netns", "exec", namespace, sys.executable, "-c", code, str(timeout), *args], f"probe {namespace}")
    return out.splitlines()


def self_check(record: dict[str, Any]) -> None:
    """Every client reaches every server address, on its source side."""
    sources = [s for s in record["servers"] if s["side"] == "source" and s["addresses"]]
    targets = [(s["addresses"][0], s["port"]) for s in sources]
    for c in record["clients"]:
        answers = probe(c["namespace"], targets)
        for (address, _), answer in zip(targets, answers, strict=True):
            if answer != f"source {address}":
                raise LabError(
                    f"self-check: client {c['namespace']} -> {address}: got {answer!r}, expected 'source {address}'"
                )


def find_problems(record: dict[str, Any]) -> list[str]:
    problems = []
    existing = set(netns_list())
    if not alive(record["vcsim_pid"]):
        problems.append("the vCenter simulator is not running")
    for v in record["vcenters"]:
        host, port = v["url"].split("/")[2].rsplit(":", 1)
        if not port_open(host, int(port)):
            problems.append(f"vCenter {v['name']} does not answer on {host}:{port}")
    for d in record["devices"]:
        if not alive(d["sshd_pid"]) or not port_open(d["address"], d["port"]):
            problems.append(f"sshd of {d['name']} is not serving {d['address']}:{d['port']}")
    for r in record["routers"]:
        if r["namespace"] not in existing:
            problems.append(f"namespace {r['namespace']} is missing")
            continue
        for daemon in FRR_DAEMONS:
            pid = read_pid(FRR_RUN / r["namespace"] / f"{daemon}.pid")
            if pid is None or not alive(pid):
                problems.append(f"{daemon} of {r['name']} is not running")
    for s in record["servers"]:
        if s["namespace"] not in existing or not alive(s["responder_pid"]):
            problems.append(f"responder in {s['namespace']} is not running")
    for c in record["clients"]:
        if c["namespace"] not in existing:
            problems.append(f"namespace {c['namespace']} is missing")
        elif "ssh" in c and not port_open(c["ssh"]["address"], c["ssh"]["port"]):
            problems.append(f"probe host of {c['site']} is not serving {c['ssh']['address']}:{c['ssh']['port']}")
    if "agent_pid" in record and not alive(record["agent_pid"]):
        problems.append("the lab's agent is not running")
    return problems


def status_of(record: dict[str, Any], paths: Paths) -> dict[str, Any]:
    problems = find_problems(record)
    hidden = {"plan_sha256"}
    return {
        "up": not problems,
        "state_dir": str(paths.state),
        "problems": problems,
        **{k: v for k, v in record.items() if k not in hidden},
        "transfer": transfer_setting(paths),
    }
