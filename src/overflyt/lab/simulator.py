"""The vCenter simulator: the lab's CA and server certificate, and the one ``ofl-vcsim`` process
that serves both vCenters of the plan (lab/README.md, "vSphere: one simulator, two listeners")."""

from __future__ import annotations

import hashlib
import json
import ssl
from pathlib import Path

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
