"""The wave's and the rollback's own report (report.json, report.md in the run record; the
Prefect artifact): built from a :class:`~overflyt.cutover.outcome.WaveOutcome` only."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from overflyt.cutover.outcome import WaveOutcome


def report_data(outcome: WaveOutcome) -> dict[str, Any]:
    return {
        "municipality": outcome.municipality,
        "wave": outcome.wave,
        "dry_run": outcome.dry_run,
        "run_id": outcome.run_id,
        "run_dir": str(outcome.run_dir),
        "blocked_by_prechecks": outcome.blocked,
        "precheck": outcome.precheck,
        "overrides": outcome.overrides,
        "approval": asdict(outcome.approval) if outcome.approval else None,
        "sites": [asdict(s) for s in outcome.sites],
        "exit_code": outcome.exit_code,
    }


def report_markdown(outcome: WaveOutcome) -> str:
    kind = "dry run" if outcome.dry_run else "cutover"
    lines = [f"# Wave {outcome.wave} of municipality {outcome.municipality} — {kind}", ""]
    lines.append(
        f"Run `{outcome.run_id}`. Pre-checks: " + ", ".join(f"{v} {k}" for k, v in outcome.precheck.items()) + "."
    )
    if outcome.blocked:
        lines += ["", "**Blocked before any change** (pre-checks found critical problems, or approval was not given)."]
    for override in outcome.overrides:
        lines.append(f"\n**Override:** {override}")
    if outcome.approval:
        a = outcome.approval
        lines.append(
            f"\nApproved by **{a.approved_by}** at {a.at}" + (f", ticket {a.ticket}" if a.ticket else "") + "."
        )
    for site in outcome.sites:
        lines += ["", f"## {site.site}: {site.status}"]
        if site.error:
            lines.append(f"\nError: {site.error}")
        if site.steps:
            lines += ["", "| step | seconds |", "| --- | ---: |"] + [f"| {k} | {v} |" for k, v in site.steps.items()]
        vms = (site.vms or {}).get("vms") if isinstance(site.vms, dict) else None
        if vms:
            lines += ["", "| VM | status | to |", "| --- | --- | --- |"]
            for name, vm in vms.items():
                after = vm.get("after") or vm.get("target") or {}
                where = " / ".join(str(after.get(k, "")) for k in ("host", "datastore", "folder") if after.get(k))
                lines.append(f"| {name} | {vm.get('status', '')} | {where} |")
        devices = (site.devices or {}).get("devices") if isinstance(site.devices, dict) else None
        if devices:
            for host, dev in devices.items():
                pending = dev.get("pending_lines") or []
                lines += ["", f"**{host}**: " + ("no change" if not pending else f"{len(pending)} line(s)")]
                if pending:
                    lines += ["", "```", *pending, "```"]
        if site.rollback:
            lines += ["", "Rollback: " + ", ".join(sorted(site.rollback))]
    return "\n".join(lines) + "\n"
