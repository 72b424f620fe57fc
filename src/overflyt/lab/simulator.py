"""The vCenter simulator: the lab's CA and server certificate, and the one ``ofl-vcsim`` process
that serves both vCenters of the plan (lab/README.md, "vSphere: one simulator, two listeners")."""

from __future__ import annotations

import hashlib
import json
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from overflyt.errors import UsageError
from overflyt.lab.common import (
    LabError,
    Paths,
    port_open,
    run,
    write,
)
from overflyt.lab.processes import daemon
from overflyt.lab.topology import LabSpec


def certificates(paths: Paths) -> None:
    """A CA and a server certificate for 127.0.0.1 (generated once per lab)."""
    t = paths.tls
    if (t / "server.pem").exists() and paths.ca.exists():
        return
    t.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run(
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
    write(
        t / "server.ext",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    run(
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
    run(
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


def start_vcsim(spec: LabSpec, paths: Paths, passwords: dict[str, str]) -> int:
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
        if port_open(host, int(port)):
            raise LabError(f"vCenter simulator: {v.address} ({v.name}) is already in use by another process")
    model_file = paths.vcsim / "model.json"
    write(model_file, json.dumps(model, indent=2) + "\n", 0o600)
    (paths.vcsim / TRANSFER_FILE).unlink(missing_ok=True)  # a new lab relocates at once
    return daemon(
        [str(paths.launcher), "-model", str(model_file)],
        paths.vcsim / "vcsim.pid",
        paths.vcsim / "vcsim.log",
        "the vCenter simulator",
    )


def thumbprints(pem: Path) -> tuple[str, str]:
    der = ssl.PEM_cert_to_DER_cert(pem.read_text())

    def fmt(digest: bytes) -> str:
        return ":".join(f"{b:02X}" for b in digest)

    return fmt(hashlib.sha256(der).digest()), fmt(hashlib.sha1(der).digest())  # vSphere shows both


TRANSFER_FILE = "transfer.json"


def set_transfer(
    paths: Paths,
    rate_mb_per_s: float,
    *,
    jitter: float = 0.0,
    seed: int = 0,
    seconds: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Simulated transfer time for the running simulator's relocations (lab/README.md): each
    RelocateVM_Task started from now on takes the VM's memory, plus its disks when the datastore
    changes, at ``rate_mb_per_s`` MB/s, times 1 ± ``jitter`` (drawn from the VM's name and
    ``seed``); a VM named in ``seconds`` takes that many seconds instead (a VM with a big disk, say).
    Rate 0 switches it off (govmomi's own relocation, done before the call returns).
    The simulator reads the setting at each relocation, so no restart is needed."""
    if not rate_mb_per_s >= 0:
        raise UsageError(f"simulated transfer: rate {rate_mb_per_s} MB/s: must be 0 (off) or more")
    if not 0 <= jitter < 1:
        raise UsageError(f"simulated transfer: jitter {jitter}: must be at least 0 and below 1")
    for name, value in (seconds or {}).items():
        if not value >= 0:
            raise UsageError(f"simulated transfer: vm {name}: {value} s: must be 0 or more")
    if not paths.vcsim.is_dir():
        raise LabError(f"simulated transfer: no vCenter simulator in {paths.vcsim} (run 'overflyt lab up')")
    file = paths.vcsim / TRANSFER_FILE
    setting: dict[str, Any] = {
        "rate_mb_per_s": float(rate_mb_per_s),
        "jitter": float(jitter),
        "seed": int(seed),
        "seconds": {name: float(value) for name, value in (seconds or {}).items()},
    }
    if rate_mb_per_s == 0:
        file.unlink(missing_ok=True)
    else:
        write(file, json.dumps(setting) + "\n", 0o644)
    return setting


def transfer_setting(paths: Paths) -> dict[str, Any]:
    """The simulated transfer now in force (rate 0: off)."""
    try:
        data = json.loads((paths.vcsim / TRANSFER_FILE).read_text())
        return {
            "rate_mb_per_s": float(data["rate_mb_per_s"]),
            "jitter": float(data["jitter"]),
            "seed": int(data["seed"]),
            "seconds": {str(k): float(v) for k, v in (data.get("seconds") or {}).items()},
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {"rate_mb_per_s": 0.0, "jitter": 0.0, "seed": 0, "seconds": {}}
