"""Reads plan files and their Ansible inventories — the only module that does — and holds the
YAML reader (:func:`read_yaml`: line numbers, duplicate keys, plain errors) that the estate
loader (:mod:`overflyt.discovery.estate`) reads estate files with.

``load_plan`` turns a plan file into a :class:`Plan` or raises :class:`PlanInvalid` listing every
problem found, each with file, line, field path, offending value and reason. ``load_inventory``
reads the connection settings that sit next to the plan (hosts.yml and whatever Ansible reads with
it: host_vars/, group_vars/ files and directories, vault values — through Ansible itself,
:mod:`.ansible_inventory`) and checks them against the plan, so the two can never drift apart.
``load`` does both at once and returns a :class:`LoadedPlan`: what a run carries instead of a plan
and its path side by side.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr, ValidationError

from overflyt.errors import OverflytError, PlanInvalid, PlanIssue
from overflyt.plan import ansible_inventory
from overflyt.plan.model import Plan
from overflyt.plan.rules import Problem, validate_plan
from overflyt.plan.waivers import FILE as WAIVERS_FILE
from overflyt.plan.waivers import PlacedWaiver, WaiversFile

log = logging.getLogger(__name__)

PathKey = tuple[str | int, ...]

# Pydantic's wording, made plainer for the people who edit plans.
_REASONS = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown field (see `overflyt plan schema` for the fields a plan may have)",
}


@dataclass(frozen=True)
class Inventory:
    """Connection settings of each device, from the inventory next to the plan, as Ansible reads
    it (variable precedence applied, vault values decrypted)."""

    directory: Path
    host_vars: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # per host, the variables that were vault-encrypted: secrets, never written in clear
    secrets: Mapping[str, frozenset[str]] = field(default_factory=dict)


# PyYAML's pure-Python loader: its messages ("expected ',' or ']', but got '<scalar>'") are plainer
# than libyaml's, and a municipality's plan or estate file reads in well under a second.
_Loader: Any = yaml.SafeLoader


@dataclass
class YamlDocument:
    """A YAML file parsed once into nodes that know their line numbers, and the data built from them."""

    file: str
    data: Any
    lines: dict[PathKey, int]

    def line_of(self, path: PathKey) -> int | None:
        for cut in range(len(path), -1, -1):
            line = self.lines.get(path[:cut])
            if line is not None:
                return line
        return None


@dataclass(frozen=True)
class LoadedPlan:
    """A plan read once: the plan, its file, and how its devices are reached (the inventory beside
    it). The project that runs it (playbooks/, roles/, collections/) is found on first use."""

    plan: Plan
    path: Path
    connections: Inventory
    waivers: tuple[PlacedWaiver, ...] = ()  # waivers.yml beside the plan (overflyt.plan.waivers)

    @property
    def directory(self) -> Path:
        return self.path.parent

    @functools.cached_property
    def project(self) -> Path:
        from overflyt.project import find_project

        return find_project(self.directory)

    @functools.cached_property
    def state(self) -> Path:
        """Where this plan's run records, wave states, locks and move slots live
        (:func:`overflyt.project.state_home`): the same from every working directory."""
        from overflyt.project import state_home

        return state_home(self.directory)


def load(path: str | Path) -> LoadedPlan:
    """Read, parse and validate a plan file and the inventory beside it, each once."""
    plan_path = Path(path)
    plan, inventory = _load(plan_path)
    connections = inventory or Inventory(directory=plan_path.parent)
    return LoadedPlan(plan=plan, path=plan_path, connections=connections, waivers=load_waivers(plan_path))


def load_plan(path: str | Path) -> Plan:
    """Read, parse and validate a plan file, and check its inventory if one lies beside it."""
    return _load(Path(path))[0]


def _load(plan_path: Path) -> tuple[Plan, Inventory | None]:
    doc = read_yaml(plan_path)
    if not isinstance(doc.data, dict):
        raise PlanInvalid([PlanIssue(doc.file, "", "a plan must be a YAML mapping (key: value) at the top", 1)])
    try:
        plan = Plan.model_validate(doc.data)
    except ValidationError as exc:
        raise PlanInvalid(sorted(_schema_issues(doc, exc), key=_order)) from None
    issues = [_issue(doc, p) for p in validate_plan(plan)]
    inventory = None
    if ansible_inventory.source_of(plan_path.parent) is not None:
        inventory, inventory_issues = _read_inventory(plan_path.parent, plan)
        issues.extend(inventory_issues)
    if (plan_path.parent / WAIVERS_FILE).exists():
        issues.extend(_read_waivers(plan_path.parent / WAIVERS_FILE)[1])
    if issues:
        raise PlanInvalid(sorted(issues, key=_order))
    log.debug(
        "loaded plan %s: %d waves, %d sites, %d VMs",
        plan_path,
        len(plan.waves),
        len(plan.sites),
        len(plan.vms),
    )
    return plan, inventory


def load_inventory(plan_path: str | Path, plan: Plan) -> Inventory:
    """The per-device connection settings that sit beside the plan (empty when there is no hosts.yml)."""
    directory = Path(plan_path).parent
    if ansible_inventory.source_of(directory) is None:
        return Inventory(directory=directory)
    inventory, issues = _read_inventory(directory, plan)
    if issues:
        raise PlanInvalid(sorted(issues, key=_order))
    return inventory


def load_waivers(plan_path: str | Path) -> tuple[PlacedWaiver, ...]:
    """The waivers in ``waivers.yml`` beside the plan (none when there is no such file); PlanInvalid
    naming file, line and reason for each problem."""
    path = Path(plan_path).parent / WAIVERS_FILE
    if not path.exists():
        return ()
    waivers, issues = _read_waivers(path)
    if issues:
        raise PlanInvalid(sorted(issues, key=_order))
    return waivers


def _read_waivers(path: Path) -> tuple[tuple[PlacedWaiver, ...], list[PlanIssue]]:
    doc = read_yaml(path, "a waivers file")
    if doc.data is None:
        return (), []
    if not isinstance(doc.data, dict):
        return (), [PlanIssue(doc.file, "", "a waivers file must be a mapping with the key `waivers`", 1)]
    try:
        parsed = WaiversFile.model_validate(doc.data)
    except ValidationError as exc:
        return (), list(_schema_issues(doc, exc))
    placed: list[PlacedWaiver] = []
    issues: list[PlanIssue] = []
    first: dict[tuple[str, str], int] = {}
    for i, waiver in enumerate(parsed.waivers):
        line = doc.line_of(("waivers", i)) or 1
        item = PlacedWaiver(waiver, f"{doc.file}:{line}")
        if item.key in first:
            issues.append(
                PlanIssue(
                    doc.file,
                    f"waivers[{i}]",
                    f"waiver of {waiver.finding} for {waiver.item!r} given twice (first at line {first[item.key]})",
                    line,
                )
            )
            continue
        first[item.key] = line
        placed.append(item)
    return tuple(placed), issues


def _order(issue: PlanIssue) -> tuple[str, int, str]:
    return (issue.file, issue.line or 0, issue.path)


def display(path: str | Path) -> str:
    """A path as the user should see it in a message: relative to the working directory when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def read_yaml(
    path: Path, what: str = "a plan file", invalid: Callable[[list[PlanIssue]], OverflytError] = PlanInvalid
) -> YamlDocument:
    """Read one YAML file; any problem (missing, unreadable, malformed, a key given twice) is raised
    as ``invalid([issue, ...])`` naming the file, the line and the reason. ``what`` names the file's
    kind in the message for a directory ("is a directory, not a plan file")."""
    shown = display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise invalid([PlanIssue(shown, "", "file not found")]) from None
    except IsADirectoryError:
        raise invalid([PlanIssue(shown, "", f"is a directory, not {what}")]) from None
    except UnicodeDecodeError as exc:
        raise invalid([PlanIssue(shown, "", f"not UTF-8 text (byte {exc.start})")]) from None
    except OSError as exc:
        raise invalid([PlanIssue(shown, "", f"cannot be read: {exc.strerror}")]) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        context = ""
        if exc.context:
            started = f" (started at line {exc.context_mark.line + 1})" if exc.context_mark else ""
            context = f"{exc.context}{started}: "
        reason = f"malformed YAML: {context}{exc.problem}"
        raise invalid([PlanIssue(shown, "", reason, mark.line + 1 if mark else None)]) from None
    except yaml.YAMLError as exc:
        raise invalid([PlanIssue(shown, "", f"malformed YAML: {exc}")]) from None
    finally:
        loader.dispose()
    lines: dict[PathKey, int] = {}
    duplicates = list(_index(node, lines, shown)) if node is not None else []
    if duplicates:
        raise invalid(duplicates)
    return YamlDocument(shown, data, lines)


def _index(root: yaml.Node, lines: dict[PathKey, int], file: str) -> Iterator[PlanIssue]:
    """Record the line of every key and item (iteratively: estates are long); report keys given twice."""
    stack: list[tuple[yaml.Node, PathKey]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                line = key_node.start_mark.line + 1
                if key in seen:
                    yield PlanIssue(file, dotted((*path, key)), f"key given twice (first at line {seen[key]})", line)
                    continue
                seen[key] = line
                lines[(*path, key)] = line
                stack.append((value_node, (*path, key)))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[(*path, i)] = item.start_mark.line + 1
                stack.append((item, (*path, i)))


def dotted(path: Sequence[str | int]) -> str:
    """A field path as a plan or estate file spells it: ``vms[3].depends_on[0]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def show_value(value: Any) -> str:
    """A value as a message shows it: quoted when a string, cut at 80 characters."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _schema_issues(doc: YamlDocument, exc: ValidationError) -> Iterator[PlanIssue]:
    for err in exc.errors(include_url=False):
        loc: PathKey = tuple(p for p in err["loc"] if p != "[key]")
        kind = err["type"]
        reason = _REASONS.get(kind, str(err["msg"]).removeprefix("Value error, "))
        value = (
            None if kind in ("missing", "extra_forbidden") or isinstance(err["input"], dict | list) else err["input"]
        )
        if kind == "extra_forbidden":
            value = None
        yield PlanIssue(
            doc.file,
            dotted(loc),
            reason,
            doc.line_of(loc),
            None if value is None else show_value(value),
        )


def _issue(doc: YamlDocument, problem: Problem) -> PlanIssue:
    return PlanIssue(
        doc.file,
        dotted(problem.path),
        problem.reason,
        doc.line_of(problem.path),
        None if problem.value is None else show_value(problem.value),
    )


def _read_inventory(directory: Path, plan: Plan) -> tuple[Inventory, list[PlanIssue]]:
    """The inventory beside the plan as Ansible reads it (:mod:`.ansible_inventory`), checked
    against the plan: every device there with the plan's address and port, no other host."""
    source = ansible_inventory.source_of(directory)
    assert source is not None  # the callers look first
    read = ansible_inventory.read(source)
    shown = display(source)
    if read.error is not None:
        file, line = (display(read.error_at[0]), read.error_at[1]) if read.error_at else (shown, None)
        return Inventory(directory=directory), [PlanIssue(file, "", read.error, line)]
    issues: list[PlanIssue] = []

    def where(host: str, key: str) -> tuple[str, int | None]:
        hv = read.hosts[host]
        origin = hv.origins.get(key) or hv.origins.get("inventory_hostname")
        return (display(origin[0]), origin[1]) if origin else (shown, None)

    devices = {d.hostname: d for d in plan.devices}
    for host in sorted(set(read.hosts) - set(devices)):
        file, line = where(host, "inventory_hostname")
        issues.append(PlanIssue(file, host, "host is not a device of the plan", line))
    for name, device in devices.items():
        if name not in read.hosts:
            issues.append(PlanIssue(shown, name, "plan device is missing from the inventory", 1))
            continue
        hv = read.hosts[name].values
        address = str(hv.get("ansible_host", ""))
        if address != str(device.management):
            file, line = where(name, "ansible_host")
            reason = f"differs from the plan's management address {device.management}"
            issues.append(PlanIssue(file, f"{name}.ansible_host", reason, line, show_value(address)))
        port = hv.get("ansible_port", 22)
        if port != device.port:
            file, line = where(name, "ansible_port")
            reason = f"differs from the plan's port {device.port}"
            issues.append(PlanIssue(file, f"{name}.ansible_port", reason, line, show_value(port)))
    inventory = Inventory(
        directory=directory,
        host_vars={h: _hidden(hv.values, hv.secret) for h, hv in read.hosts.items()},
        groups={g: hosts for g, hosts in read.groups.items() if g not in ("all", "ungrouped") or hosts},
        secrets={h: hv.secret for h, hv in read.hosts.items() if hv.secret},
    )
    return inventory, issues


def _hidden(values: Mapping[str, Any], secret: frozenset[str]) -> dict[str, Any]:
    """A host's variables with its vault values as :class:`SecretStr` (shown as ``**********``)."""
    return {k: SecretStr(str(v)) if k in secret else v for k, v in values.items()}
