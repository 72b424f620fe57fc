"""Where a municipality stands (`overflyt status`): every wave and its units with their state, the
next window and the last pre-check's verdict — read from the durable state alone (the wave states and
run records under the state home, through :mod:`.evidence`'s readers); nothing here contacts a
vCenter or a device.

A wave's rows are *units*: its sites (``kind: site``), then the server subnets it moves ahead of
their site (``kind: subnet``, ``id`` such as ``auning-adm:10.70.30.0-24``), with the same fields.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from overflyt.cutover.evidence import wave_views
from overflyt.plan import Plan
from overflyt.plan.ahead import is_ahead_key
from overflyt.record import RunRecord

# A unit's state as people read it (the wave state's status words, spelled out).
STATES = {
    "pending": "pending",
    "in_progress": "in progress",
    "done": "done",
    "failed": "failed",
    "rolled_back": "rolled back",
    "rollback_failed": "rollback failed",
}


def plan_status(plan: Plan, state_home: Path, now: datetime | None = None) -> dict[str, Any]:
    """The status of ``plan``'s municipality as plain data (what `overflyt status --json` prints)."""
    moment = now or datetime.now(UTC)
    waves = []
    for wave in wave_views(plan, state_home):
        units = [_unit(site) for site in wave["sites"]]
        waves.append(
            {
                "wave": wave["number"],
                "name": wave["name"],
                "window": _window(plan, wave["number"]),
                "state": _wave_state([u["state"] for u in units]),
                "units": units,
            }
        )
    return {
        "municipality": {"code": plan.municipality.code, "name": plan.municipality.name},
        "state_dir": str(state_home / plan.municipality.code),
        "recorded": (state_home / plan.municipality.code).is_dir(),
        "waves": waves,
        "next_window": _next_window(plan, waves, moment),
        "last_precheck": last_precheck(state_home / plan.municipality.code),
    }


def _window(plan: Plan, number: int) -> dict[str, str]:
    window = plan.wave(number).window
    return {"start": window.start.isoformat(), "end": window.end.isoformat(), "timezone": window.timezone}


def _wave_state(states: list[str]) -> str:
    """done when every unit is; pending when none has begun; else the worst of its units' states."""
    if all(s == "done" for s in states):
        return "done"
    if all(s == "pending" for s in states):
        return "pending"
    for worst in ("rollback failed", "failed", "in progress", "rolled back"):
        if worst in states:
            return worst
    return "partly done"


def _unit(site: dict[str, Any]) -> dict[str, Any]:
    """One site's row: its state, its last run (when, which, by whom, approved by whom), the VMs it
    has in the target and the devices its last cutover changed (none once rolled back)."""
    entries = site["entries"]
    last = entries[-1] if entries else None
    cutover = next((e for e in reversed(entries) if e["kind"] == "wave"), None)
    approval = (cutover or {}).get("approval") or {}
    state = STATES.get(site["status"], site["status"])
    changed = [] if cutover is None or state in ("rolled back", "pending") else cutover["devices"]
    return {
        "kind": "subnet" if is_ahead_key(site["id"]) else "site",
        "id": site["id"],
        "name": site["name"],
        "state": state,
        "when": _iso(last["finished"] or last["started"]) if last else None,
        "run": {"id": last["run_id"], "kind": _KIND[last["kind"]], "operator": last["operator"]} if last else None,
        "approved_by": approval.get("approved_by"),
        "ticket": approval.get("ticket"),
        "vms_moved": list(site["moved"]),
        "vms": len(site["vms"]),
        "devices_changed": [d["host"] for d in changed if d["pushed"]],
        "devices": len(site["devices"]),
        "error": last["error"] if last and state != "done" else None,
    }


_KIND = {"wave": "cutover", "rollback": "rollback", "precheck": "pre-check"}


def _iso(moment: Any) -> str:
    return moment.isoformat() if isinstance(moment, datetime) else str(moment)


def _next_window(plan: Plan, waves: list[dict[str, Any]], now: datetime) -> dict[str, Any] | None:
    """The first window, by its start, that has not ended and whose wave is not done."""
    open_waves = [w for w in waves if w["state"] != "done" and plan.wave(w["wave"]).window.end > now]
    if not open_waves:
        return None
    first = min(open_waves, key=lambda w: plan.wave(w["wave"]).window.start)
    return {"wave": first["wave"], "name": first["name"], **first["window"]}


def last_precheck(municipality_dir: Path) -> dict[str, Any] | None:
    """The newest pre-check run of the municipality (`overflyt precheck`, the nightly `precheck-wave`)."""
    newest: RunRecord | None = None
    for path in municipality_dir.glob("wave-*/precheck/*/record.json"):
        record = RunRecord.model_validate_json(path.read_text(encoding="utf-8"))  # read by evidence_view first
        if newest is None or record.started_at > newest.started_at:
            newest = record
    if newest is None:
        return None
    counts = newest.notes.get("counts") or {}
    verdict = {"succeeded": "ready", "failed": "blocked", "running": "running"}.get(newest.status, newest.status)
    if newest.status == "failed" and "blocked" not in newest.notes:
        verdict = "failed"  # it could not finish (a read failed), so it says nothing about the wave
    return {
        "wave": newest.wave,
        "run_id": newest.run_id,
        "at": newest.started_at.isoformat(),
        "operator": newest.operator,
        "verdict": verdict,
        "critical": int(counts.get("critical", 0)),
        "warning": int(counts.get("warning", 0)),
    }


def table(status: dict[str, Any]) -> str:
    """The console's view of :func:`plan_status`."""
    m = status["municipality"]
    recorded = "" if status["recorded"] else " (nothing recorded there yet: every site pending)"
    lines = [f"{m['name']} ({m['code']}) — state in {status['state_dir']}{recorded}"]
    for wave in status["waves"]:
        w = wave["window"]
        lines.append("")
        lines.append(f"wave {wave['wave']} — {wave['name']}: {wave['state']} (window {_local(w)})")
        for u in wave["units"]:
            run = u["run"]
            said = u["state"]
            if run is not None:
                said += f" {_short(u['when'], w['timezone'])} ({run['kind']} {run['id']} by {run['operator']})"
            if u["approved_by"]:
                said += f", approved by {u['approved_by']}" + (f" ({u['ticket']})" if u["ticket"] else "")
            said += f"; VMs moved {len(u['vms_moved'])}/{u['vms']}, devices changed {len(u['devices_changed'])}"
            said += f"/{u['devices']}"
            lines.append(f"  {u['kind']} {u['id']}: {said}")
            if u["error"]:
                lines.append(f"    {u['error']}")
    lines.append("")
    nxt = status["next_window"]
    lines.append("next window: " + (f"wave {nxt['wave']} — {nxt['name']}, {_local(nxt)}" if nxt else "none"))
    pre = status["last_precheck"]
    lines.append(
        "last pre-check: "
        + (
            f"wave {pre['wave']}, {_short(pre['at'], 'Europe/Copenhagen')} by {pre['operator']}: {pre['verdict']} "
            f"({pre['critical']} critical, {pre['warning']} warning; run {pre['run_id']})"
            if pre
            else f"none recorded in {status['state_dir']}"
        )
    )
    return "\n".join(lines) + "\n"


def line(status: dict[str, Any]) -> str:
    """One line for `overflyt status --inventories`."""
    m = status["municipality"]
    units = [u for w in status["waves"] for u in w["units"]]
    done_waves = sum(1 for w in status["waves"] if w["state"] == "done")
    done = sum(1 for u in units if u["state"] == "done")
    attention = [f"{u['id']} {u['state']}" for u in units if u["state"] in ("failed", "rollback failed")]
    nxt, pre = status["next_window"], status["last_precheck"]
    return (
        f"{m['code']} {m['name']}: waves {done_waves}/{len(status['waves'])} done, sites {done}/{len(units)} done"
        + (f"; ATTENTION: {', '.join(attention)}" if attention else "")
        + (f"; next window: wave {nxt['wave']} {_local(nxt)}" if nxt else "; no window ahead")
        + (f"; last pre-check: wave {pre['wave']} {pre['verdict']}" if pre else "; no pre-check recorded")
    )


def _local(window: dict[str, str]) -> str:
    zone = window["timezone"]
    return f"{_short(window['start'], zone)} to {_short(window['end'], zone)} ({zone})"


def _short(moment: str | None, zone: str) -> str:
    from zoneinfo import ZoneInfo

    if moment is None:
        return "?"
    return datetime.fromisoformat(moment).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def dumps(status: dict[str, Any]) -> str:
    return json.dumps(status, indent=2, ensure_ascii=False) + "\n"
