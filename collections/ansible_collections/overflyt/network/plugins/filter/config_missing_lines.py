# ruff: noqa: E402  (Ansible plugins put DOCUMENTATION, EXAMPLES and RETURN before the imports)
"""overflyt.network.config_missing_lines: the lines a configuration lacks.

A thin wrapper of :func:`overflyt.steps.config_text.missing_lines`, the one definition of it."""

from __future__ import annotations

DOCUMENTATION = r"""
name: config_missing_lines
author: overflyt engineers
version_added: 0.1.0
short_description: Lines a configuration's top level lacks
description:
  - >-
    The lines of O(lines) that are not among the top-level lines O(_input), in their order.
positional: _input, lines
options:
  _input:
    description: The running configuration's top-level lines (P(overflyt.network.config_top_lines#filter)).
    type: list
    elements: str
    required: true
  lines:
    description: Top-level lines wanted, exactly as the device shows them.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Extra lines still to push
  ansible.builtin.debug:
    msg: "{{ top | overflyt.network.config_missing_lines(net_configure_extra_lines) }}"
"""

RETURN = r"""
_value:
  description: The missing lines.
  type: list
  elements: str
"""

from collections.abc import Callable
from typing import Any

from overflyt.steps.config_text import missing_lines


class FilterModule:
    """The filter config_missing_lines."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"config_missing_lines": missing_lines}
