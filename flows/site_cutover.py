"""``site-cutover``: one site's cutover inside ``migrate-wave``, with one task per itinerary step.

The library runs the site's itinerary (:class:`overflyt.cutover.site.Cutover`); this module gives
it the two hooks that make it visible in Prefect: :func:`run_site_as_subflow` runs the whole site
as a ``site-cutover`` subflow run named after the site, and :func:`run_step_as_task` runs each step
(backup, placements, migrate, configure, postcheck — and the rollback) as a task run named
``<site>: <step>``, so the UI shows wave → site → step with each step's state and duration. Tasks
are never cached (every step changes or reads the estate now) and never retried (a step's own
timeout and the site's rollback decide what happens after a failure).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.states import Completed, Failed

from overflyt.ansible.cancel import install_cancel_handlers
from overflyt.cutover.outcome import SiteOutcome
from overflyt.errors import OverflytError

_SITE_FAILED = ("failed", "rolled_back", "rollback_failed", "refused")


@task(name="cutover-step", task_run_name="{site}: {step}", cache_policy=NO_CACHE, retries=0)
def cutover_step(site: str, step: str, call: Callable[[], BaseException | None]) -> State[Any]:
    """One itinerary step of a site. A step that failed ends the task Failed with the step's own
    message (no traceback in the log: the cutover rolls the site back and says why)."""
    error = call()
    if error is not None:
        return Failed(message=f"{site}: {step}: {error}")
    return Completed(message=f"{site}: {step}: done")


def run_step_as_task(site: str, step: str, call: Callable[[], None]) -> None:
    """The cutover's ``step_runner``: the step as a task run; what it raised is raised again here,
    as it was, for the cutover to roll back."""
    caught: list[BaseException] = []

    def guarded() -> BaseException | None:
        try:
            call()
        except (OverflytError, OSError) as exc:
            caught.append(exc)
            return exc
        return None

    state = cutover_step(site, step, guarded, return_state=True)
    if caught:
        raise caught[0]
    if state.is_failed() or state.is_crashed():
        state.result()  # raises what the task raised (a bug, an interrupt)


@flow(
    name="site-cutover",
    flow_run_name="{site}",
    description="One site's cutover inside migrate-wave: one task per itinerary step.",
    validate_parameters=False,
)
def site_cutover(site: str, cut: Callable[[], SiteOutcome]) -> State[Any]:
    """Run ``cut()`` (the site's cutover or dry run). Ends Failed when the site did not cut over; its
    outcome (rolled back, say) is the data either way."""
    # A subflow's engine puts Prefect's own SIGTERM handler back for its duration (it raises
    # TerminationSignal, which would skip the rollback): ours stops the step and rolls back.
    install_cancel_handlers()
    outcome = cut()
    if outcome.status in _SITE_FAILED:
        return Failed(message=f"{site}: {outcome.status}: {outcome.error}", data=outcome)
    return Completed(message=f"{site}: {outcome.status}", data=outcome)


def run_site_as_subflow(site_id: str, cut: Callable[[], SiteOutcome]) -> SiteOutcome:
    """run_wave's ``site_runner`` hook: each site's cutover is a ``site-cutover`` subflow run."""
    state = site_cutover(site_id, cut, return_state=True)
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, BaseException):
        raise outcome  # what the cutover raised (a cancel, a bug) reaches run_wave as it was
    if not isinstance(outcome, SiteOutcome):
        raise TypeError(f"site-cutover {site_id} ended {state.type.value} without an outcome")
    return outcome
