"""What the overflyt.network action plugins share.

* :class:`OverflytAction`: the shape of each of them: its arguments checked against ``_ARGS``, then
  :meth:`OverflytAction.work`; a :class:`Refused` becomes a failed result with its message.
* :func:`show`: reading a device over network_cli's persistent connection (its socket) in the
  task's worker, as ``ansible.netcommon``'s own ``net_get`` does, so no module interpreter starts on
  the controller (``ios_command`` and ``cli_command`` start one per device and task).
* :func:`refuse_unless_show`: the rule that they send nothing but ``show`` commands.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ansible.module_utils.connection import Connection, ConnectionError
from ansible.plugins.action import ActionBase


class Refused(Exception):
    """A task that did not do its work: the message, naming the host (and what was refused)."""


class NotShown(Refused):
    """A read that did not happen: the message, naming the host and the command."""


class OverflytAction(ActionBase):  # type: ignore[misc]
    """The base of the collection's action plugins. A subclass sets ``_ARGS`` (an argument spec)
    and implements :meth:`work`; ``_requires_connection = False`` in a subclass that never touches
    the device (Ansible then starts no ``ansible-connection`` process for its task)."""

    TRANSFERS_FILES = False
    _ARGS: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._VALID_ARGS = frozenset(cls._ARGS)

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=self._ARGS)
        host = str((task_vars or {}).get("inventory_hostname", "?"))
        try:
            result.update(changed=False, **self.work(args, host, task_vars or {}))
        except Refused as exc:
            return {**result, "failed": True, "msg": str(exc)}
        return result

    def work(self, args: dict[str, Any], host: str, task_vars: dict[str, Any]) -> dict[str, Any]:
        """The task's result (``changed`` is false unless it says otherwise); raises Refused."""
        raise NotImplementedError


def refuse_unless_show(host: str, name: str, commands: list[str]) -> list[str]:
    """COMMANDS stripped; Refused (naming the host and module NAME) when one is not a show command."""
    commands = [str(c).strip() for c in commands]
    refused = [c for c in commands if c.split(None, 1)[:1] != ["show"]]
    if refused:
        raise Refused(
            f"{host}: overflyt.network.{name} sends only show commands; "
            f"not show commands: {', '.join(repr(c) for c in refused)}"
        )
    return commands


def show(action: Any, task_vars: dict[str, Any] | None, commands: list[str]) -> list[str]:
    """What the device of ACTION's task shows for each of COMMANDS, in order, over its persistent
    connection. Raises NotShown when the task's connection is not network_cli or a read fails (the
    connection's own words: a refused login, an unknown host key, a timeout)."""
    host = (task_vars or {}).get("inventory_hostname", "?")
    socket_path = getattr(action._connection, "socket_path", None)
    connection = action._play_context.connection
    if connection.split(".")[-1] != "network_cli" or not socket_path:
        name = str(action._task.action).split(".")[-1]
        raise NotShown(f"{host}: {name} needs an ansible.netcommon.network_cli connection, not {connection}")
    shown = []
    device = Connection(socket_path)
    for command in commands:
        try:
            shown.append(device.get(command=command))
        except ConnectionError as exc:
            raise NotShown(f"{host}: {command}: {exc}") from exc
    return shown
