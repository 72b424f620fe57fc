"""The `overflyt` command: one module per command group, each with the parsing and printing of its
commands and no logic of its own (that lives in the wing the command drives):

- :mod:`.plan` — ``plan validate | show | schema | waves``
- :mod:`.precheck` — ``precheck``
- :mod:`.wave` — ``wave run``, ``rollback``
- :mod:`.report` — ``report`` (the evidence pack)
- :mod:`.status` — ``status`` (where each wave and site stands)
- :mod:`.lab` — ``lab up | down | status``
- :mod:`.serve` — ``serve``
- :mod:`.discover` — ``discover vcenter | devices``

May import every wing and ``flows`` (it is the top of the flow; nothing in the library imports it,
only ``python -m overflyt.lab`` starts :mod:`.lab`). Building the command line imports no more than
it needs for its help texts; each command imports what it drives when it runs, so ``overflyt
--help`` stays fast.

Exit codes, across every command: 0 ok; 1 checks or migration failed (and were rolled back);
2 bad input or usage; 3 rollback itself failed (a human must act).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence

from overflyt import __version__
from overflyt.cli import discover, lab, plan, precheck, report, serve, status, wave
from overflyt.cli.common import EPILOG, Parser
from overflyt.errors import EXIT_OK, OverflytError


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="overflyt",
        description="Move a municipality's virtual servers and network configuration into a shared "
        "datacentre, wave by wave, with pre-checks and rollback per site.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"overflyt {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens in detail")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    # the order `overflyt --help` lists them in
    for group in (plan, precheck, wave, status, report, lab, serve, discover):
        group.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        _anchor_project(getattr(args, "plan", None))
        code: int = args.func(args)
    except OverflytError as exc:
        print(f"overflyt: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("overflyt: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    return code


def _anchor_project(plan: object) -> None:
    """A command given a plan works in the plan's project (its report templates too), whatever the
    working directory: looked up first (a plan that is not there is the command's own error)."""
    if isinstance(plan, str) and plan:
        from pathlib import Path

        from overflyt.project import find_project

        with contextlib.suppress(OverflytError):
            find_project(Path(plan).parent)


__all__ = ["build_parser", "main"]
