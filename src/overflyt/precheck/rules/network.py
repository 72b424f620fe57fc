"""Network map checks: every portgroup the wave's VMs use is mapped, and its target portgroup is there."""

from __future__ import annotations

from collections.abc import Iterator

from overflyt.plan.model import NetworkMapping
from overflyt.precheck.findings import Severity
from overflyt.precheck.registry import CheckContext, Outcome, Subject, fail, find, ok, rule, skip


def _used(ctx: CheckContext) -> dict[str, list[tuple[str, str]]]:
    """Source portgroup -> (VM, site) using it: as planned and, where the VM was found, as observed."""
    used: dict[str, list[tuple[str, str]]] = {}
    for vm in ctx.vms:
        seen = ctx.source_vm(vm.name)
        portgroups = list(vm.portgroups) + (list(seen.portgroups) if seen else [])
        for pg in dict.fromkeys(portgroups):
            used.setdefault(pg, []).append((vm.name, vm.site))
    return used


def _site(users: list[tuple[str, str]]) -> str | None:
    """The one site a portgroup's VMs belong to (a subnet has one home site), else wave-wide."""
    sites = {site for _, site in users}
    return sites.pop() if len(sites) == 1 else None


def _mapped(ctx: CheckContext) -> Iterator[tuple[NetworkMapping, list[tuple[str, str]]]]:
    mapping = {m.source: m for m in ctx.plan.network_map}
    for pg, users in _used(ctx).items():
        if pg in mapping:
            yield mapping[pg], users


@rule("netmap.mapped", title="Portgroup is mapped", severity=Severity.critical)
def netmap_mapped(ctx: CheckContext) -> Iterator[Outcome]:
    """Every portgroup a VM of the wave is connected to has a `network_map` entry.

    Plan validation already refuses an unmapped planned portgroup; this check also covers the
    portgroups the VMs are actually connected to (a NIC added since the plan was written). Add a
    `network_map` entry (target portgroup, VLAN, subnet), or disconnect the NIC.
    """
    mapped = {m.source for m in ctx.plan.network_map}
    for pg, users in _used(ctx).items():
        subject = Subject("portgroup", pg, _site(users))
        vms = [name for name, _ in users]
        if pg in mapped:
            yield ok(subject)
        else:
            yield fail(
                subject,
                f"Portgroup {pg} (used by {', '.join(vms)}) has no network_map entry; add one with its target "
                "portgroup, VLAN and subnet, or disconnect the NIC",
                {"vms": list(vms)},
            )


@rule("netmap.target_exists", title="Target portgroup exists", severity=Severity.critical)
def netmap_target_exists(ctx: CheckContext) -> Iterator[Outcome]:
    """The target portgroup of every mapped portgroup the wave uses exists in the target datacenter.

    Create it (on the target distributed switch, with the mapping's VLAN), or fix
    `network_map[].target`.
    """
    inventory, reason = ctx.inventory("target")
    datacenter = ctx.plan.target.datacenter
    for mapping, users in _mapped(ctx):
        subject = Subject("portgroup", mapping.target, _site(users))
        if inventory is None:
            yield skip(subject, reason)
        elif find(inventory.portgroups, mapping.target, datacenter) is None:
            yield fail(
                subject,
                f"Target portgroup {mapping.target} (mapped from {mapping.source}) does not exist in datacenter "
                f"{datacenter} of target vCenter {ctx.plan.target.vcenter.name}; create it with VLAN {mapping.vlan} "
                "or fix network_map",
                {"source": mapping.source, "datacenter": datacenter, "vlan": mapping.vlan},
            )
        else:
            yield ok(subject)


@rule("netmap.vlan", title="Target portgroup has the mapped VLAN", severity=Severity.critical)
def netmap_vlan(ctx: CheckContext) -> Iterator[Outcome]:
    """The target portgroup carries the VLAN the network map gives it (`network_map[].vlan`).

    A different VLAN would cut the moved servers off their subnet: fix the portgroup or the map.
    When the vCenter reports no VLAN for the portgroup (trunk or private VLAN), the check passes
    with an info finding — verify it by hand.
    """
    inventory, reason = ctx.inventory("target")
    datacenter = ctx.plan.target.datacenter
    for mapping, users in _mapped(ctx):
        subject = Subject("portgroup", mapping.target, _site(users))
        if inventory is None:
            yield skip(subject, reason)
            continue
        found = find(inventory.portgroups, mapping.target, datacenter)
        if found is None:
            yield skip(subject, f"portgroup {mapping.target} does not exist (see netmap.target_exists)")
        elif found.vlan is None:
            yield ok(
                subject,
                f"Target portgroup {mapping.target} reports no VLAN id; verify by hand that it carries VLAN "
                f"{mapping.vlan}",
                {"plan": mapping.vlan, "actual": None},
            )
        elif found.vlan != mapping.vlan:
            yield fail(
                subject,
                f"Target portgroup {mapping.target} has VLAN {found.vlan}, the network map says {mapping.vlan}; fix "
                "the portgroup or network_map",
                {"plan": mapping.vlan, "actual": found.vlan},
            )
        else:
            yield ok(subject)
