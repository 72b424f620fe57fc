"""``overflyt lab up | down | status [--json]`` and ``overflyt lab transfer --rate MB_PER_S`` (also
``python -m overflyt.lab ...``).

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
from overflyt.errors import EXIT_FAILED, EXIT_OK, OverflytError, UsageError

DEFAULT_PLAN = "inventories/norddjurs/plan.yml"


def add_parser(commands: Commands) -> None:
    """Register ``overflyt lab`` and its subcommands."""
    lab = commands.add_parser(
        "lab",
        help="the lab: real peers on this machine (vCenter simulator, FRR routers over SSH)",
        description="Bring up, tear down or describe the lab generated from a plan, or make its VM relocations "
        "take time (transfer). Needs root.",
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
    sub = lab_commands.add_parser(
        "transfer",
        help="simulated transfer time for the simulator's VM relocations (off when the lab comes up)",
        description="Make each VM relocation the vCenter simulator starts from now on take time: the VM's "
        "memory, plus its disks when its datastore changes, at RATE MB/s, times 1 ± JITTER (the same for "
        "a VM and seed every run). Until it ends the VM is where it was, as in vCenter. --rate 0 switches "
        "it off (relocations done at once, as govmomi's simulator does them). See lab/README.md.",
    )
    sub.add_argument("--plan", default=DEFAULT_PLAN, help=f"plan the lab was generated from (default {DEFAULT_PLAN})")
    sub.add_argument("--rate", type=float, required=True, metavar="MB_PER_S", help="MB per second; 0 = off")
    sub.add_argument("--jitter", type=float, default=0.0, help="spread of each VM's time, 0 to <1 (default 0)")
    sub.add_argument("--seed", type=int, default=0, help="seed of the spread (default 0)")
    sub.add_argument(
        "--vm", action="append", default=[], metavar="NAME=SECONDS", help="this VM takes SECONDS, whatever its size"
    )
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    sub.set_defaults(func=_transfer)


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


def _transfer(args: argparse.Namespace) -> int:
    from overflyt.lab import transfer

    seconds: dict[str, float] = {}
    for item in args.vm:
        name, _, value = item.partition("=")
        try:
            seconds[name] = float(value)
        except ValueError:
            raise UsageError(f"--vm {item}: expected NAME=SECONDS") from None
    setting = transfer(_plan(args), args.rate, jitter=args.jitter, seed=args.seed, seconds=seconds)
    if args.json:
        print(json.dumps(setting, indent=2))
    else:
        print(f"lab: {_describe_transfer(setting)}")
    return EXIT_OK


def _describe_transfer(setting: dict[str, Any]) -> str:
    if not setting["rate_mb_per_s"]:
        return "simulated transfer off (relocations done at once)"
    slow = "".join(f", {name} {value:g} s" for name, value in sorted(setting["seconds"].items()))
    return (
        f"simulated transfer {setting['rate_mb_per_s']:g} MB/s ± {setting['jitter'] * 100:g} % "
        f"(seed {int(setting['seed'])}){slow}"
    )


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
    print(f"  {_describe_transfer(state['transfer'])}")
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
