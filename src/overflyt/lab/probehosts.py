"""The sites' probe hosts and the routers' pings: what the lab's agent (:mod:`.agent`) serves.

Each site's client namespace gets a management address on loopback (``127.0.71.N``, port 2222, in
the order of the plan's sites) where the agent hands SSH connections to ``sshd -i`` inside the
namespace: a real SSH probe host per site, with its own host key (in the lab's known_hosts) and the
lab's user. Each router gets a unix socket on which the agent answers its CLI's IOS ``ping``
(:mod:`.ioscli`) with a real ping inside the router's namespace.
"""

from __future__ import annotations

import json
import pwd
import shutil
import sys
from pathlib import Path
from typing import Any

from overflyt.lab.common import SSHD, Paths, run, sshd_config, write
from overflyt.lab.processes import daemon
from overflyt.lab.topology import Client, Router

PROBE_NET = "127.0.71."
PROBE_PORT = 2222


def ping_socket(r: Router, paths: Paths) -> Path:
    return paths.state / "ping" / f"{r.namespace}.sock"


def cli_program(paths: Paths) -> Path:
    """The routers' CLI session (:mod:`.ioscli`), copied where the lab's user can run it."""
    target = paths.ssh / "ioscli.py"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(__file__).with_name("ioscli.py"), target)
    target.chmod(0o755)
    return target


def prepare_probe_host(c: Client, n: int, user: str, paths: Paths) -> dict[str, Any]:
    """The sshd configuration and host key of site ``c``'s probe host; its record entry."""
    d = paths.ssh / f"probe-{c.site}"
    d.mkdir(parents=True, exist_ok=True)
    key = d / "ssh_host_ed25519_key"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"probe-{c.site}", "-f", str(key)], "host key")
    address = f"{PROBE_NET}{n}"
    config = d / "sshd_config"
    comment = f"probe host of site {c.site}: sshd -i in namespace {c.host.namespace} (per connection, by the agent)"
    write(config, sshd_config(comment, user, [f"HostKey {key}", "Subsystem sftp internal-sftp"]), 0o600)
    fingerprint = run(["ssh-keygen", "-l", "-E", "sha256", "-f", f"{key}.pub"], "fingerprint").split()[1]
    pub = (d / "ssh_host_ed25519_key.pub").read_text().split()
    return {
        "address": address,
        "port": PROBE_PORT,
        "host_key_fingerprint": fingerprint,
        "namespace": c.host.namespace,
        "config": str(config),
        "known_hosts_line": f"[{address}]:{PROBE_PORT} {pub[0]} {pub[1]}\n",
    }


def start_agent(probe_hosts: list[dict[str, Any]], routers: list[Router], user: str, paths: Paths) -> int:
    """The agent (root, root namespace) for every probe host and router; its pid."""
    (paths.state / "ping").mkdir(parents=True, exist_ok=True)
    (paths.state / "ping").chmod(0o755)
    uid = pwd.getpwnam(user).pw_uid
    config = paths.state / "agent.json"
    pidfile = paths.state / "agent.pid"
    settings = {
        "pidfile": str(pidfile),
        "sshd": SSHD,
        "probe_hosts": [{k: p[k] for k in ("address", "port", "namespace", "config")} for p in probe_hosts],
        "pings": [{"socket": str(ping_socket(r, paths)), "namespace": r.namespace, "uid": uid} for r in routers],
    }
    write(config, json.dumps(settings, indent=2) + "\n", 0o600)
    return daemon([sys.executable, "-m", "overflyt.lab.agent", str(config)], paths.state / "agent.started",
                  paths.state / "agent.log", "the lab's agent")  # fmt: skip
