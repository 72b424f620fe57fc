"""The rule registry and what a rule sees (:class:`CheckContext`) and says (:class:`Outcome`).

A rule is a plain function ``(CheckContext) -> Iterable[Outcome]``, one outcome per subject it
looked at, registered with :func:`rule`::

    @rule("vm.snapshots", title="VM has no snapshots", severity=Severity.critical)
    def vm_snapshots(ctx: CheckContext) -> Iterator[Outcome]:
        \"\"\"What it checks, why, and what to do when it fires (this becomes the documentation).\"\"\"
        for vm in ctx.vms:
            ...
            yield ok(subject) or fail(subject, "ndj-dc01 has 2 snapshots ...; delete them", {...})

The engine stamps the rule's id and default severity on every finding, so a rule cannot mislabel
what it found. Adding a rule is adding such a function to a module of :mod:`overflyt.precheck.rules`;
the engine does not change.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Literal, Protocol, TypeVar

from pydantic import JsonValue

from overflyt.errors import UsageError
from overflyt.plan.model import NetworkDevice, Plan, VirtualMachine, Wave
from overflyt.precheck.facts import EstateFacts, VCenterFacts, VMFacts
from overflyt.precheck.findings import Severity, SubjectKind

log = logging.getLogger(__name__)

Mode = Literal["precheck", "run"]
Role = Literal["source", "target"]
Evidence = dict[str, JsonValue]

RULE_ID = re.compile(r"^[a-z]+(\.[a-z_]+)+$")


@dataclass(frozen=True)
class CheckContext:
    """What every rule sees: the plan, which wave and sites are checked, the observed facts, the time.

    ``sites`` empty means all of the wave's sites. ``now`` must be timezone-aware. ``mode`` is
    ``precheck`` (ahead of the window) or ``run`` (right before the wave runs: the window must be
    open). Bad input raises :class:`~overflyt.errors.UsageError` (exit 2).
    """

    plan: Plan
    wave: int
    facts: EstateFacts
    now: datetime
    sites: tuple[str, ...] = ()
    mode: Mode = "precheck"
    only_vms: frozenset[str] | None = None  # a wave run resuming: only these of the selected VMs are left to move

    def __post_init__(self) -> None:
        numbers = [w.number for w in self.plan.waves]
        if self.wave not in numbers:
            raise UsageError(f"wave {self.wave} is not in the plan (waves: {', '.join(map(str, numbers))})")
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise UsageError("the time to check against must carry a time zone")
        if self.mode not in ("precheck", "run"):
            raise UsageError(f"unknown mode {self.mode!r} (precheck or run)")
        wave_sites = self.plan.wave(self.wave).sites
        if not self.sites:
            object.__setattr__(self, "sites", tuple(wave_sites))
            return
        for site in self.sites:
            if site not in wave_sites:
                raise UsageError(f"site {site} is not in wave {self.wave} (its sites: {', '.join(wave_sites)})")
        object.__setattr__(self, "sites", tuple(dict.fromkeys(self.sites)))

    @cached_property
    def wave_plan(self) -> Wave:
        return self.plan.wave(self.wave)

    @cached_property
    def vms(self) -> tuple[VirtualMachine, ...]:
        """The wave's VMs (pulled-forward ones included) of the selected sites, in plan order.

        With every site of the wave selected, every VM the wave moves; with some, the VMs whose
        home site is selected.
        """
        wave_vms = self.plan.vms_of_wave(self.wave)
        if self.only_vms is not None:
            wave_vms = [vm for vm in wave_vms if vm.name in self.only_vms]
        if set(self.sites) == set(self.wave_plan.sites):
            return tuple(wave_vms)
        return tuple(vm for vm in wave_vms if vm.site in self.sites)

    @cached_property
    def devices(self) -> tuple[NetworkDevice, ...]:
        """The network devices of the selected sites, in plan order."""
        return tuple(d for d in self.plan.devices if d.site in self.sites)

    def vcenter(self, role: Role) -> VCenterFacts | None:
        return self.facts.source if role == "source" else self.facts.target

    def datacenter(self, role: Role) -> str:
        return self.plan.source.datacenter if role == "source" else self.plan.target.datacenter

    def inventory(self, role: Role) -> tuple[VCenterFacts | None, str]:
        """The vCenter's facts when its inventory can be judged, else None and why not.

        Usable means: gathered, reachable, logged in, and the plan's datacenter is there. The reason
        names the check that reports the cause, for the checks that must be skipped because of it.
        """
        endpoint = self.plan.source.vcenter if role == "source" else self.plan.target.vcenter
        facts = self.vcenter(role)
        name = f"{role} vCenter {endpoint.name}"
        if facts is None:
            return None, f"{name} was not checked (see vcenter.reachable)"
        if facts.login_failed:
            return None, f"{name} refused the login (see vcenter.login)"
        if not facts.reachable:
            return None, f"{name} is not reachable (see vcenter.reachable)"
        datacenter = self.datacenter(role)
        if datacenter not in datacenters(facts):
            return None, f"{name} has no datacenter {datacenter} (see vcenter.datacenter)"
        return facts, ""

    def source_vm(self, name: str) -> VMFacts | None:
        """The VM of that name in the plan's source datacenter, as the source vCenter sees it."""
        facts = self.vcenter("source")
        if facts is None:
            return None
        return find(facts.vms, name, self.plan.source.datacenter)


class _Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def datacenter(self) -> str: ...


N = TypeVar("N", bound=_Named)


def find(objects: Mapping[str, N], name: str, datacenter: str) -> N | None:
    """The object of that name in that datacenter, whatever the gatherer keyed the mapping by.

    Rules never trust the keys: in the lab one simulator serves both vCenters, so the same name can
    exist in both datacenters, and a gatherer may key by managed object id instead of name.
    """
    return next((o for o in objects.values() if o.name == name and o.datacenter == datacenter), None)


def datacenters(facts: VCenterFacts) -> set[str]:
    """Every datacenter the vCenter's facts mention."""
    found = set(facts.folders)
    for objects in (facts.vms, facts.hosts, facts.clusters, facts.datastores, facts.portgroups):
        found.update(o.datacenter for o in objects.values())
    return found


@dataclass(frozen=True)
class Subject:
    """What a check looked at. ``site`` is None for wave-wide subjects (vCenter, cluster, ...)."""

    kind: SubjectKind
    name: str
    site: str | None = None


@dataclass(frozen=True)
class Note:
    """One finding as a rule states it; ``severity`` None means the rule's default severity."""

    message: str
    evidence: Evidence = field(default_factory=dict)
    severity: Severity | None = None


@dataclass(frozen=True)
class Outcome:
    """One check of one subject: its notes (none when it passed), or why it was skipped."""

    subject: Subject
    notes: tuple[Note, ...] = ()
    skipped: str | None = None


def ok(subject: Subject, info: str | None = None, evidence: Evidence | None = None) -> Outcome:
    """Passed; ``info`` adds an informational finding (e.g. how much room is left)."""
    if info is None:
        return Outcome(subject)
    return Outcome(subject, (Note(info, evidence or {}, Severity.info),))


def fail(subject: Subject, message: str, evidence: Evidence | None = None, severity: Severity | None = None) -> Outcome:
    """Found a problem: one finding, of the rule's default severity unless ``severity`` is given."""
    return Outcome(subject, (Note(message, evidence or {}, severity),))


def skip(subject: Subject, reason: str) -> Outcome:
    """Cannot be evaluated because another check already reports the critical cause."""
    return Outcome(subject, skipped=reason)


CheckFn = Callable[[CheckContext], Iterable[Outcome]]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: Severity
    doc: str
    check: CheckFn


RULES: dict[str, Rule] = {}


def rule(rule_id: str, *, title: str, severity: Severity) -> Callable[[CheckFn], CheckFn]:
    """Register a check under ``rule_id``; its docstring is its documentation (required)."""
    if not RULE_ID.match(rule_id):
        raise ValueError(f"rule id {rule_id!r} must look like area.name (lower case, dotted)")

    def register(fn: CheckFn) -> CheckFn:
        if rule_id in RULES:
            raise ValueError(f"rule id {rule_id} is registered twice ({RULES[rule_id].check.__qualname__})")
        doc = inspect.getdoc(fn)
        if not doc:
            raise ValueError(f"rule {rule_id} ({fn.__qualname__}) needs a docstring: it is its documentation")
        RULES[rule_id] = Rule(rule_id, title, severity, doc, fn)
        log.debug("registered pre-check rule %s", rule_id)
        return fn

    return register


def rules_markdown() -> str:
    """The rule reference of docs/prechecks.md, written from the registered rules' docstrings."""
    sections = []
    for registered in RULES.values():
        heading = f"### `{registered.id}` — {registered.title}"
        sections.append(f"{heading}\n\nseverity: **{registered.severity.value}**\n\n{registered.doc}\n")
    return "\n".join(sections)
