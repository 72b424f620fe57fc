"""overflyt.network.running_config: read a device's running configuration in the task's worker.

The read goes over network_cli's persistent connection (its socket), as ``ansible.netcommon``'s
own ``net_get`` does, so no module interpreter starts on the controller: ``cli_command`` would
start one per device and read. Optionally the normalised text is saved as the device's backup,
refusing to replace a different earlier backup. The documentation is in
``plugins/modules/running_config.py``."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from ansible.module_utils.connection import Connection, ConnectionError
from ansible.plugins.action import ActionBase

from overflyt.steps.config_text import config_sha256, normalise, text_sha256

_ARGS = {
    "command": {"type": "str", "default": "show running-config"},
    "backup_file": {"type": "path"},
    "overwrite": {"type": "bool", "default": False},
}


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(_ARGS)

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=_ARGS)
        host = (task_vars or {}).get("inventory_hostname", "?")
        socket_path = getattr(self._connection, "socket_path", None)
        if self._play_context.connection.split(".")[-1] != "network_cli" or not socket_path:
            return {
                **result,
                "failed": True,
                "msg": f"{host}: running_config needs an ansible.netcommon.network_cli connection, "
                f"not {self._play_context.connection}",
            }
        try:
            shown = Connection(socket_path).get(command=args["command"])
        except ConnectionError as exc:
            return {**result, "failed": True, "msg": f"{host}: {args['command']}: {exc}"}
        config = normalise(shown)
        result.update(changed=False, stdout=shown, config=config, sha256=config_sha256(shown))
        if args["backup_file"]:
            saved = _save(args["backup_file"], config, args["overwrite"], host)
            if saved:
                return {**result, "failed": True, "msg": saved}
            result["backup_file"] = args["backup_file"]
        return result


def _save(path: str, config: str, overwrite: bool, host: str) -> str | None:
    """Write the backup (0600); a refusal's message, or None once written or already the same."""
    wanted = text_sha256(config)  # as the file's bytes hash
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
