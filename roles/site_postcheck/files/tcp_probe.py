#!/usr/bin/env python3
"""Connect to each ADDRESS:PORT and print one JSON line per target with the first line answered.

Usage: tcp_probe.py TIMEOUT ADDRESS:PORT...   (run inside the site's namespace: ip netns exec NS ...)
The lab's responders (and any service that greets with one line) answer e.g. "target 10.70.10.11".
Standard library only; exits 0 whatever the targets answered (the role judges the answers).
"""

import json
import socket
import sys


def probe(address: str, port: int, timeout: float) -> dict[str, object]:
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            answer = conn.makefile(encoding="utf-8", errors="replace").readline().strip()
    except OSError as exc:
        return {"address": address, "port": port, "answer": None, "error": exc.strerror or type(exc).__name__}
    return {"address": address, "port": port, "answer": answer, "error": None if answer else "empty answer"}


def main(argv: list[str]) -> int:
    timeout = float(argv[0])
    for target in argv[1:]:
        address, _, port = target.rpartition(":")
        print(json.dumps(probe(address, int(port), timeout)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
