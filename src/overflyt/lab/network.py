"""The lab's network: namespaces and veth pairs, FRR (zebra + staticd + ripd) in each router's namespace,
and a responder in each server zone."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from overflyt.lab.common import (
    FRR_DAEMONS,
    FRR_ETC,
    FRR_RUN,
    LabError,
    Paths,
    read_pid,
    run,
    wait,
    write,
)
from overflyt.lab.topology import RESPONDER_PORT, Host, LabSpec, Router


def create_namespaces(spec: LabSpec) -> None:
    namespaces = spec.namespaces
    run(["ip", "-batch", "-"], "creating network namespaces", "".join(f"netns add {ns}\n" for ns in namespaces))
    sysctls = ["net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"]
    for ns in namespaces:
        run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *sysctls], f"sysctl in namespace {ns}")
    run(
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
        run(["ip", "-n", ns, "-batch", "-"], f"configuring namespace {ns}", "".join(c + "\n" for c in commands))


def frr_config(r: Router) -> str:
    lines = ["frr defaults traditional", f"hostname {r.name}", "ip forwarding", "!"]
    for i in r.interfaces:
        lines += [f"interface {i.name}", f" description {i.description}", f" ip address {i.address}", "exit", "!"]
    lines += [f"ip route {prefix} {nexthop}" for prefix, nexthop in r.routes]
    lines += ["!", "line vty", "!", ""]
    return "\n".join(lines)


def start_frr(r: Router, paths: Paths) -> None:
    """zebra + staticd + ripd inside the router's namespace, in their own FRR pathspace."""
    etc, run_dir = FRR_ETC / r.namespace, FRR_RUN / r.namespace
    for d in (etc, run_dir):
        d.mkdir(parents=True, exist_ok=True)
        shutil.chown(d, "frr", "frr")
        d.chmod(0o775)
    for name, text in (
        ("frr.conf", frr_config(r)),
        ("vtysh.conf", f"service integrated-vtysh-config\nhostname {r.name}\n"),
    ):
        write(etc / name, text, 0o660)
        shutil.chown(etc / name, "frr", "frr")
    # Own UTS namespace so the daemons' hostname (shown in running-config) is the device's.
    daemons = " && ".join(
        f'/usr/lib/frr/{d} -d -N "$1" -P 0 -u frr -g frr --log file:{run_dir}/{d}.log' for d in FRR_DAEMONS
    )
    run(
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
    wait(f"FRR vty of {r.name}", lambda: all((run_dir / f"{d}.vty").exists() for d in FRR_DAEMONS), 10)
    run(["vtysh", "-N", r.namespace, "-b"], f"loading the FRR configuration of {r.name}")


def routes_installed(r: Router) -> bool:
    return not missing_routes(r)


def has_pid(pidfile: Path) -> bool:
    return read_pid(pidfile) is not None


def missing_routes(r: Router) -> list[str]:
    out = run(["ip", "-n", r.namespace, "-4", "route", "show"], f"routes of {r.namespace}")
    have = set()
    for line in out.splitlines():
        words = line.split()  # 10.70.20.0/24 nhid 35 via 10.70.250.6 dev to-auning proto static ...
        if "via" in words[:-1]:
            have.add((words[0].replace("default", "0.0.0.0/0"), words[words.index("via") + 1]))
    return [f"{p} via {n}" for p, n in r.routes if (p, n) not in have]


def start_responder(namespace: str, side: str, paths: Paths) -> Path:
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
