"""TLS for the lab tests: a CA and a server certificate made with openssl, and nginx (Debian's
package) running docs/nginx-prefect.conf — the documented file itself, its addresses and files
replaced by the test's own — in front of a Prefect server on a loopback port."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "docs" / "nginx-prefect.conf"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A fresh CA (EC P-256, valid 2 days): (certificate, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def make_server_cert(directory: Path, ca: tuple[Path, Path], address: str) -> tuple[Path, Path]:
    """A server certificate for the IP ADDRESS signed by CA: (certificate, key), the key mode 0600."""
    cert, key, csr, ext = (directory / f"server.{suffix}" for suffix in ("pem", "key", "csr", "ext"))
    ext.write_text(
        f"subjectAltName=IP:{address}\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={address}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
        "-out", str(cert), "-days", "2", "-extfile", str(ext),
    )  # fmt: skip
    key.chmod(0o600)
    return cert, key


def site_config(listen: str, cert: Path, key: Path, upstream: str) -> str:
    """docs/nginx-prefect.conf with the test's listen address, certificate and upstream."""
    text = SITE.read_text()
    for old, new in (
        ("listen 443 ssl;", f"listen {listen} ssl;"),
        ("/etc/ssl/overflyt/prefect.crt", str(cert)),
        ("/etc/ssl/overflyt/prefect.key", str(key)),
        ("proxy_pass http://127.0.0.1:4200;", f"proxy_pass http://{upstream};"),
    ):
        assert text.count(old) == 1, f"{SITE}: {old!r} is no longer there once"
        text = text.replace(old, new)
    return text


@contextlib.contextmanager
def nginx(directory: Path, listen_port: int, cert: Path, key: Path, upstream: str) -> Iterator[Path]:
    """nginx on 127.0.0.1:LISTEN_PORT (TLS) proxying to UPSTREAM, everything of it under DIRECTORY
    (nothing under /etc/nginx or /var); yields its access log. Stopped at the end."""
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx_bin).exists(), "nginx: Debian's nginx package is not installed (lab/debian-packages.txt)"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "site.conf").write_text(site_config(f"127.0.0.1:{listen_port}", cert, key, upstream))
    temp = {name: directory / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    (directory / "nginx.conf").write_text(
        f"daemon off;\nworker_processes 1;\npid {directory}/nginx.pid;\nerror_log {directory}/error.log;\n"
        "user root;\nevents { worker_connections 256; }\nhttp {\n"
        f"  access_log {directory}/access.log;\n"
        + "".join(f"  {name}_temp_path {path};\n" for name, path in temp.items())
        + f"  include {directory}/site.conf;\n}}\n"
    )
    command = [nginx_bin, "-p", str(directory), "-c", str(directory / "nginx.conf")]
    subprocess.run([*command, "-t"], check=True, capture_output=True)
    with open(directory / "stderr.log", "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, (directory / "error.log").read_text()
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", listen_port)) == 0:
                    break
            assert time.monotonic() < deadline, "nginx did not listen"
            time.sleep(0.1)
        yield directory / "access.log"
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
