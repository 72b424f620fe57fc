"""Brings the lab up and down on this machine: namespaces, veths, FRR, sshd, the vCenter simulator.

Everything the lab creates is named so ``down`` can find it again even after a half-failed ``up``:
network namespaces ``ofl-*`` (their veths die with them), FRR pathspaces ``/etc/frr/ofl-*`` and
``/var/run/frr/ofl-*``, the Linux user of the devices (GECOS ``overflyt lab``), and the state
directory (the directory of the plan's ``ssh.known_hosts``, ``lab/.state`` for the sample), which
holds every other file, pid file and secret. Traffic never leaves the machine: the vCenters and
the devices' management plane listen on loopback, everything else lives inside the namespaces.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from overflyt.errors import OverflytError, UsageError
from overflyt.lab.topology import PREFIX, RESPONDER_PORT, Host, LabSpec, Router, build_spec
from overflyt.plan import Plan, load_plan

log = logging.getLogger(__name__)

USER_GECOS = "overflyt lab"
FRR_ETC = Path("/etc/frr")
FRR_RUN = Path("/var/run/frr")
SSHD_PRIVSEP = Path("/run/sshd")
SSHD = "/usr/sbin/sshd"
FRR_DAEMONS = ("zebra", "staticd")
READY_TIMEOUT = 30.0


class LabError(OverflytError):
    """The lab could not be brought up (or down); the message names what failed."""


LAB_LOCK = Path("/run/lock/overflyt-lab-tests.lock")


@contextlib.contextmanager
def exclusive(wait_s: float, on_wait: Callable[[], None] | None = None, lock_path: Path = LAB_LOCK) -> Iterator[None]:
    """Hold the machine-wide lab lock for the block. The lab is one per machine (fixed namespaces,
    addresses and ports), so its users — a test session, a benchmark, in any checkout — take turns:
    this waits up to ``wait_s`` for the holder (calling ``on_wait`` once, when it starts waiting),
    then raises LabError. The kernel frees a dead holder's lock."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        deadline = time.monotonic() + wait_s
        waiting = False
        while True:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LabError(
                        f"the lab has been in use for {wait_s:.0f} s (a test session or a benchmark holds {lock_path})"
                    ) from None
                if not waiting and on_wait is not None:
                    on_wait()
                waiting = True
                time.sleep(1)
        yield


class _Paths:
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


# -- helpers --------------------------------------------------------------------------------------


def require_root() -> None:
    if os.geteuid() != 0:
        raise UsageError("the lab needs root (it creates network namespaces, a user and daemons); run it as root")


def _run(args: list[str], what: str, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(args, input=stdin, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{what}: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise LabError(f"{what}: {detail[-1] if detail else f'exit {done.returncode}'}")
    return done.stdout


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _wait(what: str, check: Callable[[], bool], timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise LabError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(0.1)


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def _tail(path: Path) -> str:
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


def _plan_digest(plan_path: Path, paths: _Paths) -> str:
    h = hashlib.sha256(plan_path.read_bytes())
    for source in sorted((Path(__file__).parent).glob("*.py")):
        h.update(source.read_bytes())
    if paths.launcher.exists():
        h.update(str(paths.launcher.stat().st_mtime_ns).encode())
    return h.hexdigest()


# -- public ---------------------------------------------------------------------------------------


def up(plan_path: Path) -> dict[str, Any]:
    """Bring the lab up (idempotent: a healthy lab of the same plan is only verified)."""
    require_root()
    plan = load_plan(plan_path)
    spec = build_spec(plan)
    paths = _Paths(state_dir(plan, plan_path))
    _run([str(paths.build_script)], "building the vCenter simulator (lab/build.sh)")
    digest = _plan_digest(plan_path, paths)
    record = _load_record(paths)
    if record is not None and record.get("plan_sha256") == digest and not _problems(record):
        return _status(record, paths)
    _down(paths)
    started = time.monotonic()
    record = _up(spec, paths, digest)
    log.info("lab up in %.1f s", time.monotonic() - started)
    return _status(record, paths)


def down(plan_path: Path) -> list[str]:
    """Remove every namespace, process, user and file of the lab. Returns what was removed."""
    require_root()
    plan = load_plan(plan_path)
    return _down(_Paths(state_dir(plan, plan_path)))


def status(plan_path: Path) -> dict[str, Any]:
    """The lab's endpoints and whether it is up (``up`` false and little else when it is down)."""
    require_root()
    plan = load_plan(plan_path)
    paths = _Paths(state_dir(plan, plan_path))
    record = _load_record(paths)
    if record is None:
        return {
            "up": False,
            "state_dir": str(paths.state),
            "problems": [f"nothing in {paths.state} (run 'overflyt lab up')"],
        }
    return _status(record, paths)


def probe(namespace: str, targets: Iterable[tuple[str, int]], timeout: float = 2.0) -> list[str]:
    """Connect from inside ``namespace`` to each (address, port); the first line each answered.

    A target that cannot be reached gives ``"error: <reason>"`` instead of an answer.
    """
    code = (
        "import socket,sys\n"
        "for t in sys.argv[2:]:\n"
        "    a,p=t.rsplit(':',1)\n"
        "    try:\n"
        "        s=socket.create_connection((a,int(p)),timeout=float(sys.argv[1]))\n"
        "        print(s.makefile().readline().strip() or 'error: empty answer')\n"
        "        s.close()\n"
        "    except OSError as e:\n"
        "        print('error: '+(e.strerror or type(e).__name__))\n"
    )
    args = [f"{a}:{p}" for a, p in targets]
    out = _run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", code, str(timeout), *args], f"probe {namespace}"
    )
    return out.splitlines()


# -- up -------------------------------------------------------------------------------------------


def _up(spec: LabSpec, paths: _Paths, digest: str) -> dict[str, Any]:
    paths.state.mkdir(parents=True, exist_ok=True)
    paths.state.chmod(0o755)
    paths.markers.mkdir(exist_ok=True)
    passwords = _passwords(spec, paths)
    _tls(paths)
    vcsim_pid = _start_vcsim(spec, paths, passwords)
    _user(spec.device_user, passwords["network"], paths)
    _namespaces(spec)
    for router in spec.routers:
        _frr(router, paths)
    devices = [_sshd(r, spec.device_user, paths) for r in spec.routers if r.management is not None]
    _write(paths.known_hosts, "".join(d.pop("known_hosts_line") for d in devices))
    responders = [_start_responder(z.host.namespace, z.side, paths) for z in spec.zones]

    for v in spec.vcenters:
        host, port = v.address.rsplit(":", 1)
        _wait_process(
            f"vCenter simulator ({v.name} on {v.address})",
            vcsim_pid,
            paths.vcsim / "vcsim.log",
            functools.partial(_port_open, host, int(port)),
        )
    for d in devices:
        _wait_process(
            f"sshd of {d['name']} ({d['address']}:{d['port']})",
            d["sshd_pid"],
            paths.ssh / d["name"] / "sshd.log",
            functools.partial(_port_open, d["address"], d["port"]),
        )
    for r in spec.routers:
        _wait(f"FRR routes of {r.name} (namespace {r.namespace})", functools.partial(_routes_installed, r))
    for z, pidfile in zip(spec.zones, responders, strict=True):
        _wait(f"responder in {z.host.namespace}", functools.partial(_has_pid, pidfile))

    record = _record(spec, paths, passwords, devices, [_read_pid(p) or 0 for p in responders], vcsim_pid, digest)
    _write(paths.record, json.dumps(record, indent=2) + "\n", 0o600)
    _self_check(record)
    return record


def _passwords(spec: LabSpec, paths: _Paths) -> dict[str, str]:
    if paths.secrets.exists():
        stored: dict[str, str] = json.loads(paths.secrets.read_text())
        return stored
    passwords = {v.name: secrets.token_urlsafe(18) for v in spec.vcenters}
    passwords["network"] = secrets.token_urlsafe(18)
    _write(paths.secrets, json.dumps(passwords, indent=2) + "\n", 0o600)
    return passwords


def _tls(paths: _Paths) -> None:
    """A CA and a server certificate for 127.0.0.1 (generated once per lab)."""
    t = paths.tls
    if (t / "server.pem").exists() and paths.ca.exists():
        return
    t.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run(
        [
            "openssl",
            "req",
            "-x509",
            *ec,
            "-keyout",
            str(t / "ca.key"),
            "-out",
            str(paths.ca),
            "-days",
            "3650",
            "-subj",
            "/O=overflyt lab/CN=overflyt lab CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        "creating the lab CA (openssl)",
    )
    _write(
        t / "server.ext",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    _run(
        [
            "openssl",
            "req",
            *ec,
            "-keyout",
            str(t / "server.key"),
            "-out",
            str(t / "server.csr"),
            "-subj",
            "/O=overflyt lab/CN=127.0.0.1",
        ],
        "creating the vCenter key (openssl)",
    )
    _run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            str(t / "server.csr"),
            "-CA",
            str(paths.ca),
            "-CAkey",
            str(t / "ca.key"),
            "-CAcreateserial",
            "-out",
            str(t / "server.pem"),
            "-days",
            "825",
            "-extfile",
            str(t / "server.ext"),
        ],
        "signing the vCenter certificate (openssl)",
    )
    for key in ("ca.key", "server.key"):
        (t / key).chmod(0o600)


def _daemon(args: list[str], pidfile: Path, logfile: Path, what: str) -> int:
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
    _wait(f"starting {what}", lambda: _read_pid(pidfile) is not None, 10)
    return _read_pid(pidfile) or 0


def _start_vcsim(spec: LabSpec, paths: _Paths, passwords: dict[str, str]) -> int:
    model = {
        "listeners": [
            {"name": v.name, "addr": v.address, "user": v.user, "password": passwords[v.name]} for v in spec.vcenters
        ],
        "cert": str(paths.tls / "server.pem"),
        "key": str(paths.tls / "server.key"),
        "datastore_dir": str(paths.vcsim / "datastores"),
        **spec.vsphere,
    }
    for v in spec.vcenters:
        host, port = v.address.rsplit(":", 1)
        if _port_open(host, int(port)):
            raise LabError(f"vCenter simulator: {v.address} ({v.name}) is already in use by another process")
    model_file = paths.vcsim / "model.json"
    _write(model_file, json.dumps(model, indent=2) + "\n", 0o600)
    return _daemon(
        [str(paths.launcher), "-model", str(model_file)],
        paths.vcsim / "vcsim.pid",
        paths.vcsim / "vcsim.log",
        "the vCenter simulator",
    )


def _wait_process(what: str, pid: int, logfile: Path, ready: Callable[[], bool]) -> None:
    def check() -> bool:
        if not _alive(pid):
            raise LabError(f"{what}: the process exited{_tail(logfile)}")
        return ready()

    _wait(what, check)


def _user(name: str, password: str, paths: _Paths) -> None:
    """The devices' login: a Linux user of the lab's own (vtysh needs groups frrvty and frr)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = None
    if entry is not None and entry.pw_gecos != USER_GECOS:
        raise LabError(f"user {name} exists and was not created by the lab; remove it or rename the plan's user")
    if entry is None:
        _run(
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
    _run(["chpasswd"], f"setting the password of user {name}", stdin=f"{name}:{password}\n")


def _namespaces(spec: LabSpec) -> None:
    namespaces = spec.namespaces
    _run(["ip", "-batch", "-"], "creating network namespaces", "".join(f"netns add {ns}\n" for ns in namespaces))
    sysctls = ["net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"]
    for ns in namespaces:
        _run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *sysctls], f"sysctl in namespace {ns}")
    _run(
        ["ip", "-batch", "-"],
        "creating veth pairs",
        "".join(
            f"link add name {a[1]} netns {a[0]} type veth peer name {b[1]} netns {b[0]}\n"
            for a, b in ((link.a, link.b) for link in spec.links)
        ),
    )
    ups: dict[str, list[str]] = {ns: ["link set lo up"] for ns in namespaces}
    for link in spec.links:
        for ns, ifname in (link.a, link.b):
            ups[ns].append(f"link set {ifname} up")
    hosts: list[Host] = [c.host for c in spec.clients] + [z.host for z in spec.zones]
    for h in hosts:
        ups[h.namespace] += [f"addr add {h.address} dev eth0", f"route add default via {h.gateway}"]
        ups[h.namespace] += [f"addr add {a} dev lo" for a in h.extra]
    for ns, commands in ups.items():
        _run(["ip", "-n", ns, "-batch", "-"], f"configuring namespace {ns}", "".join(c + "\n" for c in commands))


def _frr_config(r: Router) -> str:
    lines = ["frr defaults traditional", f"hostname {r.name}", "ip forwarding", "!"]
    for i in r.interfaces:
        lines += [f"interface {i.name}", f" description {i.description}", f" ip address {i.address}", "exit", "!"]
    lines += [f"ip route {prefix} {nexthop}" for prefix, nexthop in r.routes]
    lines += ["!", "line vty", "!", ""]
    return "\n".join(lines)


def _frr(r: Router, paths: _Paths) -> None:
    """zebra + staticd inside the router's namespace, in their own FRR pathspace."""
    etc, run = FRR_ETC / r.namespace, FRR_RUN / r.namespace
    for d in (etc, run):
        d.mkdir(parents=True, exist_ok=True)
        shutil.chown(d, "frr", "frr")
        d.chmod(0o775)
    for name, text in (
        ("frr.conf", _frr_config(r)),
        ("vtysh.conf", f"service integrated-vtysh-config\nhostname {r.name}\n"),
    ):
        _write(etc / name, text, 0o660)
        shutil.chown(etc / name, "frr", "frr")
    # Own UTS namespace so the daemons' hostname (shown in running-config) is the device's.
    daemons = " && ".join(
        f'/usr/lib/frr/{d} -d -N "$1" -P 0 -u frr -g frr --log file:{run}/{d}.log' for d in FRR_DAEMONS
    )
    _run(
        [
            "ip",
            "netns",
            "exec",
            r.namespace,
            "unshare",
            "--uts",
            "sh",
            "-c",
            f'hostname "$0" && {daemons}',
            r.name,
            r.namespace,
        ],
        f"starting FRR of {r.name} (namespace {r.namespace})",
    )
    _wait(f"FRR vty of {r.name}", lambda: all((run / f"{d}.vty").exists() for d in FRR_DAEMONS), 10)
    _run(["vtysh", "-N", r.namespace, "-b"], f"loading the FRR configuration of {r.name}")


def _routes_installed(r: Router) -> bool:
    return not _missing_routes(r)


def _has_pid(pidfile: Path) -> bool:
    return _read_pid(pidfile) is not None


def _missing_routes(r: Router) -> list[str]:
    out = _run(["ip", "-n", r.namespace, "-4", "route", "show"], f"routes of {r.namespace}")
    have = set()
    for line in out.splitlines():
        words = line.split()  # 10.70.20.0/24 nhid 35 via 10.70.250.6 dev to-auning proto static ...
        if "via" in words[:-1]:
            have.add((words[0].replace("default", "0.0.0.0/0"), words[words.index("via") + 1]))
    return [f"{p} via {n}" for p, n in r.routes if (p, n) not in have]


def _sshd(r: Router, user: str, paths: _Paths) -> dict[str, Any]:
    """One sshd per device in the root namespace on the device's loopback management address;
    its session is vtysh on that device."""
    assert r.management is not None
    assert r.port is not None
    d = paths.ssh / r.name
    d.mkdir(parents=True, exist_ok=True)
    key = d / "ssh_host_ed25519_key"
    if not key.exists():
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", r.name, "-f", str(key)], f"host key of {r.name}")
    session = d / "session"
    _write(
        session,
        "#!/bin/sh\n# The device's CLI: vtysh of its FRR instance (ForceCommand of its sshd).\n"
        f'if [ -n "$SSH_ORIGINAL_COMMAND" ]; then exec /usr/bin/vtysh -N {r.namespace} -c "$SSH_ORIGINAL_COMMAND"; fi\n'
        f"exec /usr/bin/vtysh -N {r.namespace}\n",
        0o755,
    )
    config = d / "sshd_config"
    _write(
        config,
        "\n".join(
            [
                f"# sshd of lab device {r.name}: management plane on loopback, session = vtysh -N {r.namespace}",
                f"ListenAddress {r.management}:{r.port}",
                f"HostKey {key}",
                f"PidFile {d / 'sshd.pid'}",
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
                "MaxStartups 50:30:100",
                "MaxSessions 20",
                "LogLevel ERROR",
                f"ForceCommand {session}",
                "",
            ]
        ),
        0o600,
    )
    if not SSHD_PRIVSEP.exists():
        SSHD_PRIVSEP.mkdir(mode=0o755)
        (paths.markers / "run-sshd").touch()
    (d / "sshd.pid").unlink(missing_ok=True)
    _run([SSHD, "-f", str(config), "-E", str(d / "sshd.log")], f"starting sshd of {r.name}")
    _wait(f"sshd of {r.name}", lambda: _read_pid(d / "sshd.pid") is not None, 10)
    fingerprint = _run(["ssh-keygen", "-l", "-E", "sha256", "-f", f"{key}.pub"], "fingerprint").split()[1]
    pub = (d / "ssh_host_ed25519_key.pub").read_text().split()
    return {
        "name": r.name,
        "address": r.management,
        "port": r.port,
        "namespace": r.namespace,
        "host_key_fingerprint": fingerprint,
        "sshd_pid": _read_pid(d / "sshd.pid") or 0,
        "known_hosts_line": f"[{r.management}]:{r.port} {pub[0]} {pub[1]}\n",
    }


def _start_responder(namespace: str, side: str, paths: _Paths) -> Path:
    pidfile = paths.responders / f"{namespace}.pid"
    paths.responders.mkdir(parents=True, exist_ok=True)
    pidfile.unlink(missing_ok=True)
    cmd = [
        "ip",
        "netns",
        "exec",
        namespace,
        sys.executable,
        "-m",
        "overflyt.lab.responder",
        side,
        str(RESPONDER_PORT),
        str(pidfile),
    ]
    logfile = paths.responders / f"{namespace}.log"
    with logfile.open("ab") as out:
        try:
            subprocess.run(
                ["setsid", "-f", *cmd], stdin=subprocess.DEVNULL, stdout=out, stderr=out, check=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise LabError(f"starting the responder in {namespace}: {exc}") from exc
    return pidfile


def _thumbprints(pem: Path) -> tuple[str, str]:
    der = ssl.PEM_cert_to_DER_cert(pem.read_text())

    def fmt(digest: bytes) -> str:
        return ":".join(f"{b:02X}" for b in digest)

    return fmt(hashlib.sha256(der).digest()), fmt(hashlib.sha1(der).digest())  # vSphere shows both


def _record(
    spec: LabSpec,
    paths: _Paths,
    passwords: dict[str, str],
    devices: list[dict[str, Any]],
    responder_pids: list[int],
    vcsim_pid: int,
    digest: str,
) -> dict[str, Any]:
    sha256, sha1 = _thumbprints(paths.tls / "server.pem")
    env = {var: passwords[name] for name, var in spec.credential_env.items()}
    return {
        "plan_sha256": digest,
        "vcsim_pid": vcsim_pid,
        "vcenters": [
            {
                "name": v.name,
                "url": v.url,
                "user": v.user,
                "password": passwords[v.name],
                "ca_file": str(paths.ca),
                "thumbprint_sha256": sha256,
                "thumbprint_sha1": sha1,
            }
            for v in spec.vcenters
        ],
        "devices": [{**d, "user": spec.device_user, "password": passwords["network"]} for d in devices],
        "routers": [
            {"name": r.name, "namespace": r.namespace, "routes": [list(x) for x in r.routes]} for r in spec.routers
        ],
        "clients": [
            {
                "site": c.site,
                "namespace": c.host.namespace,
                "address": c.host.address.split("/")[0],
                "gateway": c.host.gateway,
            }
            for c in spec.clients
        ],
        "servers": [
            {
                "subnet": z.subnet,
                "side": z.side,
                "portgroup": z.portgroup,
                "namespace": z.host.namespace,
                "addresses": [a.split("/")[0] for a in z.host.extra],
                "port": RESPONDER_PORT,
                "responder_pid": pid,
            }
            for z, pid in zip(spec.zones, responder_pids, strict=True)
        ],
        "known_hosts": str(paths.known_hosts),
        "env": env,
    }


def _self_check(record: dict[str, Any]) -> None:
    """Every client reaches every server address, on its source side."""
    sources = [s for s in record["servers"] if s["side"] == "source" and s["addresses"]]
    targets = [(s["addresses"][0], s["port"]) for s in sources]
    for c in record["clients"]:
        answers = probe(c["namespace"], targets)
        for (address, _), answer in zip(targets, answers, strict=True):
            if answer != f"source {address}":
                raise LabError(
                    f"self-check: client {c['namespace']} -> {address}: got {answer!r}, expected 'source {address}'"
                )


# -- status ---------------------------------------------------------------------------------------


def _load_record(paths: _Paths) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = json.loads(paths.record.read_text())
    except (OSError, ValueError):
        return None
    return record


def _problems(record: dict[str, Any]) -> list[str]:
    problems = []
    existing = set(_netns_list())
    if not _alive(record["vcsim_pid"]):
        problems.append("the vCenter simulator is not running")
    for v in record["vcenters"]:
        host, port = v["url"].split("/")[2].rsplit(":", 1)
        if not _port_open(host, int(port)):
            problems.append(f"vCenter {v['name']} does not answer on {host}:{port}")
    for d in record["devices"]:
        if not _alive(d["sshd_pid"]) or not _port_open(d["address"], d["port"]):
            problems.append(f"sshd of {d['name']} is not serving {d['address']}:{d['port']}")
    for r in record["routers"]:
        if r["namespace"] not in existing:
            problems.append(f"namespace {r['namespace']} is missing")
            continue
        for daemon in FRR_DAEMONS:
            pid = _read_pid(FRR_RUN / r["namespace"] / f"{daemon}.pid")
            if pid is None or not _alive(pid):
                problems.append(f"{daemon} of {r['name']} is not running")
    for s in record["servers"]:
        if s["namespace"] not in existing or not _alive(s["responder_pid"]):
            problems.append(f"responder in {s['namespace']} is not running")
    for c in record["clients"]:
        if c["namespace"] not in existing:
            problems.append(f"namespace {c['namespace']} is missing")
    return problems


def _status(record: dict[str, Any], paths: _Paths) -> dict[str, Any]:
    problems = _problems(record)
    hidden = {"plan_sha256"}
    return {
        "up": not problems,
        "state_dir": str(paths.state),
        "problems": problems,
        **{k: v for k, v in record.items() if k not in hidden},
    }


# -- down -----------------------------------------------------------------------------------------


def _netns_list() -> list[str]:
    out = _run(["ip", "netns", "list"], "listing network namespaces")
    return [line.split()[0] for line in out.splitlines() if line.strip()]


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
    for ns in _netns_list():
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
        if ours and _alive(pid):
            found[pid] = cmdline
    return found


def _down(paths: _Paths) -> list[str]:
    removed: list[str] = []
    record = _load_record(paths)
    user = record["devices"][0]["user"] if record and record.get("devices") else "overflyt"
    procs = lab_processes(paths.state, user)
    for pid in procs:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in procs:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    removed += [f"process {pid} ({cmd[:60]})" for pid, cmd in procs.items()]
    for ns in _netns_list():
        if ns.startswith(PREFIX):
            _run(["ip", "netns", "del", ns], f"deleting namespace {ns}")
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
        _run(["userdel", user], f"removing user {user}")
        removed.append(f"user {user}")
    if (paths.markers / "run-sshd").exists():
        shutil.rmtree(SSHD_PRIVSEP, ignore_errors=True)
        removed.append(str(SSHD_PRIVSEP))
    if paths.state.exists():
        shutil.rmtree(paths.state)
        removed.append(str(paths.state))
    return removed
