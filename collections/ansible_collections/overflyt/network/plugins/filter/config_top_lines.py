# ruff: noqa: E402  (Ansible plugins put DOCUMENTATION, EXAMPLES and RETURN before the imports)
"""overflyt.network.config_top_lines: the top-level lines of a configuration.

A thin wrapper of :func:`overflyt.steps.config_text.top_lines`, the one definition of it."""

from __future__ import annotations

DOCUMENTATION = r"""
name: config_top_lines
author: overflyt engineers
version_added: 0.1.0
short_description: Top-level lines of a configuration
description:
  - >-
    Every line that is not blank and does not start with whitespace, without its trailing
    whitespace, in order (C(!) and C(exit) lines included): what a cutover's change is computed
    against.
positional: _input
options:
  _input:
    description: A configuration.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Top-level lines
  ansible.builtin.debug:
    msg: "{{ running | overflyt.network.config_top_lines }}"
"""

RETURN = r"""
_value:
  description: The top-level lines.
  type: list
  elements: str
"""

from collections.abc import Callable
from typing import Any

from overflyt.steps.config_text import top_lines


class FilterModule:
    """The filter config_top_lines."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"config_top_lines": top_lines}
