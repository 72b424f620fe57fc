"""overflyt.network.read_backup: a device's backup file, read on the controller in the task's worker
after its sha256 is checked against the one recorded when it was taken (no ``stat`` module
interpreter per device, as ``net_restore`` had). The documentation is in
``plugins/modules/read_backup.py``."""

from __future__ import annotations

import hashlib
from typing import Any

from ansible.plugins.action import ActionBase

_ARGS = {
    "path": {"type": "path", "required": True},
    "sha256": {"type": "str", "default": ""},
}


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(_ARGS)

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=_ARGS)
        host = (task_vars or {}).get("inventory_hostname", "?")
        path, wanted = args["path"], args["sha256"].strip().lower()
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return {**result, "failed": True, "msg": f"backup {path} of {host} is missing"}
        except OSError as exc:
            return {**result, "failed": True, "msg": f"backup {path} of {host} cannot be read: {exc.strerror}"}
        sha256 = hashlib.sha256(data).hexdigest()
        if wanted and sha256 != wanted:
            return {
                **result,
                "failed": True,
                "msg": f"backup {path} of {host} has sha256 {sha256}, not the {wanted} it had when it was taken",
            }
        content = data.decode("utf-8", "surrogateescape")
        result.update(changed=False, content=content, sha256=sha256)
        return result
