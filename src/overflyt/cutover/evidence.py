"""The evidence pack of a municipality: what was moved, when, by whose approval, what was checked
and what was changed, across all its waves — built only from its run records and wave states
(:mod:`overflyt.record`, :mod:`.state`); nothing here contacts a vCenter or a device.

:func:`evidence_view` gathers it as plain data for ``templates/evidence.{html,md}.j2``;
:func:`write_evidence` renders it (HTML, markdown, PDF through headless Chromium). A wave state
written from another version of the plan (:func:`~overflyt.cutover.state.plan_version`) is refused:
the pack would pin the wrong sites, VMs and devices on the municipality.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from overflyt import reports
from overflyt.cutover.state import WaveState, plan_version
from overflyt.errors import EXIT_BAD_INPUT, OverflytError
from overflyt.plan import Plan
from overflyt.plan.ahead import find_ahead, is_ahead_key, unit_name, units_of_wave
from overflyt.record import RunRecord, state_dir
from overflyt.steps.ahead import ahead_device_changes
from overflyt.steps.vm_batches import site_vms

FORMATS = ("html", "md", "pdf")


class EvidenceRefused(OverflytError):
    """The run records cannot be reported against this plan (another plan version, unreadable state)."""

    exit_code = EXIT_BAD_INPUT


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvidenceRefused(f"{path}: not readable as JSON ({exc})") from exc


def _wave_state(plan: Plan, wave: int, directory: Path) -> WaveState | None:
    path = directory / "state.json"
    if not path.is_file():
        return None
    try:
        state = WaveState.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvidenceRefused(f"{path}: not a wave state overflyt can read ({exc})") from exc
    expected = plan_version(plan, wave)
    if state.plan_version is not None and state.plan_version != expected:
        raise EvidenceRefused(
            f"{path}: wave {wave}'s state was written from another version of the plan (plan fingerprint "
            f"{state.plan_version[:12]}, this plan's wave {wave} is {expected[:12]}): its sites, VMs or devices "
            "changed since the wave ran; report from the plan version that ran it"
        )
    return state


def _runs(directory: Path) -> list[tuple[RunRecord, Path]]:
    """Every recorded run of a wave (pre-checks, cutovers, rollbacks), oldest first; dry runs left out."""
    found = []
    for path in sorted(directory.glob("*/*/record.json")):
        try:
            record = RunRecord.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EvidenceRefused(f"{path}: not a run record overflyt can read ({exc})") from exc
        if not record.dry_run:
            found.append((record, path.parent))
    return sorted(found, key=lambda pair: pair[0].started_at)


def _placement(p: dict[str, Any] | None) -> dict[str, Any]:
    p = p or {}
    return {
        "host": p.get("host") or reports.NONE,
        "datastore": p.get("datastore") or reports.NONE,
        "portgroups": ", ".join(p.get("portgroups") or []) or reports.NONE,
    }


def _moves(vms: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "status": vm.get("status", ""),
            "from": _placement(vm.get("before")),
            "to": _placement(vm.get("after")),
            "seconds": vm.get("seconds"),
            "error": vm.get("error"),
        }
        for name, vm in sorted(((vms or {}).get("vms") or {}).items())
    ]


def _sha_of(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _devices(devices: dict[str, Any], run_dir: Path) -> list[dict[str, Any]]:
    unit = str((devices or {}).get("site") or "")  # a subnet ahead of its site has its own backup folder
    folder = run_dir / "backups" / "cutover" / (unit.replace(":", "_") if is_ahead_key(unit) else "")
    return [
        {
            "host": host,
            "pushed": list(dev.get("pushed_lines") or []),
            "pending": list(dev.get("pending_lines") or []),
            "backup_sha": _sha_of(folder / f"{host}.cfg"),
            "after_sha": dev.get("config_sha256"),
            "verified": bool(dev.get("verified")),
            "missing": list(dev.get("missing") or []),
        }
        for host, dev in sorted(((devices or {}).get("devices") or {}).items())
    ]


def _postcheck(postcheck: dict[str, Any]) -> dict[str, Any] | None:
    if not postcheck:
        return None
    return {
        "skipped": bool(postcheck.get("skipped")),
        "reason": postcheck.get("reason"),
        "probes": [
            {
                "target": name,
                "side": p.get("side") or reports.NONE,
                "expect": p.get("expect", ""),
                "ok": bool(p.get("ok")),
            }
            for name, p in sorted((postcheck.get("probes") or {}).items())
        ],
    }


def _rollback(rollback: dict[str, Any]) -> dict[str, Any] | None:
    if not rollback:
        return None
    devices = (rollback.get("devices") or {}).get("devices") or {}
    vms = (rollback.get("vms") or {}).get("vms") or {}
    return {
        "classified": dict(rollback.get("classified") or {}),
        "devices": [
            {
                "host": host,
                "restored": bool(d.get("restored")),
                "pushed": list(d.get("pushed_lines") or []),
                "backup_sha": d.get("backup_sha256"),
                "after_sha": d.get("after_sha256"),
            }
            for host, d in sorted(devices.items())
        ],
        "vms": [
            {
                "name": name,
                "status": v.get("status", ""),
                "from": _placement(v.get("before")),
                "to": _placement(v.get("after")),
                "seconds": v.get("seconds"),
            }
            for name, v in sorted(vms.items())
        ],
    }


def _entry(record: RunRecord, run_dir: Path, report: dict[str, Any], site: dict[str, Any]) -> dict[str, Any]:
    """One run's part for one site: a cutover attempt or a rollback."""
    return {
        "kind": record.kind,
        "run_id": record.run_id,
        "operator": record.operator,
        "started": record.started_at,
        "finished": record.finished_at,
        "status": site.get("status", ""),
        "error": site.get("error"),
        "approval": report.get("approval"),
        "overrides": list(report.get("overrides") or []),  # each says who overrode what, and why
        "steps": [{"name": k, "seconds": v} for k, v in (site.get("steps") or {}).items()],
        "vms": _moves(site.get("vms") or {}),
        "devices": _devices(site.get("devices") or {}, run_dir),
        "postcheck": _postcheck(site.get("postcheck") or {}),
        "rollback": _rollback(site.get("rollback") or {}),
    }


def _findings(record: RunRecord, run_dir: Path) -> list[dict[str, Any]] | None:
    """The warning and critical findings of a pre-check (its own run, or a cutover's), waivers marked."""
    path = run_dir / ("report.json" if record.kind == "precheck" else "precheck.json")
    if not path.is_file():
        return None
    data = _read_json(path)
    out = []
    for result in data.get("results") or []:
        for f in result.get("findings") or []:
            if f.get("severity") in ("critical", "warning"):
                out.append(
                    {
                        "severity": f["severity"],
                        "id": f.get("id", ""),
                        "subject": f"{f.get('subject_kind', '')} {f.get('subject', '')}".strip(),
                        "site": f.get("site"),
                        "message": f.get("message", ""),
                        "waived": "override" in (f.get("evidence") or {}) or bool(f.get("waiver")),
                        "waiver": f.get("waiver"),  # waivers.yml: who, why, until
                    }
                )
    return sorted(out, key=lambda f: (f["severity"] != "critical", f["id"], f["subject"]))


def _wave_view(plan: Plan, number: int, base: Path) -> dict[str, Any]:
    wave = plan.wave(number)
    directory = base / f"wave-{number}"
    state = _wave_state(plan, number, directory)
    units = units_of_wave(plan, number)  # its sites, then its subnets ahead of their site: own rows
    entries: dict[str, list[dict[str, Any]]] = {s: [] for s in units}
    precheck: dict[str, Any] | None = None
    for record, run_dir in _runs(directory):
        findings = _findings(record, run_dir)
        if findings is not None:
            precheck = {"run_id": record.run_id, "at": record.started_at, "findings": findings}
        report_file = run_dir / "report.json"
        if record.kind == "precheck" or not report_file.is_file():
            continue
        report = _read_json(report_file)
        for site in report.get("sites") or []:
            if site.get("site") in entries and site.get("status") not in ("skipped",):
                entries[site["site"]].append(_entry(record, run_dir, report, site))
    sites = []
    for site_id in units:
        ahead = find_ahead(plan, site_id)
        recorded = state.sites.get(site_id) if state else None
        sites.append(
            {
                "id": site_id,
                "name": unit_name(plan, site_id),
                "status": recorded.status if recorded else "pending",
                "moved": list(recorded.moved) if recorded else [],
                "vms": list(ahead.vms) if ahead else [vm.name for vm in site_vms(plan, number, site_id)],
                "devices": list(ahead_device_changes(plan, ahead))
                if ahead
                else [d.hostname for d in plan.devices_of_site(site_id)],
                "entries": entries[site_id],
            }
        )
    return {
        "number": number,
        "name": wave.name,
        "window": {"start": wave.window.start, "end": wave.window.end},
        "done": all(s["status"] == "done" for s in sites),
        "started": any(s["entries"] for s in sites),
        "precheck": precheck,
        "sites": sites,
    }


def wave_views(plan: Plan, base: Path | None = None) -> list[dict[str, Any]]:
    """Every wave of the plan, in order, with its sites and each run's part in them, from the records
    in ``base`` (the state directory) alone: what the pack and `overflyt status` are built from."""
    root = (base or state_dir()) / plan.municipality.code
    return [_wave_view(plan, w.number, root) for w in sorted(plan.waves, key=lambda w: w.number)]


def evidence_view(plan: Plan, lang: str | None = None, base: Path | None = None) -> dict[str, Any]:
    """What the evidence pack shows, as plain data: the municipality, a summary, every wave and site
    with each run's part in it, and what is still pending. Reads only ``base`` (the state directory)."""
    waves = wave_views(plan, base)
    sites = [s for w in waves for s in w["sites"]]
    entries = [e for s in sites for e in s["entries"]]
    done_entries = [e for s in sites if s["status"] == "done" for e in s["entries"] if e["status"] == "done"]
    pending = [
        {"wave": w["number"], "wave_name": w["name"], "site": s["name"], "status": s["status"],
         "vms": [v for v in s["vms"] if v not in s["moved"]], "devices": s["devices"]}
        for w in waves for s in w["sites"] if s["status"] != "done"
    ]  # fmt: skip
    return {
        "l": reports.labels(lang or reports.default_lang()),
        "lang": lang or reports.default_lang(),
        "municipality": {"name": plan.municipality.name, "code": plan.municipality.code},
        "generated": datetime.now(UTC),
        "summary": {
            "waves_done": sum(1 for w in waves if w["done"]),
            "waves": len(waves),
            "sites_done": sum(1 for s in sites if s["status"] == "done"),
            "sites": len(sites),
            "vms_moved": sum(len(s["moved"]) for s in sites),
            "devices_changed": len({d["host"] for e in done_entries for d in e["devices"] if d["pushed"]}),
            "rollbacks": sum(1 for e in entries if e["rollback"] or e["kind"] == "rollback"),
        },
        "waves": waves,
        "pending": pending,
    }


def write_evidence(
    plan: Plan, output: Path, fmt: str = "html", lang: str | None = None, base: Path | None = None
) -> Path:
    """Write the pack as ``<output>/evidence-<code>.<html|md|pdf>`` (the PDF beside its HTML)."""
    if fmt not in FORMATS:
        raise EvidenceRefused(f"unknown format {fmt!r} (one of: {', '.join(FORMATS)})")
    view = evidence_view(plan, lang, base)
    stem = output / f"evidence-{plan.municipality.code}"
    template, path = (
        ("evidence.md.j2", stem.with_suffix(".md")) if fmt == "md" else ("evidence.html.j2", stem.with_suffix(".html"))
    )
    text = reports.render(template, r=view, l=view["l"])
    try:
        output.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise EvidenceRefused(f"--output {output}: cannot write {path.name} there ({exc.strerror or exc})") from exc
    return reports.html_to_pdf(path, stem.with_suffix(".pdf")) if fmt == "pdf" else path


def evidence_markdown(plan: Plan, lang: str | None = None, base: Path | None = None) -> str:
    """The pack as markdown (the Prefect artifact)."""
    view = evidence_view(plan, lang, base)
    return reports.render("evidence.md.j2", r=view, l=view["l"])
