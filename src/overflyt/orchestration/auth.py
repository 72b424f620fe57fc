"""Who may reach the Prefect API: the auth string of Prefect's basic authentication.

Prefect 3.8 has one shared credential, ``user:password``: a server started with
``PREFECT_SERVER_API_AUTH_STRING`` answers every API request without it (``Authorization: Basic``)
with 401, except ``GET /health`` and ``/ready``; its clients and workers send it from
``PREFECT_API_AUTH_STRING``. overflyt takes the string from

1. ``--auth-file FILE`` (``overflyt serve``), else
2. the file ``OVERFLYT_API_AUTH_FILE`` names (every command), else
3. ``PREFECT_SERVER_API_AUTH_STRING`` (a server ``overflyt serve`` starts) or ``PREFECT_API_AUTH_STRING``,

never from the command line, and hands it to the processes it starts in their environment only (the
process list shows every argument to every local user; an environment only to its owner and root).
A file must be readable by its owner alone (mode 0600 or 0400) and hold the string on one line.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path

from overflyt.errors import UsageError

AUTH_FILE_ENV = "OVERFLYT_API_AUTH_FILE"
CLIENT_ENV = "PREFECT_API_AUTH_STRING"
SERVER_ENV = "PREFECT_SERVER_API_AUTH_STRING"


def read_auth_file(path: Path, place: str) -> str:
    """The auth string in PATH; a UsageError naming PLACE (``--auth-file``, say) when PATH is missing,
    readable by others than its owner, empty or more than one line."""
    try:
        info = path.stat()
    except OSError as exc:
        raise UsageError(f"{place} {path}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{place} {path}: not a regular file")
    if info.st_mode & 0o077:
        raise UsageError(
            f"{place} {path}: mode {stat.S_IMODE(info.st_mode):04o} lets others read the auth string: "
            f"it must be 0600 (chmod 600 {path})"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{place} {path}: cannot be read: {exc}") from exc
    value = text.removesuffix("\n").removesuffix("\r")
    if not value.strip():
        raise UsageError(f"{place} {path}: empty: it must hold the auth string (user:password) on one line")
    if "\n" in value or "\r" in value:
        raise UsageError(f"{place} {path}: more than one line: it must hold the auth string alone on one line")
    return value


def auth_string(auth_file: Path | None = None, *, server: bool = False) -> str | None:
    """The auth string from AUTH_FILE, OVERFLYT_API_AUTH_FILE or the environment (the server's
    variable first when SERVER: the one a server ``overflyt serve`` starts uses); None when none is set."""
    if auth_file is not None:
        return read_auth_file(auth_file, "--auth-file")
    if os.environ.get(AUTH_FILE_ENV):
        return read_auth_file(Path(os.environ[AUTH_FILE_ENV]), AUTH_FILE_ENV)
    names = (SERVER_ENV, CLIENT_ENV) if server else (CLIENT_ENV,)
    return next((os.environ[name] for name in names if os.environ.get(name)), None)


def is_loopback(host: str) -> bool:
    """Whether HOST is a loopback address (127.0.0.0/8, ::1) or ``localhost``; any other name or
    address (0.0.0.0 and :: included: every interface) is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
