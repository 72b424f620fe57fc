"""``overflyt serve``: the Prefect UI, the flows as deployments per municipality, and workers
(what it runs: :mod:`overflyt.orchestration.serve`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from overflyt.cli.common import Commands
from overflyt.errors import EXIT_OK, UsageError
from overflyt.orchestration.serve import POOL, serve


def add_parser(commands: Commands) -> None:
    """Register ``overflyt serve``."""
    parser = commands.add_parser(
        "serve",
        help="the Prefect UI with the flows as deployments per municipality, and a worker",
        description="Start the Prefect server and its UI on 127.0.0.1 (embedded SQLite under PREFECT_HOME), "
        "register migrate-wave, precheck-wave (nightly at 01:30 Europe/Copenhagen) and rollback-site as "
        "deployments for every inventories/<kommune>/plan.yml in the process work pool, start a worker "
        "and print the UI's address. With --api-url, use that server instead (scale-out: one on "
        "PostgreSQL, workers on several machines). Ctrl-C stops the workers and the server.",
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
    parser.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: must be between 1 and 65535")
    if args.workers < 0:
        raise UsageError(f"--workers {args.workers}: must be 0 or more")
    stopped = serve(
        Path(args.inventories),
        args.port,
        api_url=args.api_url,
        workers=args.workers,
        pool=args.pool,
        on_progress=lambda line: print(f"overflyt: {line}", file=sys.stderr),
        on_ready=lambda url: print(f"overflyt: Prefect UI: {url}", flush=True),
    )
    if stopped:
        print("overflyt: stopped", file=sys.stderr)
    return EXIT_OK
