"""overflyt.network.running_config: read a device's running configuration in the task's worker.

The read goes over network_cli's persistent connection (its socket) in the task's worker
(plugins/plugin_utils/persistent.py): no module interpreter starts on the controller. The
``show`` commands asked for go first, over the same connection in the same task (one
``ansible-connection`` start for the device, not one per task). Optionally the normalised text is
saved as the device's backup, refusing to replace a different earlier backup. The documentation is
in ``plugins/modules/running_config.py``."""

from __future__ import annotations

from typing import Any, ClassVar

from ansible_collections.overflyt.network.plugins.plugin_utils.persistent import (
    OverflytAction,
    Refused,
    refuse_unless_show,
    show,
)

from overflyt.steps.config_text import config_sha256, normalise, save_backup


class ActionModule(OverflytAction):
    _ARGS: ClassVar[dict[str, dict[str, Any]]] = {
        "command": {"type": "str", "default": "show running-config"},
        "show": {"type": "list", "elements": "str", "default": []},
        "backup_file": {"type": "path"},
        "overwrite": {"type": "bool", "default": False},
    }

    def work(self, args: dict[str, Any], host: str, task_vars: dict[str, Any]) -> dict[str, Any]:
        *before, command = refuse_unless_show(host, "running_config", [*args["show"], args["command"]])
        *shown, text = show(self, task_vars, [*before, command])
        config = normalise(text)
        result = {"stdout": text, "config": config, "sha256": config_sha256(text), "shown": shown}
        if args["backup_file"]:
            saved = save_backup(args["backup_file"], config, overwrite=args["overwrite"], host=host)
            if saved:
                raise Refused(saved)
            result["backup_file"] = args["backup_file"]
        return result
