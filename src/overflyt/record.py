"""Run records: what each run did, written durably before and after every step.

Layout under the state directory (``$OVERFLYT_STATE_DIR``, default ``.overflyt/state`` in the plan's
project: :func:`overflyt.project.state_home`)::

    <state>/<kommunekode>/lock                      held while a run of the municipality is active
    <state>/<kommunekode>/wave-<N>/<kind>/<run-id>/
        record.json                                 the RunRecord, rewritten atomically per change
        processes.jsonl                             what the run started: pid, start time, its main
                                                    process (overflyt.ansible.processes)
        ansible/<NN>-<step>/                        one ansible-runner private data dir per call
        home/.ssh/known_hosts                       the trust anchors of this run, copied from the plan
        backups/                                    device configs (file + sha256)
        report.*                                    what the run reported

A record never holds a secret: only names of credentials references.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from overflyt.errors import EXIT_BAD_INPUT, OverflytError
from overflyt.project import state_home

RunKind = Literal["precheck", "wave", "rollback"]
StepStatus = Literal["started", "done", "failed", "skipped", "timeout", "canceled", "rolled_back"]
RunStatus = Literal["running", "succeeded", "failed", "rolled_back", "rollback_failed", "canceled", "timeout"]


def state_dir(plan_dir: Path | None = None) -> Path:
    """The state home of the plan in ``plan_dir`` (see :func:`overflyt.project.state_home`)."""
    return state_home(plan_dir)


KEEP_ENV = "OVERFLYT_KEEP_RUNNER_ARTIFACTS"
KEEP_DEFAULT = 20


def keep_runner_artifacts() -> int:
    """How many runs of a kind (per municipality and wave) keep ansible-runner's artifacts."""
    value = os.environ.get(KEEP_ENV, "")
    return int(value) if value.isdigit() else KEEP_DEFAULT


def prune_runner_artifacts(kind_dir: Path, keep: int) -> list[Path]:
    """Rotate ansible-runner's artifacts (job events, stdout: the bulk of a run record) so 500 runs
    do not fill the disk: all but the newest ``keep`` runs in ``kind_dir`` lose their
    ``ansible/*/artifacts``. What a rollback or an audit needs stays: record.json, reports,
    device backups, placements. Returns the artifact dirs removed."""
    import shutil

    runs = sorted((p for p in kind_dir.iterdir() if p.is_dir()), key=lambda p: p.name) if kind_dir.is_dir() else []
    removed: list[Path] = []
    for run in runs[: max(len(runs) - keep, 0)]:
        for artifacts in sorted(run.glob("ansible/*/artifacts")):
            shutil.rmtree(artifacts, ignore_errors=True)
            removed.append(artifacts)
    return removed


def now() -> datetime:
    return datetime.now(UTC)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StepRecord(Model):
    name: str
    subject: str
    status: StepStatus
    started_at: datetime
    finished_at: datetime | None = None
    detail: dict[str, Any] = {}


class RunRecord(Model):
    run_id: str
    kind: RunKind
    municipality: str
    wave: int
    sites: list[str]
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None = None
    status: RunStatus = "running"
    operator: str
    steps: list[StepRecord] = []
    notes: dict[str, Any] = {}


class RunLocked(OverflytError):
    """Another run of the same municipality is active: this one is refused before it does anything."""

    exit_code = EXIT_BAD_INPUT


PROCESSES = "processes.jsonl"  # in a run's directory; written and read by overflyt.ansible.processes


def new_run_id() -> str:
    return now().strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]


class Run:
    """One run and its directory; every change to the record is written to disk at once."""

    def __init__(self, directory: Path, record: RunRecord) -> None:
        self.dir = directory
        self.record = record
        self._calls = 0
        self._lock = threading.RLock()  # sites of a wave may run at once, in threads, on one run
        self.save()

    @classmethod
    def create(
        cls,
        kind: RunKind,
        municipality: str,
        wave: int,
        sites: list[str],
        *,
        dry_run: bool,
        base: Path | None = None,
    ) -> Run:
        run_id = new_run_id()
        directory = (base or state_dir()) / municipality / f"wave-{wave}" / kind / run_id
        directory.mkdir(parents=True, mode=0o700)
        prune_runner_artifacts(directory.parent, keep_runner_artifacts())
        record = RunRecord(
            run_id=run_id,
            kind=kind,
            municipality=municipality,
            wave=wave,
            sites=sites,
            dry_run=dry_run,
            started_at=now(),
            operator=_operator(),
        )
        return cls(directory, record)

    def save(self) -> None:
        path = self.dir / "record.json"
        tmp = path.with_suffix(".json.tmp")
        with self._lock:
            data = self.record.model_dump_json(indent=2)
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)

    @property
    def processes(self) -> Path:
        """The file the processes started for this run are recorded in (see :data:`PROCESSES`)."""
        return self.dir / PROCESSES

    def other_runs(self) -> list[Path]:
        """The directories of every other run of this run's municipality (all waves and kinds)."""
        municipality = self.dir.parents[2]
        return sorted(p for p in municipality.glob("wave-*/*/*") if p.is_dir() and p != self.dir)

    def private_dir(self, step: str) -> Path:
        """A fresh ansible-runner private data dir for one playbook call of this run."""
        with self._lock:
            self._calls += 1
            path = self.dir / "ansible" / f"{self._calls:02d}-{step}"
        path.mkdir(parents=True, mode=0o700)
        return path

    @contextlib.contextmanager
    def step(self, name: str, subject: str) -> Iterator[StepRecord]:
        """Record a step as started before it runs and as done/failed after it."""
        entry = StepRecord(name=name, subject=subject, status="started", started_at=now())
        self.record.steps.append(entry)
        self.save()
        try:
            yield entry
        except BaseException:
            if entry.status == "started":
                entry.status = "failed"
            entry.finished_at = now()
            self.save()
            raise
        if entry.status == "started":
            entry.status = "done"
        entry.finished_at = now()
        self.save()

    def finish(self, status: RunStatus) -> None:
        self.record.status = status
        self.record.finished_at = now()
        self.save()

    def write(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.write_text(text, encoding="utf-8")
        return path


def _operator() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


@contextlib.contextmanager
def municipality_lock(municipality: str, purpose: str, base: Path | None = None) -> Iterator[None]:
    """Hold the municipality's lock for the duration; refuse (naming the holder) if it is taken."""
    directory = (base or state_dir()) / municipality
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / "lock"
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the lock's lifetime
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                holder = json.loads(handle.read() or "{}")
            except json.JSONDecodeError:
                holder = {}
            raise RunLocked(
                f"municipality {municipality} is busy: {holder.get('purpose', 'a run')} by "
                f"{holder.get('operator', 'unknown')} (pid {holder.get('pid', '?')}) since "
                f"{holder.get('since', '?')}; wait for it to finish or stop it"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(
            json.dumps({"purpose": purpose, "operator": _operator(), "pid": os.getpid(), "since": now().isoformat()})
        )
        handle.flush()
        yield
    finally:
        handle.close()
