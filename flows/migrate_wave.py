"""``migrate-wave``: pre-check a wave, then cut its sites over (VMs and network together).

Calls :func:`overflyt.cutover.wave.run_wave` with the hooks that make each site a ``site-cutover``
subflow run and each of its steps a task (:mod:`flows.site_cutover`); Ansible's task events go to
the flow run's log and the wave's report becomes an artifact keyed per municipality and wave.

Approval: a real cutover of a plan that needs approval, started without ``approved_by`` from a
deployment (``ask_approval``, which the deployments set and the CLI does not), pre-checks the wave
and then pauses before the first cutover step for an :class:`~flows.params.ApprovalInput` — the form
the UI shows on the paused run. Unanswered for ``approval_timeout_s``, the run ends Failed with
nothing changed.

The wave's window: sites it holds back (not started: the window has closed, or what is left of it
is shorter than the site's estimate plus the plan's margin) and sites that ran past it are logged
as warnings and named in the run's Failed state message, as is whatever else decided a run that did
not succeed (the critical findings that blocked it, each failed site's reason; also logged as
errors); ``params.outside_window_reason`` says why a run with ``outside_window`` overrides the window
(recorded with who ran it).
"""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.states import Failed

from flows.logs import key, log_events, log_steps, publish_evidence, slot_waits_in_run_log
from flows.notify import approval_waiting, rollback_failed, send
from flows.params import ApprovalInput, MigrateWaveParams
from flows.progress import WaveProgress, migrate_wave_name
from flows.site_cutover import run_site_as_subflow, run_step_as_task
from overflyt import run_wave
from overflyt.ansible.cancel import install_cancel_handlers
from overflyt.cutover.outcome import NO_CREDENTIAL, SHARED_CREDENTIAL
from overflyt.cutover.report import report_data, report_markdown
from overflyt.cutover.wave import Approval

# How often a paused run asks the API whether it was resumed (the pause blocks in the flow's process).
APPROVAL_POLL_S = 2


class ApprovalGate:
    """run_wave's ``decide_approval`` hook: pause the flow run until someone resumes it with an
    :class:`ApprovalInput` (who, which ticket), or until ``timeout_s`` has passed (then None)."""

    def __init__(self, wave: int, timeout_s: int, plan: str | None = None, sites: Sequence[str] = ()) -> None:
        self.wave = wave
        self.timeout_s = timeout_s
        self.timed_out = False
        self.plan = plan  # with it, the pause is announced (flows.notify): the automations tell people
        self.sites = list(sites)

    def __call__(self) -> Approval | None:
        logger = get_run_logger()
        logger.warning(
            "wave %d needs approval before its cutover: resume this run with who approves it and the change "
            "ticket within %d s, or it ends with nothing changed",
            self.wave,
            self.timeout_s,
        )
        if self.plan is not None:
            send(approval_waiting(self.plan, self.wave, self.sites, self.timeout_s))
        try:
            given = pause_flow_run(
                wait_for_input=ApprovalInput,
                timeout=self.timeout_s,
                poll_interval=min(APPROVAL_POLL_S, self.timeout_s),
            )
        except FlowPauseTimeout:
            self.timed_out = True
            logger.error("approval not given within %d s: nothing was changed", self.timeout_s)
            return None
        principal = approval_principal(via_api=True)
        logger.info("approved by %s, ticket %s (typed with: %s)", given.approved_by, given.ticket, principal)
        return Approval(given.approved_by, given.ticket, principal=principal)


def approval_principal(*, via_api: bool) -> str:
    """Who could have typed an approval. Through the API (the UI's Resume, a deployment run's
    parameters): Prefect 3.8 authenticates one shared auth string and passes the flow no request
    header (a proxy's user included), so "shared credential" — or "no credential" when this run's
    client has no auth string (a server that asks for none). Otherwise the CLI's operator typed it
    (``overflyt wave run --approved-by``): the local user running this process."""
    if via_api:
        from prefect.settings import PREFECT_API_AUTH_STRING

        return SHARED_CREDENTIAL if PREFECT_API_AUTH_STRING.value() else NO_CREDENTIAL
    return f"local user {getpass.getuser()}"


@flow(
    name="migrate-wave",
    flow_run_name=migrate_wave_name,
    description="Pre-check a wave, then cut its sites over (VMs and network together).",
)
def migrate_wave(params: MigrateWaveParams) -> dict[str, Any]:
    install_cancel_handlers()  # Prefect cancels a run with SIGTERM: stop the step, roll back
    approval = None
    if params.approved_by:
        context = FlowRunContext.get()  # a deployment's run was started through the API, not the CLI
        from_deployment = bool(context and context.flow_run and context.flow_run.deployment_id)
        approval = Approval(params.approved_by, params.ticket, principal=approval_principal(via_api=from_deployment))
    progress = WaveProgress(params.plan, params.wave, params.sites, params.dry_run)
    gate = None
    if params.ask_approval:
        gate = ApprovalGate(params.wave, params.approval_timeout_s, params.plan, progress.sites)
    with slot_waits_in_run_log():
        outcome = run_wave(
            Path(params.plan),
            params.wave,
            params.sites,
            dry_run=params.dry_run,
            approval=approval,
            outside_window=params.outside_window,
            outside_window_reason=params.outside_window_reason,
            on_event=log_events(),
            on_step=log_steps(),
            decide_approval=gate,
            site_runner=progress.site_runner(run_site_as_subflow),
            step_runner=run_step_as_task,
            lang=params.lang,
        )
    progress.finish(outcome)
    create_markdown_artifact(
        markdown=report_markdown(outcome),
        key=key("wave-report", outcome.municipality, "wave", outcome.wave),
        description=f"Wave {outcome.wave} {'dry run' if outcome.dry_run else 'cutover'} report",
    )
    if not outcome.dry_run:
        publish_evidence(Path(params.plan), params.lang)
    data = report_data(outcome)
    logger = get_run_logger()
    for override in outcome.overrides:
        logger.warning("override: %s", override)
    for site in outcome.sites:
        if site.status == "not_started":
            logger.warning("%s: %s", site.site, site.error)
        elif site.window:
            logger.warning("%s: %s", site.site, site.window)
    for line in outcome.decided_by() if outcome.exit_code != 0 else []:
        logger.error("%s", line)
    for site in outcome.sites:
        if site.status == "rollback_failed":
            send(rollback_failed(params.plan, outcome.wave, site.site, f"{site.error}; its record: {outcome.run_dir}"))
    if gate is not None and gate.timed_out:
        message = f"wave {outcome.wave}: approval not given within {gate.timeout_s} s: nothing was changed"
        return Failed(message=message, data=data)  # type: ignore[return-value]
    if outcome.exit_code != 0:
        message = f"wave {outcome.wave} ended with exit code {outcome.exit_code}: " + "; ".join(outcome.decided_by())
        return Failed(message=message, data=data)  # type: ignore[return-value]
    return data
