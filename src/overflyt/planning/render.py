"""The proposed plan as a YAML plan file: flow-style entries, one per line, commented with what the
planner assumed and each wave's estimate. Deterministic: the same plan, byte for byte."""

from __future__ import annotations

import json
import re
from typing import Any

from overflyt.plan.ahead import ahead_subnets
from overflyt.planning.cost import move_cost
from overflyt.planning.estimates import WaveEstimate, WavePlan
from overflyt.planning.options import PLACEHOLDER, TIMEZONE, PlanningOptions

_PLAIN = re.compile(r"^[^\W\d_][\w .@/+-]*(?<! )$")
_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}(/\d{1,2})?$")
_KEYWORDS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if (_PLAIN.match(text) and text.lower() not in _KEYWORDS) or _ADDRESS.match(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def _count(n: int, thing: str) -> str:
    plural = "es" if thing.endswith("ch") else "s"
    return f"{n} {thing}{plural if n != 1 else ''}"


def _hours(minutes: float) -> str:
    return f"{minutes / 60:.1f} h"


def _window(estimate: WaveEstimate, options: PlanningOptions) -> dict[str, str]:
    window = {"start": f"{estimate.start:%Y-%m-%d %H:%M}", "end": f"{estimate.end:%Y-%m-%d %H:%M}"}
    if options.timezone != TIMEZONE:
        window["timezone"] = options.timezone
    return window


def render_plan(result: WavePlan, estate_name: str) -> str:
    """The plan as a YAML plan file, commented with what the planner assumed and each wave's estimate."""
    plan, options = result.plan, result.options
    data = plan.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    limits = options.concurrency
    out = [
        f"# Proposed migration plan: {plan.municipality.name} ({plan.municipality.code}), written by",
        f"# `overflyt plan waves` from {estate_name}. Edit it before use: every {PLACEHOLDER} is a placeholder",
        "# (the target datacentre, the credentials' usernames, the storage map's target datastores), and the",
        "# network_map targets and VLANs and the sites' dc_link subnets are proposals. Then run",
        "# `overflyt plan validate` on it.",
        "#",
        f"# Waves sized for {options.window_hours:g} h windows, {options.waves_per_week} a week, at "
        f"{options.bandwidth_mbps:,} Mbps replication,",
        f"# {options.site_minutes:g} min per site cutover and {options.vm_minutes:g} min per batch of VM moves "
        f"(at most {limits.global_} at once, {limits.per_host} per host,",
        f"# {limits.per_datastore} per datastore, {limits.per_site} per site"
        f"{f'; {limits.sites} sites at once' if limits.sites > 1 else ''}).",
        "schema_version: 1",
        "",
        f"municipality: {_flow(data['municipality'])}",
        "",
        "credentials:",
    ]
    for name, credential in data["credentials"].items():
        out.append(f"  {name}: {_flow(credential)}")
    source = data["source"]
    out += [
        "",
        "source:",
        f"  vcenter: {_flow(source['vcenter'])}",
        f"  datacenter: {_scalar(source['datacenter'])}",
        f"  cluster: {_scalar(source['cluster'])}",
        "",
        "target:",
    ]
    for key, value in data["target"].items():
        out.append(f"  {key}: {_flow(value)}")
    out += ["", "network_map:"] if data.get("network_map") else ["", "network_map: []"]
    out += [f"  - {_flow(m)}" for m in data.get("network_map", [])]
    out += ["", "storage_map:"] if data.get("storage_map") else ["", "storage_map: []"]
    out += [f"  - {_flow(m)}" for m in data.get("storage_map", [])]
    out += ["", "sites:"]
    for site in data["sites"]:
        out.append(f"  - id: {_scalar(site['id'])}")
        out += [f"    {key}: {_flow(value)}" for key, value in site.items() if key != "id"]
    out += ["", "devices:"] if data.get("devices") else ["", "devices: []"]
    out += [f"  - {_flow(d)}" for d in data.get("devices", [])]
    out += ["", "vms:"] if data.get("vms") else ["", "vms: []"]
    out += [f"  - {_flow(vm)}" for vm in data.get("vms", [])]
    concurrency = {"global": limits.global_, "per_host": limits.per_host}
    concurrency |= {"per_datastore": limits.per_datastore, "per_site": limits.per_site}
    concurrency |= {"sites": limits.sites} if limits.sites > 1 else {}
    out += ["", f"concurrency: {_flow(concurrency)}", "", "waves:"]
    for wave, estimate in zip(data["waves"], result.estimates, strict=True):
        ahead = f" ({len(estimate.ahead)} ahead of their site)" if estimate.ahead else ""
        sites, vms = _count(len(estimate.sites), "site"), _count(len(estimate.vms), "VM")
        cutovers = _count(len(estimate.sites), "site cutover")
        if estimate.ahead_subnets:
            cutovers += f" + {_count(len(estimate.ahead_subnets), 'subnet')} ahead"
        out += [
            f"  # {sites}, {vms}{ahead}, {estimate.disk_gb:,} GB: about {_hours(estimate.minutes)} "
            f"of a {_hours(estimate.window_minutes)} window",
            f"  # (transfer {_hours(estimate.transfer_minutes)}, {_count(len(estimate.batches), 'batch')} x "
            f"{options.vm_minutes:g} min, {cutovers} x {options.site_minutes:g} min)",
        ]
        out += _ahead_rows(result, int(wave["number"]))
        out += [
            f"  - number: {wave['number']}",
            f"    name: {_scalar(wave['name'])}",
            f"    window: {_flow(_window(estimate, options))}",
            "    sites:",
        ]
        out += [f"      - {_scalar(s)}" for s in wave["sites"]]
        if wave.get("vms"):
            out.append("    vms:")
            out += [f"      - {_scalar(v)}" for v in wave["vms"]]
    return "\n".join(out) + "\n"


def _ahead_rows(result: WavePlan, wave: int) -> list[str]:
    """One comment row per server subnet the wave moves ahead of its site: its own unit of the wave
    (its VMs, disk and the minutes the cutover's window check will estimate for it)."""
    plan, options = result.plan, result.options
    storage = {m.source: m.target for m in plan.storage_map}
    rows = []
    for unit in ahead_subnets(plan, wave):
        vms = [vm for vm in plan.vms if vm.name in unit.vms]
        cost = move_cost(
            vms, storage, plan.concurrency, bandwidth_mbps=options.bandwidth_mbps, vm_minutes=options.vm_minutes
        )
        rows.append(
            f"  #   ahead: {unit.key}: subnet {unit.subnet} of site {unit.site}, {_count(len(vms), 'VM')}, "
            f"{cost.disk_gb:,} GB: about {_hours(cost.minutes + options.site_minutes)}"
        )
    return rows
