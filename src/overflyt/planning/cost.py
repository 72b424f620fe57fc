"""What moving a set of VMs costs, in minutes: the one estimate.

The wave planner sizes its waves with :func:`move_cost` (each unit's VMs, :mod:`.units`) and the
cutover checks, before a site starts, that what is left of its wave's window holds the same
estimate of that site's VMs (:mod:`overflyt.cutover.wave`). Disks cross the replication bandwidth
(1 GB = 8,000 Mbit) and the VMs move in the batches :func:`overflyt.planning.batches.schedule` cuts,
the rule the cutover runs, ``vm_minutes`` a batch. Pure code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from overflyt.plan.model import Concurrency
from overflyt.planning.batches import Schedulable, schedule

MBIT_PER_GB = 8000


class Movable(Schedulable, Protocol):
    """What the estimate needs of a VM (a plan's or an estate's): the scheduling rule's fields and its disks."""

    @property
    def disks_gb(self) -> Sequence[int]: ...


@dataclass(frozen=True)
class MoveCost:
    """The estimate of moving some VMs: their disk, their batches and the minutes both take."""

    disk_gb: int
    batches: list[list[str]]
    transfer_minutes: float  # the disks across the bandwidth
    minutes: float  # transfer_minutes plus vm_minutes per batch


def move_cost(
    vms: Sequence[Movable],
    storage: Mapping[str, str],
    limits: Concurrency,
    *,
    bandwidth_mbps: float,
    vm_minutes: float,
) -> MoveCost:
    """The minutes moving ``vms`` takes: their disks across ``bandwidth_mbps`` and one ``vm_minutes``
    per batch of moves (``schedule(vms, storage, limits)``)."""
    disk_gb = sum(sum(vm.disks_gb) for vm in vms)
    batches = schedule(vms, storage, limits)
    transfer = disk_gb * MBIT_PER_GB / bandwidth_mbps / 60
    return MoveCost(disk_gb, batches, transfer, transfer + len(batches) * vm_minutes)
