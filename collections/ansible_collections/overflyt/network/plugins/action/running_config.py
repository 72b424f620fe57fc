"""overflyt.network.running_config: read a device's running configuration in the task's worker.

The read goes over network_cli's persistent connection (its socket), as ``ansible.netcommon``'s
own ``net_get`` does, so no module interpreter starts on the controller: ``cli_command`` would
start one per device and read. Optionally the normalised text is saved as the device's backup,
refusing to replace a different earlier backup. The documentation is in
``plugins/modules/running_config.py``."""

from __future__ import annotations

from typing import Any

from ansible.module_utils.connection import Connection, ConnectionError
from ansible.plugins.action import ActionBase

from overflyt.steps.config_text import config_sha256, normalise, save_backup

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
            saved = save_backup(args["backup_file"], config, overwrite=args["overwrite"], host=host)
            if saved:
                return {**result, "failed": True, "msg": saved}
            result["backup_file"] = args["backup_file"]
        return result
