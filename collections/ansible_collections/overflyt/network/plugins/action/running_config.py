"""overflyt.network.running_config: read a device's running configuration in the task's worker.

The read goes over network_cli's persistent connection (its socket) in the task's worker
(plugins/plugin_utils/persistent.py): no module interpreter starts on the controller. Optionally
the normalised text is saved as the device's backup, refusing to replace a different earlier
backup. The documentation is in ``plugins/modules/running_config.py``."""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase
from ansible_collections.overflyt.network.plugins.plugin_utils.persistent import NotShown, show

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
        try:
            (shown,) = show(self, task_vars, [args["command"]])
        except NotShown as exc:
            return {**result, "failed": True, "msg": str(exc)}
        config = normalise(shown)
        result.update(changed=False, stdout=shown, config=config, sha256=config_sha256(shown))
        if args["backup_file"]:
            saved = save_backup(args["backup_file"], config, overwrite=args["overwrite"], host=host)
            if saved:
                return {**result, "failed": True, "msg": saved}
            result["backup_file"] = args["backup_file"]
        return result
