"""What every command group shares: the parser class and the exit codes' epilog.

Imports nothing but the standard library and :mod:`overflyt.errors`, so that building the command
line (``overflyt --help``) stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import TypeAlias

from overflyt.errors import EXIT_BAD_INPUT

EPILOG = """exit codes: 0 ok; 1 checks or migration failed (and were rolled back);
2 bad input or usage; 3 rollback itself failed (a human must act)"""


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors say which command they belong to and exit 2 with one message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


# What each command group's ``add_parser`` registers its commands in.
Commands: TypeAlias = "argparse._SubParsersAction[Parser]"


def add_lang(parser: argparse.ArgumentParser, what: str) -> None:
    """``--lang``: the language of the reports people read (``templates/i18n/<LANG>.yml``)."""
    parser.add_argument(
        "--lang",
        metavar="LANG",
        help=f"language of {what}: da or en, one templates/i18n/<LANG>.yml each (default: $OVERFLYT_LANG, "
        "else da); the console's own output stays English",
    )


def count(n: int, noun: str) -> str:
    """``1 site``, ``2 sites``."""
    return f"{n} {noun}{'s' if n != 1 else ''}"
