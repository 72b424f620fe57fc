"""Brings the lab up and down on this machine: namespaces, veths, FRR, sshd, the vCenter simulator.

Each part has its module: :mod:`.simulator` (the vCenter simulator and its TLS), :mod:`.network`
(namespaces, veths, FRR, responders), :mod:`.sshd` (the devices' user and sshd), :mod:`.health`
(probe, self-check, status), :mod:`.processes` (daemons, the lab's processes, teardown),
:mod:`.lock` (the machine-wide lock) and :mod:`.common` (what they share; the names the lab gives
what it creates). Traffic never leaves the machine: the vCenters and the devices' management plane
listen on loopback, everything else lives inside the namespaces.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import secrets
import time
from pathlib import Path
from typing import Any

from overflyt.lab.common import (
    Paths,
    load_record,
    port_open,
    read_pid,
    require_root,
    run,
    state_dir,
    wait,
    write,
)
from overflyt.lab.health import find_problems, self_check, status_of
from overflyt.lab.network import create_namespaces, has_pid, routes_installed, start_frr, start_responder
from overflyt.lab.probehosts import cli_program, ping_socket, prepare_probe_host, start_agent
from overflyt.lab.processes import teardown, wait_process
from overflyt.lab.simulator import certificates, set_transfer, start_vcsim, thumbprints
from overflyt.lab.sshd import create_user, start_sshd
from overflyt.lab.topology import RESPONDER_PORT, LabSpec, build_spec
from overflyt.plan import load_plan

log = logging.getLogger(__name__)


def _plan_digest(plan_path: Path, paths: Paths) -> str:
    h = hashlib.sha256(plan_path.read_bytes())
    for source in sorted((Path(__file__).parent).glob("*.py")):
        h.update(source.read_bytes())
    if paths.launcher.exists():
        h.update(str(paths.launcher.stat().st_mtime_ns).encode())
    return h.hexdigest()


def up(plan_path: Path) -> dict[str, Any]:
    """Bring the lab up (idempotent: a healthy lab of the same plan is only verified)."""
    require_root()
    plan = load_plan(plan_path)
    spec = build_spec(plan)
    paths = Paths(state_dir(plan, plan_path))
    run([str(paths.build_script)], "building the vCenter simulator (lab/build.sh)")
    digest = _plan_digest(plan_path, paths)
    record = load_record(paths)
    if record is not None and record.get("plan_sha256") == digest and not find_problems(record):
        return status_of(record, paths)
    teardown(paths)
    started = time.monotonic()
    record = _up(spec, paths, digest)
    log.info("lab up in %.1f s", time.monotonic() - started)
    return status_of(record, paths)


def down(plan_path: Path) -> list[str]:
    """Remove every namespace, process, user and file of the lab. Returns what was removed."""
    require_root()
    plan = load_plan(plan_path)
    return teardown(Paths(state_dir(plan, plan_path)))


def transfer(
    plan_path: Path,
    rate_mb_per_s: float,
    *,
    jitter: float = 0.0,
    seed: int = 0,
    seconds: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Set the running lab's simulated transfer time (:func:`overflyt.lab.simulator.set_transfer`)."""
    require_root()
    plan = load_plan(plan_path)
    return set_transfer(Paths(state_dir(plan, plan_path)), rate_mb_per_s, jitter=jitter, seed=seed, seconds=seconds)


def status(plan_path: Path) -> dict[str, Any]:
    """The lab's endpoints and whether it is up (``up`` false and little else when it is down)."""
    require_root()
    plan = load_plan(plan_path)
    paths = Paths(state_dir(plan, plan_path))
    record = load_record(paths)
    if record is None:
        return {
            "up": False,
            "state_dir": str(paths.state),
            "problems": [f"nothing in {paths.state} (run 'overflyt lab up')"],
        }
    return status_of(record, paths)


def _up(spec: LabSpec, paths: Paths, digest: str) -> dict[str, Any]:
    paths.state.mkdir(parents=True, exist_ok=True)
    paths.state.chmod(0o755)
    paths.markers.mkdir(exist_ok=True)
    passwords = _passwords(spec, paths)
    certificates(paths)
    vcsim_pid = start_vcsim(spec, paths, passwords)
    create_user(spec.device_user, passwords["network"], paths)
    create_namespaces(spec)
    for router in spec.routers:
        start_frr(router, paths)
    cli = cli_program(paths)
    managed = [r for r in spec.routers if r.management is not None]
    devices = [start_sshd(r, spec.device_user, paths, cli, ping_socket(r, paths)) for r in managed]
    probe_hosts = [prepare_probe_host(c, n, spec.device_user, paths) for n, c in enumerate(spec.clients, start=1)]
    agent_pid = start_agent(probe_hosts, managed, spec.device_user, paths)
    write(paths.known_hosts, "".join(d.pop("known_hosts_line") for d in [*devices, *probe_hosts]))
    responders = [start_responder(z.host.namespace, z.side, paths) for z in spec.zones]

    for v in spec.vcenters:
        host, port = v.address.rsplit(":", 1)
        wait_process(
            f"vCenter simulator ({v.name} on {v.address})",
            vcsim_pid,
            paths.vcsim / "vcsim.log",
            functools.partial(port_open, host, int(port)),
        )
    for d in devices:
        wait_process(
            f"sshd of {d['name']} ({d['address']}:{d['port']})",
            d["sshd_pid"],
            paths.ssh / d["name"] / "sshd.log",
            functools.partial(port_open, d["address"], d["port"]),
        )
    wait_process("the lab's agent", agent_pid, paths.state / "agent.log", lambda: (paths.state / "agent.pid").exists())
    for r in spec.routers:
        wait(f"FRR routes of {r.name} (namespace {r.namespace})", functools.partial(routes_installed, r))
    for z, pidfile in zip(spec.zones, responders, strict=True):
        wait(f"responder in {z.host.namespace}", functools.partial(has_pid, pidfile))

    record = _record(spec, paths, passwords, devices, [read_pid(p) or 0 for p in responders], vcsim_pid, digest)
    record["agent_pid"] = agent_pid
    for client, probe_host in zip(record["clients"], probe_hosts, strict=True):
        client["ssh"] = {k: probe_host[k] for k in ("address", "port", "host_key_fingerprint")}
    write(paths.record, json.dumps(record, indent=2) + "\n", 0o600)
    self_check(record)
    return record


def _passwords(spec: LabSpec, paths: Paths) -> dict[str, str]:
    if paths.secrets.exists():
        stored: dict[str, str] = json.loads(paths.secrets.read_text())
        return stored
    passwords = {v.name: secrets.token_urlsafe(18) for v in spec.vcenters}
    passwords["network"] = secrets.token_urlsafe(18)
    write(paths.secrets, json.dumps(passwords, indent=2) + "\n", 0o600)
    return passwords


def _record(
    spec: LabSpec,
    paths: Paths,
    passwords: dict[str, str],
    devices: list[dict[str, Any]],
    responder_pids: list[int],
    vcsim_pid: int,
    digest: str,
) -> dict[str, Any]:
    sha256, sha1 = thumbprints(paths.tls / "server.pem")
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
