# ruff: noqa: E402  (Ansible plugins put DOCUMENTATION, EXAMPLES and RETURN before the imports)
"""overflyt.network.config_restore_plan: the commands that turn a running configuration back into its backup.

A thin wrapper of :func:`overflyt.steps.config_text.restore_plan`, the one definition of it."""

from __future__ import annotations

DOCUMENTATION = r"""
name: config_restore_plan
author: overflyt engineers
version_added: 0.1.0
short_description: Commands that turn a running configuration back into its backup
description:
  - >-
    hier_config's remediation from the running configuration back to the backup, sections
    included: a line only in the running configuration is negated (C(no X); C(no X) is undone by
    C(X)), a line only in the backup is added back, inside its section; a section only on the
    device is removed, one only in the backup added whole. FRR's vtysh is read with the IOS driver
    (its C(exit) lines dropped).
  - >-
    What no command restores (the software version line, the same lines in another order) is
    named in C(unrestorable), never pushed.
positional: _input, backup, platform
options:
  _input:
    description: The running configuration, normalised (P(overflyt.network.config_normalise#filter)).
    type: str
    required: true
  backup:
    description: The backup's text.
    type: str
    required: true
  platform:
    description: The device's platform (C(ios), C(frr), C(aoscx)); picks hier_config's driver.
    type: str
    default: ios
"""

EXAMPLES = r"""
- name: How to get back to the backup
  ansible.builtin.set_fact:
    plan: "{{ running | overflyt.network.config_restore_plan(backup, 'frr') }}"
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    commands:
      description: The remediation, a section's lines indented under it.
      type: list
      elements: str
    config:
      description: The same with C(exit) after each section, the text to push.
      type: str
    unrestorable:
      description: Each difference the commands do not restore, named.
      type: list
      elements: str
"""

from collections.abc import Callable
from typing import Any

from overflyt.steps.config_text import restore_plan


class FilterModule:
    """The filter config_restore_plan."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"config_restore_plan": restore_plan}
