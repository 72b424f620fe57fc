"""P4 — network: backup + push + verify on N lab routers against the same on 1.

Two generated plans (bench/labplan.py ``vm_plan``): 1 site, and N sites, each site with its gateway
router and one server whose subnet its cutover routes to the shared datacentre. For each, the lab is
brought up from that plan (real FRR routers behind sshd/vtysh in namespaces), then the cutover's
network steps run over every router at once, with the same playbooks, roles, inventory builder and
runner a site cutover uses (``overflyt.steps.network`` runs them per site): backup every running config,
push the rendered change (the moved subnet's route via the datacentre link) with verification, then
verify read-only again. Each step is one ansible-playbook run with forks = N.

Targets: N=50 takes at most 3.0 times as long as N=1 (wall time of the three steps), and the
playbook processes use at most 1.0 CPU second per router per step (the N-router run's CPU seconds
of each step ÷ N; the worst step counts). CPU seconds are ``RUSAGE_CHILDREN`` of this process: they
include network_cli's persistent connection processes (``ansible-connection``, which detach with a
double fork), because ansible-playbook runs under overflyt's guard (:mod:`overflyt.ansible.guard`),
a child subreaper that adopts, stops and reaps them before it exits.

    python bench/p4_network.py [--devices N] [--no-record]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from datetime import UTC, datetime
from typing import Any

from common import WORK, BenchError, commit, lab_down, lab_lock, lab_up, load, machine, record, table
from labplan import vm_plan

TARGET_RATIO = 3.0
STEPS = ("backup", "push + verify", "verify")
PLAYBOOKS = ("net_backup.yml", "net_configure.yml", "net_verify.yml")


TARGET_CPU = 1.0  # CPU seconds per router per step


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(devices: int) -> dict[str, Any]:
    """Bring the lab up with ``devices`` routers, run the three steps, return their times."""
    from overflyt.ansible.step import StepContext, run_step
    from overflyt.plan import load
    from overflyt.plan.credentials import resolve_all
    from overflyt.record import Run
    from overflyt.steps.device_changes import device_changes

    path = vm_plan(WORK / f"p4-{devices}-routers.yml", sites=devices, vms_per_site=1, concurrency=1)
    lab_up(path)
    loaded = load(path)
    plan = loaded.plan
    sites = [s.id for s in plan.sites]
    changes = {host: change for site in sites for host, change in device_changes(plan, 1, site).items()}
    run = Run.create("wave", plan.municipality.code, 1, sites, dry_run=False)
    ctx = StepContext(loaded, 1, run, resolve_all(plan, path.parent))
    backup_dir = run.dir / "backups" / "cutover"
    backup_dir.mkdir(parents=True, mode=0o700)
    step_vars = {
        "backup": {host: {"net_backup_dir": str(backup_dir)} for host in changes},
        "push + verify": {host: change.device_vars() for host, change in changes.items()},
        "verify": {host: {**change.device_vars(), "net_verify_fail": True} for host, change in changes.items()},
    }
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}
    results: dict[str, Any] = {}
    tasks: dict[str, int] = {}  # task results on the routers (ok + skipped), all routers together
    for name, playbook in zip(STEPS, PLAYBOOKS, strict=True):
        print(f"  {devices} router(s): {name} ...", flush=True)
        c0, t0 = _children_cpu(), time.perf_counter()
        result = run_step(
            ctx, playbook, playbook.removesuffix(".yml"), sites=sites, device_vars=step_vars[name], dry_run=False,
            timeout_s=3600, forks=devices, vcenters=False,
        )  # fmt: skip
        times[name], cpu[name] = time.perf_counter() - t0, _children_cpu() - c0
        if not result.ok:
            raise BenchError(f"{devices} routers: {playbook} {result.status}: {result.failures[:3]}")
        results[name] = result.result
        tasks[name] = sum(s.ok + s.skipped + s.failed for h, s in result.hosts.items() if h in changes)
    # The benchmark checks its own work: every router backed up, changed, and holding the change.
    backed_up = results["backup"].get("backup") or {}
    pushed = results["push + verify"].get("configure") or {}
    verified = results["verify"].get("verify") or {}
    if sorted(backed_up) != sorted(changes) or sorted(pushed) != sorted(changes):
        raise BenchError(f"{devices} routers: backups for {len(backed_up)}, pushes for {len(pushed)}")
    unchanged = [h for h in changes if not pushed[h]["changed"]]
    unverified = [h for h in changes if not (verified.get(h) or {}).get("verified")]
    if unchanged or unverified:
        raise BenchError(f"{devices} routers: not changed {unchanged[:5]}, not verified {unverified[:5]}")
    lines = sum(len(p["pushed_lines"]) for p in pushed.values())
    return {"devices": devices, "times": times, "cpu": cpu, "lines": lines, "tasks": tasks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--devices", type=int, default=50, help="routers in the big run (default 50)")
    parser.add_argument("--no-record", action="store_true", help="do not append the result to bench/RESULTS.md")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("p4: the lab needs root", file=sys.stderr)
        return 2
    os.environ.setdefault("OVERFLYT_STATE_DIR", str(WORK / "state-p4"))
    started_load = load()
    try:
        with lab_lock():
            try:
                small = measure(1)
                big = measure(args.devices)
            finally:
                lab_down()
    except BenchError as exc:
        print(f"p4: {exc}", file=sys.stderr)
        return 2
    total_small, total_big = sum(small["times"].values()), sum(big["times"].values())
    ratio = total_big / total_small
    cpu_small, cpu_big = sum(small["cpu"].values()), sum(big["cpu"].values())
    n = args.devices
    per_device = {name: big["cpu"][name] / n for name in STEPS}
    worst = max(STEPS, key=lambda name: per_device[name])
    met_ratio = ratio <= TARGET_RATIO
    met_cpu = per_device[worst] <= TARGET_CPU
    met = met_ratio and met_cpu
    rows = []
    for name in STEPS:
        one, many = small["times"][name], big["times"][name]
        rows.append(
            [name, f"{one:.2f}", f"{many:.2f}", f"{many / one:.2f}", f"{small['cpu'][name]:.1f}",
             f"{big['cpu'][name]:.1f}", f"{per_device[name]:.2f}"]
        )  # fmt: skip
    rows.append(
        ["**total**", f"**{total_small:.2f}**", f"**{total_big:.2f}**", f"**{ratio:.2f}**", f"{cpu_small:.1f}",
         f"{cpu_big:.1f}", f"{cpu_big / n:.2f}"]
    )  # fmt: skip
    header = [
        "step (one playbook each)", "1 router (s)", f"{n} routers (s)", "ratio", "CPU s, 1 router",
        f"CPU s, {n} routers", "CPU s per router",
    ]  # fmt: skip
    lines = [
        f"## P4 network — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {machine()}; load average {started_load} at start",
        f"- commit: {commit()}",
        f"- input: {n} lab routers (FRR 8.4, sshd + vtysh, network_cli over paramiko), one per site, vs 1;"
        f" {big['lines']} lines pushed to the {n}, {small['lines']} to the 1;"
        f" Ansible forks = routers",
        "",
        *table(header, rows),
        "",
        f"target ≤ {TARGET_RATIO:.1f}x for {n} routers vs 1: **{'met' if met_ratio else 'MISSED'}** ({ratio:.2f}x);"
        f" target ≤ {TARGET_CPU:.1f} CPU s per router per step: **{'met' if met_cpu else 'MISSED'}**"
        f" ({per_device[worst]:.2f} in {worst}; CPU of the playbook processes and their detached connection"
        " processes, which the guard reaps)",
    ]
    if n != 50:
        lines.append(f"- NOTE: run with {n} routers, not the target's 50 (`--devices {n}`)")

    tasks_per_router = sum(small["tasks"].values())
    task_cpu = (cpu_big - cpu_small) / max(1, sum(big["tasks"].values()) - tasks_per_router)
    lines.append(
        f"- each router gets {tasks_per_router} task results over the three playbooks; every extra task result"
        f" cost ≈{task_cpu:.2f} CPU s in the playbook processes"
    )
    if not met:
        marginal = (cpu_big - cpu_small) / max(1, n - 1)
        lines.append(
            f"- why: the work grows with the routers and the machine has {os.cpu_count()} cores: the playbook"
            f" processes used {cpu_big:.0f} CPU s for {n} routers against {cpu_small:.0f} for 1"
            f" (≈{marginal:.1f} CPU s more per router, i.e. ≥ {cpu_big / (os.cpu_count() or 1):.0f} s of wall"
            f" time on all cores): per router and playbook a forked worker per task, a network_cli persistent"
            f" connection process (ansible-connection, a Python start-up) and its SSH session"
        )
    record("\n".join(lines) + "\n", not args.no_record)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
