"""What the VM steps report: per-VM results of a migration and a rollback, read from the roles'
``set_stats`` reports (``overflyt_result.vms``) and their failure events, by VM name (the roles
know a VM by its alias, :func:`overflyt.plan.names.vm_alias`, which
:func:`overflyt.steps.vm_batches.run_batch` reads back as the name); each result carries its alias
too, the VM's host in the runner's artifacts."""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from overflyt.ansible.reasons import explain
from overflyt.ansible.runner import PlaybookResult
from overflyt.ansible.step import failure_text, first_line
from overflyt.errors import PlaybookFailed, RollbackFailed
from overflyt.plan.names import vm_alias
from overflyt.providers.vsphere import Placement

log = logging.getLogger(__name__)

MoveStatus = Literal["moved", "unchanged", "would_move", "failed", "skipped"]
RestoreStatus = Literal["restored", "unchanged", "would_restore", "failed", "skipped"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _VmResult(_Model):
    """One VM's result: its name, and its alias (filled in from the name when not given)."""

    vm: str  # its name, as vSphere has it
    alias: str = ""  # its inventory host in the runner's artifacts (overflyt.plan.names.vm_alias)

    @model_validator(mode="before")
    @classmethod
    def _alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("alias") and isinstance(data.get("vm"), str):
            return {**data, "alias": vm_alias(data["vm"])}
        return data


class VmMove(_VmResult):
    """What happened to one VM in a migration.

    ``status``: moved, unchanged (already at its target), would_move (dry run), failed, or skipped
    (not started because an earlier batch failed). ``batch``: 1-based index into
    :attr:`VmMigration.batches`."""

    status: MoveStatus
    batch: int
    before: Placement | None = None
    after: Placement | None = None
    seconds: float = 0.0
    error: str | None = None


class VmMigration(_Model):
    site: str
    wave: int
    dry_run: bool
    duration_s: float
    batches: list[list[str]]  # as run; a dry run is one batch
    slot_waits_s: dict[int, float] = {}  # batch -> seconds it waited for move slots other runs held
    vms: dict[str, VmMove]

    @property
    def moved(self) -> list[str]:
        """VMs this run moved (also a failed one that did move before its check failed)."""
        return [n for n, v in self.vms.items() if v.status == "moved" or (v.status == "failed" and v.after)]

    @property
    def failed(self) -> list[str]:
        return [n for n, v in self.vms.items() if v.status == "failed"]


class VmRestore(_VmResult):
    """What happened to one VM in a rollback. ``status``: restored, unchanged (already back),
    would_restore (dry run), failed, skipped (the rollback's time ran out before its batch)."""

    status: RestoreStatus
    batch: int
    before: Placement | None = None
    after: Placement | None = None
    seconds: float = 0.0
    leftover_removed: bool = False
    error: str | None = None


class VmRollback(_Model):
    site: str
    dry_run: bool
    duration_s: float
    batches: list[list[str]]
    vms: dict[str, VmRestore]

    @property
    def failed(self) -> list[str]:
        return [n for n, v in self.vms.items() if v.status in ("failed", "skipped")]


class VmMigrationFailed(PlaybookFailed):
    """Some VMs of a site could not be moved; ``migration`` says what happened to each (what moved
    must be rolled back)."""

    def __init__(self, message: str, migration: VmMigration) -> None:
        super().__init__(message, migration.failed)
        self.migration = migration


class VmRollbackFailed(RollbackFailed):
    """Some VMs of a site are not back where they were; ``rollback`` says what happened to each."""

    def __init__(self, message: str, rollback: VmRollback) -> None:
        super().__init__(message)
        self.rollback = rollback


def _read(name: str, result: PlaybookResult, known: tuple[str, ...]) -> tuple[dict[str, Any], str, str | None]:
    """A VM's report from the role (``data``), its status and error: failed when the role reported
    nothing, a status overflyt does not know, or a task of that VM failed after the report."""
    data = dict((result.result.get("vms") or {}).get(name) or {})
    failure = host_failure(result, name)
    if not data:
        return data, "failed", failure or no_result(result)
    status = str(data.get("status"))
    error = explain(str(data["error"])) if data.get("error") else None
    if status not in known:
        status, error = "failed", f"the role reported status {status!r}"
    if failure and status != "failed":  # reported, then failed afterwards
        status, error = "failed", failure
    return data, status, str(error) if error else None


def read_move(name: str, batch: int, result: PlaybookResult) -> VmMove:
    data, status, error = _read(name, result, ("moved", "unchanged", "would_move", "failed"))
    return VmMove(
        vm=name,
        status=status,
        batch=batch,
        before=placement_of(data.get("before")),
        after=placement_of(data.get("after")),
        seconds=float(data.get("seconds") or 0.0),
        error=error,
    )


def read_restore(name: str, batch: int, result: PlaybookResult) -> VmRestore:
    data, status, error = _read(name, result, ("restored", "unchanged", "would_restore", "failed"))
    return VmRestore(
        vm=name,
        status=status,
        batch=batch,
        before=placement_of(data.get("before")),
        after=placement_of(data.get("after")),
        seconds=float(data.get("seconds") or 0.0),
        leftover_removed=bool(data.get("leftover_removed")),
        error=error,
    )


def placement_of(data: Any) -> Placement | None:
    if not isinstance(data, dict) or not data:
        return None
    try:
        return Placement.model_validate(data)
    except ValidationError:
        log.warning("a role reported a placement overflyt cannot read: %s", data)
        return None


def host_failure(result: PlaybookResult, host: str) -> str | None:
    """The last visible failure of ``host`` (a no_log task's result is withheld; the role repeats
    the reason in a task of its own)."""
    failures = [f for f in result.failures if f.host == host]
    chosen = [f for f in failures if not f.hidden] or failures
    return first_line(chosen[-1].message) if chosen else None


def no_result(result: PlaybookResult) -> str:
    if result.status != "failed":
        return f"no result: the playbook ended {result.status}"
    return f"no result: {failure_text(result)}"
