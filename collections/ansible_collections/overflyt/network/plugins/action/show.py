"""overflyt.network.show: read-only ``show`` commands over a device's persistent connection, in the
task's worker (plugins/plugin_utils/persistent.py). The documentation is in
``plugins/modules/show.py``."""

from __future__ import annotations

from typing import Any, ClassVar

from ansible_collections.overflyt.network.plugins.plugin_utils.persistent import (
    OverflytAction,
    Refused,
    refuse_unless_show,
    show,
)


class ActionModule(OverflytAction):
    _ARGS: ClassVar[dict[str, dict[str, Any]]] = {"commands": {"type": "list", "elements": "str", "required": True}}

    def work(self, args: dict[str, Any], host: str, task_vars: dict[str, Any]) -> dict[str, Any]:
        commands = refuse_unless_show(host, "show", args["commands"])
        if not commands:
            raise Refused(f"{host}: overflyt.network.show sends only show commands; no command")
        shown = show(self, task_vars, commands)
        return {"stdout": shown, "stdout_lines": [s.splitlines() for s in shown]}
