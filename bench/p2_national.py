"""P2 — the whole country offline: generate -> validate -> plan waves -> offline checks.

All 98 municipalities of the synthetic national estate (:mod:`overflyt.lab.synth`: 13,632 sites, 1,798
hosts, 21,480 VMs, 147,909 access points), each stage over all of them before the next:

1. generate        the estates as plain data (what estate files hold);
2. validate        into the estate model, plus the whole-estate rules (references, duplicates, overlaps);
3. plan waves      :func:`overflyt.planning.waves.plan_waves` for each: a validated plan and its estimates;
4. offline checks  every rule of :mod:`overflyt.plan.rules` on each plan, and the pre-check rules that
                   need no lab (plan.dependencies, plan.window, netmap.mapped) on each of its waves.

Targets: national planning + checks (stages 3 and 4) at most 2 s wall time; the whole run at most
5 s and 1 GiB peak RSS on 2 cores. The process pins itself to two CPUs
(``os.sched_setaffinity``), imports included in the time. Peak RSS is ``getrusage(RUSAGE_SELF)
.ru_maxrss`` read after each stage: the process's real high-water mark (interpreter, libraries and
every allocation), which is what the target is about; tracemalloc would see only Python's own
allocations and slow the run down. Prints a table, says whether the target is met and, when not,
why (the stage and, for the checks, the rule that took the time); appends it to bench/RESULTS.md.

    python bench/p2_national.py [--no-record] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import BenchError, commit, machine

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
TARGET_SECONDS = 5.0
TARGET_PLANNING_SECONDS = 2.0  # "plan waves" + "offline checks": the country's planning and its checks
PLANNING_STAGES = ("plan waves", "offline checks")
TARGET_RSS_MIB = 1024.0
CORES = 2
OFFLINE_PRECHECKS = ("plan.dependencies", "plan.window", "netmap.mapped")  # the pre-checks that need no facts


@dataclass
class Stage:
    name: str
    seconds: float = 0.0  # wall time: what the target is about
    cpu_seconds: float = 0.0  # this process's CPU time: shows when other load stretched the wall time
    gc_seconds: float = 0.0  # of the wall time, in Python's cyclic garbage collector
    rss_mib: float = 0.0


@dataclass
class Run:
    stages: list[Stage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rule_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    rule_worst: dict[str, tuple[float, str]] = field(default_factory=dict)
    gc_freeze: bool = False
    gc_total: float = 0.0
    _gc_started: float = 0.0

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        """gc.callbacks hook: adds up the time spent in collections."""
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_total += time.perf_counter() - self._gc_started

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started, cpu, in_gc = time.perf_counter(), time.process_time(), self.gc_total
        yield
        if self.gc_freeze:
            gc.freeze()
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        self.stages.append(Stage(name, seconds, cpu_seconds, self.gc_total - in_gc, _peak_rss_mib()))

    def timed_rule(self, name: str, municipality: str, check: Callable[[], tuple[int, int]]) -> tuple[int, int]:
        """Run one rule over one plan (or wave), keeping its time per rule and its slowest municipality."""
        started = time.perf_counter()
        counts = check()
        seconds = time.perf_counter() - started
        self.rule_seconds[name] += seconds
        if seconds > self.rule_worst.get(name, (0.0, ""))[0]:
            self.rule_worst[name] = (seconds, municipality)
        return counts


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _pin() -> str:
    available = sorted(os.sched_getaffinity(0))
    chosen = set(available[:CORES])
    os.sched_setaffinity(0, chosen)
    return ",".join(map(str, sorted(chosen)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="P2: the whole country offline (see the module docstring).")
    parser.add_argument("--no-record", action="store_true", help="do not append the result to bench/RESULTS.md")
    parser.add_argument("--profile", metavar="FILE", help="also write a cProfile of the whole run here")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="experiment: gc.freeze() after each stage, so collections never walk the estates and plans built "
        "so far again (off by default: the table shows Python's defaults)",
    )
    args = parser.parse_args(argv)
    pinned = _pin()
    load = os.getloadavg()
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    run = Run(gc_freeze=args.gc_freeze)
    gc.callbacks.append(run.on_gc)
    try:
        summary = _pipeline(run)
    except BenchError as exc:
        print(f"p2: {exc}", file=sys.stderr)
        return 2
    gc.callbacks.remove(run.on_gc)
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    report = _report(run, summary, pinned, load, profiled=bool(profiler))
    print(report)
    if not args.no_record:
        with RESULTS.open("a", encoding="utf-8") as out:
            out.write("\n" + report + "\n")
        print(f"appended to {RESULTS.relative_to(REPO)}")
    return 0 if summary["met"] else 1


def offline_prechecks() -> dict[str, Any]:
    """The registered pre-checks of OFFLINE_PRECHECKS by id. The rules register themselves when
    ``overflyt.precheck.rules`` is imported (the engine does that; ``overflyt.precheck`` itself
    imports its parts on first use), so import it here too."""
    from overflyt.precheck import RULES
    from overflyt.precheck import rules as _rules  # noqa: F401  (importing registers the rules)

    missing = [rule_id for rule_id in OFFLINE_PRECHECKS if rule_id not in RULES]
    if missing:
        raise BenchError(f"pre-checks not registered: {', '.join(missing)}")
    return {rule_id: RULES[rule_id] for rule_id in OFFLINE_PRECHECKS}


def _pipeline(run: Run) -> dict[str, Any]:
    with run.stage("imports"):
        from overflyt.discovery.estate import Estate, validate_estate
        from overflyt.lab import synth
        from overflyt.plan.rules import RULES as PLAN_RULES
        from overflyt.planning.waves import PlanningOptions, plan_waves
        from overflyt.precheck import CheckContext, Severity
        from overflyt.precheck.facts import EstateFacts

        offline_rules = offline_prechecks()

    codes = list(synth.quotas())
    options = PlanningOptions(first_window=datetime(2027, 3, 6, 18, 0), bandwidth_mbps=10_000, waves_per_week=2)
    summary: dict[str, Any] = {"ok": True, "options": options}

    with run.stage("generate"):
        data = [synth.estate_data(code) for code in codes]

    with run.stage("validate"):
        estates = []
        while data:  # each municipality's plain data is dropped as soon as it is validated
            estates.append(Estate.model_validate(data.pop(0)))
        estate_problems = sum(len(validate_estate(e)) for e in estates)

    with run.stage("plan waves"):
        results = [plan_waves(e, options) for e in estates]

    with run.stage("offline checks"):
        plan_problems = critical = checked = 0

        def plan_rule(rule: Any, plan: Any) -> Callable[[], tuple[int, int]]:
            return lambda: (len(list(rule(plan))), 0)

        def precheck(registered: Any, ctx: Any) -> Callable[[], tuple[int, int]]:
            def check() -> tuple[int, int]:
                outcomes = list(registered.check(ctx))
                notes = [n for o in outcomes for n in o.notes]
                return len(outcomes), sum(1 for n in notes if (n.severity or registered.severity) == Severity.critical)

            return check

        for result in results:
            plan = result.plan
            who = f"{plan.municipality.name} ({len(plan.sites):,} sites)"
            for rule in PLAN_RULES:
                plan_problems += run.timed_rule(rule.__name__, who, plan_rule(rule, plan))[0]
            for wave in plan.waves:
                ctx = CheckContext(plan, wave.number, EstateFacts(), now=wave.window.start - timedelta(days=1))
                for rule_id in OFFLINE_PRECHECKS:
                    outcomes, bad = run.timed_rule(rule_id, who, precheck(offline_rules[rule_id], ctx))
                    checked += outcomes
                    critical += bad

    estates_total = {
        "sites": sum(len(e.sites) for e in estates),
        "hosts": sum(len(e.hosts) for e in estates),
        "vms": sum(len(e.vms) for e in estates),
        "access_points": sum(len(s.access_points) for e in estates for s in e.sites),
        "devices": sum(len(e.devices) for e in estates),
    }
    waves = sum(len(r.estimates) for r in results)
    ahead = sum(len(e.ahead) for r in results for e in r.estimates)
    summary |= {
        "municipalities": len(estates),
        "totals": estates_total,
        "waves": waves,
        "ahead": ahead,
        "weeks": max(len(r.estimates) for r in results) / options.waves_per_week,
        "estate_problems": estate_problems,
        "plan_problems": plan_problems,
        "critical": critical,
        "checked": checked,
    }
    if estate_problems or plan_problems or critical:
        summary["ok"] = False
        run.notes.append(
            f"WRONG RESULT: {estate_problems} estate problems, {plan_problems} plan problems, "
            f"{critical} critical pre-check findings (all must be 0)"
        )
    return summary


def _report(run: Run, summary: dict[str, Any], pinned: str, load: tuple[float, float, float], profiled: bool) -> str:
    total = sum(s.seconds for s in run.stages)
    cpu_total = sum(s.cpu_seconds for s in run.stages)
    gc_total = sum(s.gc_seconds for s in run.stages)
    peak = max(s.rss_mib for s in run.stages)
    planning = sum(s.seconds for s in run.stages if s.name in PLANNING_STAGES)
    planning_ok = planning <= TARGET_PLANNING_SECONDS
    time_ok, rss_ok = total <= TARGET_SECONDS, peak <= TARGET_RSS_MIB
    summary["met"] = planning_ok and time_ok and rss_ok and summary["ok"]
    totals = summary["totals"]
    options = summary["options"]
    lines = [
        f"## P2 national — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {machine()}; pinned to CPUs {pinned}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        "at start",
        f"- commit: {commit()}",
        f"- input: {summary['municipalities']} municipalities, {totals['sites']:,} sites, {totals['hosts']:,} hosts, "
        f"{totals['vms']:,} VMs, {totals['access_points']:,} access points, {totals['devices']:,} devices",
        f"- planning: {options.bandwidth_mbps:,} Mbps, {options.window_hours:g} h windows, {options.waves_per_week} a "
        f"week -> {summary['waves']:,} waves ({summary['ahead']:,} VMs ahead of their site), the longest "
        f"municipality {summary['weeks']:.1f} weeks",
        f"- checks: {summary['plan_problems']} plan problems, {summary['checked']:,} offline pre-checks, "
        f"{summary['critical']} critical"
        + (" (cProfile on: times inflated)" if profiled else "")
        + (" (experiment: gc.freeze() after each stage)" if run.gc_freeze else ""),
        "",
        "| stage | seconds (wall) | CPU seconds | of which GC | peak RSS (MiB) |",
        "| --- | ---: | ---: | ---: | ---: |",
        *(
            f"| {s.name} | {s.seconds:.2f} | {s.cpu_seconds:.2f} | {s.gc_seconds:.2f} | {s.rss_mib:.0f} |"
            for s in run.stages
        ),
        f"| **total** | **{total:.2f}** | **{cpu_total:.2f}** | **{gc_total:.2f}** | **{peak:.0f}** |",
        "",
        f"target planning + checks ≤ {TARGET_PLANNING_SECONDS:g} s: **{'met' if planning_ok else 'MISSED'}**"
        f" ({planning:.2f} s); target whole run ≤ {TARGET_SECONDS:g} s and ≤ {TARGET_RSS_MIB / 1024:g} GiB peak"
        f" RSS on {CORES} cores: **{'met' if time_ok and rss_ok else 'MISSED'}** ({total:.2f} s, {peak:.0f} MiB)"
        + ("" if summary["ok"] else "; **MISSED**: wrong result (below)"),
    ]
    if not planning_ok:
        parts = ", ".join(
            f"{s.name} {s.seconds:.2f} s (GC {s.gc_seconds:.2f})" for s in run.stages if s.name in PLANNING_STAGES
        )
        lines.append(f"- planning + checks: {parts}")
        if run.rule_seconds:
            rule, seconds = max(run.rule_seconds.items(), key=lambda kv: kv[1])
            lines.append(f"- the costliest check: {rule} ({seconds:.2f} s over all plans)")
    if not time_ok:
        slowest = max(run.stages, key=lambda s: s.seconds)
        why = f"- time: {total:.2f} s; the slowest stage is {slowest.name} ({slowest.seconds:.2f} s)"
        if slowest.name == "offline checks" and run.rule_seconds:
            rule, seconds = max(run.rule_seconds.items(), key=lambda kv: kv[1])
            worst, where = run.rule_worst[rule]
            why += (
                f", {seconds / slowest.seconds:.0%} of it in {rule} ({seconds:.2f} s over all plans; "
                f"{worst:.2f} s for {where} alone)"
            )
        lines.append(why)
        if slowest.name == "offline checks" and run.rule_seconds:
            rest = total - max(run.rule_seconds.values())
            lines.append(f"- everything else: {rest:.2f} s")
        if gc_total > 1.0:
            lines.append(
                f"- cyclic GC: {gc_total:.2f} s ({gc_total / total:.0%}): every full collection walks all the objects "
                "of the 98 estates and plans held at once"
            )
        if cpu_total < 0.8 * total:
            lines.append(f"- CPU time {cpu_total:.2f} s against {total:.2f} s wall: other load on the machine")
    if not rss_ok:
        top = max(run.stages, key=lambda s: s.rss_mib)
        lines.append(f"- memory: {peak:.0f} MiB, reached during {top.name}")
    lines += run.notes and ["", *run.notes]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
