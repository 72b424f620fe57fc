"""The changes the vSphere provider makes: the migration primitives of a wave and of its rollback.

* :func:`relocate_vm` — move a VM to a host, its cluster's pool, a datastore, a folder and each
  NIC to its portgroup, in one RelocateVM_Task (a cross-vCenter vMotion when the target is another
  vCenter); idempotent, with a dry run that resolves everything and changes nothing;
* :func:`set_power` — bring a VM to a power state (a guest shutdown when its tools run);
* :func:`ensure_folder` — create a VM folder and its parents;
* :func:`destroy_vm` — delete a half-done move's leftover copy of a VM, guarded.

A refused or failed change is :class:`~overflyt.errors.MigrationStepFailed`; a lost connection
:class:`~overflyt.errors.ProviderUnreachable` (see :func:`.session.boundary`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from overflyt.errors import MigrationStepFailed
from overflyt.providers.vsphere.collector import (
    HOST,
    POWER_STATES,
    Inventory,
    Obj,
    ethernet_cards,
    find_vm,
    in_views,
    placement_of,
    read_datacenters,
    read_inventory,
    read_one,
)
from overflyt.providers.vsphere.models import (
    Placement,
    PowerResult,
    PowerState,
    RelocationResult,
    RelocationTarget,
)
from overflyt.providers.vsphere.session import VSphereSession, boundary, vim
from overflyt.providers.vsphere.tasks import TASK_TIMEOUT_S, InFlight, Progress, settle
from overflyt.providers.vsphere.tasks import wait as _wait

log = logging.getLogger(__name__)


@dataclass
class _Resolved:
    host: Obj
    pool: Any
    datastore: Obj
    folder: Any
    networks: list[Obj]
    dvs_uuid: dict[str, str]


def _resolve(session: VSphereSession, inv: Inventory, target: RelocationTarget, nics: list[str]) -> _Resolved:
    where = f"{session.endpoint.where}, datacenter {target.datacenter}"
    if target.datacenter not in {dc.name for dc in inv.datacenters.values()}:
        raise MigrationStepFailed(f"{session.endpoint.where}: no datacenter {target.datacenter}")
    cluster = inv.named("ClusterComputeResource", target.cluster, target.datacenter)
    if cluster is None:
        raise MigrationStepFailed(f"{where}: no cluster {target.cluster}")
    host = inv.named("HostSystem", target.host, target.datacenter)
    if host is None or host.parent() != cluster.moid:
        raise MigrationStepFailed(f"{where}: no host {target.host} in cluster {target.cluster}")
    datastore = inv.named("Datastore", target.datastore, target.datacenter)
    if datastore is None:
        raise MigrationStepFailed(f"{where}: no datastore {target.datastore}")
    folder = next(
        (
            f
            for f in inv.of("Folder")
            if inv.folder_path(f.moid) == target.folder and inv.datacenter(f) == target.datacenter
        ),
        None,
    )
    root = next(dc for dc in inv.datacenters.values() if dc.name == target.datacenter).props["vmFolder"]
    if folder is None and target.folder:
        raise MigrationStepFailed(f"{where}: no VM folder {target.folder} (ensure_folder creates it)")
    networks = []
    for name in nics:
        network = inv.named("Network", name, target.datacenter)
        if network is None:
            raise MigrationStepFailed(f"{where}: no portgroup {name}")
        networks.append(network)
    dvs_uuid = {o.moid: str(o.props["uuid"]) for o in inv.objects.values() if "uuid" in o.props}
    return _Resolved(host, cluster.props["resourcePool"], datastore, folder.ref if folder else root, networks, dvs_uuid)


def _target_nics(vm: str, current: list[str], target: RelocationTarget) -> list[str]:
    if target.nics is not None:
        if len(target.nics) != len(current):
            raise MigrationStepFailed(
                f"vm {vm}: has {len(current)} NICs, the target names portgroups for {len(target.nics)}"
            )
        return list(target.nics)
    wanted = []
    for pg in current:
        if pg in target.portgroups:
            wanted.append(target.portgroups[pg])
        elif not target.portgroups or pg in target.portgroups.values():
            wanted.append(pg)
        else:
            raise MigrationStepFailed(f"vm {vm}: a NIC is on portgroup {pg}, which the network map does not map")
    return wanted


def _nic_changes(devices: list[Any], resolved: _Resolved) -> list[Any]:
    """Device edits that put each NIC (in key order) on its resolved network; unchanged NICs left out."""
    changes = []
    for nic, network in zip(ethernet_cards(devices), resolved.networks, strict=True):
        if network.kind == "DistributedVirtualPortgroup":
            switch = network.props["config.distributedVirtualSwitch"]
            backing: Any = vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
                port=vim.dvs.PortConnection(
                    portgroupKey=network.props["key"], switchUuid=resolved.dvs_uuid.get(str(switch._GetMoId()))
                )
            )
            old = nic.backing
            if (
                isinstance(old, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo)
                and old.port is not None
                and old.port.portgroupKey == network.props["key"]
            ):
                continue
        else:
            backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(network=network.ref, deviceName=network.name)
            old = nic.backing
            if (
                isinstance(old, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo)
                and old.network is not None
                and old.network._GetMoId() == network.moid
            ):
                continue
        nic.backing = backing
        changes.append(
            vim.vm.device.VirtualDeviceSpec(operation=vim.vm.device.VirtualDeviceSpec.Operation.edit, device=nic)
        )
    return changes


def relocate_vm(
    session: VSphereSession,
    vm: str,
    source_datacenter: str,
    target: RelocationTarget,
    *,
    target_session: VSphereSession | None = None,
    dry_run: bool = False,
    timeout_s: float = TASK_TIMEOUT_S,
    progress: Progress | None = None,
    in_flight: InFlight = "wait",
) -> RelocationResult:
    """Move VM ``vm`` (in ``source_datacenter`` of ``session``'s vCenter) to ``target``.

    A relocation of the VM still under way when this starts (one a killed or cancelled run left to
    vCenter) is first waited for, or cancelled (``in_flight``, see :func:`_settle`), and the VM
    looked up again.

    ``target_session`` is the target vCenter (default: the same one); when it is another vCenter
    (other instance UUID or URL) the spec carries a ServiceLocator for a cross-vCenter vMotion.
    Idempotent: a VM already at the target is left alone (``changed`` false). ``dry_run`` resolves
    everything and reports the move it would make without making it. After the task the placement
    is read again; NICs still on their old portgroup (vcsim 0.24 ignores a RelocateSpec's
    deviceChange) are moved with a reconfigure, and any other difference is MigrationStepFailed.
    """
    started = time.monotonic()
    dest = target_session or session
    cross = dest is not session and (dest.instance_uuid != session.instance_uuid or dest.url != session.url)
    with boundary(session, f"looking up vm {vm}", MigrationStepFailed):
        found = find_vm(session, vm, source_datacenter)
    if found is None:  # not in the source any more: a rerun after the move?
        with boundary(dest, f"looking up vm {vm}", MigrationStepFailed):
            found = find_vm(dest, vm, target.datacenter)
        if found is None:
            raise MigrationStepFailed(
                f"vm {vm}: not found in datacenter {source_datacenter} of {session.endpoint.where} "
                f"nor in datacenter {target.datacenter} of {dest.endpoint.where}"
            )
        where_vm = dest
    else:
        where_vm = session
    inv, obj = found
    if not dry_run and in_flight != "fail":
        with boundary(where_vm, f"looking for a relocation of vm {vm} under way", MigrationStepFailed):
            settled = settle(where_vm, vm, obj, in_flight, timeout_s)
        if settled:
            return relocate_vm(
                session, vm, source_datacenter, target, target_session=target_session,
                timeout_s=timeout_s, progress=progress, in_flight="fail",
            )  # fmt: skip
    before = placement_of(obj, inv)
    nics = _target_nics(vm, before.portgroups, target)
    with boundary(dest, f"resolving the target of vm {vm}", MigrationStepFailed):
        tinv = (
            inv
            if dest is where_vm and target.datacenter == before.datacenter
            else read_inventory(dest, [target.datacenter], ["name"], HOST)
        )
        resolved = _resolve(dest, tinv, target, nics)
    wanted = before.model_copy(
        update={
            "datacenter": target.datacenter,
            "cluster": target.cluster,
            "host": target.host,
            "datastore": target.datastore,
            "folder": target.folder,
            "portgroups": nics,
        }
    )
    if before.same_place(wanted):
        return RelocationResult(
            vm=vm, changed=False, dry_run=dry_run, before=before, after=before,
            message=f"vm {vm} is already at {wanted.describe()}",
        )  # fmt: skip
    if dry_run:
        return RelocationResult(
            vm=vm, changed=True, dry_run=True, cross_vcenter=cross and where_vm is session, before=before,
            after=wanted, message=f"vm {vm} would move from {before.describe()} to {wanted.describe()}",
        )  # fmt: skip

    devices = obj.get("config.hardware.device", [])
    spec = vim.vm.RelocateSpec(
        host=resolved.host.ref,
        pool=resolved.pool,
        datastore=resolved.datastore.ref,
        folder=resolved.folder,
        deviceChange=_nic_changes(devices, resolved),
    )
    if cross and where_vm is session:
        spec.service = vim.ServiceLocator(
            url=f"https://{dest.endpoint.hostname}:{dest.endpoint.port}",
            instanceUuid=dest.instance_uuid,
            credential=vim.ServiceLocator.NamePassword(
                username=dest.endpoint.username, password=dest.endpoint.password.get_secret_value()
            ),
            sslThumbprint=dest.certificate_sha1,
        )
    doing = f"relocating vm {vm} to {wanted.describe()}"
    log.info("%s: %s", where_vm.endpoint.where, doing)
    with boundary(where_vm, doing, MigrationStepFailed):
        task = obj.ref.RelocateVM_Task(spec=spec, priority=vim.VirtualMachine.MovePriority.defaultPriority)
        _wait(where_vm, task, doing, timeout_s, progress)
    after = _converge(dest, vm, target.datacenter, wanted, resolved, timeout_s)
    return RelocationResult(
        vm=vm,
        changed=True,
        cross_vcenter=cross and where_vm is session,
        before=before,
        after=after,
        message=f"vm {vm} moved from {before.describe()} to {after.describe()}",
        duration_s=round(time.monotonic() - started, 3),
        task=str(task._GetMoId()),
    )


def _converge(
    session: VSphereSession, vm: str, datacenter: str, wanted: Placement, resolved: _Resolved, timeout_s: float
) -> Placement:
    """Read the placement after a move; move NICs the move left behind; fail on any other difference."""
    with boundary(session, f"reading the placement of vm {vm} after its move", MigrationStepFailed):
        found = find_vm(session, vm, datacenter)
    if found is None:
        raise MigrationStepFailed(f"vm {vm}: not in datacenter {datacenter} of {session.endpoint.where} after the move")
    inv, obj = found
    after = placement_of(obj, inv)
    if after.portgroups != wanted.portgroups:
        log.warning("vm %s: NICs still on %s after the move; reconfiguring them", vm, after.portgroups)
        doing = f"moving the NICs of vm {vm} to {', '.join(wanted.portgroups)} after its move"
        with boundary(session, doing, MigrationStepFailed):
            changes = _nic_changes(obj.get("config.hardware.device", []), resolved)
            task = obj.ref.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=changes))
            _wait(session, task, doing, timeout_s, None)
            found = find_vm(session, vm, datacenter)
        if found is None:  # pragma: no cover - it was there a moment ago
            raise MigrationStepFailed(f"vm {vm}: vanished from {session.endpoint.where} while reconfiguring")
        after = placement_of(found[1], found[0])
    if not after.same_place(wanted):
        raise MigrationStepFailed(
            f"vm {vm}: vCenter reported the move done but the VM is at {after.describe()}, not {wanted.describe()}"
        )
    return after


def set_power(
    session: VSphereSession,
    vm: str,
    state: PowerState,
    *,
    datacenter: str | None = None,
    dry_run: bool = False,
    graceful: bool = True,
    timeout_s: float = 600.0,
) -> PowerResult:
    """Bring VM ``vm`` to power ``state`` (idempotent). Powering off shuts the guest down when its
    tools run and ``graceful`` (a hard power-off after ``timeout_s``), else powers off hard."""
    with boundary(session, f"reading the power state of vm {vm}", MigrationStepFailed):
        found = find_vm(session, vm, datacenter)
    if found is None:
        raise MigrationStepFailed(f"vm {vm}: not found in {session.endpoint.where}")
    obj = found[1]
    before = POWER_STATES.get(str(obj.get("runtime.powerState")), "powered_off")
    if before == state:
        return PowerResult(
            vm=vm, changed=False, dry_run=dry_run, before=before, after=before, message=f"vm {vm} is already {state}"
        )
    if state == "suspended" and before != "powered_on":
        raise MigrationStepFailed(f"vm {vm}: cannot suspend a VM that is {before}")
    if dry_run:
        return PowerResult(
            vm=vm,
            changed=True,
            dry_run=True,
            before=before,
            after=state,
            message=f"vm {vm} would go from {before} to {state}",
        )
    doing = f"setting vm {vm} {state}"
    with boundary(session, doing, MigrationStepFailed):
        ref = obj.ref
        if state == "powered_on":
            _wait(session, ref.PowerOnVM_Task(), doing, timeout_s, None)
        elif state == "suspended":
            _wait(session, ref.SuspendVM_Task(), doing, timeout_s, None)
        else:
            tools = read_one(session, ref, ["guest.toolsRunningStatus"]).get("guest.toolsRunningStatus")
            if graceful and before == "powered_on" and tools == "guestToolsRunning":
                ref.ShutdownGuest()
                deadline = time.monotonic() + timeout_s
                while time.monotonic() < deadline:
                    if read_one(session, ref, ["runtime.powerState"]).get("runtime.powerState") == "poweredOff":
                        break
                    time.sleep(1.0)
                else:
                    log.warning("vm %s: guest did not shut down within %g s; powering off", vm, timeout_s)
                    _wait(session, ref.PowerOffVM_Task(), doing, timeout_s, None)
            else:
                _wait(session, ref.PowerOffVM_Task(), doing, timeout_s, None)
        after = POWER_STATES.get(
            str(read_one(session, ref, ["runtime.powerState"]).get("runtime.powerState")), "powered_off"
        )
    if after != state:
        raise MigrationStepFailed(f"vm {vm}: asked for {state}, vCenter reports {after}")
    return PowerResult(
        vm=vm, changed=True, before=before, after=after, message=f"vm {vm} went from {before} to {after}"
    )


def ensure_folder(session: VSphereSession, datacenter: str, path: str, *, dry_run: bool = False) -> bool:
    """Create VM folder ``path`` (below ``datacenter``'s vm folder) and its parents; True if it
    was (or, with ``dry_run``, would be) created."""
    parts = [p for p in path.split("/") if p]
    doing = f"creating VM folder {path} in datacenter {datacenter}"
    with boundary(session, doing, MigrationStepFailed):
        dcs = read_datacenters(session, [datacenter])
        if not dcs:
            raise MigrationStepFailed(f"{session.endpoint.where}: no datacenter {datacenter}")
        inv = Inventory(dcs, in_views(session, [dcs[0].props["vmFolder"]], {vim.Folder: ["name", "parent"]}))
        parent = dcs[0].props["vmFolder"]
        created = False
        for depth in range(len(parts)):
            sub = "/".join(parts[: depth + 1])
            existing = next((f for f in inv.of("Folder") if inv.folder_path(f.moid) == sub), None)
            if existing is not None:
                parent = existing.ref
                continue
            if dry_run:
                return True
            try:
                parent = parent.CreateFolder(name=parts[depth])
            except vim.fault.DuplicateName as exc:  # created meanwhile by someone else
                parent = exc.object
            created = True
    return created


def destroy_vm(
    session: VSphereSession,
    vm: str,
    *,
    datacenter: str,
    folder: str,
    dry_run: bool = False,
    timeout_s: float = 600.0,
) -> bool:
    """Delete a leftover VM ``vm`` from folder ``folder`` of ``datacenter`` (a half-done move's
    copy on the target). Guarded: only a VM of exactly that name directly in that folder, and never
    a powered-on one. True if it was (or would be) deleted; False when there is none."""
    with boundary(session, f"looking up vm {vm}", MigrationStepFailed):
        found = find_vm(session, vm, datacenter)
    if found is None:
        return False
    inv, obj = found
    actual = inv.folder_path(obj.parent())
    if actual != folder:
        raise MigrationStepFailed(
            f"vm {vm}: refusing to delete it: it is in folder {actual!r} of {datacenter}, "
            f"not the target folder {folder!r}"
        )
    power = POWER_STATES.get(str(obj.get("runtime.powerState")), "powered_off")
    if power == "powered_on":
        raise MigrationStepFailed(f"vm {vm}: refusing to delete it: it is powered on, so not a leftover")
    if dry_run:
        return True
    doing = f"deleting leftover vm {vm} from {datacenter}/{folder}"
    log.warning("%s: %s", session.endpoint.where, doing)
    with boundary(session, doing, MigrationStepFailed):
        _wait(session, obj.ref.Destroy_Task(), doing, timeout_s, None)
    return True
