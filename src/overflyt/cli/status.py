"""``overflyt status``: where a municipality (or every municipality) stands, from the durable state."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from overflyt.cli.common import Commands
from overflyt.errors import EXIT_OK, OverflytError, UsageError


def add_parser(commands: Commands) -> None:
    """Register ``overflyt status``."""
    status = commands.add_parser(
        "status",
        help="where a municipality's waves and sites stand (or, with --inventories, every municipality's)",
        description="Show every wave of the plan and each of its sites: its state (pending, in progress, "
        "done, rolled back, failed, rollback failed), when and by which run it got there, who approved its "
        "cutover, the VMs it has in the target and the devices its cutover changed; then the next window and "
        "the last pre-check's verdict. With --inventories DIR, one line per municipality "
        "(DIR/<kommune>/plan.yml). Reads only the wave states and run records in the state home "
        "($OVERFLYT_STATE_DIR, else .overflyt/state in the plan's project): no vCenter or device is "
        "contacted. --json prints the same as data (README, 'Status').",
    )
    status.add_argument("plan", metavar="PLAN", nargs="?", help="plan file, e.g. inventories/norddjurs/plan.yml")
    status.add_argument("--inventories", metavar="DIR", help="every DIR/<kommune>/plan.yml, one line each")
    status.add_argument("--json", action="store_true", help="machine-readable output for scripts")
    status.set_defaults(func=_status)


def _status(args: argparse.Namespace) -> int:
    from overflyt.cutover import status as view
    from overflyt.plan import load_plan
    from overflyt.record import state_dir

    if (args.plan is None) == (args.inventories is None):
        raise UsageError("status: give either a PLAN or --inventories DIR")
    if args.plan is not None:
        path = Path(args.plan)
        plan = load_plan(path)
        data = view.plan_status(plan, state_dir(path.parent))
        print(view.dumps(data) if args.json else view.table(data), end="")
        return EXIT_OK
    root = Path(args.inventories)
    plans = sorted(root.glob("*/plan.yml")) if root.is_dir() else []
    if not plans:
        raise UsageError(f"--inventories {root}: no plans found as {root}/<kommune>/plan.yml")
    rows: list[dict[str, object]] = []
    for path in plans:
        try:
            data = view.plan_status(load_plan(path), state_dir(path.parent))
        except OverflytError as exc:  # one municipality that cannot be read does not hide the others
            first = str(exc).splitlines()[0]
            rows.append({"plan": str(path), "error": first})
            if not args.json:
                print(f"{path.parent.name}: cannot be read: {first} (overflyt status {path})")
            continue
        rows.append({"plan": str(path), **data})
        if not args.json:
            print(view.line(data))
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    return EXIT_OK
