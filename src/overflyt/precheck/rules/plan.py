"""Plan order checks: dependencies move first, and the wave's window is usable."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from overflyt.plan.rules import wave_of_vm
from overflyt.precheck.findings import PrecheckReport, Severity
from overflyt.precheck.registry import CheckContext, Evidence, Note, Outcome, Subject, fail, ok, rule, skip


@rule("plan.dependencies", title="Dependencies move first", severity=Severity.critical)
def plan_dependencies(ctx: CheckContext) -> Iterator[Outcome]:
    """Every VM the wave moves depends only on VMs moved in this wave or an earlier one.

    Fires when a `depends_on` VM moves in a later wave (or in none): move that VM earlier (list it
    under an earlier wave's `vms`) or this one later. In `run` mode it also fires when a
    dependency of an earlier wave is not in the target folder yet: finish that wave first.
    """
    waves = wave_of_vm(ctx.plan)
    target = ctx.plan.target
    for vm in ctx.vms:
        if not vm.depends_on:
            continue
        subject = Subject("vm", vm.name, vm.site)
        notes: list[Note] = []
        for dep in vm.depends_on:
            theirs = waves.get(dep)
            if theirs is None or theirs > ctx.wave:
                when = f"in wave {theirs}" if theirs is not None else "in no wave"
                notes.append(
                    Note(
                        f"{vm.name} (wave {ctx.wave}) depends on {dep}, which moves {when}; move {dep} to wave "
                        f"{ctx.wave} or earlier, or {vm.name} later",
                        {"dependency": dep, "dependency_wave": theirs, "wave": ctx.wave},
                    )
                )
        if ctx.mode == "run" and not notes:
            inventory, reason = ctx.inventory("target")
            earlier = [dep for dep in vm.depends_on if waves.get(dep, ctx.wave) < ctx.wave]
            if earlier and inventory is None:
                yield skip(subject, reason)
                continue
            for dep in earlier:
                moved = inventory is not None and any(
                    v.folder == target.vm_folder
                    for v in inventory.vms.values()
                    if v.name == dep and v.datacenter == target.datacenter
                )
                if not moved:
                    notes.append(
                        Note(
                            f"{vm.name} depends on {dep} (wave {waves[dep]}), which is not in the target folder "
                            f"{target.vm_folder} yet; finish wave {waves[dep]} first",
                            {"dependency": dep, "dependency_wave": waves[dep], "folder": target.vm_folder},
                        )
                    )
        yield Outcome(subject, tuple(notes))


def _local(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute")]
    shown = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n][:2]
    return " ".join(shown) or "less than a minute"


@rule("plan.window", title="Wave window is usable", severity=Severity.critical)
def plan_window(ctx: CheckContext) -> Iterator[Outcome]:
    """The wave's maintenance window is still ahead (`precheck` mode) or open now (`run` mode).

    In `precheck` mode a window that has ended is critical (set a new window in the plan); one
    that is ahead or open passes with an info finding saying when it opens or closes. In `run`
    mode the window must be open now: wait for it, or change the plan.

    `overflyt wave run --outside-window` pre-checks in `precheck` mode and, when the window has
    ended, turns this finding into a warning that names who overrode it and why (the run records the
    override); then the window does not hold the wave's sites back either.
    """
    window = ctx.wave_plan.window
    subject = Subject("wave", str(ctx.wave))
    start, end = _local(window.start, window.timezone), _local(window.end, window.timezone)
    evidence: Evidence = {
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "now": ctx.now.isoformat(),
        "mode": ctx.mode,
    }
    if window.end <= ctx.now:
        yield fail(
            subject,
            f"Wave {ctx.wave}'s window ended at {end}; set a new window for wave {ctx.wave} in the plan",
            evidence,
        )
    elif window.start > ctx.now and ctx.mode == "run":
        yield fail(
            subject,
            f"Wave {ctx.wave}'s window opens only at {start} (in {_span(window.start - ctx.now)}); wait for it or "
            "change the plan",
            evidence,
        )
    elif window.start > ctx.now:
        yield ok(subject, f"Wave {ctx.wave}'s window opens at {start} (in {_span(window.start - ctx.now)})", evidence)
    else:
        yield ok(subject, f"Wave {ctx.wave}'s window is open until {end}", evidence)


def waive_window(report: PrecheckReport, override: str) -> PrecheckReport:
    """``report`` with `plan.window`'s critical finding (a window that has ended) made a warning that
    says it was overridden (``override``: by whom and why); every other finding as it was."""
    results = []
    for result in report.results:
        if result.rule_id == "plan.window":
            findings = tuple(
                f.model_copy(
                    update={
                        "severity": Severity.warning,
                        "message": f"{f.message} — overridden: {override}",
                        "evidence": {**f.evidence, "override": override},
                    }
                )
                if f.severity is Severity.critical
                else f
                for f in result.findings
            )
            result = result.model_copy(update={"findings": findings})
        results.append(result)
    return report.model_copy(update={"results": tuple(results)})


@rule("plan.traffic_proof", title="The post-check can send traffic from the site", severity=Severity.warning)
def plan_traffic_proof(ctx: CheckContext) -> Iterator[Outcome]:
    """Each site of the wave has a post-check probe (plan `sites[].probe`): a probe host at the site
    reached over SSH (`ssh`), the site's gateway device's own ping (`gateway`), or a namespace on the
    orchestrator's machine in the site's client LAN (`netns`, the lab's).

    Fires (a warning) for a site with none: it would be cut over without a traffic proof, and its
    report says "no proof" instead of "done". Give the site a `probe` (see README, "Pointing it at a
    real estate"). When every site has one, the wave passes.
    """
    unproven = [s for s in ctx.sites if ctx.plan.site(s).probe is None]
    if not unproven:
        yield ok(Subject("wave", str(ctx.wave)))
    for site_id in unproven:
        yield fail(
            Subject("site", site_id, site_id),
            f"Site {site_id} has no post-check probe: it will be cut over without a traffic proof "
            "(give it sites[].probe: ssh or gateway)",
            {"probe": None},
        )
