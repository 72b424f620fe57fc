"""Fingerprints: what a pre-check saw, so a later cutover can refuse what changed since.

Like a saved Terraform plan: a pre-check records, per VM, its host, datastores, power state and
portgroups, and per device the sha256 of its running config. A cutover re-reads the estate and
compares; a site with any item that differs is refused, naming each item and what changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from overflyt.plan import Plan
from overflyt.precheck.facts import EstateFacts

FILE = "fingerprints.json"


def take(plan: Plan, wave: int, sites: list[str], facts: EstateFacts) -> dict[str, Any]:
    """The fingerprint of the wave's VMs and devices in ``sites``, from observed facts."""
    vms: dict[str, Any] = {}
    seen = {
        v.name: v for v in (facts.source.vms.values() if facts.source else []) if v.datacenter == plan.source.datacenter
    }
    pulled = set(plan.wave(wave).vms)  # VMs of subnets moving ahead of their site: always the wave's
    for vm in plan.vms_of_wave(wave):
        if vm.site not in sites and vm.name not in pulled:
            continue
        found = seen.get(vm.name)
        vms[vm.name] = (
            None
            if found is None
            else {
                "host": found.host,
                "datastores": sorted(found.datastores),
                "power": found.power,
                "portgroups": sorted(found.portgroups),
            }
        )
    devices = {
        d.hostname: (facts.devices[d.hostname].running_config_sha256 if d.hostname in facts.devices else None)
        for d in plan.devices
        if d.site in sites
    }
    return {"vms": vms, "devices": devices}


def save(directory: Path, fingerprint: dict[str, Any], run_id: str, taken_at: str) -> Path:
    path = directory / FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(json.dumps({"run_id": run_id, "taken_at": taken_at, **fingerprint}, indent=2), encoding="utf-8")
    return path


def load(directory: Path) -> dict[str, Any] | None:
    path = directory / FILE
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def stale(plan: Plan, saved: dict[str, Any], now: dict[str, Any]) -> dict[str, list[str]]:
    """Per site, every item that changed since the saved fingerprint (sites with none are absent)."""
    site_of_vm = {vm.name: vm.site for vm in plan.vms}
    site_of_device = {d.hostname: d.site for d in plan.devices}
    when = f"the pre-check {saved.get('run_id', '')} ({saved.get('taken_at', '?')})"
    changes: dict[str, list[str]] = {}
    for name, before in (saved.get("vms") or {}).items():
        if name not in now["vms"]:
            continue
        after = now["vms"][name]
        if before == after:
            continue
        if after is None:
            what = "is gone"
        elif before is None:
            what = "appeared"
        else:
            what = ", ".join(f"{k} {before[k]} -> {after[k]}" for k in before if before[k] != after.get(k))
        changes.setdefault(site_of_vm[name], []).append(f"VM {name} changed since {when}: {what}")
    for host, before in (saved.get("devices") or {}).items():
        if host in now["devices"] and now["devices"][host] != before:
            changes.setdefault(site_of_device[host], []).append(
                f"device {host}'s running config changed since {when} (sha256 {str(before)[:12]} -> "
                f"{str(now['devices'][host])[:12]})"
            )
    return changes
