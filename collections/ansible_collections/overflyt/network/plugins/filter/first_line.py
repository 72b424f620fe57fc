# ruff: noqa: E402  (Ansible plugins put DOCUMENTATION, EXAMPLES and RETURN before the imports)
"""overflyt.network.first_line: the first line of a text.

A thin wrapper of :func:`overflyt.steps.config_text.first_line`, the one definition of it."""

from __future__ import annotations

DOCUMENTATION = r"""
name: first_line
author: overflyt engineers
version_added: 0.1.0
short_description: First line of a text
description:
  - >-
    The text up to its first newline; all of it when it has none. net_facts reports C(show
    version)'s first line as the device's version.
positional: _input
options:
  _input:
    description: A text.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The version line
  ansible.builtin.debug:
    msg: "{{ shown.stdout[0] | overflyt.network.first_line }}"
"""

RETURN = r"""
_value:
  description: The first line, without its newline.
  type: str
"""

from collections.abc import Callable
from typing import Any

from overflyt.steps.config_text import first_line


class FilterModule:
    """The filter first_line."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"first_line": first_line}
