"""What the flows tell people through Prefect's events: a rollback that failed, a pre-check that
found a critical finding, a run paused waiting for approval. Each is a Prefect event whose resource
is ``overflyt.municipality.<kommune>`` (the plan's directory name) and whose payload is the message
(subject, body); the automations ``overflyt serve --notify`` made (:mod:`overflyt.orchestration.notify`)
send it, with the flow run's address, through a notification block. Without a server that holds such
automations (a CLI run on the temporary API) the event is simply recorded.

A run that ends Failed or Crashed needs no event of its own: Prefect emits one for every state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from prefect import get_run_logger
from prefect.events import emit_event

from overflyt.errors import OverflytError
from overflyt.orchestration.notify import APPROVAL_WAITING, PRECHECK_BLOCKED, RESOURCE, ROLLBACK_FAILED
from overflyt.plan import load_plan


@dataclass(frozen=True)
class Message:
    event: str
    slug: str  # the plan's directory name: which municipality's automations send it
    subject: str
    body: str


def _who(plan_path: str | Path, site: str | None = None) -> tuple[str, str, int | None]:
    """(slug, "Name (code)", the wave SITE is in) of the plan; a plan that no longer loads still has its
    directory name."""
    slug = Path(plan_path).resolve().parent.name
    try:
        plan = load_plan(plan_path)
    except OverflytError:
        return slug, slug, None
    wave = next((w.number for w in plan.waves if site in w.sites), None)
    return slug, f"{plan.municipality.name} ({plan.municipality.code})", wave


def rollback_failed(plan_path: str | Path, wave: int | None, site: str, left: str) -> Message:
    slug, who, its_wave = _who(plan_path, site)
    wave = wave if wave is not None else its_wave
    in_wave = f"wave {wave}, " if wave is not None else ""
    return Message(
        ROLLBACK_FAILED,
        slug,
        f"A HUMAN MUST ACT: {who}: the rollback of site {site} failed",
        f"A HUMAN MUST ACT. {who}, {in_wave}site {site}: its rollback failed, so the site is neither as it "
        f"was nor cut over.\nWhat is left: {left}\nWhat to do next: do not start another run of this "
        f"municipality; bring the site back by hand from the run's record (the backups it names), or run "
        f"`overflyt rollback {plan_path} --site {site}` again once the cause is fixed.",
    )


def precheck_blocked(plan_path: str | Path, wave: int, sites: Sequence[str], findings: Sequence[str]) -> Message:
    slug, who, _ = _who(plan_path)
    where = ", ".join(sites) or "all of the wave's"
    listed = "\n".join(f"- {f}" for f in findings)
    return Message(
        PRECHECK_BLOCKED,
        slug,
        f"overflyt: {who}: wave {wave} is blocked by the pre-check",
        f"{who}, wave {wave} (sites: {where}): the pre-check found {len(findings)} critical finding(s); the "
        f"wave cannot run as it is:\n{listed}\nWhat to do next: fix each finding (or move its site to a later "
        "wave) before the wave's window; the next nightly pre-check says whether it is clear.",
    )


def approval_waiting(plan_path: str | Path, wave: int, sites: Sequence[str], timeout_s: int) -> Message:
    slug, who, _ = _who(plan_path)
    return Message(
        APPROVAL_WAITING,
        slug,
        f"overflyt: {who}: wave {wave} waits for approval",
        f"{who}, wave {wave} (sites: {', '.join(sites) or 'all of the wave'}): the cutover is pre-checked and "
        f"paused before its first step, waiting for approval.\nWhat to do next: open the run in the UI and "
        f"resume it with who approves it and the change ticket within {timeout_s} s, or it ends with nothing "
        "changed.",
    )


def send(message: Message) -> None:
    """Emit MESSAGE as a Prefect event of this flow run (Prefect relates it to the run); logged too."""
    get_run_logger().warning("notification %s: %s", message.event, message.subject)
    emit_event(
        event=message.event,
        resource={"prefect.resource.id": f"{RESOURCE}.{message.slug}", "prefect.resource.name": message.slug},
        payload={"subject": message.subject, "body": message.body},
    )
