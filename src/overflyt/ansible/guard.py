"""The guard: ansible-playbook runs under it, so nothing it starts outlives the run (Linux).

    python -m overflyt.ansible.guard --parent PID [--record FILE] -- ansible-playbook ARGS...

:func:`overflyt.ansible.runner.run_playbook` has ansible-runner spawn this in place of
ansible-playbook. It is two processes:

- the *front*, the one ansible-runner spawned: leader of the pseudo-terminal's session and of the
  process group that ansible-runner's cancel and timeout SIGKILL;
- the *keeper*, its child, in a process group of its own (so that SIGKILL spares it), whose child
  is ansible-playbook — moved back into the front's group, where cancel and timeout kill it as they
  always did.

Both are child subreapers (``PR_SET_CHILD_SUBREAPER``): whatever ansible-playbook starts and leaves
— its workers (each calls setsid), the ansible-connection daemons (double fork, setsid), modules,
probes — is re-parented to them, never to init, so it stays below them. Each of the two ends when
its parent does, however the parent ends (``PR_SET_PDEATHSIG``, and getppid() checked twice a
second); on that, or on SIGTERM, SIGHUP or SIGINT, it passes the stop on to its child (SIGINT as
SIGINT, else SIGTERM), gives it :data:`GRACE_S`, then stops everything still below it (SIGTERM,
then SIGKILL) and exits. When its child ends, it stops what the child left behind and exits as
the child did: the same exit code, or killed by the same signal.

``PR_SET_PDEATHSIG`` fires when the *thread* that forked the process ends, not its process, and
ansible-runner forks the front from whichever thread runs the playbook (a flow's, a task's). So
the signal only wakes the front; it then compares getppid() with ``--parent``. A thread of overflyt
that ends leaves the front with another thread of the same process, getppid() unchanged, and the
playbook goes on; only the end of overflyt's process (getppid() then names a reaper) stops it.

With ``--record FILE`` the front, the keeper and ansible-playbook are appended to the run record's
``processes.jsonl`` (:mod:`.processes`): a later run finds what a dead run left (:mod:`.leftovers`).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import resource
import signal
import sys
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from overflyt.ansible import processes

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PARENT_DIED = signal.SIGUSR1  # only wakes the loop, which then compares getppid() with the parent
STOPS = frozenset({signal.SIGTERM, signal.SIGHUP, signal.SIGINT})
WATCHED = frozenset({signal.SIGCHLD, PARENT_DIED, *STOPS})
GRACE_S = 2.0  # for the child after a stop was passed on, then between SIGTERM and SIGKILL
FRONT_GRACE_S = 2 * GRACE_S + 1.5  # the keeper's whole stop fits in it
POLL_S = 0.5
GIVE_UP_S = 5.0  # after SIGKILL: what has not ended by then (stuck in the kernel) is left to leftovers


def prctl(option: int, value: int) -> None:
    """prctl(2) through the C library (no dependency): an OSError when the kernel refuses."""
    libc = ctypes.CDLL(None, use_errno=True)
    args = (ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    if libc.prctl(ctypes.c_int(option), *args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl({option}, {value}): {os.strerror(errno)}")


def command(parent: int, record: Path | None, argv: Sequence[str]) -> list[str]:
    """The command line that runs ``argv`` under the guard for the process ``parent``."""
    guard = [sys.executable, "-m", "overflyt.ansible.guard", "--parent", str(parent)]
    return [*guard, *(["--record", str(record)] if record is not None else []), "--", *argv]


_ended: dict[int, int] = {}  # pid -> wait status of each child reaped


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while (ended := os.waitpid(-1, os.WNOHANG))[0]:
            _ended[ended[0]] = ended[1]


def _send(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _watch(child: int, parent: int, grace_s: float) -> int | None:
    """Wait for ``child`` to end; on a stop (a signal of STOPS, or ``parent`` gone) pass it on and
    wait ``grace_s`` more. The child's wait status, or None when it had not ended by then."""
    deadline: float | None = None
    while True:
        _reap()
        if child in _ended:
            return _ended[child]
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return None
        info = signal.sigtimedwait(WATCHED, POLL_S if deadline is None else min(POLL_S, deadline - now))
        signum = info.si_signo if info is not None else None
        if deadline is None and (signum in STOPS or os.getppid() != parent):
            _send(child, signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)
            deadline = time.monotonic() + grace_s


def _end_all(grace_s: float) -> None:
    """Stop everything still below this process: SIGTERM to each once, SIGKILL after ``grace_s``."""
    termed: set[int] = set()
    kill_at = time.monotonic() + grace_s
    while True:
        _reap()
        below = processes.descendants(os.getpid())
        now = time.monotonic()
        if not below or now > kill_at + GIVE_UP_S:
            return
        for pid in below:
            if now >= kill_at:
                _send(pid, signal.SIGKILL)
            elif pid not in termed:
                _send(pid, signal.SIGTERM)
                termed.add(pid)
        time.sleep(0.05)


def _exit_like(status: int | None) -> int:
    """End as the child ended: killed by the same signal, or its exit code (a stopped child that did
    not end in time: 128 + SIGTERM)."""
    if status is None:
        return 128 + signal.SIGTERM
    if not os.WIFSIGNALED(status):
        return os.waitstatus_to_exitcode(status)
    signum = os.WTERMSIG(status)
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    with contextlib.suppress(OSError, ValueError):  # SIGKILL and SIGSTOP keep their disposition
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
    os.kill(os.getpid(), signum)
    return 128 + signum  # a signal whose default is to be ignored


def _record(launch: Launch, pid: int, name: str) -> None:
    identity = processes.identify(pid)
    if launch.record is None or launch.owner is None or identity is None:
        return
    try:
        processes.record(launch.record, identity, name, launch.owner)
    except OSError as exc:  # the guard still guards; only a later run's sweep misses this one
        print(f"overflyt guard: could not record pid {pid} in {launch.record}: {exc}", file=sys.stderr)


@dataclass(frozen=True)
class Launch:
    """What the guard was started with: the command, the record, the run's main process, and the signal
    dispositions and mask the command gets back."""

    command: Sequence[str]
    record: Path | None
    owner: processes.Identity | None
    inherited: Mapping[signal.Signals, object]
    mask: Iterable[int]


def _exec(launch: Launch, group: int) -> None:
    """In the forked child: join ``group``, take back the signal state the guard was started with, and
    become the command."""
    argv = list(launch.command)
    try:
        with contextlib.suppress(OSError):
            os.setpgid(0, group)
        for signum, handler in launch.inherited.items():
            signal.signal(signum, signal.SIG_IGN if handler == signal.SIG_IGN else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, launch.mask)
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(2, f"overflyt guard: cannot run {argv[0]}: {exc.strerror}\n".encode())
    os._exit(127)


def _keeper(launch: Launch, front: int) -> int:
    os.setpgid(0, 0)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    prctl(PR_SET_PDEATHSIG, PARENT_DIED)
    if os.getppid() != front:  # the front ended before we could hear of it
        return 1
    child = os.fork()
    if child == 0:
        _exec(launch, front)
    with contextlib.suppress(OSError):  # as the child does itself: whichever comes first
        os.setpgid(child, front)
    _record(launch, os.getpid(), "overflyt guard")
    _record(launch, child, os.path.basename(launch.command[0]))
    # Let go of the pseudo-terminal: ansible-runner reads it until every holder has closed it.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    status = _watch(child, front, GRACE_S)
    _end_all(GRACE_S)
    return _exit_like(status)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m overflyt.ansible.guard", description=__doc__.split("\n")[0])
    parser.add_argument("--parent", type=int, required=True, help="the pid whose end ends the command")
    parser.add_argument("--record", type=Path, help="the run record's processes.jsonl")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args(argv)
    inherited = {signum: signal.getsignal(signum) for signum in WATCHED}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, WATCHED)
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    prctl(PR_SET_PDEATHSIG, PARENT_DIED)
    if os.getppid() != args.parent:  # the parent ended before we could hear of it: start nothing
        print(f"overflyt guard: process {args.parent} is gone; not starting {args.command[0]}", file=sys.stderr)
        return 1
    launch = Launch(args.command, args.record, processes.identify(args.parent), inherited, mask)
    _record(launch, os.getpid(), "overflyt guard")
    front = os.getpid()
    keeper = os.fork()
    if keeper == 0:  # the keeper never returns into this function: it ends in os._exit
        code = 1
        try:
            code = _keeper(launch, front)
        except Exception:  # noqa: BLE001 - said on the terminal; the front then stops what is left
            traceback.print_exc()
        finally:
            os._exit(code)
    with contextlib.suppress(OSError):
        os.setpgid(keeper, keeper)
    status = _watch(keeper, args.parent, FRONT_GRACE_S)
    _end_all(GRACE_S)
    return _exit_like(status)


if __name__ == "__main__":
    sys.exit(main())
