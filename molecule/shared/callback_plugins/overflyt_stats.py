"""Callback of the Molecule scenarios: after each playbook run, append what the roles reported
through ``set_stats`` (``overflyt_result``, the roles' only result channel, the one overflyt's
runner reads from ``playbook_on_stats``) to the file ``$OVERFLYT_MOLECULE_STATS``, one JSON line
per run: ``{"playbook": <file name>, "check": <bool>, "result": <overflyt_result>}``. A verify
playbook reads it to judge what the check run, the converge and the idempotence run reported."""

from __future__ import annotations

import json
import os
from typing import Any

from ansible import context
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: overflyt_stats
type: aggregate
short_description: Append each run's overflyt_result (set_stats) to $OVERFLYT_MOLECULE_STATS
description:
  - One JSON line per playbook run, for the Molecule scenarios' verify playbooks.
requirements:
  - enabled in callbacks_enabled
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "overflyt_stats"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._playbook = ""

    def v2_playbook_on_start(self, playbook: Any) -> None:
        self._playbook = os.path.basename(playbook._file_name)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        target = os.environ.get("OVERFLYT_MOLECULE_STATS")
        if not target:
            return
        result = (stats.custom.get("_run") or {}).get("overflyt_result") or {}
        line = {"playbook": self._playbook, "check": bool(context.CLIARGS.get("check")), "result": result}
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps(line, sort_keys=True, default=str) + "\n")
