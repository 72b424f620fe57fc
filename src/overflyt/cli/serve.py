"""``overflyt serve``: the Prefect UI, the flows as deployments per municipality, and workers
(what it runs: :mod:`overflyt.orchestration.serve`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from overflyt.cli.common import Commands
from overflyt.errors import EXIT_OK, UsageError
from overflyt.orchestration.auth import auth_string, is_loopback
from overflyt.orchestration.notify import check_url
from overflyt.orchestration.serve import HOST, POOL, serve


def add_parser(commands: Commands) -> None:
    """Register ``overflyt serve``."""
    parser = commands.add_parser(
        "serve",
        help="the Prefect UI with the flows as deployments per municipality, and a worker",
        description="Start the Prefect server and its UI on 127.0.0.1 or --host (embedded SQLite under PREFECT_HOME), "
        "register migrate-wave, precheck-wave (nightly at 01:30 Europe/Copenhagen) and rollback-site as "
        "deployments for every inventories/<kommune>/plan.yml in the process work pool, start a worker "
        "and print the UI's address. With --api-url, use that server instead (scale-out: one on "
        "PostgreSQL, workers on several machines). While it runs, `overflyt wave run` and `overflyt "
        "rollback` on the same PREFECT_HOME without PREFECT_API_URL use its server (they start none; their "
        "runs show in the UI). Ctrl-C stops the workers and the server. "
        "The API's auth string (Prefect's basic authentication; never on the command line): --auth-file, "
        "else the file OVERFLYT_API_AUTH_FILE names, else PREFECT_SERVER_API_AUTH_STRING or "
        "PREFECT_API_AUTH_STRING; the server started here asks every request for it, and this command and "
        "its workers send it (in their environment). A --host that is not loopback is refused without one. "
        "TLS: a reverse proxy in front (docs/prefect.md); workers trust the CA file PREFECT_API_SSL_CERT_FILE.",
    )
    parser.add_argument(
        "--host",
        default=HOST,
        metavar="ADDR",
        help=f"address the UI and API listen on (default {HOST}); not loopback: only with an auth string",
    )
    parser.add_argument(
        "--auth-file",
        type=Path,
        metavar="FILE",
        help="file holding the API's auth string user:password on one line, mode 0600",
    )
    parser.add_argument("--port", type=int, default=4200, help="port of the UI and API (default 4200)")
    parser.add_argument(
        "--inventories", default="inventories", metavar="DIR", help="where the plans are (default inventories)"
    )
    parser.add_argument(
        "--api-url", metavar="URL", help="a Prefect server already running, e.g. http://db-host:4200/api: start none"
    )
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="workers to start here (default 1)")
    parser.add_argument("--pool", default=POOL, help=f"the process work pool (default {POOL})")
    parser.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="URL",
        help="tell URL (repeatable; a plan's notify adds its own) when a cutover or rollback run fails or crashes, "
        "a rollback fails, a pre-check is blocked or a run waits for approval: Prefect automations per "
        "municipality and a Prefect notification block per URL — http(s)://… (JSON POST {subject, text}), "
        "msteams+https://… (Teams workflow), mailto:ADDR[,ADDR] (SendGrid; key in OVERFLYT_SENDGRID_API_KEY). "
        "Each serve makes the server's notifications what its --notify and the plans say: without it, they "
        "are removed",
    )
    parser.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: must be between 1 and 65535")
    if args.workers < 0:
        raise UsageError(f"--workers {args.workers}: must be 0 or more")
    if args.api_url is not None and args.host != HOST:
        raise UsageError(f"--host {args.host}: starts a server; with --api-url none is started")
    for url in args.notify:
        check_url(url)
    auth = auth_string(args.auth_file, server=args.api_url is None)
    if args.api_url is None and auth is None and not is_loopback(args.host):
        raise UsageError(
            f"--host {args.host}: not a loopback address, and no auth string is set: anyone who reaches it could "
            "start or approve a cutover. Give --auth-file FILE (mode 0600), or set OVERFLYT_API_AUTH_FILE or "
            "PREFECT_SERVER_API_AUTH_STRING"
        )
    stopped = serve(
        Path(args.inventories),
        args.port,
        host=args.host,
        auth=auth,
        api_url=args.api_url,
        workers=args.workers,
        pool=args.pool,
        notify=args.notify,
        on_progress=lambda line: print(f"overflyt: {line}", file=sys.stderr),
        on_ready=lambda url: print(f"overflyt: Prefect UI: {url}", flush=True),
    )
    if stopped:
        print("overflyt: stopped", file=sys.stderr)
    return EXIT_OK
