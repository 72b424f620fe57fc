# ruff: noqa: E402  (Ansible plugins put DOCUMENTATION, EXAMPLES and RETURN before the imports)
"""overflyt.network.config_sha256: the sha256 of a normalised running configuration.

A thin wrapper of :func:`overflyt.steps.config_text.config_sha256`, the one definition of it."""

from __future__ import annotations

DOCUMENTATION = r"""
name: config_sha256
author: overflyt engineers
version_added: 0.1.0
short_description: sha256 of a running configuration normalised as net_backup saves it
description:
  - >-
    The sha256 (hex) of O(_input) normalised by P(overflyt.network.config_normalise#filter), as
    UTF-8: the sha256 of the backup file net_backup writes of it.
  - >-
    The one hash of a device configuration: net_backup, net_facts, net_verify, net_restore and
    discovery all use it.
positional: _input
options:
  _input:
    description: The running configuration as the device shows it (or already normalised).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The backup's hash
  ansible.builtin.debug:
    msg: "{{ shown.stdout | overflyt.network.config_sha256 }}"
"""

RETURN = r"""
_value:
  description: 64 hex digits.
  type: str
"""

from collections.abc import Callable
from typing import Any

from overflyt.steps.config_text import config_sha256


class FilterModule:
    """The filter config_sha256."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"config_sha256": config_sha256}
