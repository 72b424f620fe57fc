# ruff: noqa: E402  (Ansible plugins put DOCUMENTATION, EXAMPLES and RETURN before the imports)
"""overflyt.network.config_normalise: a device's running configuration as net_backup saves it.

A thin wrapper of :func:`overflyt.steps.config_text.normalise`, the one definition of it."""

from __future__ import annotations

DOCUMENTATION = r"""
name: config_normalise
author: overflyt engineers
version_added: 0.1.0
short_description: Normalise a running configuration as net_backup saves it
description:
  - >-
    Strips the trailing whitespace of every line, leaves out the volatile lines (FRR's and IOS's
    C(Building configuration...) and C(Current configuration ...) headers, IOS's change and NVRAM
    timestamps, C(ntp clock-period)), drops blank lines at either end and ends the text in exactly
    one newline.
  - >-
    The list of volatile lines is C(overflyt.steps.config_text.VOLATILE); discovery hashes the same
    normalised text.
positional: _input
options:
  _input:
    description: The running configuration as the device shows it.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Normalise the configuration
  ansible.builtin.set_fact:
    config: "{{ shown.stdout | overflyt.network.config_normalise }}"
"""

RETURN = r"""
_value:
  description: The normalised configuration, ending in one newline.
  type: str
"""

from collections.abc import Callable
from typing import Any

from overflyt.steps.config_text import normalise


class FilterModule:
    """The filter config_normalise."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"config_normalise": normalise}
