"""The wave's and the rollback's own report (report.json, report.md in the run record; the
Prefect artifact): built from a :class:`~overflyt.cutover.outcome.WaveOutcome` only; report.md is
the template ``templates/wave.md.j2`` (an on-demand rollback's ``templates/rollback.md.j2``;
:mod:`overflyt.reports`), its last section what the wave's maintenance window meant for the run
(and that a rollback is always allowed outside it).

The report shows the municipality, wave and sites by name and id (:class:`~overflyt.cutover.outcome.Names`,
from the plan), its times in Europe/Copenhagen, and its words in the outcome's language
(``templates/i18n/<lang>.yml``, key ``run_report``); what the run recorded in words (errors, the
blocking findings, overrides, the window's note) is quoted as recorded."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from overflyt.cutover.outcome import Names, WaveOutcome, shown_status
from overflyt.plan import Plan
from overflyt.plan.ahead import ahead_subnets, unit_name
from overflyt.reports import labels, named, render


def names_of(plan: Plan, wave: int) -> Names:
    """What the plan calls the municipality, the wave and its sites, and the wave's window."""
    w = plan.wave(wave)
    return Names(
        municipality=plan.municipality.name,
        wave=w.name,
        window={"start": w.window.start.isoformat(), "end": w.window.end.isoformat()},
        sites={s.id: s.name for s in plan.sites} | {u.key: unit_name(plan, u.key) for u in ahead_subnets(plan)},
    )


def _heading(outcome: WaveOutcome) -> dict[str, Any]:
    """What both reports open with: the words, the municipality, the wave and its window."""
    n = outcome.names
    return {
        "l": labels(outcome.lang),
        "municipality": {"name": n.municipality, "code": outcome.municipality},
        "wave": outcome.wave,
        "wave_name": n.wave,
        "wave_window": n.window,
        "run_id": outcome.run_id,
    }


def report_data(outcome: WaveOutcome) -> dict[str, Any]:
    return {
        "municipality": outcome.municipality,
        "wave": outcome.wave,
        "dry_run": outcome.dry_run,
        "run_id": outcome.run_id,
        "run_dir": str(outcome.run_dir),
        "blocked_by_prechecks": outcome.blocked,
        "blocked_by": outcome.blocked_by,
        "precheck": outcome.precheck,
        "overrides": outcome.overrides,
        "approval": asdict(outcome.approval) if outcome.approval else None,
        "window": outcome.window,
        "names": asdict(outcome.names),
        "lang": outcome.lang,
        "sites": [asdict(s) for s in outcome.sites],
        "exit_code": outcome.exit_code,
    }


def report_markdown(outcome: WaveOutcome) -> str:
    """report.md in the outcome's language: ``templates/wave.md.j2`` rendered from :func:`markdown_view`;
    an on-demand rollback's is ``templates/rollback.md.j2`` from :func:`rollback_view`."""
    if outcome.kind == "rollback":
        view = rollback_view(outcome)
        return render("rollback.md.j2", r=view, l=view["l"])
    view = markdown_view(outcome)
    return render("wave.md.j2", r=view, l=view["l"])


def _vm_rows(vms: Any) -> list[dict[str, str]]:
    """One row per VM of a migration's or a rollback's per-VM results: its name as vSphere has it,
    its status and where it went."""
    rows = []
    for name, vm in (vms or {}).items() if isinstance(vms, dict) else ():
        after = vm.get("after") or vm.get("target") or {}
        where = " / ".join(str(after.get(k, "")) for k in ("host", "datastore", "folder") if after.get(k))
        rows.append({"name": str(name), "status": str(vm.get("status", "")), "where": where})
    return rows


def markdown_view(outcome: WaveOutcome) -> dict[str, Any]:
    """What the wave report shows, as plain data: each site's steps, VM moves and device changes."""
    sites = []
    site_name = outcome.names.sites.get
    for site in outcome.sites:
        vms = (site.vms or {}).get("vms") if isinstance(site.vms, dict) else None
        devices = (site.devices or {}).get("devices") if isinstance(site.devices, dict) else None
        back = (site.rollback or {}).get("vms") if isinstance(site.rollback, dict) else None
        back_vms = (back or {}).get("vms") if isinstance(back, dict) else None
        sites.append(
            {
                "site": named(site_name(site.site), site.site),
                "status": shown_status(site.status, site.postcheck),
                "error": site.error,
                "steps": site.steps,
                "vms": _vm_rows(vms),
                "restored_vms": _vm_rows(back_vms),
                "devices": [
                    {"host": host, "pending": list(dev.get("pending_lines") or [])}
                    for host, dev in (devices or {}).items()
                ],
                "rollback": sorted(site.rollback),
                "window": site.window,
            }
        )
    return {
        **_heading(outcome),
        "kind": "dry_run" if outcome.dry_run else "cutover",
        "precheck": outcome.precheck,
        "blocked": outcome.blocked,
        "blocked_by": outcome.blocked_by,
        "overrides": outcome.overrides,
        "approval": asdict(outcome.approval) if outcome.approval else None,
        "sites": sites,
        # the window's section (none in a dry run): whether this run held it and how, the sites it held
        # back or that ran past it, and that a rollback is always allowed outside it (held None: a run
        # recorded before the window's facts were: its note as recorded)
        "window": None if outcome.window is None else _window(outcome.window),
        "held_back": [named(site_name(s.site), s.site) for s in outcome.sites if s.status == "not_started"],
    }


def _window(window: dict[str, Any]) -> dict[str, Any]:
    return {
        "note": str(window.get("note", "")),
        "held": window.get("held"),
        "on_window_end": window.get("on_window_end", "finish"),
        "margin_min": window.get("margin_min", 0),
    }


def rollback_view(outcome: WaveOutcome) -> dict[str, Any]:
    """What an on-demand rollback's report (``templates/rollback.md.j2``) shows: per site, each device
    restored (backup and resulting sha256, how the change was found) and each VM put back."""
    sites = []
    for site in outcome.sites:
        done = site.rollback or {}
        devices = ((done.get("devices") or {}).get("devices") or {}) if isinstance(done, dict) else {}
        vms = ((done.get("vms") or {}).get("vms") or {}) if isinstance(done, dict) else {}
        found = dict(done.get("classified") or {}) if isinstance(done, dict) else {}
        sites.append(
            {
                "site": named(outcome.names.sites.get(site.site), site.site),
                "status": site.status,
                "error": site.error,
                "seconds": site.steps.get("rollback"),
                "devices": [
                    {
                        "host": h,
                        "restored": bool(d.get("restored")),
                        "backup": str(d.get("backup_sha256", "")),
                        "after": str(d.get("after_sha256", "")),
                        "found": found.get(h, ""),
                    }
                    for h, d in sorted(devices.items())
                ],
                "vms": [
                    {"name": n, "status": v.get("status", ""), "where": _placed(v.get("after"))}
                    for n, v in sorted(vms.items())
                ],
            }
        )
    return {
        **_heading(outcome),
        "sites": sites,
        "window": None if outcome.window is None else str(outcome.window["note"]),
    }


def _placed(where: dict[str, Any] | None) -> str:
    where = where or {}
    parts = [str(where.get(k)) for k in ("host", "datastore") if where.get(k)]
    return " / ".join([*parts, ", ".join(where.get("portgroups") or [])]) if parts else ""
