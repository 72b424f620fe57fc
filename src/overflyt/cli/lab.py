"""``overflyt lab up | down | status [--json]`` (also ``python -m overflyt.lab ...``).

Exit codes: 0 ok (for ``status``: the lab is up); 1 the lab failed to come up, or is not up;
2 bad input or usage, or not root.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from overflyt.cli.common import Commands, Parser
from overflyt.errors import EXIT_FAILED, EXIT_OK, OverflytError

DEFAULT_PLAN = "inventories/norddjurs/plan.yml"


def add_parser(commands: Commands) -> None:
    """Register ``overflyt lab`` and its subcommands."""
    lab = commands.add_parser(
        "lab",
        help="the lab: real peers on this machine (vCenter simulator, FRR routers over SSH)",
        description="Bring up, tear down or describe the lab generated from a plan. Needs root.",
        epilog="exit codes: 0 ok (status: the lab is up); 1 the lab failed to come up or is not up; "
        "2 bad input or usage, or not root",
    )
    lab_commands = lab.add_subparsers(dest="lab_command", metavar="SUBCOMMAND")
    lab_commands.required = True
    for name, help_text in (
        ("up", "bring the lab up (idempotent) and print its endpoints"),
        ("down", "remove every namespace, process, user and file the lab created"),
        ("status", "the lab's endpoints, and whether it is up"),
    ):
        sub = lab_commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--plan", default=DEFAULT_PLAN, help=f"plan the lab is generated from (default {DEFAULT_PLAN})"
        )
        sub.add_argument("--json", action="store_true", help="machine-readable output")
        sub.set_defaults(func=_COMMANDS[name])


def _plan(args: argparse.Namespace) -> Path:
    return Path(args.plan)


def _up(args: argparse.Namespace) -> int:
    from overflyt.lab import up

    state = up(_plan(args))
    if args.json:
        print(json.dumps(state, indent=2))
    else:
        _print_endpoints(state)
    return EXIT_OK


def _down(args: argparse.Namespace) -> int:
    from overflyt.lab import down

    removed = down(_plan(args))
    if args.json:
        print(json.dumps({"removed": removed}, indent=2))
    else:
        print(f"lab down: removed {len(removed)} item(s)" if removed else "lab down: nothing to remove")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from overflyt.lab import status

    state = status(_plan(args))
    if args.json:
        print(json.dumps(state, indent=2))
    elif state["up"]:
        _print_endpoints(state)
    if not state["up"]:
        print(f"overflyt: the lab is not up: {'; '.join(state['problems'])}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


_COMMANDS = {"up": _up, "down": _down, "status": _status}


def _print_endpoints(state: dict[str, Any]) -> None:
    print(f"lab up (state in {state['state_dir']})")
    for v in state["vcenters"]:
        print(f"  vCenter {v['name']:<12} {v['url']}  user {v['user']}  CA {v['ca_file']}")
    for d in state["devices"]:
        print(f"  device  {d['name']:<24} ssh {d['user']}@{d['address']} -p {d['port']}  ({d['namespace']})")
    for c in state["clients"]:
        print(f"  client  {c['site']:<24} {c['address']:<15} netns {c['namespace']}")
    for s in state["servers"]:
        print(
            f"  servers {s['subnet']:<18} {s['side']:<7} {len(s['addresses'])} addresses, port {s['port']}, "
            f"netns {s['namespace']}"
        )
    print("  passwords: overflyt lab status --json (env) or " + state["state_dir"] + "/secrets.json")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m overflyt.lab``: the lab command on its own."""
    parser = Parser(prog="overflyt")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["lab", *(sys.argv[1:] if argv is None else argv)])
    try:
        code: int = args.func(args)
    except OverflytError as exc:
        print(f"overflyt: {exc}", file=sys.stderr)
        return exc.exit_code
    return code
