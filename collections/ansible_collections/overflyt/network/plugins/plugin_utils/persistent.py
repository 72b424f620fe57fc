"""What the overflyt.network action plugins share: reading a device over network_cli's persistent
connection (its socket) in the task's worker, as ``ansible.netcommon``'s own ``net_get`` does, so
no module interpreter starts on the controller (``ios_command`` and ``cli_command`` start one per
device and task)."""

from __future__ import annotations

from typing import Any

from ansible.module_utils.connection import Connection, ConnectionError


class NotShown(Exception):
    """A read that did not happen: the message, naming the host (and the command)."""


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
