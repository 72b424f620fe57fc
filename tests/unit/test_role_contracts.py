"""The contract between overflyt's Python and its roles, read from the roles' own files: every
option of a role's meta/argument_specs.yml has a type; defaults/main.yml holds options only, and
every option that is not required has its default there (the spec's, when the spec states one);
and every variable Python generates for a role is an option of that role — a variable a role
does not declare is never validated, so a typo or a renamed option would reach the role as
nothing (and the role would use its default without a word)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from overflyt.plan import load_plan
from overflyt.steps.device_changes import device_changes

REPO = Path(__file__).resolve().parents[2]
ROLES = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())
SAMPLE = REPO / "inventories" / "norddjurs" / "plan.yml"
# The files whose text is what a role does (not what it documents: meta/ and README.md).
ROLE_CODE = ("tasks", "templates", "vars", "defaults", "handlers", "library", "filter_plugins", "files")


def argument_specs(role: str) -> dict[str, dict[str, Any]]:
    """The role's entry points (main, render, ...) with their options."""
    specs: dict[str, dict[str, Any]] = yaml.safe_load(
        (REPO / "roles" / role / "meta" / "argument_specs.yml").read_text()
    )["argument_specs"]
    return specs


def options(role: str) -> dict[str, dict[str, Any]]:
    """Every option of every entry point of the role, by name."""
    out: dict[str, dict[str, Any]] = {}
    for entry in argument_specs(role).values():
        out.update(entry.get("options") or {})
    return out


def defaults(role: str) -> dict[str, Any]:
    path = REPO / "roles" / role / "defaults" / "main.yml"
    loaded: dict[str, Any] = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    return loaded


def owner(variable: str) -> str | None:
    """The role a variable belongs to by its name (``<role>_...``), the longest such role."""
    matching = [role for role in ROLES if variable.startswith(role + "_")]
    return max(matching, key=len) if matching else None


def readers(variable: str) -> list[str]:
    """The roles whose tasks, templates, vars, ... use ``variable``."""
    word = re.compile(rf"\b{re.escape(variable)}\b")
    found = []
    for role in ROLES:
        files = [f for d in ROLE_CODE for f in (REPO / "roles" / role / d).rglob("*") if f.is_file()]
        if any(word.search(f.read_text(errors="replace")) for f in files):
            found.append(role)
    return found


def device_vars() -> dict[str, str]:
    """Every variable ``device_changes(...).device_vars()`` generates for the sample plan, over every
    wave and site, with where it was first seen."""
    plan = load_plan(SAMPLE)
    seen: dict[str, str] = {}
    for wave in plan.waves:
        for site in wave.sites:
            for host, change in device_changes(plan, wave.number, site).items():
                for key in change.device_vars():
                    seen.setdefault(key, f"device_changes(plan, {wave.number}, {site!r})[{host!r}].device_vars()")
    return seen


def python_role_vars() -> dict[str, str]:
    """Every string constant of overflyt's Python (src/overflyt, flows/) named like a variable of a
    role (``<role>_...``): the variables Python hands a role, with where each is written."""
    pattern = re.compile(rf"^({'|'.join(map(re.escape, ROLES))})_[a-z0-9_]+$")
    found: dict[str, str] = {}
    for path in sorted([*(REPO / "src" / "overflyt").rglob("*.py"), *(REPO / "flows").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and pattern.match(node.value):
                found.setdefault(node.value, f"{path.relative_to(REPO)}:{node.lineno}")
    return found


# -- the checks (each returns its problems, one line per role and variable) -------------------------


def untyped(opts: dict[str, Any], path: str = "") -> list[str]:
    out = []
    for name, spec in (opts or {}).items():
        if "type" not in spec:
            out.append(f"{path}{name}")
        out += untyped(spec.get("options") or {}, f"{path}{name}.")
    return out


def type_problems(role: str, specs: dict[str, dict[str, Any]]) -> list[str]:
    return [
        f"role {role}: option {name} of entry point {entry} has no type"
        for entry, spec in specs.items()
        for name in untyped(spec.get("options") or {})
    ]


def default_problems(role: str, specs: dict[str, dict[str, Any]], values: dict[str, Any]) -> list[str]:
    declared = {name for spec in specs.values() for name in spec.get("options") or {}}
    problems = [
        f"role {role}: defaults/main.yml sets {name}, which meta/argument_specs.yml does not declare"
        for name in values
        if name not in declared
    ]
    for entry, spec in specs.items():
        for name, option in (spec.get("options") or {}).items():
            if option.get("required"):
                continue
            if name not in values:
                problems.append(
                    f"role {role}: option {name} of entry point {entry} is not required and has no default in "
                    "defaults/main.yml"
                )
            elif "default" in option and option["default"] != values[name]:
                problems.append(
                    f"role {role}: option {name} defaults to {option['default']!r} in meta/argument_specs.yml "
                    f"but to {values[name]!r} in defaults/main.yml"
                )
    return problems


def generated_problems(generated: dict[str, str]) -> list[str]:
    """``generated``: variable -> where Python generates it. A ``<role>_...`` variable must be an
    option of that role; an ``overflyt_*`` one must be declared by every role that reads it."""
    problems = []
    for variable, where in sorted(generated.items()):
        role = owner(variable)
        if role is not None:
            if variable not in options(role):
                problems.append(
                    f"role {role}: {variable} (from {where}) is not an option of its meta/argument_specs.yml"
                )
        elif variable.startswith("overflyt_"):
            problems += [
                f"role {reader}: reads {variable} (from {where}) but its meta/argument_specs.yml does not declare it"
                for reader in readers(variable)
                if variable not in options(reader)
            ]
        else:
            problems.append(f"{variable} (from {where}) is neither a role's variable nor overflyt_*: no role owns it")
    return problems


# -- the roles as they are -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_option_has_a_type(role: str) -> None:
    problems = type_problems(role, argument_specs(role))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", ROLES)
def test_defaults_are_options_and_every_optional_option_has_its_default(role: str) -> None:
    problems = default_problems(role, argument_specs(role), defaults(role))
    assert not problems, "\n".join(problems)


def test_every_variable_device_changes_generates_is_declared_by_the_roles_that_read_it() -> None:
    generated = device_vars()
    assert {"overflyt_routes", "overflyt_route_prefixes", "overflyt_services"} <= set(generated)
    problems = generated_problems(generated)
    assert not problems, "\n".join(problems)


def test_every_role_variable_python_hands_a_role_is_one_of_its_options() -> None:
    generated = python_role_vars()
    # src/overflyt/steps/network.py hands these to net_backup, net_configure, net_verify, net_restore
    assert {"net_backup_dir", "net_configure_extra_lines", "net_verify_fail", "net_restore_backup_file"} <= set(
        generated
    )
    problems = generated_problems(generated)
    assert not problems, "\n".join(problems)


# -- the checks fail, naming role and variable -----------------------------------------------------


def test_an_untyped_option_is_named() -> None:
    specs = {"main": {"options": {"net_x_a": {"type": "str"}, "net_x_b": {"options": {"c": {}}}}}}
    assert type_problems("net_x", specs) == [
        "role net_x: option net_x_b of entry point main has no type",
        "role net_x: option net_x_b.c of entry point main has no type",
    ]


def test_a_default_that_is_no_option_or_differs_or_is_missing_is_named() -> None:
    specs = {
        "main": {
            "options": {
                "net_x_dir": {"type": "str", "required": True},
                "net_x_fail": {"type": "bool", "default": True},
                "net_x_lines": {"type": "list", "elements": "str"},
            }
        }
    }
    assert default_problems("net_x", specs, {"net_x_dir": "", "net_x_fail": False, "net_x_old": 1}) == [
        "role net_x: defaults/main.yml sets net_x_old, which meta/argument_specs.yml does not declare",
        "role net_x: option net_x_fail defaults to True in meta/argument_specs.yml but to False in defaults/main.yml",
        "role net_x: option net_x_lines of entry point main is not required and has no default in defaults/main.yml",
    ]
    assert default_problems("net_x", specs, {"net_x_fail": True, "net_x_lines": []}) == []


def test_a_generated_variable_its_role_does_not_declare_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert generated_problems({"net_backup_ignore_lines": "here"}) == [
        "role net_backup: net_backup_ignore_lines (from here) is not an option of its meta/argument_specs.yml"
    ]
    assert generated_problems({"ignore_lines": "here"}) == [
        "ignore_lines (from here) is neither a role's variable nor overflyt_*: no role owns it"
    ]
    # net_configure reads overflyt_routes (its templates); were it not declared:
    assert "net_configure" in readers("overflyt_routes")
    assert readers("overflyt_no_such_variable") == []
    declared = options("net_configure")
    monkeypatch.setattr(
        sys.modules[__name__],
        "options",
        lambda role: {k: v for k, v in declared.items() if k != "overflyt_routes"} if role == "net_configure" else {},
    )
    assert generated_problems({"overflyt_routes": "here"}) == [
        "role net_configure: reads overflyt_routes (from here) but its meta/argument_specs.yml does not declare it"
    ]
