# ruff: noqa: E402  (Ansible plugins put DOCUMENTATION, EXAMPLES and RETURN before the imports)
"""overflyt.network.config_pending_lines: the lines a rendered change pushes.

A thin wrapper of :func:`overflyt.steps.config_text.pending_lines`, the one definition of it."""

from __future__ import annotations

DOCUMENTATION = r"""
name: config_pending_lines
author: overflyt engineers
version_added: 0.1.0
short_description: Lines a rendered change pushes
description:
  - >-
    The lines of a rendered change without their trailing whitespace, blank lines and comments
    (lines starting with C(!)) left out.
positional: _input
options:
  _input:
    description: The rendered change (a platform template's output).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Lines to push
  ansible.builtin.set_fact:
    pending: "{{ rendered | overflyt.network.config_pending_lines }}"
"""

RETURN = r"""
_value:
  description: The lines to push, in order.
  type: list
  elements: str
"""

from collections.abc import Callable
from typing import Any

from overflyt.steps.config_text import pending_lines


class FilterModule:
    """The filter config_pending_lines."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"config_pending_lines": pending_lines}
