# ruff: noqa: E402  (Ansible plugins put DOCUMENTATION, EXAMPLES and RETURN before the imports)
"""overflyt.network.config_service_changes: the lines that point a device at a shared service's servers.

A thin wrapper of :func:`overflyt.steps.config_text.service_changes`, the one definition of it."""

from __future__ import annotations

DOCUMENTATION = r"""
name: config_service_changes
author: overflyt engineers
version_added: 0.1.0
short_description: Lines pointing a device at a shared service's servers
description:
  - >-
    For servers configured as top-level lines C(<prefix> <address> [options]): C(<prefix> <address>)
    for every wanted server missing, then C(no <prefix> <address>) for every server present and not
    wanted. An empty O(wanted) leaves the service alone (no lines).
  - >-
    A line's servers are all its arguments when they all are IPv4 addresses (IOS C(ip name-server A
    B)), else its first argument when that is one (C(ntp server A prefer)); other lines (C(ip
    name-server vrf X A)) are left alone. A wanted server present with options is kept.
positional: _input, prefix, wanted
options:
  _input:
    description: The running configuration's top-level lines (P(overflyt.network.config_top_lines#filter)).
    type: list
    elements: str
    required: true
  prefix:
    description: The command before the address, for example C(ip name-server), C(ntp server), C(logging host).
    type: str
    required: true
  wanted:
    description: The servers' addresses the device should use.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: DNS server lines
  ansible.builtin.debug:
    msg: "{{ top | overflyt.network.config_service_changes('ip name-server', overflyt_services.dns) }}"
"""

RETURN = r"""
_value:
  description: Lines to push, additions first.
  type: list
  elements: str
"""

from collections.abc import Callable
from typing import Any

from overflyt.steps.config_text import service_changes


class FilterModule:
    """The filter config_service_changes."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"config_service_changes": service_changes}
