"""The lab's agent: one root process that does, for the lab's peers, what their sessions (run as the
lab's unprivileged user) cannot do themselves.

* **Probe hosts.** Each site's client namespace is a real SSH probe host: the agent listens on the
  client's management address (loopback, ``127.0.71.N:2222``) and hands every connection to
  ``sshd -i`` started *inside* the client namespace (``ip netns exec``; the way inetd runs sshd), so
  the session and everything it starts (Ansible's ``script``) sends its traffic from the site's
  client LAN. Management stays out of band: nothing is routed into the lab.
* **Pings.** A router's CLI (:mod:`.ioscli`, run by its sshd as the lab's user) answers an IOS
  ``ping`` by asking the agent on the router's unix socket; the agent runs iputils ``ping``
  inside the router's namespace (sourced as asked) and answers in IOS's words.

Run as ``python -m overflyt.lab.agent CONFIG`` (a JSON file in the state directory, written by
:func:`overflyt.lab.probehosts.start_agent`); standard library only.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

SSHD = "/usr/sbin/sshd"
PING = "/usr/bin/ping"
SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
STATS = re.compile(r"(\d+) packets transmitted, (\d+) received")
BAD_SOURCE = re.compile(r"bind|Cannot assign requested address|unknown iface|SO_BINDTODEVICE")
RTT = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/")


def ios_ping(namespace: str, request: dict[str, Any]) -> str:
    """What an IOS router prints for ``ping DEST [repeat N] [timeout T] [size S] [df-bit] [source X]``,
    from a real ping inside ``namespace``."""
    dest, source = str(request.get("dest", "")), request.get("source")
    try:
        count = min(max(int(request.get("count", 5)), 1), 100)
        timeout = min(max(int(request.get("timeout", 2)), 1), 30)
        size = min(max(int(request.get("size", 100)), 36), 18024)
    except (TypeError, ValueError):
        return "% Invalid input detected"
    if not ADDRESS.match(dest) or (source is not None and not SOURCE.match(str(source))):
        return "% Invalid input detected"
    args = ["ip", "netns", "exec", namespace, PING, "-n", "-c", str(count), "-W", str(timeout), "-s", str(size - 28)]
    if source is not None:
        args += ["-I", str(source)]
    if request.get("df"):
        args += ["-M", "do"]
    try:
        done = subprocess.run([*args, dest], capture_output=True, text=True, timeout=count * (timeout + 1) + 5)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"% Ping failed: {exc}"
    stats = STATS.search(done.stdout)
    if stats is None and source is not None and BAD_SOURCE.search(done.stderr):
        return "% Invalid source address- IP address not on any of our up interfaces\n"
    # no statistics otherwise: ping could not send at all (a blackhole or unreachable route)
    tx, rx = (int(stats.group(1)), int(stats.group(2))) if stats else (count, 0)
    lines = [
        "Type escape sequence to abort.",
        f"Sending {count}, {size}-byte ICMP Echos to {dest}, timeout is {timeout} seconds:",
    ]
    if source is not None:
        lines.append(f"Packet sent with a source address of {source}")
    lines.append("!" * rx + "." * (tx - rx))
    rate = f"Success rate is {100 * rx // tx} percent ({rx}/{tx})"
    rtt = RTT.search(done.stdout)
    if rx and rtt is not None:
        low, avg, high = (max(1, round(float(x))) for x in rtt.groups())
        rate += f", round-trip min/avg/max = {low}/{avg}/{high} ms"
    lines.append(rate)
    return "\n".join(lines) + "\n"


def _answer_ping(conn: socket.socket, namespace: str) -> None:
    with conn:
        conn.settimeout(10)
        try:
            request = json.loads(conn.makefile("r", encoding="utf-8").readline() or "{}")
        except (OSError, ValueError):
            return
        reply = ios_ping(namespace, request if isinstance(request, dict) else {})
        try:
            conn.sendall(reply.encode())
        except OSError:
            return


def serve(config: dict[str, Any]) -> None:
    selector = selectors.DefaultSelector()
    for probe in config["probe_hosts"]:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((probe["address"], int(probe["port"])))
        listener.listen(32)
        selector.register(listener, selectors.EVENT_READ, ("ssh", probe))
    for router in config["pings"]:
        path = Path(router["socket"])
        path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        os.chown(path, int(router["uid"]), -1)
        path.chmod(0o600)
        listener.listen(16)
        selector.register(listener, selectors.EVENT_READ, ("ping", router))
    Path(config["pidfile"]).write_text(f"{os.getpid()}\n")
    sessions: list[subprocess.Popen[bytes]] = []
    while True:
        for key, _ in selector.select(timeout=1.0):
            kind, what = key.data
            conn, _ = key.fileobj.accept()  # type: ignore[union-attr]
            if kind == "ssh":
                with conn:
                    sessions.append(
                        subprocess.Popen(
                            ["ip", "netns", "exec", what["namespace"], SSHD, "-i", "-f", what["config"]],
                            stdin=conn.fileno(),
                            stdout=conn.fileno(),
                            stderr=subprocess.DEVNULL,
                            start_new_session=True,
                        )
                    )
            else:
                threading.Thread(target=_answer_ping, args=(conn, what["namespace"]), daemon=True).start()
        sessions = [s for s in sessions if s.poll() is None]


def main(argv: list[str]) -> int:
    serve(json.loads(Path(argv[0]).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
