"""``precheck-wave``: check what would block a wave, touching nothing (the nightly deployment
checks the next wave whose window has not ended). The findings become a table artifact and the
report a markdown artifact, keyed per municipality and wave."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Failed

from flows.logs import key, log_events
from flows.notify import precheck_blocked, send
from flows.params import PrecheckWaveParams
from flows.progress import precheck_wave_name
from overflyt import precheck_wave as run_precheck
from overflyt.plan import load_plan
from overflyt.plan.select import next_wave
from overflyt.precheck import PrecheckReport, render


def findings_table(report: PrecheckReport) -> list[dict[str, str]]:
    """The pre-check's findings as table rows, most severe first (one row saying so when there are none)."""
    rows = [
        {
            "severity": str(f.severity),
            "check": f.id,
            "site": f.site or "",
            "subject": f"{f.subject_kind} {f.subject}",
            "message": f.message,
        }
        for f in report.findings
    ]
    return rows or [{"severity": "", "check": "", "site": "", "subject": "", "message": "no findings"}]


@flow(
    name="precheck-wave",
    flow_run_name=precheck_wave_name,
    description="Check what would block a wave, touching nothing.",
)
def precheck_wave(params: PrecheckWaveParams) -> dict[str, Any]:
    wave = params.wave or next_wave(load_plan(params.plan))
    outcome = run_precheck(
        Path(params.plan),
        wave,
        params.sites,
        mode="run" if params.mode == "run" else "precheck",
        on_event=log_events(),
        lang=params.lang,
    )
    report = outcome.report
    counts = ", ".join(f"{n} {severity}" for severity, n in report.counts.items())
    create_table_artifact(
        table=findings_table(report),
        key=key("precheck", report.municipality.code, "wave", wave),
        description=f"Pre-check findings of wave {wave} ({counts}){': BLOCKED' if report.blocked else ''}",
    )
    create_markdown_artifact(
        markdown=render(report, "markdown", params.lang),
        key=key("precheck-report", report.municipality.code, "wave", wave),
        description=f"Pre-check report of wave {wave}",
    )
    data = {
        "blocked": report.blocked,
        "counts": {str(k): v for k, v in report.counts.items()},
        "exit_code": int(report.blocked),
        "run_dir": str(outcome.run_dir),
    }
    if report.blocked:
        critical = [
            f"{f.id} ({f.site + ', ' if f.site else ''}{f.subject_kind} {f.subject}): {f.message}"
            for f in report.findings
            if str(f.severity) == "critical"
        ]
        sites = params.sites or list(load_plan(params.plan).wave(wave).sites)
        send(precheck_blocked(params.plan, wave, sites, critical))
        return Failed(message=f"wave {wave} is blocked by critical findings", data=data)  # type: ignore[return-value]
    return data
