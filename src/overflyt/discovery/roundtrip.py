"""An estate file rewritten with its comments and layout kept (ruamel.yaml's round trip).

Discovery computes an estate file's new data as plain data (:mod:`.devices`, :mod:`.vcenter`);
:func:`render` lays that data over the file's own YAML nodes: a value that did not change keeps
its node (quoting, flow or block style, the comments before, beside and after it); a changed
scalar is replaced in place; a key that is gone is removed, a new one added at the end of its
mapping; list entries are matched by their ``name``, ``hostname`` or ``id`` (positionally when
they have none), so an entry's comments move with it.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

_IDENTITY = ("name", "hostname", "id")


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 120
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def render(original: str, data: Mapping[str, Any]) -> str:
    """``data`` as YAML, laid over the YAML text ``original`` (comments and layout kept)."""
    yaml = _yaml()
    tree = yaml.load(original) if original.strip() else None
    if isinstance(tree, CommentedMap):
        _indent_like(yaml, original)
        _update_map(tree, data)
    else:
        tree = _plain(data)
    out = io.StringIO()
    yaml.dump(tree, out)
    return out.getvalue()


def _indent_like(yaml: YAML, text: str) -> None:
    """Keep the file's block-sequence style: ``- `` at its key's column or indented below it (the
    first block sequence of the file tells; ruamel.yaml writes one style per file)."""
    lines = [x for x in text.splitlines() if x.strip() and not x.lstrip().startswith("#")]
    for before, line in itertools.pairwise(lines):
        stripped = line.lstrip(" ")
        if stripped.startswith("- ") and before.split("#")[0].rstrip().endswith(":"):
            dash = len(line) - len(stripped) - (len(before) - len(before.lstrip(" ")))
            if dash >= 0:
                yaml.indent(mapping=2, sequence=dash + 2, offset=dash)
            return


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return CommentedMap((k, _plain(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return CommentedSeq(_plain(v) for v in value)
    return value


def _merge(old: Any, new: Any) -> Any:
    """``new`` in place of ``old``, reusing ``old``'s node where the shapes agree."""
    if isinstance(old, CommentedMap) and isinstance(new, Mapping):
        _update_map(old, new)
        return old
    if isinstance(old, CommentedSeq) and isinstance(new, list | tuple):
        return _update_seq(old, list(new))
    # An equal scalar keeps its node (its quoting); 1 == True and 0 == False do not count as equal.
    scalars = not isinstance(old, CommentedMap | CommentedSeq) and not isinstance(new, Mapping | list | tuple)
    same_type = type(old) is type(new) or (isinstance(old, str) and isinstance(new, str))
    if scalars and same_type and old == new:
        return old
    return _plain(new)


def _update_map(old: CommentedMap, new: Mapping[str, Any]) -> None:
    for key in [k for k in old if k not in new]:
        del old[key]
    for key, value in new.items():
        old[key] = _merge(old[key], value) if key in old else _plain(value)


def _identity(item: Any) -> tuple[str, Any] | None:
    if isinstance(item, Mapping):
        for key in _IDENTITY:
            if key in item:
                return key, item[key]
    return None


def _update_seq(old: CommentedSeq, new: list[Any]) -> CommentedSeq:
    olds = {_identity(item): i for i, item in enumerate(old) if _identity(item) is not None}
    matched: list[int | None] = []
    for i, item in enumerate(new):
        ident = _identity(item)
        if ident is not None:
            matched.append(olds.get(ident))
        else:
            matched.append(i if i < len(old) and _identity(old[i]) is None else None)
    if matched == list(range(len(new))) and len(new) <= len(old):
        # The same entries in the same order (some perhaps dropped at the end): update in place.
        for i, item in enumerate(new):
            old[i] = _merge(old[i], item)
        del old[len(new) :]
        return old
    if matched[: len(old)] == list(range(len(old))):
        # The old entries first, in order, then new ones: update in place and append.
        for i, item in enumerate(new):
            if i < len(old):
                old[i] = _merge(old[i], item)
            else:
                old.append(_plain(item))
        return old
    out = CommentedSeq()
    for item, at in zip(new, matched, strict=True):
        out.append(_merge(old[at], item) if at is not None else _plain(item))
    if old.fa.flow_style():
        out.fa.set_flow_style()
    return out
