# ruff: noqa: E402  (Ansible plugins put DOCUMENTATION, EXAMPLES and RETURN before the imports)
"""overflyt.network.config_pending_split: what pending lines add and remove.

A thin wrapper of :func:`overflyt.steps.config_text.split_pending`, the one definition of it."""

from __future__ import annotations

DOCUMENTATION = r"""
name: config_pending_split
author: overflyt engineers
version_added: 0.1.0
short_description: What pending configuration lines add and remove
description:
  - >-
    Splits lines to push into those that add (every line not starting with C(no )) and those that
    remove (C(no X) removes C(X)).
positional: _input
options:
  _input:
    description: Lines to push (P(overflyt.network.config_pending_lines#filter)).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Missing and extra lines
  ansible.builtin.set_fact:
    missing: "{{ (pending | overflyt.network.config_pending_split).added }}"
    extra: "{{ (pending | overflyt.network.config_pending_split).removed }}"
"""

RETURN = r"""
_value:
  description: The lines split.
  type: dict
  contains:
    added:
      description: The lines added, in order.
      type: list
      elements: str
    removed:
      description: The lines removed (without their C(no )), in order.
      type: list
      elements: str
"""

from collections.abc import Callable
from typing import Any

from overflyt.steps.config_text import split_pending


class FilterModule:
    """The filter config_pending_split."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"config_pending_split": split_pending}
