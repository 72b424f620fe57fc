"""A lab router's CLI session: vtysh of its FRR, with IOS's ``ping`` translated.

The router's sshd runs this (copied into the state directory, run by ``/usr/bin/python3`` as the
lab's user) as its ``ForceCommand``: ``ioscli.py NAMESPACE PING_SOCKET`` (plus the command of an
``ssh host COMMAND``). Every line goes to ``vtysh -N NAMESPACE`` unchanged, except an IOS ping —
``ping [ip] A.B.C.D [repeat N] [timeout T] [size S] [df-bit] [source IF|ADDR]`` — which vtysh does not
have: it is answered by the lab's agent (:mod:`overflyt.lab.agent`), which runs a real ping inside
the router's namespace, sourced as asked, and prints IOS's result lines (``Success rate is ...``).

Interactive sessions (Ansible's network_cli) go through a pty to vtysh: keystrokes pass through at
once, except a line that begins like ``ping``, which is held until its end and then either answered
here (echoed, the result, and vtysh's next prompt) or passed on. Standard library only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import select
import socket
import sys
import termios
import tty
from typing import Any

VTYSH = "/usr/bin/vtysh"
PING = re.compile(r"^\s*ping\s+(?:ip\s+)?(\d{1,3}(?:\.\d{1,3}){3})((?:\s+\S+)*)\s*$")
OPTIONS = {"repeat": "count", "timeout": "timeout", "size": "size", "source": "source"}


def parse(line: str) -> dict[str, Any] | None:
    """The ping request of an IOS ``ping`` line, or None for anything else (vtysh's to answer)."""
    match = PING.match(line)
    if match is None:
        return None
    request: dict[str, Any] = {"dest": match.group(1), "count": 5, "timeout": 2, "size": 100, "source": None}
    words = match.group(2).split()
    while words:
        word = words.pop(0)
        if word == "df-bit":
            request["df"] = True
        elif word in OPTIONS and words:
            value = words.pop(0)
            if word != "source" and not value.isdigit():
                return None
            request[OPTIONS[word]] = value if word == "source" else int(value)
        else:
            return None
    return request


def ask(path: str, request: dict[str, Any]) -> str:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(int(request["count"]) * (int(request["timeout"]) + 1) + 15)
            conn.connect(path)
            conn.sendall((json.dumps(request) + "\n").encode())
            chunks = []
            while chunk := conn.recv(4096):
                chunks.append(chunk)
    except OSError as exc:
        return f"% Ping failed: {exc}\n"
    return b"".join(chunks).decode(errors="replace")


def _could_be_ping(held: bytes) -> bool:
    text = held.decode(errors="replace")
    return text.startswith("ping ") or "ping ".startswith(text)


def relay(namespace: str, ping_socket: str) -> int:
    pid, child = pty.fork()
    if pid == 0:
        os.execv(VTYSH, [VTYSH, "-N", namespace])
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    saved = None
    if os.isatty(stdin):
        saved = termios.tcgetattr(stdin)
        with contextlib.suppress(OSError):
            fcntl.ioctl(child, termios.TIOCSWINSZ, fcntl.ioctl(stdin, termios.TIOCGWINSZ, b"\0" * 8))
        tty.setraw(stdin)
    held, holding, after_cr = b"", True, False
    try:
        while True:
            ready, _, _ = select.select([stdin, child], [], [])
            if child in ready:
                try:
                    data = os.read(child, 65536)
                except OSError:
                    data = b""
                if not data:
                    return 0
                os.write(stdout, data)
            if stdin in ready:
                data = os.read(stdin, 65536)
                if not data:
                    return 0
                out = b""
                for byte in (data[i : i + 1] for i in range(len(data))):
                    if byte == b"\n" and after_cr:  # the LF of a CR LF: the line was answered
                        after_cr = False
                        continue
                    after_cr = byte == b"\r"
                    if byte in (b"\r", b"\n"):
                        request = parse(held.decode(errors="replace")) if holding else None
                        if request is not None:
                            os.write(child, out)
                            out = b""
                            answer = ask(ping_socket, request).replace("\n", "\r\n")
                            os.write(stdout, held + b"\r\n" + answer.encode())
                            out += b"\r"  # vtysh prints its next prompt
                        else:
                            out += held + byte
                        held, holding = b"", True
                    elif holding:
                        held += byte
                        if not _could_be_ping(held):
                            out, held, holding = out + held, b"", False
                    else:
                        out += byte
                if out:
                    os.write(child, out)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)


def main(argv: list[str]) -> int:
    namespace, ping_socket, *command = argv
    if command:
        request = parse(command[0])
        if request is not None:
            sys.stdout.write(ask(ping_socket, request))
            return 0
        os.execv(VTYSH, [VTYSH, "-N", namespace, "-c", command[0]])
    return relay(namespace, ping_socket)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
