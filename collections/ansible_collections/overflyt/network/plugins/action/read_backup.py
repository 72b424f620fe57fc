"""overflyt.network.read_backup: a device's backup file, read on the controller in the task's worker
after its sha256 is checked against the one recorded when it was taken (no ``stat`` module
interpreter per device, as ``net_restore`` had). It never touches the device, so Ansible starts no
``ansible-connection`` process for it (``_requires_connection``). The documentation is in
``plugins/modules/read_backup.py``."""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from ansible_collections.overflyt.network.plugins.plugin_utils.persistent import OverflytAction, Refused


class ActionModule(OverflytAction):
    _requires_connection = False
    _ARGS: ClassVar[dict[str, dict[str, Any]]] = {
        "path": {"type": "path", "required": True},
        "sha256": {"type": "str", "default": ""},
    }

    def work(self, args: dict[str, Any], host: str, task_vars: dict[str, Any]) -> dict[str, Any]:
        path, wanted = args["path"], args["sha256"].strip().lower()
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            raise Refused(f"backup {path} of {host} is missing") from None
        except OSError as exc:
            raise Refused(f"backup {path} of {host} cannot be read: {exc.strerror}") from None
        sha256 = hashlib.sha256(data).hexdigest()
        if wanted and sha256 != wanted:
            raise Refused(f"backup {path} of {host} has sha256 {sha256}, not the {wanted} it had when it was taken")
        return {"content": data.decode("utf-8", "surrogateescape"), "sha256": sha256}
