"""``rollback-site``: roll a site's cutover back to what it recorded before changing anything. The
rollback is a task of the run (:func:`flows.site_cutover.run_step_as_task`); its report an artifact
keyed per municipality and site."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed

from flows.logs import key, log_events, log_steps, publish_evidence
from flows.notify import rollback_failed, send
from flows.params import RollbackSiteParams
from flows.progress import rollback_site_name
from flows.site_cutover import run_step_as_task
from overflyt import rollback_site as run_rollback
from overflyt.cutover.report import report_data, report_markdown


@flow(
    name="rollback-site",
    flow_run_name=rollback_site_name,
    description="Roll a site's cutover back to what it recorded before changing anything.",
)
def rollback_site(params: RollbackSiteParams) -> dict[str, Any]:
    outcome = run_rollback(
        Path(params.plan),
        params.site,
        on_event=log_events(),
        on_step=log_steps(),
        step_runner=run_step_as_task,
        lang=params.lang,
    )
    create_markdown_artifact(
        markdown=report_markdown(outcome),
        key=key("rollback", outcome.municipality, params.site),
        description=f"Rollback of {params.site}",
    )
    publish_evidence(Path(params.plan), params.lang)
    data = report_data(outcome)
    if outcome.exit_code != 0:
        decided = "; ".join(outcome.decided_by())
        for line in outcome.decided_by():
            get_run_logger().error("%s", line)
        for site in outcome.sites:
            if site.status == "rollback_failed":
                left = f"{site.error}; its record: {outcome.run_dir}"
                send(rollback_failed(params.plan, outcome.wave, site.site, left))
        message = f"rollback of {params.site} (wave {outcome.wave}) ended with exit code {outcome.exit_code}: {decided}"
        return Failed(message=message, data=data)  # type: ignore[return-value]
    return data
