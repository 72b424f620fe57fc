"""A network device's configuration as text: the one definition of what the ``net_*`` roles compute
from it, so that no Jinja expression decides anything and discovery hashes exactly what
``net_backup`` saves.

Pure functions of strings and lists, no I/O. The ``overflyt.network`` collection's filters
(``collections/ansible_collections/overflyt/network/plugins/filter/``) are thin wrappers of these.

* :data:`VOLATILE`, :func:`normalise`, :func:`config_sha256` — the backup's format: trailing
  whitespace of every line and the volatile lines gone, no blank lines at either end, one final
  newline; its sha256 (hex, of the text as UTF-8).
* :func:`top_lines`, :func:`route_changes`, :func:`service_changes`, :func:`missing_lines`,
  :func:`pending_lines`, :func:`split_pending` — ``net_configure``'s render (what the cutover
  still has to push against a running configuration) and ``net_verify``'s reading of it.
* :func:`restore_plan` — ``net_restore``'s top-level line diff from a running configuration back
  to its backup, and what it will not guess at.
* :func:`first_line` — ``net_facts``' version line of ``show version``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, TypedDict

# Lines that change without a configuration change, matched (as regular expressions) at the start
# of a line: FRR's and IOS's build banner and byte count, IOS's change and NVRAM timestamps, and
# IOS's NTP clock period (rewritten as the clock drifts).
VOLATILE: Final[tuple[str, ...]] = (
    "Building configuration",
    "Current configuration",
    "! Last configuration change",
    "! NVRAM config last updated",
    "! No configuration change since last restart",
    "ntp clock-period",
)


_VOLATILE_RE: Final = re.compile("|".join(f"({pattern})" for pattern in VOLATILE))


# -- the backup's format ---------------------------------------------------------------------------


def normalise(text: str) -> str:
    """The running configuration as ``net_backup`` saves it: trailing whitespace of every line and
    every line that one of :data:`VOLATILE` matches at its start left out, no blank lines at either
    end, one final newline. Normalising twice changes nothing."""
    lines = (line.rstrip() for line in text.splitlines())
    return "\n".join(line for line in lines if not _VOLATILE_RE.match(line)).strip("\n") + "\n"


def text_sha256(text: str) -> str:
    """sha256 (hex) of ``text`` as UTF-8 (text that is not valid Unicode hashes as the bytes it was
    decoded from), as Ansible's ``hash('sha256')`` and the file Ansible writes from it."""
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def config_sha256(text: str) -> str:
    """sha256 (hex) of the normalised configuration: the sha256 of its backup file."""
    return text_sha256(normalise(text))


def first_line(text: str) -> str:
    """The text up to its first newline (all of it when it has none)."""
    return text.split("\n", 1)[0]


# -- net_configure: what the cutover still has to push ---------------------------------------------


def top_lines(text: str) -> list[str]:
    """The configuration's top-level lines: every line that is not blank and does not start with
    whitespace, without its trailing whitespace (``!`` and ``exit`` lines included)."""
    return [line.rstrip() for line in text.splitlines() if line.strip() and not line[0].isspace()]


def route_changes(top: Sequence[str], routes: Iterable[Mapping[str, object]]) -> list[str]:
    """Per desired route ``{prefix, next_hop}``: ``ip route <prefix> <next_hop>`` when ``top``
    lacks it, then ``no <line>`` for every other ``ip route <prefix> ...`` line of ``top`` (make
    before break)."""
    out: list[str] = []
    for route in routes:
        prefix = f"ip route {route['prefix']} "
        want = f"{prefix}{route['next_hop']}"
        if want not in top:
            out.append(want)
        out += [f"no {line}" for line in top if line.startswith(prefix) and line != want]
    return out


def _is_ipv4(word: str) -> bool:
    parts = word.split(".")
    return len(parts) == 4 and all(parts) and "".join(parts).isdigit()


def service_changes(top: Sequence[str], prefix: str, wanted: Sequence[str]) -> list[str]:
    """One shared service whose servers are top-level lines ``<prefix> <address> [options]``: the
    wanted servers ``top`` lacks (``<prefix> <address>``), then the servers it has that are not
    wanted (``no <prefix> <address>``). Nothing when ``wanted`` is empty: the service is left alone.

    A line's servers are all its arguments when they all are IPv4 addresses (IOS ``ip name-server
    A B``), else its first argument when that is one (``ntp server A prefer``); other lines
    (``ip name-server vrf X A``) are left alone. A wanted server present with options is kept."""
    if not wanted:
        return []
    have: list[str] = []
    for line in top:
        if not line.startswith(prefix + " "):
            continue
        args = line[len(prefix) + 1 :].split()
        if args and all(_is_ipv4(arg) for arg in args):
            have += args
        elif args and _is_ipv4(args[0]):
            have.append(args[0])
    out = [f"{prefix} {address}" for address in wanted if address not in have]
    out += [f"no {prefix} {address}" for address in dict.fromkeys(have) if address not in wanted]
    return out


def missing_lines(top: Sequence[str], lines: Iterable[str]) -> list[str]:
    """The ``lines`` that ``top`` lacks, in their order."""
    return [line for line in lines if line not in top]


def pending_lines(rendered: str) -> list[str]:
    """The lines a rendered change pushes: without trailing whitespace, neither blank nor comments
    (``!`` ...)."""
    lines = (line.rstrip() for line in rendered.splitlines())
    return [line for line in lines if line and not line.startswith("!")]


class PendingSplit(TypedDict):
    added: list[str]  # lines the push adds
    removed: list[str]  # lines the push removes (its ``no X`` lines, as X)


def split_pending(pending: Iterable[str]) -> PendingSplit:
    """The pending lines as what they add and what they remove: a ``no X`` line removes X."""
    lines = list(pending)
    return {
        "added": [line for line in lines if not line.startswith("no ")],
        "removed": [line[3:] for line in lines if line.startswith("no ")],
    }


# -- net_restore: back to the backup ----------------------------------------------------------------

_CLOSERS = ("exit", "end")
_UNRESTORABLE_PREFIXES = ("frr version ",)


class RestorePlan(TypedDict):
    commands: list[str]  # top-level commands that turn the running configuration into the backup
    unrestorable: list[str]  # differences they do not restore, each named


def _parse(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """(top-level lines, sections by head with their lines). A section is a top-level line followed
    by indented lines, or closed by ``exit`` as FRR prints them; ``""`` holds indented lines
    outside any section."""
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
            children.setdefault(head if head is not None else "", []).append(line)
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
    return [line for line in order if line not in sections], sections


def restore_plan(current: str, backup: str) -> RestorePlan:
    """Commands that turn ``current`` into ``backup``, for devices without ``configure replace``
    (FRR's vtysh) or where it is not used, and what they cannot restore.

    Top-level lines are restorable: a line only in ``current`` is negated (``no X``; a ``no X``
    line is undone by ``X``), a line only in ``backup`` is added back; removals go first, so a
    single-valued setting (``hostname``) is cleared before its old value returns. Anything else
    that differs — a section's lines, a section added or removed, the software version — is
    reported as unrestorable, never guessed at."""
    cur_lines, cur_sections = _parse(current)
    bak_lines, bak_sections = _parse(backup)
    unrestorable: list[str] = []
    commands: list[str] = []
    for line in (x for x in cur_lines if x not in bak_lines):
        if line.startswith(_UNRESTORABLE_PREFIXES):
            unrestorable.append(f"{line} (not in the backup)")
        else:
            commands.append(line[3:] if line.startswith("no ") else f"no {line}")
    for line in (x for x in bak_lines if x not in cur_lines):
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
            only_cur = [line for line in cur if line not in bak]
            only_bak = [line for line in bak if line not in cur]
            unrestorable += [f"{name}:{line} (not in the backup)" for line in only_cur]
            unrestorable += [f"{name}:{line} (missing from the running configuration)" for line in only_bak]
            if not only_cur and not only_bak and cur != bak:
                unrestorable.append(f"{name} (section lines in another order)")
    return {"commands": commands, "unrestorable": unrestorable}
