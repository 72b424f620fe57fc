"""vCenter tasks: waiting for one, and the relocations of a VM a killed or cancelled run left
under way (vCenter carries a task on when its caller dies), waited for or cancelled before the VM
is moved again."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from overflyt.errors import MigrationStepFailed
from overflyt.providers.vsphere.collector import Obj, read_one, retrieve
from overflyt.providers.vsphere.session import VSphereSession, fault_text, vim, vmodl

log = logging.getLogger(__name__)

TASK_TIMEOUT_S = 3600.0
Progress = Callable[[int], None]


def wait(session: VSphereSession, task: Any, doing: str, timeout_s: float, progress: Progress | None) -> Any:
    """Wait for a vCenter task; its failure or a timeout (task then cancelled) is MigrationStepFailed."""
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    last: int | None = None
    while True:
        info = read_one(session, task, ["info.state", "info.progress", "info.error", "info.result"])
        state = info.get("info.state")
        if state == "success":
            if progress is not None and last != 100:
                progress(100)
            return info.get("info.result")
        if state == "error":
            error = info.get("info.error")
            reason = (getattr(error, "localizedMessage", None) or fault_text(error.fault)) if error else "unknown error"
            raise MigrationStepFailed(f"{session.endpoint.where}: {doing} failed: {reason}")
        percent = info.get("info.progress")
        if progress is not None and percent is not None and percent != last:
            last = int(percent)
            progress(last)
        if time.monotonic() > deadline:
            try:
                task.CancelTask()
                cancelled = "cancelled"
            except vmodl.MethodFault as exc:
                cancelled = f"could not be cancelled: {fault_text(exc)}"
            raise MigrationStepFailed(
                f"{session.endpoint.where}: {doing} did not finish within {timeout_s:g} s "
                f"(task {task._GetMoId()} {cancelled})"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


InFlight = Literal["wait", "cancel", "fail"]
TASK_PATHS = ["info.entity", "info.state", "info.descriptionId"]


def relocations_under_way(session: VSphereSession, vm: Obj) -> list[Any]:
    """The VM's relocation tasks vCenter still runs (queued or running): one a run that was killed or
    cancelled started, which carries on without it. Read from the VM's own recent tasks and the task
    manager's (vCenter fills both; govmomi's simulator only the task manager's)."""
    recent = list(read_one(session, vm.ref, ["recentTask"]).get("recentTask") or [])
    recent += read_one(session, session.content.taskManager, ["recentTask"]).get("recentTask") or []
    recent = list({t._GetMoId(): t for t in recent}.values())
    if not recent:
        return []
    tasks = retrieve(
        session,
        [vmodl.query.PropertyCollector.ObjectSpec(obj=t, skip=False) for t in recent],
        [
            vmodl.query.PropertyCollector.PropertySpec(
                type=vim.Task, pathSet=["info.entity", "info.state", "info.descriptionId"]
            )
        ],
    )
    return [
        t.ref
        for t in tasks
        if t.get("info.state") in ("queued", "running")
        and str(t.get("info.descriptionId") or "").startswith("VirtualMachine.relocate")
        and getattr(t.get("info.entity"), "_moId", None) == vm.moid
    ]


def settle(session: VSphereSession, vm: str, obj: Obj, in_flight: InFlight, timeout_s: float) -> bool:
    """Before moving ``vm``: a relocation of it still under way (a killed run's) is waited for
    (``wait``: it may be the very move wanted) or cancelled and then waited for (``cancel``: a
    rollback must not have it land later); ``fail`` refuses. True when there was one."""
    tasks = relocations_under_way(session, obj)
    if not tasks:
        return False
    ids = ", ".join(str(t._GetMoId()) for t in tasks)
    if in_flight == "fail":
        raise MigrationStepFailed(
            f"vm {vm}: another relocation of it started in {session.endpoint.where} while this one waited "
            f"(task {ids}); let it end or cancel it in the vSphere client, then run again"
        )
    log.warning("%s: vm %s: a relocation of it is still under way (task %s): %s", session.endpoint.where, vm, ids,
                "cancelling it" if in_flight == "cancel" else "waiting for it")  # fmt: skip
    deadline = time.monotonic() + timeout_s
    for task in tasks:
        if in_flight == "cancel":
            try:
                task.CancelTask()
            except vmodl.MethodFault as exc:  # it ended meanwhile, or is past the point of cancelling
                log.warning("vm %s: task %s could not be cancelled: %s", vm, task._GetMoId(), fault_text(exc))
        while read_one(session, task, ["info.state"]).get("info.state") in ("queued", "running"):
            if time.monotonic() > deadline:
                raise MigrationStepFailed(
                    f"vm {vm}: a relocation of it that an earlier, stopped run started (task {task._GetMoId()}) "
                    f"did not end within {timeout_s:g} s; let it end or cancel it in the vSphere client, then run again"
                )
            time.sleep(0.5)
    return True
