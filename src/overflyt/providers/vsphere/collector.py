"""Bulk reads through the PropertyCollector, and the inventory they build.

Everything here reads and nothing changes: a ContainerView per container and one paged
``RetrievePropertiesEx`` for every object of every type asked for (:func:`in_views`), one object's
properties (:func:`read_one`), the objects of some datacenters with the name lookups the facts
and the migration primitives need (:class:`Inventory`; every VM, or only those of some names),
and a VM found by name with where it is (:func:`find_vm`, :func:`placement_of`).

Properties are always read through the PropertyCollector, never through pyVmomi's lazy attribute
access (which reads one property per call through ``PropertyCollector.Fetch``; the lab's vCenter
simulator panics there on unset properties such as a VM's ``snapshot``, which its launcher guards).
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from overflyt.errors import MigrationStepFailed
from overflyt.providers.vsphere.models import Placement, PowerState
from overflyt.providers.vsphere.names import unescape
from overflyt.providers.vsphere.session import VSphereSession, vim, vmodl

log = logging.getLogger(__name__)

PAGE_SIZE = 500  # objects per RetrievePropertiesEx page
POWER_STATES: dict[str, PowerState] = {
    "poweredOn": "powered_on",
    "poweredOff": "powered_off",
    "suspended": "suspended",
}
_PC = vmodl.query.PropertyCollector


@dataclass
class Obj:
    """A managed object and the properties read of it (path -> value)."""

    ref: Any
    props: dict[str, Any]

    @property
    def moid(self) -> str:
        return str(self.ref._GetMoId())

    @property
    def kind(self) -> str:
        return str(self.ref._wsdlName)

    @property
    def name(self) -> str:
        """The name as vSphere stores it (``%``, ``/`` and ``\\`` escaped)."""
        return str(self.props.get("name", self.moid))

    @property
    def display_name(self) -> str:
        """The name as people see it (see :mod:`.names`): what overflyt knows a VM by."""
        return unescape(self.name)

    def get(self, path: str, default: Any = None) -> Any:
        value = self.props.get(path)
        return default if value is None else value

    def parent(self) -> str | None:
        parent = self.props.get("parent")
        return str(parent._GetMoId()) if parent is not None else None


def retrieve(session: VSphereSession, objects: list[Any], props: list[Any]) -> list[Obj]:
    """One paged RetrievePropertiesEx (plus ContinueRetrievePropertiesEx per further page)."""
    collector = session.content.propertyCollector
    spec = _PC.FilterSpec(objectSet=objects, propSet=props)
    result = collector.RetrievePropertiesEx(specSet=[spec], options=_PC.RetrieveOptions(maxObjects=PAGE_SIZE))
    found: list[Obj] = []
    while result is not None:
        for content in result.objects or []:
            found.append(Obj(content.obj, {p.name: p.val for p in content.propSet or []}))
        if not result.token:
            break
        result = collector.ContinueRetrievePropertiesEx(token=result.token)
    return found


def in_views(session: VSphereSession, containers: list[Any], paths: dict[Any, list[str]]) -> list[Obj]:
    """Every object below each container whose type is a key of ``paths`` (a subtype's extra
    properties may be given under the subtype), read in one paged call through ContainerViews."""
    if not containers:
        return []
    manager = session.content.viewManager
    kinds = [kind for kind in paths if not any(kind is not other and issubclass(kind, other) for other in paths)]
    views = [manager.CreateContainerView(container, kinds, True) for container in containers]
    try:
        traverse = _PC.TraversalSpec(name="view", type=vim.view.ContainerView, path="view", skip=False)
        objects = [_PC.ObjectSpec(obj=view, skip=True, selectSet=[traverse]) for view in views]
        props = [_PC.PropertySpec(type=kind, pathSet=list(p)) for kind, p in paths.items()]
        return retrieve(session, objects, props)
    finally:
        for view in views:
            try:
                view.DestroyView()
            except (vmodl.MethodFault, OSError, http.client.HTTPException) as exc:
                log.debug("DestroyView failed: %s", exc)


def read_one(session: VSphereSession, ref: Any, paths: list[str]) -> Obj:
    """Properties ``paths`` of one object (none when vCenter returns nothing for it)."""
    objects = retrieve(
        session, [_PC.ObjectSpec(obj=ref, skip=False)], [_PC.PropertySpec(type=type(ref), pathSet=paths)]
    )
    return objects[0] if objects else Obj(ref, {})


VM_PLACE = [
    "name",
    "parent",
    "config.template",
    "config.files.vmPathName",
    "config.hardware.device",
    "datastore",
    "runtime.host",
    "runtime.powerState",
]
VM_FACTS = [
    *VM_PLACE,
    "config.uuid",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "guest.toolsRunningStatus",
    "guest.toolsStatus",
    "guest.toolsVersionStatus2",
    "snapshot",
]
HOST = ["name", "parent", "runtime.connectionState", "runtime.inMaintenanceMode"]
HOST_FACTS = [*HOST, "summary.hardware", "summary.quickStats", "config.network.portgroup"]


def _paths(vm: list[str], host: list[str]) -> dict[Any, list[str]]:
    return {
        vim.VirtualMachine: vm,
        vim.HostSystem: host,
        vim.ComputeResource: ["name", "parent", "resourcePool"],
        vim.Datastore: ["name", "parent", "summary.capacity", "summary.freeSpace"],
        vim.Network: ["name", "parent"],
        vim.dvs.DistributedVirtualPortgroup: ["key", "config.distributedVirtualSwitch", "config.defaultPortConfig"],
        vim.DistributedVirtualSwitch: ["name", "parent", "uuid", "config.uplinkPortgroup"],
        vim.Folder: ["name", "parent"],
    }


class Inventory:
    """The objects of some datacenters, with the name lookups the provider needs."""

    def __init__(self, datacenters: list[Obj], objects: list[Obj]) -> None:
        self.datacenters = {dc.moid: dc for dc in datacenters}
        self.objects = {o.moid: o for o in objects}
        self.vm_roots = {str(dc.props["vmFolder"]._GetMoId()): dc.name for dc in datacenters}
        self._dc: dict[str, str | None] = {}
        self.pg_by_key = {
            str(o.props["key"]): o for o in objects if o.kind == "DistributedVirtualPortgroup" and "key" in o.props
        }

    def of(self, kind: str) -> list[Obj]:
        return [o for o in self.objects.values() if o.kind == kind]

    def vms(self) -> list[Obj]:
        """The VMs (not templates) that live in one of the datacenters read: a view may also list a
        VM whose folder is in another datacenter (vcsim keeps a moved VM in its old resource pool)."""
        return [
            o
            for o in self.of("VirtualMachine")
            if not o.get("config.template", False) and self.datacenter(o) is not None
        ]

    def datacenter(self, obj: Obj) -> str | None:
        """The datacenter an object lives in (walking up its parents)."""
        chain: list[str] = []
        moid: str | None = obj.moid
        found: str | None = None
        while moid is not None:
            if moid in self._dc:
                found = self._dc[moid]
                break
            if moid in self.datacenters:
                found = self.datacenters[moid].name
                break
            chain.append(moid)
            parent = self.objects.get(moid)
            moid = parent.parent() if parent is not None else None
        for seen in chain:
            self._dc[seen] = found
        return found

    def folder_path(self, folder_moid: str | None) -> str | None:
        """Path of a VM folder below its datacenter's vm folder ("" for that folder), None if not one."""
        parts: list[str] = []
        moid = folder_moid
        while moid is not None:
            if moid in self.vm_roots:
                return "/".join(reversed(parts))
            folder = self.objects.get(moid)
            if folder is None or folder.kind != "Folder":
                return None
            parts.append(folder.name)
            moid = folder.parent()
        return None

    def name(self, ref: Any) -> str | None:
        if ref is None:
            return None
        obj = self.objects.get(str(ref._GetMoId()))
        return obj.name if obj is not None else None

    def cluster_of_host(self, host: Obj | None) -> Obj | None:
        parent = self.objects.get(host.parent() or "") if host is not None else None
        return parent if parent is not None and parent.kind == "ClusterComputeResource" else None

    def nic_portgroup(self, nic: Any) -> str:
        backing = nic.backing
        if isinstance(backing, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo):
            key = str(backing.port.portgroupKey) if backing.port is not None else ""
            pg = self.pg_by_key.get(key)
            return pg.name if pg is not None else key
        if isinstance(backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo):
            return self.name(backing.network) or str(backing.deviceName or "")
        if isinstance(backing, vim.vm.device.VirtualEthernetCard.OpaqueNetworkBackingInfo):
            return f"opaque:{backing.opaqueNetworkId}"
        return str(getattr(backing, "deviceName", "") or "")

    def named(self, kind: str, name: str, datacenter: str) -> Obj | None:
        for obj in self.objects.values():
            if (obj.kind == kind or (kind == "Network" and obj.kind == "DistributedVirtualPortgroup")) and (
                obj.name == name and self.datacenter(obj) == datacenter
            ):
                return obj
        return None


def read_datacenters(session: VSphereSession, names: list[str] | None) -> list[Obj]:
    """The datacenters called ``names`` (all of them for None)."""
    found = in_views(session, [session.content.rootFolder], {vim.Datacenter: ["name", "vmFolder", "parent"]})
    return [dc for dc in found if names is None or dc.name in names]


def read_inventory(
    session: VSphereSession,
    names: list[str] | None,
    vm: list[str],
    host: list[str],
    *,
    only_vms: Collection[str] | None = None,
) -> Inventory:
    """The inventory of datacenters ``names`` (all for None), with VM properties ``vm`` and host
    properties ``host``: one read of the datacenters, one paged read of everything in them.

    ``only_vms`` (display names) scopes the VMs: the paged read takes only each VM's name, and a
    third call reads ``vm`` of the VMs so named (every one of a name, so a duplicate still shows);
    no other VM is in the inventory. What a VM's properties cost (its devices above all) is then
    paid for the VMs concerned, not for the whole datacenter."""
    dcs = read_datacenters(session, names)
    if only_vms is None:
        return Inventory(dcs, in_views(session, [dc.ref for dc in dcs], _paths(vm, host)))
    wanted = set(only_vms)
    light = in_views(session, [dc.ref for dc in dcs], _paths(["name"], host))
    named = [o.ref for o in light if o.kind == "VirtualMachine" and o.display_name in wanted]
    full = (
        retrieve(
            session,
            [_PC.ObjectSpec(obj=ref, skip=False) for ref in named],
            [_PC.PropertySpec(type=vim.VirtualMachine, pathSet=vm)],
        )
        if named
        else []
    )
    return Inventory(dcs, [o for o in light if o.kind != "VirtualMachine"] + full)


def home_datastores(vm: Obj, inv: Inventory) -> list[str]:
    """The names of the datastores a VM lives on, its home (the one of its .vmx) first."""
    names = [n for n in (inv.name(ref) for ref in vm.get("datastore", [])) if n]
    path = str(vm.get("config.files.vmPathName", ""))
    home = path[1 : path.index("]")] if path.startswith("[") and "]" in path else None
    # vcsim 0.24 does not move config.files on relocation: trust the path only when it still agrees
    if home in names:
        names.remove(home)
        names.insert(0, home)
    return names


def ethernet_cards(devices: list[Any]) -> list[Any]:
    """The network cards of a device list, in device key order."""
    return sorted((d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard)), key=lambda d: d.key)


def placement_of(vm: Obj, inv: Inventory) -> Placement:
    """Where ``vm`` (read with at least :data:`VM_PLACE`) is."""
    host = inv.objects.get(str(vm.props["runtime.host"]._GetMoId())) if vm.get("runtime.host") else None
    cluster = inv.cluster_of_host(host)
    datastores = home_datastores(vm, inv)
    return Placement(
        vm=vm.display_name,
        moid=vm.moid,
        datacenter=inv.datacenter(vm) or "",
        cluster=cluster.name if cluster is not None else None,
        host=host.name if host is not None else "",
        datastore=datastores[0] if datastores else "",
        folder=inv.folder_path(vm.parent()) or "",
        portgroups=[inv.nic_portgroup(nic) for nic in ethernet_cards(vm.get("config.hardware.device", []))],
        power=POWER_STATES.get(str(vm.get("runtime.powerState")), "powered_off"),
    )


def find_vm(session: VSphereSession, vm: str, datacenter: str | None) -> tuple[Inventory, Obj] | None:
    """The VM of that display name (in that datacenter, or anywhere), with the inventory around it.
    Compared exactly, as people see the name (vSphere's escapes undone)."""
    inv = read_inventory(session, [datacenter] if datacenter else None, ["name", "parent", "config.template"], HOST)
    found = [o for o in inv.vms() if o.display_name == vm]
    if not found:
        return None
    if len(found) > 1:
        where = ", ".join(f"{inv.datacenter(o)}/{inv.folder_path(o.parent())} ({o.moid})" for o in found)
        raise MigrationStepFailed(f"vm {vm}: {len(found)} VMs of that name in {session.endpoint.where}: {where}")
    full = read_one(session, found[0].ref, VM_PLACE)
    inv.objects[full.moid] = full
    return inv, full
