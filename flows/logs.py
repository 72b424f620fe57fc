"""What every flow shows in Prefect: Ansible's task events and the cutover's steps in the flow
run's log, artifact keys stable per municipality, and the municipality's evidence pack."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from overflyt.ansible.runner import AnsibleEvent
from overflyt.cutover.evidence import evidence_markdown
from overflyt.errors import OverflytError
from overflyt.plan import load_plan
from overflyt.record import state_dir


def key(*parts: object) -> str:
    """Artifact keys: lowercase letters, digits and dashes only."""
    return "-".join(str(p) for p in parts).lower().replace("_", "-")


def log_events() -> Callable[[AnsibleEvent], None]:
    logger = get_run_logger()

    def log(event: AnsibleEvent) -> None:
        if event.status == "start":
            logger.info("task: %s", event.task)
        elif event.status in ("failed", "unreachable"):
            logger.error("%s %s: %s: %s", event.status, event.host, event.task, event.message)
        elif event.status == "changed":
            logger.info("changed %s: %s", event.host, event.task)

    return log


def log_steps() -> Callable[[str, str, str], None]:
    logger = get_run_logger()

    def log(site: str, step: str, status: str) -> None:
        logger.info("[%s] %s: %s", site, step, status)

    return log


def publish_evidence(plan_path: Path, lang: str | None = None) -> None:
    """The municipality's evidence pack (from its run records, as ``overflyt report --format md``) as
    the artifact ``evidence-<kommunekode>``: after every wave and rollback the UI has the current pack.
    A pack that cannot be built is a warning in the log, never the run's failure."""
    logger = get_run_logger()
    try:
        plan = load_plan(plan_path)
        text = evidence_markdown(plan, lang, state_dir(plan_path.parent))
    except OverflytError as exc:
        logger.warning("evidence pack not published: %s", exc)
        return
    create_markdown_artifact(
        markdown=text,
        key=key("evidence", plan.municipality.code),
        description=f"Evidence pack of {plan.municipality.name} ({plan.municipality.code})",
    )
