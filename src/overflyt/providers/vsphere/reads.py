"""Read-only facts of a vCenter, read in bulk through the PropertyCollector.

* :func:`gather_facts` — the :class:`~overflyt.precheck.facts.VCenterFacts` of some datacenters in
  a fixed number of calls: one ContainerView per datacenter and one paged
  ``RetrievePropertiesEx`` for every object of every type (or, scoped to some VMs, only their
  names there and one call more for those VMs' properties);
* :func:`collect_facts` — connects, gathers and disconnects, and never raises for an unreachable
  endpoint or a refused login (the facts say so, for the pre-check rules to judge);
* :func:`vm_placement` — where one VM is now.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Collection
from typing import Any

from overflyt.errors import MigrationStepFailed, ProviderUnreachable
from overflyt.precheck.facts import (
    ClusterFacts,
    DatastoreFacts,
    HostFacts,
    PortgroupFacts,
    VCenterFacts,
    VMFacts,
)
from overflyt.providers.vsphere.collector import (
    HOST_FACTS,
    VM_FACTS,
    Inventory,
    Obj,
    find_vm,
    home_datastores,
    placement_of,
    read_inventory,
)
from overflyt.providers.vsphere.models import Placement, ToolsState, VCenterConnection
from overflyt.providers.vsphere.session import LoginFailed, VSphereSession, boundary, connect, vim

log = logging.getLogger(__name__)

_TOOLS_OLD = {"guestToolsNeedUpgrade", "guestToolsTooOld", "guestToolsSupportedOld", "guestToolsBlacklisted"}


def _tools(running: str | None, status: str | None, version: str | None) -> ToolsState:
    """guest.toolsRunningStatus / toolsStatus / toolsVersionStatus2 -> one word.

    Not installed wins, then too old, then not running (a powered-off VM's tools never run);
    vcsim 0.24 reports toolsNotInstalled / guestToolsNotRunning for every VM, so the lab's VMs
    read as not_installed.
    """
    if status == "toolsNotInstalled" or version == "guestToolsNotInstalled":
        return "not_installed"
    if status == "toolsOld" or version in _TOOLS_OLD:
        return "old"
    if running != "guestToolsRunning" or status == "toolsNotRunning":
        return "not_running"
    return "ok"


def _disk_gb(disk: Any) -> int:
    size = disk.capacityInBytes or (disk.capacityInKB or 0) * 1024
    return math.ceil(size / 2**30)


def _label(device: Any) -> str:
    info = device.deviceInfo
    return str(info.label) if info is not None and info.label else f"{type(device).__name__} {device.key}"


def _devices_of_concern(devices: list[Any]) -> tuple[list[str], list[str], list[str]]:
    """(connected media, shared disks, passthrough devices) of a VM's device list."""
    media: list[str] = []
    shared: list[str] = []
    passthrough: list[str] = []
    shared_bus = {
        d.key
        for d in devices
        if isinstance(d, vim.vm.device.VirtualSCSIController) and d.sharedBus not in (None, "noSharing")
    }
    for d in devices:
        if isinstance(d, vim.vm.device.VirtualCdrom | vim.vm.device.VirtualFloppy):
            connectable = d.connectable
            connected = connectable is not None and (connectable.connected or connectable.startConnected)
            backing = d.backing
            source = getattr(backing, "fileName", None) or getattr(backing, "deviceName", None)
            if connected and backing is not None:
                media.append(f"{_label(d)}: {source}" if source else _label(d))
        elif isinstance(d, vim.vm.device.VirtualDisk):
            backing = d.backing
            reasons = []
            if isinstance(backing, vim.vm.device.VirtualDisk.RawDiskMappingVer1BackingInfo):
                reasons.append(f"RDM {backing.compatibilityMode or ''}".strip())
            sharing = getattr(backing, "sharing", None)
            if sharing not in (None, "sharingNone"):
                reasons.append(str(sharing))
            if d.controllerKey in shared_bus:
                reasons.append("shared SCSI bus")
            if reasons:
                shared.append(f"{_label(d)} ({', '.join(reasons)})")
        elif isinstance(
            d,
            vim.vm.device.VirtualUSB
            | vim.vm.device.VirtualSerialPort
            | vim.vm.device.VirtualParallelPort
            | vim.vm.device.VirtualPCIPassthrough,
        ):
            passthrough.append(_label(d))
    return media, shared, passthrough


def _snapshots(snapshot: Any) -> list[str]:
    names: list[str] = []

    def walk(trees: list[Any]) -> None:
        for tree in trees or []:
            names.append(str(tree.name))
            walk(tree.childSnapshotList)

    if snapshot is not None:
        walk(snapshot.rootSnapshotList)
    return names


def _key(mapping: dict[str, Any], name: str, datacenter: str, moid: str) -> str:
    """Objects are keyed by name; a name seen before (another datacenter or folder) gets qualified."""
    for key in (name, f"{datacenter}/{name}", f"{datacenter}/{name}#{moid}"):
        if key not in mapping:
            return key
    return moid


def gather_facts(session: VSphereSession, datacenters: list[str], vms: Collection[str] | None = None) -> VCenterFacts:
    """Read-only facts of ``datacenters`` (all datacenters when empty) in a fixed number of calls.

    Every datacenter found appears in ``folders`` (possibly with an empty list), so a missing one is
    visible. Objects are keyed by name; a name already taken (e.g. ``VM Network`` in two datacenters)
    is keyed ``<datacenter>/<name>``. Templates are not VMs here.

    ``vms`` (display names) scopes the read to those VMs (every VM of each name; one call more): the
    facts' ``vms`` then hold only them, ``vms_read`` names them, and the clusters' allocated CPU and
    memory count only them. What a migration step asks of its VMs needs no more; the pre-check's
    capacity rules read unscoped.
    """
    started = time.monotonic()
    with boundary(session, "reading the inventory"):
        inv = read_inventory(session, datacenters or None, VM_FACTS, HOST_FACTS, only_vms=vms)
    facts = _facts(session, inv)
    if vms is not None:
        facts = facts.model_copy(update={"vms_read": sorted(set(vms))})
    log.info(
        "%s: facts of %d VMs%s, %d hosts in %.2f s",
        session.endpoint.where,
        len(facts.vms),
        "" if vms is None else f" (of {len(set(vms))} names asked)",
        len(facts.hosts),
        time.monotonic() - started,
    )
    return facts


def _facts(session: VSphereSession, inv: Inventory) -> VCenterFacts:
    hosts: dict[str, HostFacts] = {}
    host_of: dict[str, HostFacts] = {}
    vlans: dict[tuple[str, str], int] = {}
    for h in inv.of("HostSystem"):
        hw = h.get("summary.hardware")
        stats = h.get("summary.quickStats")
        cluster = inv.cluster_of_host(h)
        dc = inv.datacenter(h) or ""
        cores = int(hw.numCpuCores or 0) if hw is not None else 0
        facts = HostFacts(
            name=h.name,
            datacenter=dc,
            cluster=cluster.name if cluster is not None else None,
            connected=h.get("runtime.connectionState") == "connected",
            maintenance=bool(h.get("runtime.inMaintenanceMode", False)),
            cpu_cores=cores,
            cpu_mhz=cores * int(hw.cpuMhz or 0) if hw is not None else 0,
            cpu_used_mhz=int(stats.overallCpuUsage or 0) if stats is not None else 0,
            memory_mb=int(hw.memorySize or 0) // 2**20 if hw is not None else 0,
            memory_used_mb=int(stats.overallMemoryUsage or 0) if stats is not None else 0,
        )
        hosts[_key(hosts, h.name, dc, h.moid)] = facts
        host_of[h.moid] = facts
        for pg in h.get("config.network.portgroup", []):
            if pg.spec is not None and pg.spec.vlanId:
                vlans.setdefault((dc, str(pg.spec.name)), int(pg.spec.vlanId))

    vms: dict[str, VMFacts] = {}
    allocated: dict[str, list[int]] = {}
    for vm in inv.vms():
        place = placement_of(vm, inv)
        devices = vm.get("config.hardware.device", [])
        media, shared, passthrough = _devices_of_concern(devices)
        cpu = int(vm.get("config.hardware.numCPU", 0))
        memory = int(vm.get("config.hardware.memoryMB", 0))
        vms[_key(vms, vm.display_name, place.datacenter, vm.moid)] = VMFacts(
            name=vm.display_name,
            moid=vm.moid,
            uuid=vm.get("config.uuid"),
            datacenter=place.datacenter,
            cluster=place.cluster,
            host=place.host,
            folder=place.folder,
            datastores=home_datastores(vm, inv),
            cpu=cpu,
            memory_mb=memory,
            disks_gb=[_disk_gb(d) for d in devices if isinstance(d, vim.vm.device.VirtualDisk)],
            portgroups=place.portgroups,
            power=place.power,
            tools=_tools(
                vm.get("guest.toolsRunningStatus"), vm.get("guest.toolsStatus"), vm.get("guest.toolsVersionStatus2")
            ),
            snapshots=_snapshots(vm.get("snapshot")),
            connected_media=media,
            shared_disks=shared,
            passthrough=passthrough,
        )
        host = inv.objects.get(str(vm.props["runtime.host"]._GetMoId())) if vm.get("runtime.host") else None
        cluster = inv.cluster_of_host(host)
        if cluster is not None:
            totals = allocated.setdefault(cluster.moid, [0, 0])
            totals[0] += cpu
            totals[1] += memory

    clusters: dict[str, ClusterFacts] = {}
    for c in inv.of("ClusterComputeResource"):
        members = [host_of[h.moid] for h in inv.of("HostSystem") if h.parent() == c.moid and h.moid in host_of]
        dc = inv.datacenter(c) or ""
        cpu, memory = allocated.get(c.moid, [0, 0])
        clusters[_key(clusters, c.name, dc, c.moid)] = ClusterFacts(
            name=c.name,
            datacenter=dc,
            hosts=sorted(h.name for h in members),
            cpu_cores=sum(h.cpu_cores for h in members),
            memory_mb=sum(h.memory_mb for h in members),
            allocated_vcpu=cpu,
            allocated_memory_mb=memory,
        )

    datastores: dict[str, DatastoreFacts] = {}
    for ds in inv.of("Datastore"):
        dc = inv.datacenter(ds) or ""
        datastores[_key(datastores, ds.name, dc, ds.moid)] = DatastoreFacts(
            name=ds.name,
            datacenter=dc,
            capacity_gb=round(int(ds.get("summary.capacity", 0)) / 2**30, 1),
            free_gb=round(int(ds.get("summary.freeSpace", 0)) / 2**30, 1),
        )

    portgroups: dict[str, PortgroupFacts] = {}
    for net in sorted(inv.of("Network") + inv.of("DistributedVirtualPortgroup"), key=lambda o: o.name):
        dc = inv.datacenter(net) or ""
        vlan = _dvpg_vlan(net.get("config.defaultPortConfig")) if net.kind != "Network" else vlans.get((dc, net.name))
        if net.kind == "DistributedVirtualPortgroup" and _is_uplink(net, inv):
            continue
        portgroups[_key(portgroups, net.name, dc, net.moid)] = PortgroupFacts(name=net.name, datacenter=dc, vlan=vlan)

    folders: dict[str, list[str]] = {dc.name: [] for dc in inv.datacenters.values()}
    for f in inv.of("Folder"):
        path = inv.folder_path(f.moid)
        folder_dc = inv.datacenter(f)
        if path and folder_dc is not None:
            folders.setdefault(folder_dc, []).append(path)
    for paths in folders.values():
        paths.sort()

    about = session.content.about
    return VCenterFacts(
        name=session.name,
        url=session.url,
        reachable=True,
        tls=session.tls,
        certificate_sha256=session.certificate_sha256,
        version=str(about.version),
        instance_uuid=str(about.instanceUuid),
        vms=vms,
        hosts=hosts,
        clusters=clusters,
        datastores=datastores,
        portgroups=portgroups,
        folders=folders,
    )


def _dvpg_vlan(setting: Any) -> int | None:
    """The VLAN of a distributed portgroup: its VLAN id; None for none (0), trunks and PVLANs."""
    vlan = getattr(setting, "vlan", None)
    if isinstance(vlan, vim.dvs.VmwareDistributedVirtualSwitch.VlanIdSpec) and vlan.vlanId:
        return int(vlan.vlanId)
    return None


def _is_uplink(pg: Obj, inv: Inventory) -> bool:
    """A distributed switch's uplink portgroup is not a network VMs connect to."""
    for switch in inv.of("VmwareDistributedVirtualSwitch") + inv.of("DistributedVirtualSwitch"):
        uplinks = switch.get("config.uplinkPortgroup", [])
        if any(ref._GetMoId() == pg.moid for ref in uplinks):
            return True
    return False


def collect_facts(
    endpoint: VCenterConnection, datacenters: list[str], vms: Collection[str] | None = None
) -> VCenterFacts:
    """Connect, gather (``vms``: only those VMs, see :func:`gather_facts`), disconnect; an
    unreachable endpoint or refused login becomes facts with ``reachable`` false (or
    ``login_failed``) and ``error`` set, never an exception."""
    try:
        with connect(endpoint) as session:
            return gather_facts(session, datacenters, vms)
    except LoginFailed as exc:
        return VCenterFacts(
            name=endpoint.name, url=endpoint.url, reachable=True, login_failed=True, error=str(exc), tls=endpoint.tls
        )
    except ProviderUnreachable as exc:
        return VCenterFacts(name=endpoint.name, url=endpoint.url, reachable=False, error=str(exc))


def vm_placement(session: VSphereSession, vm: str, *, datacenter: str | None = None) -> Placement:
    """Where VM ``vm`` is now. Raises MigrationStepFailed when there is none (or more than one)."""
    with boundary(session, f"reading the placement of vm {vm}"):
        found = find_vm(session, vm, datacenter)
    if found is None:
        scope = f"datacenter {datacenter}" if datacenter else "any datacenter"
        raise MigrationStepFailed(f"vm {vm}: not found in {scope} of {session.endpoint.where}")
    inv, obj = found
    return placement_of(obj, inv)
