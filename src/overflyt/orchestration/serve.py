"""What ``overflyt serve`` runs: the Prefect server with its UI, the flows as deployments per
municipality, and workers (its command line and what it prints: :mod:`overflyt.cli.serve`).

One machine (the default): ``prefect server start`` on 127.0.0.1 (its database the embedded SQLite
file under ``PREFECT_HOME``; another address with ``--host``, and one that is not loopback only with
an auth string: :mod:`overflyt.orchestration.auth`), the deployments registered in the process work
pool ``overflyt``, and one ``prefect worker start`` polling that pool. Scale-out (``--api-url``): no
server of our own; register the same deployments with a server elsewhere (one on PostgreSQL, say)
and run ``--workers N`` workers here (0: only register). Any number of machines can run workers in
the same pool: Prefect hands each flow run to one of them.

For every ``inventories/<kommune>/plan.yml`` (the directory's name is the deployment's name):

- ``precheck-wave/<kommune>``: nightly at 01:30 Europe/Copenhagen (active), checking the next wave
  whose window has not ended;
- ``migrate-wave/<kommune>``: the next wave, dry run on; one schedule per wave at the start of its
  window (a real cutover that pauses for approval), each paused until someone switches it on;
- ``rollback-site/<kommune>``: no schedule; the UI asks for the site.

Registering again keeps what people switched on or off in the UI; the deployments of a plan that is
gone are deleted, and the notification automations and blocks made what ``--notify`` and the plans'
``notify`` say (:mod:`overflyt.orchestration.notify`). Ctrl-C (or SIGTERM) stops the workers, then
the server.

While it runs, a record in ``PREFECT_HOME`` names its API (:mod:`overflyt.orchestration.served`): CLI
runs on the same ``PREFECT_HOME`` use that server instead of starting a temporary API.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from overflyt.errors import OverflytError, UsageError
from overflyt.orchestration.auth import AUTH_FILE_ENV, CLIENT_ENV, SERVER_ENV

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

PRECHECK_CRON = "30 1 * * *"
TIMEZONE = "Europe/Copenhagen"
HOST = "127.0.0.1"
POOL = "overflyt"


@dataclass(frozen=True)
class Municipality:
    slug: str  # the directory name under inventories/, e.g. norddjurs
    plan: Path  # absolute path of its plan.yml
    next_wave: int
    waves: tuple[tuple[int, datetime, str], ...]  # (number, window start, its time zone) of every wave
    code: str = ""
    name: str = ""
    notify: tuple[str, ...] = ()  # the plan's notify URLs


def municipalities(inventories: Path, now: datetime | None = None) -> list[Municipality]:
    """Every ``<inventories>/<kommune>/plan.yml``; a plan that does not load is refused with its errors."""
    from overflyt.plan import load_plan
    from overflyt.plan.select import next_wave

    found: list[Municipality] = []
    for plan_path in sorted(inventories.glob("*/plan.yml")):
        plan = load_plan(plan_path)
        waves = tuple((w.number, w.window.start, w.window.timezone) for w in plan.waves)
        found.append(
            Municipality(
                plan_path.parent.name,
                plan_path.resolve(),
                next_wave(plan, now),
                waves,
                plan.municipality.code,
                plan.municipality.name,
                tuple(plan.notify),
            )
        )
    if not found:
        raise UsageError(f"no plans found as {inventories}/<kommune>/plan.yml: nothing to serve")
    return found


def deployments(found: list[Municipality], workdir: Path) -> list[RunnerDeployment]:
    """The deployments of the three flows, one of each per municipality; their runs start in WORKDIR
    (run records land in each plan's state home: OVERFLYT_STATE_DIR, else its project's .overflyt/state)."""
    from flows import migrate_wave, precheck_wave, rollback_site
    from prefect.schedules import Cron, RRule

    result: list[RunnerDeployment] = []
    for m in found:
        plan = str(m.plan)
        wave_schedules = [
            RRule(
                f"DTSTART:{start.astimezone(ZoneInfo(zone)).strftime('%Y%m%dT%H%M%S')}\nRRULE:FREQ=DAILY;COUNT=1",
                timezone=zone,
                active=False,
                slug=f"wave-{number}",
                parameters={
                    "params": {"plan": plan, "wave": number, "dry_run": False, "ask_approval": True},
                },
            )
            for number, start, zone in m.waves
        ]
        result += [
            _deployment(
                migrate_wave,
                m.slug,
                workdir,
                {"plan": plan, "wave": m.next_wave, "ask_approval": True},
                f"Cut a wave of {m.slug} over: a dry run unless dry_run is off; a real cutover of a plan that "
                "needs approval pauses before its first step until someone approves it here. One schedule "
                "per wave, at the start of its window (a real cutover), paused until switched on.",
                wave_schedules,
            ),
            _deployment(
                precheck_wave,
                m.slug,
                workdir,
                {"plan": plan},
                f"Nightly pre-check of {m.slug}'s next wave, touching nothing.",
                [Cron(PRECHECK_CRON, timezone=TIMEZONE, active=True, slug="nightly")],
            ),
            _deployment(rollback_site, m.slug, workdir, {"plan": plan}, f"Roll a site of {m.slug} back on demand."),
        ]
    return result


def _deployment(
    flow: Any, name: str, workdir: Path, params: dict[str, Any], description: str, schedules: list[Any] | None = None
) -> RunnerDeployment:
    from prefect.deployments.runner import RunnerDeployment
    from prefect.types.entrypoint import EntrypointType

    deployment = flow.to_deployment(
        name=name,
        parameters={"params": params},
        schedules=schedules,
        tags=[name],
        description=description,
        job_variables={"working_dir": str(workdir)},
        entrypoint_type=EntrypointType.MODULE_PATH,  # overflyt is installed: import it, wherever it lives
    )
    if not isinstance(deployment, RunnerDeployment):  # to_deployment is sync outside an event loop
        raise TypeError(f"{flow.name}/{name}: to_deployment returned {type(deployment).__name__}")
    return deployment


def register(found: list[Municipality], pool: str, workdir: Path) -> list[str]:
    """Create the process work pool POOL if missing and register (create or update) every deployment in
    it, with the server PREFECT_API_URL names. A schedule someone switched on or off keeps its state."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    names: list[str] = []
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):  # another machine registering at the same moment
                client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        for deployment in deployments(found, workdir):
            name = f"{deployment.flow_name}/{deployment.name}"
            try:
                existing = client.read_deployment_by_name(name)
            except ObjectNotFound:
                existing = None
            if existing is not None:
                was = {s.slug: s.active for s in existing.schedules if s.slug}
                for schedule in deployment.schedules or []:
                    if schedule.slug in was:
                        schedule.active = was[schedule.slug]
            deployment.apply(work_pool_name=pool)
            names.append(name)
    return names


def notifications(found: list[Municipality], urls: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """The server's overflyt automations made what URLS and the plans say, and the deployments of plans
    that are gone removed (:mod:`overflyt.orchestration.notify`): (automations, those removed, deployments
    removed)."""
    from prefect.client.orchestration import get_client

    from overflyt.orchestration.notify import remove_gone_deployments, sync, targets

    wanted = targets(((m.slug, m.code, m.name, m.notify) for m in found), urls)
    with get_client(sync_client=True) as client:
        now, removed = sync(client, wanted)
        gone = remove_gone_deployments(client, [m.slug for m in found])
    return now, removed, gone


def _registered(
    found: list[Municipality], pool: str, workdir: Path, api_url: str, notify: Sequence[str] = ()
) -> tuple[list[str], tuple[list[str], list[str], list[str]]]:
    """register() and notifications(), a server that refuses our credentials named in one sentence."""
    import httpx

    try:
        return register(found, pool, workdir), notifications(found, notify)
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code not in (401, 403):
            raise
        raise OverflytError(
            f"the Prefect API at {api_url} refused the request (HTTP {exc.response.status_code}): give it the "
            f"server's auth string ({CLIENT_ENV}, {AUTH_FILE_ENV} or --auth-file FILE)"
        ) from exc


def start_server(
    port: int,
    log_file: Path,
    *,
    host: str = HOST,
    auth: str | None = None,
    home: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``prefect server start`` (UI included) on HOST:PORT in its own session, its output in LOG_FILE.
    Its database: the SQLite file under HOME (default PREFECT_HOME), or what ENV's
    PREFECT_API_DATABASE_CONNECTION_URL names. With AUTH, every API request but the health probe
    needs it (Prefect's basic authentication); it reaches the server in its environment only."""
    environment = dict(
        os.environ,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_API_HOST=host,
        PREFECT_SERVER_API_PORT=str(port),
        # else the UI's pages call port 4200; behind a proxy, PREFECT_UI_API_URL names the proxy's address
        PREFECT_UI_API_URL=os.environ.get("PREFECT_UI_API_URL") or f"{local_url(host, port)}/api",
        # the address notifications link a flow run with (Prefect's ui_url filter, on the server)
        PREFECT_UI_URL=os.environ.get("PREFECT_UI_URL") or local_url(host, port),
        **(env or {}),
    )
    if home is not None:
        environment["PREFECT_HOME"] = str(home)
    environment.pop("PREFECT_API_URL", None)  # the server is the API; it must not look for another one
    environment.pop(SERVER_ENV, None)
    if auth is not None:
        environment[SERVER_ENV] = auth
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)]
    return _spawn(command, log_file, environment)


def local_url(host: str, port: int) -> str:
    """The server's address as this machine reaches it (a wildcard address: through 127.0.0.1)."""
    if host in ("0.0.0.0", "::", ""):
        host = HOST
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def start_worker(
    api_url: str, pool: str, name: str, log_file: Path, *, limit: int | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``prefect worker start`` for the process work pool POOL, polling API_URL, in its own session."""
    environment = dict(os.environ, PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_API_URL=api_url, **(env or {}))
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process", "--name", name]
    if limit is not None:
        command += ["--limit", str(limit)]
    return _spawn(command, log_file, environment)


def _spawn(command: list[str], log_file: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )


def wait_healthy(api_url: str, server: subprocess.Popen[Any] | None = None, timeout_s: float = 120) -> float:
    """Seconds until ``API/health`` answers; an OverflytError when SERVER exits or none answers in time,
    or at once when the API's TLS certificate is not trusted (the CA file: PREFECT_API_SSL_CERT_FILE,
    as Prefect's client)."""
    import ssl  # here, not at the top: the command line imports POOL, and HTTP costs 20 ms
    import urllib.error
    import urllib.request

    context = _tls_context() if api_url.startswith("https:") else None
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if server is not None and server.poll() is not None:
            raise OverflytError(f"the Prefect server exited with code {server.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2, context=context) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                raise OverflytError(
                    f"the Prefect API at {api_url}: its TLS certificate is not trusted ({exc.reason.verify_message}); "
                    "PREFECT_API_SSL_CERT_FILE names the CA file that signed it"
                ) from exc
        except OSError:
            pass
        time.sleep(0.25)
    raise OverflytError(f"the Prefect server at {api_url} was not healthy after {timeout_s:.0f} s")


def _tls_context() -> Any:
    """The TLS context Prefect's own client uses (prefect.client.base): the CA file of
    PREFECT_API_SSL_CERT_FILE (else SSL_CERT_FILE, else certifi's), verification off only when
    PREFECT_API_TLS_INSECURE_SKIP_VERIFY says so."""
    import ssl

    from prefect.settings import get_current_settings

    settings = get_current_settings().api
    if settings.tls_insecure_skip_verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    import certifi

    return ssl.create_default_context(cafile=settings.ssl_cert_file or certifi.where())


def stop(process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """SIGTERM to the process's session, then SIGKILL after TIMEOUT_S: it and whatever it started."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with contextlib.suppress(ProcessLookupError):  # what is left in its session (a flow run's ansible, say)
        os.killpg(process.pid, signal.SIGKILL)


def serve(
    inventories: Path,
    port: int,
    *,
    host: str = HOST,
    auth: str | None = None,
    api_url: str | None,
    workers: int,
    pool: str,
    on_progress: Callable[[str], None],
    on_ready: Callable[[str], None],
    notify: Sequence[str] = (),
) -> bool:
    """See the module's docstring. Blocks until Ctrl-C or SIGTERM (returns at once with no workers and
    a server elsewhere). ON_PROGRESS hears each thing started or registered, ON_READY the UI's address
    once everything runs. Returns whether it stopped something (what it started, or on a signal).
    AUTH: the API's auth string: the server started here asks for it, and this process and the
    workers send it (in their environment, PREFECT_API_AUTH_STRING). NOTIFY: where every municipality's
    notifications go (besides its plan's notify)."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, PREFECT_HOME, temporary_settings

    from overflyt.orchestration.notify import notification_block
    from overflyt.orchestration.served import remove_record, write_record

    found = municipalities(inventories)
    for url in dict.fromkeys([*notify, *(u for m in found for u in m.notify)]):
        notification_block(url)  # a URL no block can send to is refused before anything starts
    workdir = Path.cwd()
    stopping: list[int] = []

    def request_stop(signum: int, _frame: object) -> None:
        stopping.append(signum)
        raise KeyboardInterrupt

    # Both stop us, also when we were started with SIGINT ignored (a background job): the workers and
    # server inherit the default dispositions, so they stop when we ask them to.
    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    home = Path(PREFECT_HOME.value()).expanduser()
    started: list[tuple[str, subprocess.Popen[bytes]]] = []  # stopped last-started first
    try:
        if api_url is None:
            api_url = f"{local_url(host, port)}/api"
            log_file = home / "overflyt-server.log"
            started.append(("the Prefect server", start_server(port, log_file, host=host, auth=auth)))
            seconds = wait_healthy(api_url, started[0][1])
            on_progress(f"Prefect server healthy after {seconds:.1f} s (log: {log_file})")
        else:
            wait_healthy(api_url, timeout_s=30)
        os.environ["PREFECT_API_URL"] = api_url
        updates: dict[Any, Any] = {PREFECT_API_URL: api_url}
        if auth is not None:
            os.environ[CLIENT_ENV] = auth  # the workers' (their environment; never their command line)
            updates[PREFECT_API_AUTH_STRING] = auth
        with temporary_settings(updates=updates):
            names, (automations, removed, gone) = _registered(found, pool, workdir, api_url, notify)
        on_progress(f"registered in work pool {pool}: {', '.join(names)}")
        for name in gone:
            on_progress(f"removed deployment {name}: its plan is gone")
        for name in removed:
            on_progress(f"removed automation {name}")
        if automations:
            on_progress(f"notifications: {len(automations)} automations ({', '.join(automations)})")
        host = socket.gethostname()
        for n in range(1, workers + 1):
            log_file = home / f"overflyt-worker-{n}.log"
            started.append((f"worker {n}", start_worker(api_url, pool, f"{host}-{os.getpid()}-{n}", log_file)))
            on_progress(f"worker {n} polling work pool {pool} (log: {log_file})")
        if started:  # a server or workers run here: CLI runs on this PREFECT_HOME use the server
            write_record(home, api_url, auth=auth is not None)
        on_ready(api_url.removesuffix("/api"))
        while started:
            for what, process in started:
                if process.poll() is not None:
                    raise OverflytError(f"{what} exited with code {process.returncode}; see its log")
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        remove_record(home)
        for _, process in reversed(started):
            stop(process)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return bool(started or stopping)
