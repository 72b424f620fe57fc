"""A network device's configuration as text: the one definition of what the ``net_*`` roles compute
from it, so that no Jinja expression decides anything and discovery hashes exactly what
``net_backup`` saves.

Pure functions of strings and lists, with one exception that writes a file: :func:`save_backup`.
The ``overflyt.network`` collection's filters
(``collections/ansible_collections/overflyt/network/plugins/filter/``) are thin wrappers of these.

* :data:`VOLATILE`, :func:`normalise`, :func:`config_sha256` — the backup's format: trailing
  whitespace of every line and the volatile lines gone, no blank lines at either end, one final
  newline; its sha256 (hex, of the text as UTF-8).
* :func:`top_lines`, :func:`route_changes`, :func:`service_changes`, :func:`missing_lines`,
  :func:`pending_lines`, :func:`split_pending` — ``net_configure``'s render (what the cutover
  still has to push against a running configuration) and ``net_verify``'s reading of it.
* :func:`restore_plan` — ``net_restore``'s way from a running configuration back to its backup,
  sections included (hier_config's remediation), and what no command restores.
* :func:`first_line` — ``net_facts``' version line of ``show version``.
* :func:`save_backup` — the one writer of a device's backup file (0600, through a rename), and the
  guard that refuses to replace a different earlier backup (``overflyt.network.running_config``).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, TypedDict

from hier_config import HConfig, Platform, WorkflowRemediation, get_hconfig

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


def save_backup(path: str, config: str, *, overwrite: bool, host: str) -> str | None:
    """Write ``config`` (already :func:`normalise`d) as a device's backup file at ``path`` (mode 0600,
    through a temporary file and a rename). An existing file with the same content is left as it is; a
    different one is replaced only with ``overwrite``, else the refusal is returned (a rerun after a
    partial push must never replace the configuration taken before the change). None once written."""
    wanted = text_sha256(config)  # the sha256 of the file's bytes, written as below
    if os.path.exists(path):
        with open(path, "rb") as handle:
            existing = hashlib.sha256(handle.read()).hexdigest()
        if existing == wanted:
            return None
        if not overwrite:
            return (
                f"{path} already holds a different configuration of {host} (sha256 {existing}); it may "
                "be the only copy of the configuration before the change: keep it, or set "
                "net_backup_overwrite to replace it"
            )
    temporary = f"{path}.partial"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(config.encode("utf-8", "surrogateescape"))
    os.replace(temporary, path)
    return None


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

# Lines that close a section as FRR prints them (hier_config reads sections by indentation only),
# and comments.
_CLOSERS: Final = frozenset({"exit", "end", "exit-address-family", "exit-vrf", "exit-vnc", "!"})
# Lines no configuration command changes: the software version.
_UNRESTORABLE_PREFIXES: Final = ("frr version ", "version ")
# hier_config's driver per platform: FRR's vtysh speaks IOS's CLI (sections, ``no X``, a new
# ``description`` replaces the old one), so it is read with the IOS driver.
_PLATFORMS: Final = {"ios": Platform.CISCO_IOS, "frr": Platform.CISCO_IOS, "aoscx": Platform.ARUBA_AOSCX}


class RestorePlan(TypedDict):
    commands: list[str]  # the remediation, a section's lines indented under it (what a report shows)
    config: str  # the same with ``exit`` after each section: the text to push
    unrestorable: list[str]  # differences the commands do not restore, each named


def _hconfig(platform: str, text: str) -> HConfig:
    lines = (line.rstrip() for line in text.splitlines())
    kept = [line for line in lines if line.strip() and line.strip() not in _CLOSERS]
    return get_hconfig(_PLATFORMS.get(platform, Platform.CISCO_IOS), "\n".join(kept))


def restore_plan(current: str, backup: str, platform: str = "ios") -> RestorePlan:
    """Commands that turn ``current`` into ``backup`` — sections included — for devices without
    ``configure replace`` (FRR's vtysh) or where it is not used, and what they cannot restore.

    hier_config (the platform's driver; FRR is read as IOS) computes the remediation: lines only in
    ``current`` negated (``no X``; ``no X`` undone by ``X``), lines only in ``backup`` added back,
    inside their sections, a section only in ``current`` removed (``no interface X``), one only in
    ``backup`` added whole. A differing software version line is named, never pushed; so are the
    same lines in another order, which no command reorders."""
    remediation = WorkflowRemediation(_hconfig(platform, current), _hconfig(platform, backup)).remediation_config
    commands: list[str] = []
    push: list[str] = []
    unrestorable: list[str] = []
    depth = 0  # sections open in the pushed text
    for child in remediation.all_children_sorted():
        level = child.depth()
        text = child.text
        if level == 1 and text.removeprefix("no ").startswith(_UNRESTORABLE_PREFIXES):
            where = "in the backup only" if not text.startswith("no ") else "not in the backup"
            unrestorable.append(f"{text.removeprefix('no ')} ({where})")
            continue
        while depth >= level:
            depth -= 1
            push.append(" " * depth + "exit")
        line = " " * (level - 1) + text
        commands.append(line)
        push.append(line)
        if child.children:
            depth = level
    push += [" " * d + "exit" for d in range(depth - 1, -1, -1)]
    if not commands and not unrestorable and _sections_text(current) != _sections_text(backup):
        unrestorable.append("the same lines in another order")
    return {"commands": commands, "config": "\n".join(push) + "\n" if push else "", "unrestorable": unrestorable}


def _sections_text(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip() and line.strip() not in _CLOSERS]
