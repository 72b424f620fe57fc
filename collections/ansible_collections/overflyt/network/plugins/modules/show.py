"""overflyt.network.show: the documentation; the action plugin of the same name does the work."""

from __future__ import annotations

DOCUMENTATION = r"""
module: show
author: overflyt engineers
version_added: 0.2.0
short_description: Send read-only show commands to a device and return what it shows
description:
  - >-
    Sends each of O(commands) over the device's network_cli persistent connection, in order, and
    returns what the device shows. Only commands whose first word is C(show) are sent; a task with
    any other command fails before anything is sent.
  - >-
    Runs in the task's worker on the controller (an action plugin): no module interpreter starts,
    unlike M(cisco.ios.ios_command) and M(ansible.netcommon.cli_command). Read-only on the device,
    also in check mode.
options:
  commands:
    description: The show commands, sent in this order.
    type: list
    elements: str
    required: true
attributes:
  check_mode:
    support: full
  connection:
    description: ansible.netcommon.network_cli only.
"""

EXAMPLES = r"""
- name: Read the device's version
  overflyt.network.show:
    commands:
      - show version
  register: shown
"""

RETURN = r"""
stdout:
  description: What the device showed, one string per command of O(commands).
  type: list
  elements: str
  returned: success
stdout_lines:
  description: The same, each split into lines.
  type: list
  elements: list
  returned: success
"""
