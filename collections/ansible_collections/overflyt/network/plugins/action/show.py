"""overflyt.network.show: read-only ``show`` commands over a device's persistent connection, in the
task's worker (plugins/plugin_utils/persistent.py). The documentation is in
``plugins/modules/show.py``."""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase
from ansible_collections.overflyt.network.plugins.plugin_utils.persistent import NotShown, show

_ARGS = {"commands": {"type": "list", "elements": "str", "required": True}}


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(_ARGS)

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=_ARGS)
        host = (task_vars or {}).get("inventory_hostname", "?")
        commands = [str(c).strip() for c in args["commands"]]
        refused = [c for c in commands if c.split(None, 1)[:1] != ["show"]]
        if not commands or refused:
            why = f"not show commands: {', '.join(repr(c) for c in refused)}" if refused else "no command"
            return {**result, "failed": True, "msg": f"{host}: overflyt.network.show sends only show commands; {why}"}
        try:
            shown = show(self, task_vars, commands)
        except NotShown as exc:
            return {**result, "failed": True, "msg": str(exc)}
        result.update(changed=False, stdout=shown, stdout_lines=[s.splitlines() for s in shown])
        return result
