# ruff: noqa: E402  (Ansible plugins put DOCUMENTATION, EXAMPLES and RETURN before the imports)
"""overflyt.vsphere.failure_reason: why a registered no_log task failed, without its secrets.

A task that handles a secret runs with ``no_log``, so Ansible withholds its whole result from the
output and from ansible-runner's events. Its role registers the result and says the reason in a
task of its own; this filter picks that reason out of the result (of a loop too)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: failure_reason
author: overflyt engineers
version_added: 0.3.0
short_description: The safe reason a registered task failed
description:
  - >-
    The C(overflyt_reason) (else C(msg)) of the registered result O(_input) when it failed, or of
    the first failed item of a loop's result; the overflyt.vsphere modules put their error there
    with every secret value removed. V(failed without a message) when there is none.
positional: _input
options:
  _input:
    description: A registered task result (with C(results) for a loop).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Stop with the reason the vCenter gave
  ansible.builtin.fail:
    msg: "{{ __vm_migrate_read | overflyt.vsphere.failure_reason }}"
  when: __vm_migrate_read is failed
"""

RETURN = r"""
_value:
  description: The reason, one line.
  type: str
"""

from collections.abc import Callable, Mapping
from typing import Any


def failure_reason(result: Mapping[str, Any]) -> str:
    failed = [r for r in result.get("results") or [] if isinstance(r, Mapping) and r.get("failed")]
    for item in failed or [result]:
        reason = item.get("overflyt_reason") or item.get("msg")
        if reason:
            return " ".join(str(reason).split())
    return "failed without a message"


class FilterModule:
    """The filter failure_reason."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"failure_reason": failure_reason}
