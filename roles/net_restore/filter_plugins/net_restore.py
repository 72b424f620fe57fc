"""Filters of the net_restore role: the line diff that turns a running configuration back into
its backup, for devices without ``configure replace`` (FRR's vtysh) or where it is not used.

Both configurations are split into top-level lines and sections (a top-level line followed by
indented lines, or closed by ``exit`` as FRR prints them). Top-level lines are restorable: a line
only in the running configuration is negated (``no X``; a ``no X`` line is undone by ``X``), a
line only in the backup is added back; removals go first, so a single-valued setting
(``hostname``) is cleared before its old value returns. Anything else that differs — a section's
lines, a section added or removed, the software version — is reported as unrestorable, never
guessed at.
"""

from __future__ import annotations

from typing import Any

_CLOSERS = ("exit", "end")
_UNRESTORABLE_PREFIXES = ("frr version ",)


def _parse(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """(top-level lines, sections by head with their lines)."""
    order: list[str] = []
    children: dict[str, list[str]] = {}
    closed: set[str] = set()
    head: str | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.strip() == "!":
            head = None
            continue
        if line[0].isspace():
            key = head if head is not None else ""
            children.setdefault(key, []).append(line)
            continue
        if line in _CLOSERS:
            if head is not None:
                closed.add(head)
            head = None
            continue
        order.append(line)
        head = line
    sections = {h: children.get(h, []) for h in order if h in children or h in closed}
    if "" in children:
        sections[""] = children[""]
    lines = [line for line in order if line not in sections]
    return lines, sections


def net_restore_plan(current: str, backup: str) -> dict[str, Any]:
    """Commands that turn ``current`` into ``backup`` (top level), and what they cannot restore."""
    cur_lines, cur_sections = _parse(current)
    bak_lines, bak_sections = _parse(backup)
    removed = [line for line in cur_lines if line not in bak_lines]
    added = [line for line in bak_lines if line not in cur_lines]
    unrestorable: list[str] = []
    commands: list[str] = []
    for line in removed:
        if line.startswith(_UNRESTORABLE_PREFIXES):
            unrestorable.append(f"{line} (not in the backup)")
        else:
            commands.append(line[3:] if line.startswith("no ") else f"no {line}")
    for line in added:
        if line.startswith(_UNRESTORABLE_PREFIXES):
            unrestorable.append(f"{line} (in the backup only)")
        else:
            commands.append(line)
    for head in [*cur_sections, *(h for h in bak_sections if h not in cur_sections)]:
        name = head or "(lines outside any section)"
        if head not in bak_sections:
            unrestorable.append(f"{name} (section not in the backup)")
        elif head not in cur_sections:
            unrestorable.append(f"{name} (section missing from the running configuration)")
        else:
            cur, bak = cur_sections[head], bak_sections[head]
            unrestorable += [f"{name}:{line} (not in the backup)" for line in cur if line not in bak]
            unrestorable += [
                f"{name}:{line} (missing from the running configuration)" for line in bak if line not in cur
            ]
            if not [x for x in cur if x not in bak] and not [x for x in bak if x not in cur] and cur != bak:
                unrestorable.append(f"{name} (section lines in another order)")
    return {"commands": commands, "unrestorable": unrestorable}


class FilterModule:
    """net_restore's filters."""

    def filters(self) -> dict[str, Any]:
        return {"net_restore_plan": net_restore_plan}
