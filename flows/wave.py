"""Prefect flows: thin wrappers that call the library and show its results in Prefect.

`migrate-wave`, `precheck-wave` and `rollback-site` take their parameters as pydantic models, so
the Prefect UI renders a form with descriptions and defaults (dry run on). Each runs one library
call (:func:`overflyt.cutover.wave.run_wave`, :func:`overflyt.precheck.wave.precheck_wave`,
:func:`overflyt.cutover.wave.rollback_site`); Ansible's task events go to the flow run's log, and the
reports become artifacts with keys stable per municipality and wave, so the UI shows history.
Inside `migrate-wave` each site's cutover is its own subflow run, named after the site.

The CLI runs the same flows locally (Prefect's ephemeral API); `overflyt serve`
(:mod:`overflyt.orchestration.serve`) registers them as deployments per municipality.

Approval: a real cutover of a plan that needs approval, started without ``approved_by`` from a
deployment (``ask_approval``, which the deployments set and the CLI does not), pre-checks the wave
and then pauses before the first cutover step for an :class:`ApprovalInput` — the form the UI
shows on the paused run. Unanswered for ``approval_timeout_s``, the run ends Failed with nothing
changed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# A run without PREFECT_API_URL starts Prefect's temporary API server and waits for it at most 20 s
# by default; its first start on a fresh PREFECT_HOME migrates the database, which takes longer than
# that on a busy 2-core machine. Wait up to 2 minutes instead (still overridable).
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
# Prefect creates its home with a plain mkdir (no parents) and, failing that, runs without a database:
# make sure a configured PREFECT_HOME (the Makefile points it under .overflyt/) exists first.
if os.environ.get("PREFECT_HOME"):
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(mode=0o700, parents=True, exist_ok=True)

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.client.schemas.objects import State
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.states import Completed, Failed
from pydantic import BaseModel, ConfigDict, Field

from overflyt.ansible.cancel import install_cancel_handlers
from overflyt.ansible.runner import AnsibleEvent
from overflyt.errors import OverflytError

if TYPE_CHECKING:
    from overflyt.cutover.site import SiteOutcome
    from overflyt.cutover.wave import Approval
    from overflyt.plan import Plan
    from overflyt.precheck.findings import PrecheckReport


def prepare_local_database() -> None:
    """Start Prefect's ephemeral API for this process under a file lock in PREFECT_HOME.

    Its start migrates the local SQLite database and registers Prefect's block types: two runs
    started at once on a fresh PREFECT_HOME (two municipalities from one machine) would do that
    together, and one dies ("duplicate column name", "UNIQUE constraint failed"). Prefect keeps
    one ephemeral server per process, so the flows that follow use the one started here. Does
    nothing when PREFECT_API_URL points at a server."""
    import fcntl

    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME

    if PREFECT_API_URL.value():
        return
    home = Path(PREFECT_HOME.value()).expanduser()
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(home / ".overflyt-api-start.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            SubprocessASGIServer().start()
        except RuntimeError as exc:  # Prefect's own words: timed out, or the server process exited
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise OverflytError(
                f"Prefect's temporary API server (PREFECT_HOME={home}) did not start: {first} "
                "Nothing was run. Set PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS higher on a busy "
                "machine, or point PREFECT_API_URL at a running server (overflyt serve)."
            ) from exc


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
    ask_approval: bool = Field(
        default=False,
        description="A real cutover that needs approval and has no approved_by pauses before its first cutover "
        "step until someone approves it in the UI (who, change ticket); off, such a run is refused",
    )
    approval_timeout_s: int = Field(
        default=3600,
        ge=1,
        description="How long a run paused for approval waits before it ends with nothing changed",
    )


class PrecheckWaveParams(_Params):
    wave: int | None = Field(
        default=None, ge=1, description="The wave to check (empty: the next wave whose window has not ended)"
    )
    sites: list[str] = Field(default_factory=list, description="Only these sites of the wave (empty: all of them)")
    mode: str = Field(default="precheck", pattern="^(precheck|run)$", description="run: the window must be open now")


class RollbackSiteParams(_Params):
    site: str = Field(description="The site whose cutover is rolled back")


class ApprovalInput(RunInput):
    """What the Prefect UI asks for on a cutover paused for approval."""

    approved_by: str = Field(min_length=1, description="Who approves the cutover")
    ticket: str = Field(min_length=1, description="The change ticket of the approval")


# How often a paused run asks the API whether it was resumed (the pause blocks in the flow's process).
APPROVAL_POLL_S = 2


def next_wave(plan: Plan, now: datetime | None = None) -> int:
    """The first wave whose window has not ended (the last wave once all have): what nightly pre-checks check."""
    now = now or datetime.now(UTC)
    upcoming = [w.number for w in plan.waves if w.window.end > now]
    return upcoming[0] if upcoming else plan.waves[-1].number


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


class ApprovalGate:
    """run_wave's ``decide_approval`` hook: pause the flow run until someone resumes it with an
    :class:`ApprovalInput` (who, which ticket), or until ``timeout_s`` has passed (then None)."""

    def __init__(self, wave: int, timeout_s: int) -> None:
        self.wave = wave
        self.timeout_s = timeout_s
        self.timed_out = False

    def __call__(self) -> Approval | None:
        from overflyt.cutover.wave import Approval

        logger = get_run_logger()
        logger.warning(
            "wave %d needs approval before its cutover: resume this run with who approves it and the change "
            "ticket within %d s, or it ends with nothing changed",
            self.wave,
            self.timeout_s,
        )
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
        logger.info("approved by %s, ticket %s", given.approved_by, given.ticket)
        return Approval(given.approved_by, given.ticket)


_SITE_FAILED = ("failed", "rolled_back", "rollback_failed", "refused")


def run_site_as_subflow(site_id: str, cut: Callable[[], SiteOutcome]) -> SiteOutcome:
    """run_wave's ``site_runner`` hook: each site's cutover is a subflow run named after the site. It
    ends Failed when the site did not cut over; its outcome (rolled back, say) is the data either way."""
    from overflyt.cutover.site import SiteOutcome

    @flow(name="site-cutover", flow_run_name="{site}", description="One site's cutover inside migrate-wave.")
    def site_cutover(site: str) -> State[Any]:
        # A subflow's engine puts Prefect's own SIGTERM handler back for its duration (it raises
        # TerminationSignal, which would skip the rollback): ours stops the step and rolls back.
        install_cancel_handlers()
        outcome = cut()
        if outcome.status in _SITE_FAILED:
            return Failed(message=f"{site}: {outcome.status}: {outcome.error}", data=outcome)
        return Completed(message=f"{site}: {outcome.status}", data=outcome)

    state = site_cutover(site_id, return_state=True)
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, BaseException):
        raise outcome  # what the cutover raised (a cancel, a bug) reaches run_wave as it was
    if not isinstance(outcome, SiteOutcome):
        raise TypeError(f"site-cutover {site_id} ended {state.type.value} without an outcome")
    return outcome


@flow(name="migrate-wave", description="Pre-check a wave, then cut its sites over (VMs and network together).")
def migrate_wave(params: MigrateWaveParams) -> dict[str, Any]:
    from overflyt.cutover.wave import Approval, report_data, report_markdown, run_wave

    install_cancel_handlers()  # Prefect cancels a run with SIGTERM: stop the step, roll back
    approval = Approval(params.approved_by, params.ticket) if params.approved_by else None
    gate = ApprovalGate(params.wave, params.approval_timeout_s) if params.ask_approval else None
    outcome = run_wave(
        Path(params.plan),
        params.wave,
        params.sites,
        dry_run=params.dry_run,
        approval=approval,
        outside_window=params.outside_window,
        on_event=_log_events(),
        on_step=_log_steps(),
        decide_approval=gate,
        site_runner=run_site_as_subflow,
    )
    create_markdown_artifact(
        markdown=report_markdown(outcome),
        key=_key("wave-report", outcome.municipality, "wave", outcome.wave),
        description=f"Wave {outcome.wave} {'dry run' if outcome.dry_run else 'cutover'} report",
    )
    data = report_data(outcome)
    if gate is not None and gate.timed_out:
        message = f"wave {outcome.wave}: approval not given within {gate.timeout_s} s: nothing was changed"
        return Failed(message=message, data=data)  # type: ignore[return-value]
    if outcome.exit_code != 0:
        return Failed(message=f"wave {outcome.wave} ended with exit code {outcome.exit_code}", data=data)  # type: ignore[return-value]
    return data


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


@flow(name="precheck-wave", description="Check what would block a wave, touching nothing.")
def precheck_wave(params: PrecheckWaveParams) -> dict[str, Any]:
    from overflyt.plan import load_plan
    from overflyt.precheck import render
    from overflyt.precheck.wave import precheck_wave as run_precheck

    wave = params.wave or next_wave(load_plan(params.plan))
    outcome = run_precheck(
        Path(params.plan),
        wave,
        params.sites,
        mode="run" if params.mode == "run" else "precheck",
        on_event=_log_events(),
    )
    report = outcome.report
    counts = ", ".join(f"{n} {severity}" for severity, n in report.counts.items())
    create_table_artifact(
        table=findings_table(report),
        key=_key("precheck", report.municipality.code, "wave", wave),
        description=f"Pre-check findings of wave {wave} ({counts}){': BLOCKED' if report.blocked else ''}",
    )
    create_markdown_artifact(
        markdown=render(report, "markdown"),
        key=_key("precheck-report", report.municipality.code, "wave", wave),
        description=f"Pre-check report of wave {wave}",
    )
    data = {
        "blocked": report.blocked,
        "counts": {str(k): v for k, v in report.counts.items()},
        "exit_code": int(report.blocked),
        "run_dir": str(outcome.run_dir),
    }
    if report.blocked:
        return Failed(message=f"wave {wave} is blocked by critical findings", data=data)  # type: ignore[return-value]
    return data


@flow(name="rollback-site", description="Roll a site's cutover back to what it recorded before changing anything.")
def rollback_site(params: RollbackSiteParams) -> dict[str, Any]:
    from overflyt.cutover.wave import report_data, report_markdown
    from overflyt.cutover.wave import rollback_site as run_rollback

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
