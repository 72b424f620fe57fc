"""The devices' management plane: the lab's Linux user and one sshd per device on its loopback
management address, whose session is vtysh of the device's FRR."""

from __future__ import annotations

import pwd
import shutil
from pathlib import Path
from typing import Any

from overflyt.lab.common import (
    SSHD,
    SSHD_PRIVSEP,
    USER_GECOS,
    LabError,
    Paths,
    read_pid,
    run,
    sshd_config,
    wait,
    write,
)
from overflyt.lab.topology import Router


def create_user(name: str, password: str, paths: Paths) -> None:
    """The devices' login: a Linux user of the lab's own (vtysh needs groups frrvty and frr)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = None
    if entry is not None and entry.pw_gecos != USER_GECOS:
        raise LabError(f"user {name} exists and was not created by the lab; remove it or rename the plan's user")
    if entry is None:
        run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--home-dir",
                str(paths.home),
                "--shell",
                "/bin/sh",
                "--comment",
                USER_GECOS,
                "--groups",
                "frrvty,frr",
                name,
            ],
            f"creating user {name}",
        )
    paths.home.mkdir(mode=0o700, exist_ok=True)
    shutil.chown(paths.home, name, name)
    run(["chpasswd"], f"setting the password of user {name}", stdin=f"{name}:{password}\n")


def start_sshd(r: Router, user: str, paths: Paths, cli: Path, ping: Path) -> dict[str, Any]:
    """One sshd per device in the root namespace on the device's loopback management address;
    its session is vtysh on that device, through ``cli`` (:mod:`.ioscli`: IOS ``ping`` translated,
    answered by the lab's agent on the unix socket ``ping``)."""
    assert r.management is not None
    assert r.port is not None
    d = paths.ssh / r.name
    d.mkdir(parents=True, exist_ok=True)
    key = d / "ssh_host_ed25519_key"
    if not key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", r.name, "-f", str(key)], f"host key of {r.name}")
    session = d / "session"
    write(
        session,
        "#!/bin/sh\n# The device's CLI: vtysh of its FRR, IOS ping translated (ForceCommand of its sshd).\n"
        f"cli='/usr/bin/python3 {cli} {r.namespace} {ping}'\n"
        'if [ -n "$SSH_ORIGINAL_COMMAND" ]; then exec $cli "$SSH_ORIGINAL_COMMAND"; fi\n'
        "exec $cli\n",
        0o755,
    )
    config = d / "sshd_config"
    comment = f"sshd of lab device {r.name}: management plane on loopback, session = vtysh -N {r.namespace}"
    settings = [
        f"ListenAddress {r.management}:{r.port}",
        f"HostKey {key}",
        f"PidFile {d / 'sshd.pid'}",
        "MaxStartups 50:30:100",
        "MaxSessions 20",
        f"ForceCommand {session}",
    ]
    write(config, sshd_config(comment, user, settings), 0o600)
    if not SSHD_PRIVSEP.exists():
        SSHD_PRIVSEP.mkdir(mode=0o755)
        (paths.markers / "run-sshd").touch()
    (d / "sshd.pid").unlink(missing_ok=True)
    run([SSHD, "-f", str(config), "-E", str(d / "sshd.log")], f"starting sshd of {r.name}")
    wait(f"sshd of {r.name}", lambda: read_pid(d / "sshd.pid") is not None, 10)
    fingerprint = run(["ssh-keygen", "-l", "-E", "sha256", "-f", f"{key}.pub"], "fingerprint").split()[1]
    pub = (d / "ssh_host_ed25519_key.pub").read_text().split()
    return {
        "name": r.name,
        "address": r.management,
        "port": r.port,
        "namespace": r.namespace,
        "host_key_fingerprint": fingerprint,
        "sshd_pid": read_pid(d / "sshd.pid") or 0,
        "known_hosts_line": f"[{r.management}]:{r.port} {pub[0]} {pub[1]}\n",
    }
