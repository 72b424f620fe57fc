"""Prefect flows: thin wrappers that call the library and show its results in Prefect.

`migrate-wave`, `precheck-wave` and `rollback-site` take their parameters as pydantic models, so
the Prefect UI renders a form with descriptions and defaults (dry run on). Each runs one library
call (:func:`overflyt.wave.run_wave`, :func:`overflyt.precheck.wave.precheck_wave`,
:func:`overflyt.wave.rollback_site`); Ansible's task events go to the flow run's log, and the
reports become artifacts with keys stable per municipality and wave, so the UI shows history.
The CLI runs the same flows locally (Prefect's ephemeral API).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed
from pydantic import BaseModel, ConfigDict, Field

from overflyt.runner import AnsibleEvent, install_cancel_handlers


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: str = Field(
        default="inventories/norddjurs/plan.yml", description="Plan file, relative to the worker's working directory"
    )


class MigrateWaveParams(_Params):
    wave: int = Field(default=1, ge=1, description="The wave to run")
    sites: list[str] = Field(default_factory=list, description="Only these sites of the wave (empty: all of them)")
    dry_run: bool = Field(default=True, description="Show what would move and change; change nothing")
    approved_by: str | None = Field(default=None, description="Who approved the cutover (when the plan needs approval)")
    ticket: str | None = Field(default=None, description="Change ticket of the approval")
    outside_window: bool = Field(default=False, description="Run although the wave's window is not open (recorded)")


class PrecheckWaveParams(_Params):
    wave: int = Field(default=1, ge=1, description="The wave to check")
    sites: list[str] = Field(default_factory=list, description="Only these sites of the wave (empty: all of them)")
    mode: str = Field(default="precheck", pattern="^(precheck|run)$", description="run: the window must be open now")


class RollbackSiteParams(_Params):
    site: str = Field(description="The site whose cutover is rolled back")


def _key(*parts: object) -> str:
    """Artifact keys: lowercase letters, digits and dashes only."""
    return "-".join(str(p) for p in parts).lower().replace("_", "-")


def _log_events() -> Any:
    logger = get_run_logger()

    def log(event: AnsibleEvent) -> None:
        if event.status == "start":
            logger.info("task: %s", event.task)
        elif event.status in ("failed", "unreachable"):
            logger.error("%s %s: %s: %s", event.status, event.host, event.task, event.message)
        elif event.status == "changed":
            logger.info("changed %s: %s", event.host, event.task)

    return log


def _log_steps() -> Any:
    logger = get_run_logger()
    return lambda site, step, status: logger.info("[%s] %s: %s", site, step, status)


@flow(name="migrate-wave", description="Pre-check a wave, then cut its sites over (VMs and network together).")
def migrate_wave(params: MigrateWaveParams) -> dict[str, Any]:
    from overflyt.wave import Approval, report_data, report_markdown, run_wave

    install_cancel_handlers()  # Prefect cancels a served run with SIGTERM: stop the step, roll back
    approval = Approval(params.approved_by, params.ticket) if params.approved_by else None
    outcome = run_wave(
        Path(params.plan),
        params.wave,
        params.sites,
        dry_run=params.dry_run,
        approval=approval,
        outside_window=params.outside_window,
        on_event=_log_events(),
        on_step=_log_steps(),
    )
    create_markdown_artifact(
        markdown=report_markdown(outcome),
        key=_key("wave-report", outcome.municipality, "wave", outcome.wave),
        description=f"Wave {outcome.wave} {'dry run' if outcome.dry_run else 'cutover'} report",
    )
    data = report_data(outcome)
    if outcome.exit_code != 0:
        return Failed(message=f"wave {outcome.wave} ended with exit code {outcome.exit_code}", data=data)  # type: ignore[return-value]
    return data


@flow(name="precheck-wave", description="Check what would block a wave, touching nothing.")
def precheck_wave(params: PrecheckWaveParams) -> dict[str, Any]:
    from overflyt.precheck import render
    from overflyt.precheck.wave import precheck_wave as run_precheck

    outcome = run_precheck(
        Path(params.plan),
        params.wave,
        params.sites,
        mode="run" if params.mode == "run" else "precheck",
        on_event=_log_events(),
    )
    report = outcome.report
    create_markdown_artifact(
        markdown=render(report, "markdown"),
        key=_key("precheck", report.municipality.code, "wave", params.wave),
        description=f"Pre-check findings of wave {params.wave}",
    )
    data = {
        "blocked": report.blocked,
        "counts": {str(k): v for k, v in report.counts.items()},
        "exit_code": int(report.blocked),
    }
    if report.blocked:
        return Failed(message=f"wave {params.wave} is blocked by critical findings", data=data)  # type: ignore[return-value]
    return data


@flow(name="rollback-site", description="Roll a site's cutover back to what it recorded before changing anything.")
def rollback_site(params: RollbackSiteParams) -> dict[str, Any]:
    from overflyt.wave import report_data, report_markdown
    from overflyt.wave import rollback_site as run_rollback

    outcome = run_rollback(Path(params.plan), params.site, on_event=_log_events(), on_step=_log_steps())
    create_markdown_artifact(
        markdown=report_markdown(outcome),
        key=_key("rollback", outcome.municipality, params.site),
        description=f"Rollback of {params.site}",
    )
    data = report_data(outcome)
    if outcome.exit_code != 0:
        return Failed(message=f"rollback of {params.site} ended with exit code {outcome.exit_code}", data=data)  # type: ignore[return-value]
    return data
