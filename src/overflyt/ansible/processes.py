"""Processes by identity, read from ``/proc`` (Linux): what a run started, whether it still runs,
what it started in turn, and stopping all of that.

A pid names a process only while it lives: the kernel hands it out again. An :class:`Identity` adds
the process's start time (clock ticks after boot, field 22 of ``/proc/<pid>/stat``) and the boot's
id, so a recorded process is recognised in a later run, and never mistaken for one that got its pid.

The run record holds them: ``processes.jsonl`` in the run's directory, one line per process started
for the run, appended by whoever started it (the guard, :mod:`.guard`, for ansible-playbook) —
``{"pid", "start", "boot", "name", "owner": {"pid", "start", "boot"}}``, the owner being the run's
main process. Standard library only: the guard imports this before every playbook.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

GONE = "ZX"  # /proc/<pid>/stat states of a process that has ended (zombie, dead)


class Identity(NamedTuple):
    pid: int
    start: int  # clock ticks after boot
    boot: str


class Recorded(NamedTuple):
    """One line of a run's ``processes.jsonl``: a process started for the run, and the run's main process."""

    process: Identity
    name: str
    owner: Identity


@functools.cache
def boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of a process that has not ended, else None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, ProcessLookupError):  # ProcessLookupError: it ended while being read
        return None
    fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)": field 3 (state) on
    if fields[0] in GONE:
        return None
    return fields[0], int(fields[1]), int(fields[19])


def identify(pid: int) -> Identity | None:
    """The identity of a running process, None when there is none with that pid."""
    stat = _stat(pid)
    return None if stat is None else Identity(pid, stat[2], boot_id())


def alive(identity: Identity) -> bool:
    """The very process ``identity`` names still runs (not one that got its pid since)."""
    return identify(identity.pid) == identity


def descendants(root: int) -> list[int]:
    """Every running process below ``root`` (children, theirs, ...), parents before children."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = _stat(int(entry.name))
                if stat is not None:
                    children.setdefault(stat[1], []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(0), []):
            found.append(child)
            todo.append(child)
    return found


def name_of(pid: int) -> str:
    """What a person calls the process: ``ansible-playbook``, ``ansible-connection``, ``overflyt guard``,
    else its program's name."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    if "overflyt.ansible.guard" in args:
        return "overflyt guard"
    for arg in args:
        base = os.path.basename(arg)
        if base.startswith("ansible_connection_cli_stub"):  # how ansible-core starts ansible-connection
            return "ansible-connection"
        if base.startswith("ansible-"):
            return base
    return os.path.basename(args[0]) if args and args[0] else "?"


def _ident_json(identity: Identity) -> dict[str, object]:
    return {"pid": identity.pid, "start": identity.start, "boot": identity.boot}


def record(file: Path, process: Identity, name: str, owner: Identity) -> None:
    """Append ``process`` (started for the run whose main process is ``owner``) to the run's ``file``."""
    line = json.dumps({**_ident_json(process), "name": name, "owner": _ident_json(owner)}) + "\n"
    fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())  # one write of one short line: appends never interleave
    finally:
        os.close(fd)


def recorded(file: Path) -> list[Recorded]:
    """The processes ``file`` records (a line that does not parse, say cut by a crash, is skipped)."""
    found: list[Recorded] = []
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return found
    for line in lines:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            data = json.loads(line)
            owner = data["owner"]
            found.append(
                Recorded(
                    Identity(int(data["pid"]), int(data["start"]), str(data["boot"])),
                    str(data["name"]),
                    Identity(int(owner["pid"]), int(owner["start"]), str(owner["boot"])),
                )
            )
    return found


def stop(processes: Iterable[Identity], grace_s: float = 5.0) -> list[Identity]:
    """SIGTERM to each process, SIGKILL to what still runs after ``grace_s``; returns those that
    still ran ``grace_s`` after that (empty: all stopped)."""
    left = [p for p in processes if alive(p)]
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for process in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):  # ended; not ours to stop
                os.kill(process.pid, signum)
        deadline = time.monotonic() + grace_s
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = [p for p in left if alive(p)]
        if not left:
            break
    return left
