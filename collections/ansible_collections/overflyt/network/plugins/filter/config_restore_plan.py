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
    Top-level line diff for devices without C(configure replace) (FRR's vtysh): a line only in the
    running configuration is negated (C(no X); a C(no X) line is undone by C(X)), a line only in the
    backup is added back; removals first, so a single-valued setting (C(hostname)) is cleared before
    its old value returns.
  - >-
    Anything else that differs (a section's lines, a section added or removed, the software version)
    is named in C(unrestorable), never guessed at.
positional: _input, backup
options:
  _input:
    description: The running configuration, normalised (P(overflyt.network.config_normalise#filter)).
    type: str
    required: true
  backup:
    description: The backup's text.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: How to get back to the backup
  ansible.builtin.set_fact:
    plan: "{{ running | overflyt.network.config_restore_plan(backup) }}"
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    commands:
      description: Top-level commands to push, removals first.
      type: list
      elements: str
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
