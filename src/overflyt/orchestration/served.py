"""The record ``overflyt serve`` keeps of the Prefect server it uses, in PREFECT_HOME, so that a CLI run
on the same PREFECT_HOME without PREFECT_API_URL uses that server instead of starting Prefect's
temporary API: the run starts nothing, shows in the UI as it goes, and two servers never write to one
SQLite database.

The record is ``PREFECT_HOME/overflyt-serve.json`` (mode 0600): the API's URL, the pid of the serve
process with its start time (a pid alone may be reused) and whether the API asks for an auth string
(never the string itself). It is written once the server and workers run (not by a serve that only
registers) and removed when that serve stops; a second serve on the same PREFECT_HOME leaves a
running first one's record as it is.

A run uses it only when that very process still runs, the API's health probe answers and, for an API that asks
for an auth string, the run has one (OVERFLYT_API_AUTH_FILE or PREFECT_API_AUTH_STRING); otherwise it
says why and starts its temporary API as before. No port is guessed: a server this record does not
name is never used."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from overflyt.ansible import processes
from overflyt.orchestration.auth import CLIENT_ENV

RECORD = "overflyt-serve.json"
HEALTH_TIMEOUT_S = 2.0


def write_record(home: Path, api_url: str, *, auth: bool) -> bool:
    """Record that this process serves ``api_url`` for runs on ``home``; False (nothing written) when
    another ``overflyt serve`` that is still running keeps a record there (the first one stays)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = home / RECORD
    try:
        other = _identity(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        other = None
    if other is not None and other.pid != os.getpid() and processes.alive(other):
        return False
    me = processes.identify(os.getpid())
    assert me is not None  # this very process
    partial = home / f"{RECORD}.{os.getpid()}"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"api_url": api_url, "pid": me.pid, "start": me.start, "boot": me.boot, "auth": auth}, handle)
    os.replace(partial, path)
    return True


def _identity(record: dict[str, object]) -> processes.Identity:
    """The serve process a record names: its pid, start time and boot (a pid alone may be reused)."""
    return processes.Identity(int(record["pid"]), int(record["start"]), str(record["boot"]))  # type: ignore[call-overload]


def remove_record(home: Path) -> None:
    """Remove the record if this process wrote it (a newer serve's record stays)."""
    path = home / RECORD
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def served_api(home: Path, unanswered: Callable[[str, float], str | None]) -> tuple[str | None, str | None]:
    """(the API URL a run on ``home`` should use, None) when ``overflyt serve`` serves one it can use;
    (None, why not) when a record is there but cannot be used; (None, None) when there is no record.
    UNANSWERED(api_url, timeout_s) says why an API's health probe does not answer, or None
    (:func:`overflyt.orchestration.local.api_unanswered`)."""
    path = home / RECORD
    try:
        record = json.loads(path.read_text())
        api_url, serve, auth = str(record["api_url"]), _identity(record), bool(record.get("auth"))
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{path} is not a record overflyt serve wrote ({exc})"
    pid = serve.pid
    if not processes.alive(serve):
        return None, f"overflyt serve (pid {pid}) of {path} is no longer running"
    why = unanswered(api_url, HEALTH_TIMEOUT_S)
    if why is not None:
        return None, f"the server overflyt serve (pid {pid}) runs does not answer: {why}"
    if auth and not os.environ.get(CLIENT_ENV):
        return None, (
            f"the server overflyt serve (pid {pid}) runs at {api_url} asks for an auth string and this run has "
            "none (OVERFLYT_API_AUTH_FILE)"
        )
    return api_url, None
