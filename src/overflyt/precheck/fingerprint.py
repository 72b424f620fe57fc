"""Fingerprints: what a pre-check saw, so a later cutover can refuse what changed since.

Like a saved Terraform plan: a pre-check records, per VM, its host, datastores, power state and
portgroups, and per device the sha256 of its running config. A cutover re-reads the estate and
compares; a site with any item that differs is refused, naming each item and what changed. The
waivers in force (waivers.yml) are part of it: one added, changed, removed or expired since the
pre-check refuses the sites it concerns (every site of the wave when its item is wave-wide).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from overflyt.plan import Plan
from overflyt.plan.waivers import PlacedWaiver
from overflyt.precheck.facts import EstateFacts

FILE = "fingerprints.json"


def take(
    plan: Plan, wave: int, sites: list[str], facts: EstateFacts, waivers: Sequence[PlacedWaiver] = ()
) -> dict[str, Any]:
    """The fingerprint of the wave's VMs and devices in ``sites``, from observed facts, and of the
    ``waivers`` in force."""
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
    return {"vms": vms, "devices": devices, "sites": list(sites), "waivers": waiver_prints(waivers)}


def waiver_prints(waivers: Sequence[PlacedWaiver]) -> list[dict[str, str]]:
    """The waivers as the fingerprint holds them: what each says, sorted (not where it is written)."""
    return sorted(
        ({k: str(v) for k, v in w.waiver.model_dump(mode="json").items()} for w in waivers),
        key=lambda d: (d["finding"], d["item"]),
    )


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
    _stale_waivers(plan, saved, now, when, changes)
    return changes


def _stale_waivers(
    plan: Plan, saved: dict[str, Any], now: dict[str, Any], when: str, changes: dict[str, list[str]]
) -> None:
    before = {(w["finding"], w["item"]): w for w in saved.get("waivers") or []}
    after = {(w["finding"], w["item"]): w for w in now.get("waivers") or []}
    site_of = {vm.name: vm.site for vm in plan.vms} | {d.hostname: d.site for d in plan.devices}
    site_of |= {s.id: s.id for s in plan.sites}
    sites = list(now.get("sites") or [])
    for key in sorted(before.keys() | after.keys()):
        if before.get(key) == after.get(key):
            continue
        what = "added" if key not in before else "removed or expired" if key not in after else "changed"
        line = f"waiver of {key[0]} for {key[1]} {what} since {when}"
        # a VM, device or site: its site, when this cutover is about it; a wave-wide item (a vCenter,
        # a datastore, ...): every site of the cutover
        own = site_of.get(key[1])
        concerned: list[str] = sites if own is None else [own] if own in sites else []
        for site in concerned:
            changes.setdefault(site, []).append(line)
