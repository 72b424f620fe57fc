"""Notifications through Prefect's own machinery: per municipality, Prefect automations whose
actions send through a notification block Prefect ships (``overflyt serve --notify URL`` and the
plan's ``notify``). The server's automation services evaluate them; nothing here sends anything.

What a URL becomes (:func:`notification_block`): ``http(s)://…`` Prefect's Custom Webhook block (a
JSON POST ``{"subject", "text"}``), ``msteams+https://…`` its Microsoft Teams webhook block (a
Power Automate workflow URL), ``mailto:ADDR[,ADDR]`` its SendGrid e-mail block (the API key from
``OVERFLYT_SENDGRID_API_KEY``). One block per URL, named ``overflyt-notify-<hash>``.

Four automations per municipality with at least one URL, named ``overflyt/<kommune>: <what>``:

- ``run failed``: Prefect's own ``prefect.flow-run.Failed`` / ``.Crashed`` event of a
  ``migrate-wave`` or ``rollback-site`` run of the municipality's deployments (their tag: the
  municipality's directory name), the message templated from the flow run (its parameters, its
  state's message, which names wave, sites and why);
- ``rollback failed``, ``pre-check blocked``, ``approval waiting``: the events the flows emit
  (:data:`EVENTS`; their resource ``overflyt.municipality.<kommune>``), whose payload is the message
  (:mod:`flows.notify`).

Every message ends with the flow run's address in the UI. :func:`sync` makes the server hold
exactly these: a URL or a plan that is gone takes its automations and blocks with it, and
:func:`remove_gone_deployments` the deployments of a plan that is gone.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from overflyt.errors import UsageError

if TYPE_CHECKING:
    from prefect.blocks.abstract import NotificationBlock
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.events.schemas.automations import Automation, AutomationCore

TAG = "overflyt"  # on every automation overflyt made: the ones sync() may remove
BLOCK_PREFIX = "overflyt-notify-"
RESOURCE = "overflyt.municipality"  # a flow's event's resource: overflyt.municipality.<kommune>
SENDGRID_ENV = "OVERFLYT_SENDGRID_API_KEY"
FLOWS = ("migrate-wave", "precheck-wave", "rollback-site")

ROLLBACK_FAILED = "overflyt.rollback.failed"
PRECHECK_BLOCKED = "overflyt.precheck.blocked"
APPROVAL_WAITING = "overflyt.approval.waiting"
EVENTS = {
    ROLLBACK_FAILED: "rollback failed",
    PRECHECK_BLOCKED: "pre-check blocked",
    APPROVAL_WAITING: "approval waiting",
}
LINK = "\n\nFlow run: {{ flow_run|ui_url }}"


@dataclass(frozen=True)
class Target:
    """A municipality's notifications: its directory name (the deployments' name), code, name, URLs."""

    slug: str
    code: str
    name: str
    urls: tuple[str, ...]


def check_url(url: str, where: str = "--notify") -> str:
    """URL if it is one :func:`notification_block` can make a block of; else a UsageError naming WHERE."""
    if url.startswith(("http://", "https://")) and len(url.split("://", 1)[1]) > 0:
        return url
    if url.startswith("msteams+https://") or (url.startswith("mailto:") and "@" in url):
        return url
    raise UsageError(
        f"{where} {url!r}: not a notification address: give http(s)://… (a JSON POST), msteams+https://… "
        "(a Teams workflow) or mailto:ADDR[,ADDR]"
    )


def block_name(url: str) -> str:
    return BLOCK_PREFIX + hashlib.sha256(url.encode()).hexdigest()[:16]


def notification_block(url: str) -> NotificationBlock:
    """The Prefect notification block that sends to URL (see the module's docstring)."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock, MicrosoftTeamsWebhook, SendgridEmail
    from pydantic import SecretStr

    check_url(url)
    try:
        if url.startswith("msteams+"):
            return MicrosoftTeamsWebhook(url=SecretStr(url.removeprefix("msteams+")))
        if url.startswith("mailto:"):
            key = os.environ.get(SENDGRID_ENV)
            if not key:
                raise UsageError(f"{url}: e-mail goes through SendGrid: set {SENDGRID_ENV} to its API key")
            to = [a.strip() for a in url.removeprefix("mailto:").split("?", 1)[0].split(",") if a.strip()]
            return SendgridEmail(api_key=SecretStr(key), sender_email="overflyt@localhost", to_emails=to)
        return CustomWebhookNotificationBlock(
            name="overflyt",
            url=url,
            json_data={"subject": "{{subject}}", "text": "{{body}}"},
            timeout=5,  # Prefect's actions wait for it: an address that never answers holds the others
        )
    except ValueError as exc:  # the block's own check of the URL
        first = str(exc).splitlines()[0]
        raise UsageError(f"{url}: Prefect's notification block refuses it: {first}") from exc


def _failed_body(target: Target) -> str:
    who = f"{target.name} ({target.code})"
    return (
        "{% set p = flow_run.parameters.params %}"
        f"{who}: the {{{{ flow.name }}}} run {{{{ flow_run.name }}}} ended {{{{ flow_run.state.name }}}}.\n"
        "{% if p.site %}Site: {{ p.site }} (its rollback, on demand; the wave: in the message below)"
        "{% else %}Wave: {{ p.wave }}; "
        "sites: {% if p.sites %}{{ p.sites|join(', ') }}{% else %}all of the wave's{% endif %}"
        "{% if p.dry_run %} (dry run){% endif %}{% endif %}\n"
        "What happened: {{ flow_run.state.message or 'no message' }}\n"
        "What to do next: {% if flow_run.state.name == 'Crashed' %}the run's process died (its worker or "
        "machine): run `overflyt wave run` or `overflyt rollback` for what it left, as its log says"
        "{% else %}read the run's log and report in the UI; a failed site was rolled back (a rollback that "
        "failed sends its own message): fix the cause, then run again{% endif %}." + LINK
    )


def automations(target: Target, block_ids: Iterable[UUID]) -> list[AutomationCore]:
    """The municipality's four automations, each sending through every block of BLOCK_IDS."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger

    ids = list(block_ids)

    def make(what: str, trigger: EventTrigger, subject: str, body: str) -> AutomationCore:
        return AutomationCore(
            name=f"{TAG}/{target.slug}: {what}",
            description=f"overflyt serve: tells {', '.join(target.urls)} when {what} ({target.name}, {target.code})",
            tags=[TAG, target.slug],
            trigger=trigger,
            actions=[SendNotification(block_document_id=i, subject=subject, body=body) for i in ids],
        )

    result = [
        make(
            "run failed",
            EventTrigger(
                expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
                match={"prefect.resource.id": "prefect.flow-run.*"},
                match_related=[  # pydantic coerces the dicts
                    {"prefect.resource.role": "tag", "prefect.resource.id": f"prefect.tag.{target.slug}"},
                    {"prefect.resource.role": "flow", "prefect.resource.name": ["migrate-wave", "rollback-site"]},
                ],
                posture="Reactive",
                threshold=1,
            ),
            f"overflyt: {target.name} ({target.code}): {{{{ flow.name }}}} {{{{ flow_run.state.name|lower }}}}",
            _failed_body(target),
        )
    ]
    for event, what in EVENTS.items():
        trigger = EventTrigger(
            expect={event},
            match={"prefect.resource.id": f"{RESOURCE}.{target.slug}"},
            posture="Reactive",
            threshold=1,
        )
        result.append(make(what, trigger, "{{ event.payload.subject }}", "{{ event.payload.body }}" + LINK))
    return result


def targets(found: Iterable[tuple[str, str, str, Iterable[str]]], urls: Iterable[str]) -> list[Target]:
    """(directory name, code, name, the plan's URLs) of each municipality and serve's URLS: each one's Target."""
    common = tuple(check_url(u) for u in urls)
    return [Target(slug, code, name, tuple(dict.fromkeys(common + tuple(own)))) for slug, code, name, own in found]


PAGE = 200  # what one read of the API returns at most
T = TypeVar("T")


def _all_pages(read: Callable[[int], list[T]]) -> list[T]:
    """Everything READ(offset) returns, page by page (98 municipalities hold more than one page of
    automations, blocks and deployments)."""
    found: list[T] = []
    while True:
        page = read(len(found))
        found.extend(page)
        if len(page) < PAGE:
            return found


def _automations(client: SyncPrefectClient) -> list[Automation]:
    """Every automation on the server (the sync client's defaults send a null sort and limit)."""
    from prefect.client.schemas.sorting import AutomationSort

    return _all_pages(lambda at: client.read_automations(sort=AutomationSort.NAME_ASC, limit=PAGE, offset=at))


def _block_documents(client: SyncPrefectClient) -> list[Any]:
    """Every block document on the server."""
    return _all_pages(lambda at: client.read_block_documents(offset=at, limit=PAGE, include_secrets=False))


def sync(client: SyncPrefectClient, wanted: Iterable[Target]) -> tuple[list[str], list[str]]:
    """Make the server's overflyt automations and blocks exactly WANTED's: (names there now, names removed)."""
    blocks: dict[str, UUID] = {}
    desired: dict[str, AutomationCore] = {}
    for target in wanted:
        for url in target.urls:
            if url not in blocks:
                saved = notification_block(url).save(block_name(url), overwrite=True)
                assert isinstance(saved, UUID)  # sync outside an event loop
                blocks[url] = saved
        if target.urls:
            for automation in automations(target, [blocks[u] for u in target.urls]):
                desired[automation.name] = automation
    removed: list[str] = []
    for existing in _automations(client):
        if TAG not in existing.tags:
            continue
        if existing.name in desired:
            client.update_automation(existing.id, desired.pop(existing.name))
        else:
            client.delete_automation(existing.id)
            removed.append(existing.name)
    for automation in desired.values():
        client.create_automation(automation)
    for document in _block_documents(client):
        name = document.name or ""
        if name.startswith(BLOCK_PREFIX) and name not in {block_name(u) for u in blocks}:
            client.delete_block_document(document.id)
    now = sorted(a.name for a in _automations(client) if TAG in a.tags)
    return now, sorted(removed)


def remove_gone_deployments(client: SyncPrefectClient, slugs: Iterable[str]) -> list[str]:
    """Delete the deployments of overflyt's flows whose municipality is not in SLUGS (its plan is gone)."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    keep = set(slugs)
    removed: list[str] = []
    from prefect.client.schemas.sorting import DeploymentSort

    found = _all_pages(
        lambda at: client.read_deployments(
            flow_filter=FlowFilter(name=FlowFilterName(any_=list(FLOWS))),
            sort=DeploymentSort.NAME_ASC,
            limit=PAGE,
            offset=at,
        )
    )
    for deployment in found:
        if deployment.name not in keep:
            flow = client.read_flow(deployment.flow_id)
            client.delete_deployment(deployment.id)
            removed.append(f"{flow.name}/{deployment.name}")
    return sorted(removed)
