"""vCenter checks: both endpoints answer, accept our login, are trusted, and hold the plan's datacenter."""

from __future__ import annotations

from collections.abc import Iterator

from overflyt.plan.model import VCenterEndpoint
from overflyt.precheck.facts import VCenterFacts
from overflyt.precheck.findings import Severity
from overflyt.precheck.registry import CheckContext, Outcome, Role, Subject, datacenters, fail, ok, rule, skip

ROLES: tuple[Role, ...] = ("source", "target")


def _endpoint(ctx: CheckContext, role: Role) -> VCenterEndpoint:
    return ctx.plan.source.vcenter if role == "source" else ctx.plan.target.vcenter


def _each(ctx: CheckContext) -> Iterator[tuple[Role, VCenterEndpoint, VCenterFacts | None, Subject]]:
    for role in ROLES:
        endpoint = _endpoint(ctx, role)
        yield role, endpoint, ctx.vcenter(role), Subject("vcenter", endpoint.name)


def _answered(facts: VCenterFacts | None) -> bool:
    """The endpoint answered (possibly refusing the login)."""
    return facts is not None and (facts.reachable or facts.login_failed)


@rule("vcenter.reachable", title="vCenter answers", severity=Severity.critical)
def vcenter_reachable(ctx: CheckContext) -> Iterator[Outcome]:
    """The source and the target vCenter answered the fact gatherer over HTTPS.

    Fires when no facts were gathered for an endpoint, or when it could not be reached (the
    gatherer's error is in the message and evidence). Check the URL in the plan
    (`source.vcenter.url` / `target.vcenter.url`), name resolution, firewalls and that vCenter is
    up, then run the pre-check again. Every check that needs that vCenter's inventory is skipped
    until this passes.
    """
    for role, endpoint, facts, subject in _each(ctx):
        evidence: dict[str, str | None] = {"role": role, "url": endpoint.url}
        if facts is None:
            yield fail(
                subject,
                f"{role.capitalize()} vCenter {endpoint.name} was not checked: no facts were gathered from "
                f"{endpoint.url}; gather facts for it and run the pre-check again",
                {**evidence},
            )
        elif not _answered(facts):
            yield fail(
                subject,
                f"{role.capitalize()} vCenter {endpoint.name} at {endpoint.url} is not reachable: "
                f"{facts.error or 'no reason given'}; check the address, firewalls and that vCenter is up, "
                "then run the pre-check again",
                {**evidence, "error": facts.error},
            )
        else:
            yield ok(subject)


@rule("vcenter.login", title="vCenter accepts the login", severity=Severity.critical)
def vcenter_login(ctx: CheckContext) -> Iterator[Outcome]:
    """The vCenter accepted the plan's credentials for it.

    Fires when the gatherer reports the login was refused (`login_failed`). Check the credentials
    entry the endpoint names (`credentials.<name>`: user and the secret's source), that the account
    is not locked or expired, and that it has read access to the datacenter.
    """
    for role, endpoint, facts, subject in _each(ctx):
        if facts is None or not _answered(facts):
            yield skip(subject, f"{role} vCenter {endpoint.name} did not answer (see vcenter.reachable)")
            continue
        if not facts.login_failed:
            yield ok(subject)
            continue
        credential = ctx.plan.credentials.get(endpoint.credentials)
        user = credential.username if credential else "(unknown user)"
        yield fail(
            subject,
            f"{role.capitalize()} vCenter {endpoint.name} refused the login of {user}: "
            f"{facts.error or 'no reason given'}; check credentials entry {endpoint.credentials} (user and secret) "
            "and that the account is neither locked nor expired",
            {
                "role": role,
                "url": endpoint.url,
                "credentials": endpoint.credentials,
                "username": user,
                "error": facts.error,
            },
        )


@rule("vcenter.tls", title="vCenter certificate verified", severity=Severity.warning)
def vcenter_tls(ctx: CheckContext) -> Iterator[Outcome]:
    """The vCenter's certificate was verified (CA bundle, system store or pinned thumbprint).

    Warning when it was not verified because the plan explicitly allows it for that endpoint
    (`tls: {insecure: true}`) — every report shows the override until a `ca_file` or `thumbprint`
    replaces it. Critical when the certificate was not verified although the plan does not allow
    it (the gatherer must not have connected that way). Warning when the gatherer did not report
    how it verified the certificate.
    """
    for role, endpoint, facts, subject in _each(ctx):
        if facts is None or not _answered(facts):
            yield skip(subject, f"{role} vCenter {endpoint.name} did not answer (see vcenter.reachable)")
            continue
        evidence: dict[str, str | bool | None] = {
            "role": role,
            "url": endpoint.url,
            "tls": facts.tls,
            "plan_insecure": endpoint.tls.insecure,
        }
        if facts.tls == "insecure" and endpoint.tls.insecure:
            yield fail(
                subject,
                f"Certificate not verified: explicit insecure override for {endpoint.name} ({role}.vcenter.tls); "
                "give a ca_file or thumbprint instead",
                {**evidence},
            )
        elif facts.tls == "insecure":
            yield fail(
                subject,
                f"Certificate of {role} vCenter {endpoint.name} was not verified although the plan requires it; "
                "the fact gatherer must verify it — check the gatherer and run the pre-check again",
                {**evidence},
                severity=Severity.critical,
            )
        elif facts.tls is None:
            yield fail(
                subject,
                f"The fact gatherer did not report how the certificate of {role} vCenter {endpoint.name} was "
                "verified; check the gatherer's output",
                {**evidence},
            )
        else:
            yield ok(subject)


@rule("vcenter.datacenter", title="Datacenter exists", severity=Severity.critical)
def vcenter_datacenter(ctx: CheckContext) -> Iterator[Outcome]:
    """The plan's datacenter (`source.datacenter` / `target.datacenter`) exists in its vCenter.

    Fires when the vCenter answered but its inventory shows no such datacenter: the name in the
    plan is wrong, or the account cannot see it. Fix the plan or grant the account read access.
    VM, capacity and network checks against that vCenter are skipped until this passes.
    """
    for role, endpoint, facts, subject in _each(ctx):
        if facts is None or not facts.reachable or facts.login_failed:
            yield skip(subject, f"{role} vCenter {endpoint.name} is not usable (see vcenter.reachable, vcenter.login)")
            continue
        datacenter = ctx.datacenter(role)
        found = sorted(datacenters(facts))
        if datacenter in found:
            yield ok(subject)
            continue
        yield fail(
            subject,
            f"Datacenter {datacenter} was not found in {role} vCenter {endpoint.name} "
            f"(it shows: {', '.join(found) or 'none'}); fix {role}.datacenter in the plan or give the account "
            "read access to it",
            {"role": role, "datacenter": datacenter, "found": list(found)},
        )
