# ruff: noqa: E402  (Ansible plugins put DOCUMENTATION, EXAMPLES and RETURN before the imports)
"""overflyt.network.config_route_changes: the static route lines a cutover still pushes.

A thin wrapper of :func:`overflyt.steps.config_text.route_changes`, the one definition of it."""

from __future__ import annotations

DOCUMENTATION = r"""
name: config_route_changes
author: overflyt engineers
version_added: 0.1.0
short_description: Static route lines to push for desired routes
description:
  - >-
    Per desired route, C(ip route <prefix> <next_hop>) when the top-level lines lack it, then C(no
    <line>) for every other C(ip route <prefix> ...) line (make before break).
  - >-
    Nothing once the device holds exactly the desired routes of these prefixes.
positional: _input, routes
options:
  _input:
    description: The running configuration's top-level lines (P(overflyt.network.config_top_lines#filter)).
    type: list
    elements: str
    required: true
  routes:
    description: Desired routes, each a dict with C(prefix) and C(next_hop).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Route lines
  ansible.builtin.debug:
    msg: "{{ top | overflyt.network.config_route_changes(overflyt_routes) }}"
"""

RETURN = r"""
_value:
  description: Lines to push, additions before the C(no ...) lines of each prefix.
  type: list
  elements: str
"""

from collections.abc import Callable
from typing import Any

from overflyt.steps.config_text import route_changes


class FilterModule:
    """The filter config_route_changes."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"config_route_changes": route_changes}
