"""The lab's server stand-in: answers every TCP connection with one line naming its side.

Runs inside a server-zone namespace (``ip netns exec ofl-src-10.70.20.0 python -m
overflyt.lab.responder source 7070 PIDFILE``) and answers ``source 10.70.20.21`` for a
connection to 10.70.20.21, so a test knows which side its traffic reached.
"""

from __future__ import annotations

import os
import socketserver
import sys


class _Handler(socketserver.BaseRequestHandler):
    side = ""

    def handle(self) -> None:
        address = self.request.getsockname()[0]
        self.request.sendall(f"{self.side} {address}\n".encode())


def main(argv: list[str]) -> int:
    side, port, pidfile = argv[0], int(argv[1]), argv[2]
    handler = type("Handler", (_Handler,), {"side": side})
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer(("0.0.0.0", port), handler) as server:
        with open(pidfile, "w", encoding="ascii") as f:
            f.write(f"{os.getpid()}\n")
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
