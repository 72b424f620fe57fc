"""What every part of the lab shares: its error, its fixed places on the machine, the state
directory's layout, and small helpers (commands, files, pids, ports, waiting).

Everything the lab creates is named so ``down`` can find it again even after a half-failed ``up``:
network namespaces ``ofl-*`` (their veths die with them), FRR pathspaces ``/etc/frr/ofl-*`` and
``/var/run/frr/ofl-*``, the Linux user of the devices (GECOS ``overflyt lab``), and the state
directory (the directory of the plan's ``ssh.known_hosts``, ``lab/.state`` for the sample), which
holds every other file, pid file and secret.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from overflyt.errors import OverflytError, UsageError
from overflyt.plan import Plan

USER_GECOS = "overflyt lab"
FRR_ETC = Path("/etc/frr")
FRR_RUN = Path("/var/run/frr")
SSHD_PRIVSEP = Path("/run/sshd")
SSHD = "/usr/sbin/sshd"
FRR_DAEMONS = ("zebra", "staticd", "ripd")  # ripd: so a device can have a `router` section
READY_TIMEOUT = 30.0


class LabError(OverflytError):
    """The lab could not be brought up (or down); the message names what failed."""


class Paths:
    """The state directory's layout (and the lab directory around it)."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.lab = state.parent
        self.build_script = self.lab / "build.sh"
        self.launcher = self.lab / ".build" / "ofl-vcsim"
        self.record = state / "lab.json"
        self.secrets = state / "secrets.json"
        self.tls = state / "tls"
        self.ca = self.tls / "ca.pem"
        self.vcsim = state / "vcsim"
        self.known_hosts = state / "known_hosts"
        self.ssh = state / "ssh"
        self.home = state / "home"
        self.responders = state / "responders"
        self.markers = state / "created"


def require_root() -> None:
    if os.geteuid() != 0:
        raise UsageError("the lab needs root (it creates network namespaces, a user and daemons); run it as root")


def run(args: list[str], what: str, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(args, input=stdin, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{what}: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise LabError(f"{what}: {detail[-1] if detail else f'exit {done.returncode}'}")
    return done.stdout


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def wait(what: str, check: Callable[[], bool], timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise LabError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(0.1)


def port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return f" (last log line: {lines[-1]})" if lines else ""


def state_dir(plan: Plan, plan_path: Path) -> Path:
    """The lab's state directory: where the plan's known_hosts lives; its CA files must be in tls/."""
    if plan.ssh.known_hosts is None:
        raise UsageError(f"{plan_path}: ssh.known_hosts is not set; the lab writes its host keys there")
    state = (plan_path.parent / plan.ssh.known_hosts).resolve().parent
    for endpoint in (plan.source.vcenter, plan.target.vcenter):
        ca = endpoint.tls.ca_file
        if ca is None or (plan_path.parent / ca).resolve() != state / "tls" / "ca.pem":
            raise UsageError(
                f"{plan_path}: vcenter {endpoint.name}: tls.ca_file must be {state / 'tls' / 'ca.pem'} "
                "(the lab's CA, next to its known_hosts)"
            )
    return state


def load_record(paths: Paths) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = json.loads(paths.record.read_text())
    except (OSError, ValueError):
        return None
    return record


def netns_list() -> list[str]:
    out = run(["ip", "netns", "list"], "listing network namespaces")
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def sshd_config(comment: str, user: str, settings: list[str]) -> str:
    """An sshd_config of the lab: ``comment``, ``settings`` (the daemon's own: address, host key,
    session…), then what every lab sshd shares — password logins of ``user`` only, no forwarding,
    no tunnels, no root, quiet."""
    return "\n".join(
        [
            f"# {comment}",
            *settings,
            f"AllowUsers {user}",
            "PasswordAuthentication yes",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication no",
            "PermitRootLogin no",
            "UsePAM no",
            "UseDNS no",
            "AllowTcpForwarding no",
            "AllowAgentForwarding no",
            "X11Forwarding no",
            "PermitTunnel no",
            "PermitUserRC no",
            "PrintMotd no",
            "PrintLastLog no",
            "LogLevel ERROR",
            "",
        ]
    )
