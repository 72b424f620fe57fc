"""Names a package exports but imports on first use (PEP 562), so that a process needing one part
of it — an Ansible module on the controller, a CLI command — does not pay for importing the rest.

A package lists ``_WHERE = {name: module}`` and defines
``def __getattr__(name): return lazy.attribute(__name__, _WHERE, name, globals())``; it keeps the
same imports under ``if TYPE_CHECKING:`` so that type checkers see the names as before.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, MutableMapping
from typing import Any


def attribute(package: str, where: Mapping[str, str], name: str, namespace: MutableMapping[str, Any]) -> Any:
    """``name`` of ``package``, imported from the module ``where`` says and kept in ``namespace``."""
    if name not in where:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where[name]), name)
    namespace[name] = value
    return value
