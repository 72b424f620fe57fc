"""Entity names as vSphere stores them and as people see them.

vSphere keeps an entity's name escaped: ``%`` as ``%25``, ``/`` as ``%2f`` and ``\\`` as ``%5c``
(a client may escape any other character too), so ``Test/Udvikling`` is stored, and read back
through the ``name`` property or ``FindByInventoryPath``, as ``Test%2fUdvikling``.
overflyt knows VMs by the name people see: :func:`unescape` on every VM name read, :func:`escape`
where one is given to vSphere. No pyVmomi.
"""

from __future__ import annotations

from urllib.parse import unquote

_ESCAPES = {"%": "%25", "/": "%2f", "\\": "%5c"}


def escape(name: str) -> str:
    """``name`` as vSphere stores it (``a/b`` → ``a%2fb``, ``100%`` → ``100%25``)."""
    return "".join(_ESCAPES.get(c, c) for c in name)


def unescape(stored: str) -> str:
    """A name read from vSphere as people see it: every ``%XX`` escape (UTF-8) decoded."""
    return unquote(stored) if "%" in stored else stored
