"""Pre-checks: judge a wave's observed facts against its plan before anything is touched.

``run_checks(CheckContext(...))`` evaluates every rule in ``RULES`` and returns a ``PrecheckReport``;
``render(report, fmt)`` writes it as a table, json, junit, ctrf or markdown; ``exit_code(report)`` is
0 when nothing critical was found and 1 when the wave is blocked. The rules are pure code, documented
in docs/prechecks.md.

Owns also: :mod:`.facts` (the shape of what is read), :mod:`.gather` (reading it, read-only, through
one playbook), :mod:`.fingerprint` (what a pre-check saw, the baseline of the stale-plan check) and
:mod:`.wave` (a wave's pre-check end to end, with its run record and reports), :mod:`.waivers` (the
plan's waivers applied to a report: waived, expired, unused).
May import: ``plan``, ``ansible``, ``overflyt.record``/``errors``. Never the cutover, never Prefect.
"""

from overflyt.precheck.engine import exit_code, run_checks
from overflyt.precheck.findings import CheckResult, Finding, PrecheckReport, Severity
from overflyt.precheck.registry import RULES, CheckContext
from overflyt.precheck.report import FORMATS, render

__all__ = [
    "FORMATS",
    "RULES",
    "CheckContext",
    "CheckResult",
    "Finding",
    "PrecheckReport",
    "Severity",
    "exit_code",
    "render",
    "run_checks",
]
