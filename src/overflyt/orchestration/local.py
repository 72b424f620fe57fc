"""Prefect for a CLI run: the settings overflyt needs before Prefect is imported, and the API the
run uses — the server PREFECT_API_URL names when one is configured (it must answer its health
probe; nothing is started), else Prefect's temporary local API, started by the run under overflyt's
process guard (:mod:`overflyt.ansible.guard`), so it ends when the run's process dies, however it
dies (a SIGKILL included), instead of staying up as an orphan."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from overflyt.errors import OverflytError
from overflyt.orchestration.auth import AUTH_FILE_ENV, CLIENT_ENV, SERVER_ENV, read_auth_file


def prefect_defaults() -> None:
    """Settings that must be in place before ``prefect`` is first imported (each still overridable)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # A run without PREFECT_API_URL starts Prefect's temporary API server and waits for it at most 20 s
    # by default; its first start on a fresh PREFECT_HOME migrates the database, which takes longer than
    # that on a busy 2-core machine. Wait up to 2 minutes instead.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # Prefect creates its home with a plain mkdir (no parents) and, failing that, runs without a
    # database: make sure a configured PREFECT_HOME (the Makefile points it under .overflyt/) exists.
    if os.environ.get("PREFECT_HOME"):
        Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(mode=0o700, parents=True, exist_ok=True)
    # The API's auth string from the file OVERFLYT_API_AUTH_FILE names (mode 0600), for Prefect's client
    # in this process and the processes it starts: in the environment, never on a command line.
    if os.environ.get(AUTH_FILE_ENV):
        os.environ[CLIENT_ENV] = read_auth_file(Path(os.environ[AUTH_FILE_ENV]), AUTH_FILE_ENV)


def prepare_local_database(say: Callable[[str], None] | None = None) -> AbstractContextManager[object]:
    """Choose the API this run uses; the run goes inside the returned context.

    - PREFECT_API_URL configured (the environment, or the active profile in PREFECT_HOME's
      profiles.toml): that server, which must answer (:func:`use_configured_server`); nothing starts.
    - Else the server ``overflyt serve`` runs for this PREFECT_HOME, when its record says one can be
      used (:mod:`overflyt.orchestration.served`); nothing starts. SAY hears which server, or why
      the record's could not be used.
    - Else Prefect's temporary API, started for this process under a file lock in PREFECT_HOME. Its
      start migrates the local SQLite database and registers Prefect's block types: two runs started
      at once on a fresh PREFECT_HOME (two municipalities from one machine) would do that together,
      and one dies ("duplicate column name", "UNIQUE constraint failed"). Prefect keeps one
      ephemeral server per process, so the flows that follow use the one started here."""
    import fcntl

    prefect_defaults()
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, PREFECT_HOME, temporary_settings

    from overflyt.orchestration.served import served_api

    if PREFECT_API_URL.value():
        use_configured_server(str(PREFECT_API_URL.value()))
        return nullcontext()
    home = Path(PREFECT_HOME.value()).expanduser()
    served, why_not = served_api(home, api_unanswered)
    if served is not None:
        if say is not None:
            say(f"using the Prefect server overflyt serve runs at {served} (this run shows in its UI)")
        updates: dict[Any, Any] = {PREFECT_API_URL: served}
        if os.environ.get(CLIENT_ENV):
            updates[PREFECT_API_AUTH_STRING] = os.environ[CLIENT_ENV]
        return temporary_settings(updates=updates)
    if why_not is not None and say is not None:
        say(f"not using overflyt serve's server: {why_not}; starting a temporary API")
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(home / ".overflyt-api-start.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            guarded_server().start()
        except RuntimeError as exc:  # Prefect's own words: timed out, or the server process exited
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise OverflytError(
                f"Prefect's temporary API server (PREFECT_HOME={home}) did not start: {first} "
                "Nothing was run. Set PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS higher on a busy "
                "machine, or point PREFECT_API_URL at a running server (overflyt serve)."
            ) from exc
    return nullcontext()


HEALTH_TIMEOUT_S = 5.0


def use_configured_server(api_url: str) -> None:
    """The rule for a run with PREFECT_API_URL configured: that server is used and nothing is started,
    provided its ``/health`` answers 200 within :data:`HEALTH_TIMEOUT_S`; otherwise one OverflytError
    naming the URL, where it was configured and why it did not answer (nothing has run yet). Without
    PREFECT_API_URL no address is guessed (a server on port 4200 may be another project's, or another
    PREFECT_HOME's): the run starts Prefect's temporary API instead."""
    why = api_unanswered(api_url, HEALTH_TIMEOUT_S)
    if why is None:
        return
    where = "the environment" if os.environ.get("PREFECT_API_URL") else f"the Prefect profile {_profile()}"
    raise OverflytError(
        f"PREFECT_API_URL={api_url} (set in {where}) does not answer: {why}. Nothing was run. Start that "
        "server (overflyt serve), or unset PREFECT_API_URL to run on a temporary local API."
    )


def api_unanswered(api_url: str, timeout_s: float) -> str | None:
    """None when ``API/health`` answers 200 within ``timeout_s``; else why not, in a few words."""
    import ssl
    import urllib.error
    import urllib.request

    from overflyt.orchestration.serve import _tls_context

    health = f"{api_url.rstrip('/')}/health"
    if not health.startswith(("http://", "https://")):
        return f"{health} is not an http(s) URL"
    context = _tls_context() if health.startswith("https:") else None
    try:
        with urllib.request.urlopen(health, timeout=timeout_s, context=context) as response:
            if response.status == 200:
                return None
            return f"GET {health} answered {response.status}"  # pragma: no cover - urllib raises on >= 400
    except urllib.error.HTTPError as exc:
        return f"GET {health} answered {exc.code} {exc.reason}"
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLCertVerificationError):
            return f"GET {health}: its TLS certificate is not trusted (PREFECT_API_SSL_CERT_FILE names the CA file)"
        return f"GET {health}: {exc.reason}"
    except (OSError, ValueError) as exc:
        return f"GET {health}: {exc}"


def _profile() -> str:
    from prefect.context import get_settings_context
    from prefect.settings import get_current_settings

    return f"{get_settings_context().profile.name!r} ({get_current_settings().profiles_path})"


def guarded_server() -> Any:
    """Prefect's temporary API server for this process (one per process: Prefect's own code that
    asks for it later gets this one), its uvicorn started under the process guard. With an auth
    string set for the client, the server asks for it too: it listens on 127.0.0.1, where every
    local user could otherwise reach it while the run lasts."""
    import prefect
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import get_current_settings

    from overflyt.ansible import guard

    class GuardedASGIServer(SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            # Prefect 3.8's own command (SubprocessASGIServer._run_uvicorn_command), behind the guard.
            uvicorn = [
                sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), "--factory",
                "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
                "--log-level", "error", "--lifespan", "on",
            ]  # fmt: skip
            env = {
                **os.environ,
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
                **get_current_settings().to_environment_variables(exclude_unset=True),
            }
            if env.get(CLIENT_ENV) and not env.get(SERVER_ENV):
                env[SERVER_ENV] = env[CLIENT_ENV]
            return subprocess.Popen(args=guard.command(os.getpid(), None, uvicorn), env=env)

    return GuardedASGIServer()
