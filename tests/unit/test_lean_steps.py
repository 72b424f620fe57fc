"""What keeps a cutover from doing work twice: the migration uses the vCenters' facts the
placements step read just before it (once, in the same run), and an Ansible module on the
controller imports only the part of overflyt it calls (overflyt.lazy)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from typing import Any, cast

import pytest

from overflyt.ansible.step import StepContext
from overflyt.cutover import itinerary
from overflyt.cutover.itinerary import ITINERARY, Carried, SiteWork
from overflyt.cutover.outcome import SiteOutcome
from overflyt.cutover.state import SiteState
from overflyt.precheck.facts import VCenterFacts

STEPS = {step.name: step for step in ITINERARY}


def _work(carried: Carried | None, state: SiteState) -> SiteWork:
    return SiteWork(cast(StepContext, None), "hovedbiblioteket", state, SiteOutcome("hovedbiblioteket", "pending"),
                    False, 600, carried)  # fmt: skip


def test_the_migration_uses_the_placements_read_once_and_reads_itself_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    facts = (
        VCenterFacts(name="k851-vcenter", url="https://k851", reachable=True),
        VCenterFacts(name="nord-dc", url="https://dc", reachable=True),
    )
    given: list[Any] = []
    monkeypatch.setattr(itinerary.vms, "read_placements", lambda ctx, site: ({}, facts))
    monkeypatch.setattr(itinerary.vms, "migrate_site_vms", lambda ctx, site, **kw: given.append(kw["read"]) or {})

    carried, state = Carried(), SiteState()
    STEPS["placements"].action(_work(carried, state))
    STEPS["migrate"].action(_work(carried, state))
    STEPS["migrate"].action(_work(carried, state))  # a second migration (none happens) would read again
    assert given == [facts, None]
    # a resumed cutover (placements done in an earlier run) and a dry run carry nothing
    STEPS["migrate"].action(_work(Carried(), state))
    STEPS["migrate"].action(_work(None, state))
    assert given[2:] == [None, None]


@pytest.mark.parametrize("package", ["overflyt.precheck", "overflyt.providers.vsphere"])
def test_a_lazy_package_exports_each_name_it_lists_from_the_module_it_names(package: str) -> None:
    module = importlib.import_module(package)
    where: dict[str, str] = module._WHERE
    assert sorted(where) == sorted(module.__all__)
    for name, source in where.items():
        assert getattr(module, name) is getattr(importlib.import_module(source), name), name
    with pytest.raises(AttributeError, match="has no attribute 'not_there'"):
        _ = module.not_there


def test_the_vm_modules_placement_import_leaves_pyvmomi_the_rules_and_jinja_unloaded() -> None:
    code = (
        "import sys, overflyt.providers.vsphere.placement, overflyt.precheck.facts;"
        "print(sorted(m for m in ('pyVmomi', 'overflyt.precheck.rules', 'overflyt.precheck.engine', 'jinja2',"
        " 'overflyt.plan.model', 'overflyt.providers.vsphere.changes') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
