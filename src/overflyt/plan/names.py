"""VM names: what a plan accepts as a VM's name, and the safe alias derived from one.

A VM is known by its vSphere display name exactly as people see it in the vSphere Client: any
characters vSphere accepts (Danish letters as UTF-8, spaces, parentheses, dashes, ``/``, ``%``),
at most 80 of them. vSphere stores ``%``, ``/`` and ``\\`` escaped (``%25``, ``%2f``, ``%5c``);
that is the vSphere provider's business (:mod:`overflyt.providers.vsphere.names`), never the
plan's. Names are compared exactly (case matters: ``web01`` and ``WEB01`` are two VMs), as the
vSphere API's name lookups and the lab's simulator compare them.

Where a name cannot go as it is — an Ansible host alias (and any file name, Prefect task name
or artifact key that would name a VM) — :func:`vm_alias` gives a slug: ASCII, lowercase, stable,
and different for any two different names (a hash of the exact name is part of it), so two VMs
whose names differ only in case or punctuation still get different aliases. The real name
travels beside it (the inventory variable ``overflyt_vm_name``, the records), so an alias is read
back through the record (:func:`by_alias`), never by guessing.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

VM_NAME_MAX = 80  # characters, as vSphere allows
_FOLD = str.maketrans(
    {"æ": "ae", "Æ": "ae", "ø": "oe", "Ø": "oe", "å": "aa", "Å": "aa", "ß": "ss", "ð": "d", "þ": "th"}
)
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_TEMPLATE = re.compile(r"\{\{|\{%|\{#")
_ALIAS_TEXT = 40  # characters of the folded name kept in an alias
_ALIAS_HASH = 10  # hex digits of the name's sha256 (40 bits)


def check_vm_name(value: str) -> str:
    """``value`` when it can be a VM's name; ValueError saying why not."""
    if not value.strip():
        raise ValueError("a VM name cannot be empty or only spaces")
    if len(value) > VM_NAME_MAX:
        raise ValueError(f"a VM name has at most {VM_NAME_MAX} characters (vSphere's limit), this one has {len(value)}")
    if _CONTROL.search(value):
        raise ValueError("a VM name cannot hold control characters (tab, newline, ...)")
    if _TEMPLATE.search(value):
        raise ValueError("a VM name cannot hold '{{', '{%' or '{#' (Ansible would read it as a template)")
    return value


def fold(name: str) -> str:
    """``name`` as lowercase ASCII words joined by ``-`` (æ → ae, ø → oe, å → aa, accents dropped)."""
    text = unicodedata.normalize("NFKD", name.translate(_FOLD))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return _NOT_SLUG.sub("-", text.encode("ascii", "ignore").decode()).strip("-")


def vm_alias(name: str) -> str:
    """The slug a VM goes by where its name cannot: ``vm-<folded name>-<hash>``, e.g.
    ``vm-srv-oekonomi-01-922add1842`` for ``SRV-ØKONOMI-01``. Stable (the same name always gives
    the same alias) and collision-free for a plan's names (the hash is of the exact name;
    :mod:`.rules` refuses the astronomically unlikely plan where two names still share one)."""
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:_ALIAS_HASH]
    text = fold(name)[:_ALIAS_TEXT].strip("-")
    return f"vm-{text}-{digest}" if text else f"vm-{digest}"


def by_alias(names: Iterable[str]) -> dict[str, str]:
    """Alias → name for ``names``: how a record's aliases are read back. ValueError when two
    names share an alias."""
    out: dict[str, str] = {}
    for name in names:
        alias = vm_alias(name)
        if out.setdefault(alias, name) != name:
            raise ValueError(f"VMs {out[alias]!r} and {name!r} have the same alias {alias}")
    return out
