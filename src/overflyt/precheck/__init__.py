"""Pre-checks: judge a wave's observed facts against its plan before anything is touched.

``run_checks(CheckContext(...))`` evaluates every rule in ``RULES`` and returns a ``PrecheckReport``;
``render(report, fmt)`` writes it as a table, json, junit, ctrf or markdown; ``exit_code(report)`` is
0 when nothing critical was found and 1 when the wave is blocked. Pure code: the facts are gathered
elsewhere (:mod:`overflyt.precheck.facts`). The rules are documented in docs/prechecks.md.
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
