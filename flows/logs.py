"""What every flow shows in Prefect: Ansible's task events and the cutover's steps in the flow
run's log, artifact keys stable per municipality, and the municipality's evidence pack."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import MissingContextError

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


SLOT_WAIT_LOGGER = "overflyt.steps.vm_batches"  # where VMs starting together say they wait for move slots


class _ToRunLog(logging.Handler):
    """A library log line as a warning of the current task or flow run (its log in the UI, and the
    console a CLI run prints Prefect's run log to)."""

    def __init__(self, fallback: logging.Logger | logging.LoggerAdapter[logging.Logger]) -> None:
        super().__init__(logging.INFO)
        self.fallback = fallback

    def emit(self, record: logging.LogRecord) -> None:
        try:
            logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = get_run_logger()
        except MissingContextError:  # a thread of the run without Prefect's context
            logger = self.fallback
        logger.warning("%s", record.getMessage())


@contextlib.contextmanager
def slot_waits_in_run_log() -> Iterator[None]:
    """While the block runs, waits for move slots ("waiting for move slots: datastore … held by
    municipality 706 wave 1 site …") are warnings in the run's log, not INFO lines of a library
    logger nobody sees."""
    source = logging.getLogger(SLOT_WAIT_LOGGER)
    handler = _ToRunLog(get_run_logger())
    level, propagate = source.level, source.propagate
    source.addHandler(handler)
    source.setLevel(logging.INFO)
    source.propagate = False  # said once: through the run's log (which a CLI run prints too)
    try:
        yield
    finally:
        source.removeHandler(handler)
        source.setLevel(level)
        source.propagate = propagate
