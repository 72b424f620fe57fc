"""The lab's processes: starting a daemon detached from us and waiting until it serves, finding
every live process of the lab, and tearing the whole lab down (processes, namespaces, FRR
pathspaces, the user, the state directory)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from overflyt.lab.common import (
    FRR_ETC,
    FRR_RUN,
    SSHD_PRIVSEP,
    USER_GECOS,
    LabError,
    Paths,
    alive,
    load_record,
    netns_list,
    read_pid,
    run,
    tail,
    wait,
)
from overflyt.lab.topology import PREFIX


def daemon(args: list[str], pidfile: Path, logfile: Path, what: str) -> int:
    """Start a long-running process detached from us (its own session); returns its pid."""
    pidfile.unlink(missing_ok=True)
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with logfile.open("ab") as out:
        try:
            subprocess.run(
                ["setsid", "-f", "sh", "-c", 'echo $$ > "$0"; exec "$@"', str(pidfile), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                check=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise LabError(f"starting {what}: {exc}") from exc
    wait(f"starting {what}", lambda: read_pid(pidfile) is not None, 10)
    return read_pid(pidfile) or 0


def wait_process(what: str, pid: int, logfile: Path, ready: Callable[[], bool]) -> None:
    def check() -> bool:
        if not alive(pid):
            raise LabError(f"{what}: the process exited{tail(logfile)}")
        return ready()

    wait(what, check)


def lab_processes(state: Path, user: str | None = None) -> dict[int, str]:
    """Live processes of the lab: started from its state dir, FRR of its pathspaces, in its
    namespaces, or run by its user. pid -> command line."""
    uid = None
    if user is not None:
        try:
            entry = pwd.getpwnam(user)
            uid = entry.pw_uid if entry.pw_gecos == USER_GECOS else None
        except KeyError:
            uid = None
    in_netns: set[int] = set()
    for ns in netns_list():
        if ns.startswith(PREFIX):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False).stdout
            in_netns.update(int(p) for p in pids.split())
    found: dict[int, str] = {}
    for entry_path in Path("/proc").iterdir():
        if not entry_path.name.isdigit():
            continue
        pid = int(entry_path.name)
        if pid == os.getpid():
            continue
        try:
            cmdline = (entry_path / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            owner = entry_path.stat().st_uid
        except OSError:
            continue
        # A lab left behind by another checkout (CI's fresh clone after a developer's session)
        # holds the same ports and namespaces: its simulator and sshds count as ours too.
        foreign = "/lab/.state/" in cmdline and ("ofl-vcsim" in cmdline or "sshd" in cmdline)
        ours = (
            pid in in_netns
            or str(state) in cmdline
            or f"-N {PREFIX}" in cmdline
            or foreign
            or (uid is not None and owner == uid)
        )
        if ours and alive(pid):
            found[pid] = cmdline
    return found


def teardown(paths: Paths) -> list[str]:
    removed: list[str] = []
    record = load_record(paths)
    user = record["devices"][0]["user"] if record and record.get("devices") else "overflyt"
    procs = lab_processes(paths.state, user)
    for pid in procs:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while any(alive(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in procs:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    removed += [f"process {pid} ({cmd[:60]})" for pid, cmd in procs.items()]
    for ns in netns_list():
        if ns.startswith(PREFIX):
            run(["ip", "netns", "del", ns], f"deleting namespace {ns}")
            removed.append(f"namespace {ns}")
    for base in (FRR_ETC, FRR_RUN):
        for d in base.glob(f"{PREFIX}*"):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(str(d))
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        entry = None
    if entry is not None and entry.pw_gecos == USER_GECOS:
        run(["userdel", user], f"removing user {user}")
        removed.append(f"user {user}")
    if (paths.markers / "run-sshd").exists():
        shutil.rmtree(SSHD_PRIVSEP, ignore_errors=True)
        removed.append(str(SSHD_PRIVSEP))
    if paths.state.exists():
        shutil.rmtree(paths.state)
        removed.append(str(paths.state))
    return removed
