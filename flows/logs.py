"""What every flow shows in Prefect: Ansible's task events and the cutover's steps in the flow
run's log, and artifact keys stable per municipality."""

from __future__ import annotations

from collections.abc import Callable

from prefect import get_run_logger

from overflyt.ansible.runner import AnsibleEvent


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
