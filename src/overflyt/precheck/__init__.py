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

from typing import TYPE_CHECKING, Any

from overflyt import lazy

if TYPE_CHECKING:
    from overflyt.precheck.engine import exit_code, run_checks
    from overflyt.precheck.findings import CheckResult, Finding, PrecheckReport, Severity
    from overflyt.precheck.registry import RULES, CheckContext
    from overflyt.precheck.report import FORMATS, render

# Imported on first use (overflyt.lazy).
_WHERE: dict[str, str] = {
    "exit_code": "overflyt.precheck.engine",
    "run_checks": "overflyt.precheck.engine",
    "CheckResult": "overflyt.precheck.findings",
    "Finding": "overflyt.precheck.findings",
    "PrecheckReport": "overflyt.precheck.findings",
    "Severity": "overflyt.precheck.findings",
    "RULES": "overflyt.precheck.registry",
    "CheckContext": "overflyt.precheck.registry",
    "FORMATS": "overflyt.precheck.report",
    "render": "overflyt.precheck.report",
}

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


def __getattr__(name: str) -> Any:
    return lazy.attribute(__name__, _WHERE, name, globals())
