"""The engine and registry: context validation, adding a rule without touching the engine, docs coverage."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from test_precheck_facts import (
    CLEAN,
    NOW,
    PLAN,
    check,
    with_device,
    with_source,
    with_target,
    with_target_item,
    with_vm,
    without_vm,
)

from overflyt.errors import EXIT_BAD_INPUT, UsageError
from overflyt.precheck import RULES, CheckContext, Severity, exit_code, run_checks
from overflyt.precheck.facts import EstateFacts
from overflyt.precheck.registry import Outcome, Subject, fail, ok, rule, rules_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "prechecks.md"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"wave": 7}, "wave 7 is not in the plan (waves: 1, 2, 3)"),
        (
            {"wave": 2, "sites": ("grenaa-raadhus",)},
            "site grenaa-raadhus is not in wave 2 (its sites: auning-adm, kattegatskolen, auning-skole)",
        ),
        ({"now": datetime(2027, 3, 1, 12, 0)}, "the time to check against must carry a time zone"),
        ({"mode": "later"}, "unknown mode 'later' (precheck or run)"),
    ],
)
def test_bad_context_is_a_usage_error(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"plan": PLAN, "wave": 1, "facts": CLEAN, "now": NOW, **kwargs}
    with pytest.raises(UsageError) as raised:
        CheckContext(**args)  # type: ignore[arg-type]
    assert str(raised.value) == message
    assert raised.value.exit_code == EXIT_BAD_INPUT


def test_sites_default_to_the_whole_wave_and_keep_their_order() -> None:
    ctx = CheckContext(plan=PLAN, wave=2, facts=CLEAN, now=NOW)
    assert ctx.sites == ("auning-adm", "kattegatskolen", "auning-skole")
    ctx = CheckContext(plan=PLAN, wave=2, facts=CLEAN, now=NOW, sites=("auning-skole", "auning-adm", "auning-skole"))
    assert ctx.sites == ("auning-skole", "auning-adm")


def test_report_carries_what_was_checked() -> None:
    report = check(CLEAN, 2, sites=("kattegatskolen",))
    assert (report.municipality.code, report.wave, report.wave_name, report.mode, report.sites) == (
        "707",
        2,
        "Fagsystemer og skoler",
        "precheck",
        ("kattegatskolen",),
    )
    assert report.started <= report.finished
    assert report.started.tzinfo is not None
    # kattegatskolen has no VMs: only its router and the wave-wide checks
    assert {r.subject_kind for r in report.results} == {"vcenter", "folder", "cluster", "device", "wave"}
    assert report.counts == {Severity.critical: 0, Severity.warning: 0, Severity.info: 3}


def test_every_check_result_carries_rule_id_and_title() -> None:
    report = check(CLEAN, 1)
    assert {r.rule_id for r in report.results} == set(RULES)
    for result in report.results:
        assert result.title == RULES[result.rule_id].title
        assert all(f.id == result.rule_id for f in result.findings)


SCENARIOS: dict[str, EstateFacts] = {
    "no source": CLEAN.model_copy(update={"source": None}),
    "target unreachable": with_target(CLEAN, reachable=False, error="timeout"),
    "target login": with_target(CLEAN, login_failed=True, error="login failed"),
    "vm missing": without_vm(CLEAN, "ndj-dc01"),
    "no cluster": with_target(CLEAN, clusters={}),
    "device unreachable": with_device(CLEAN, "ndj-core-01", reachable=False),
    "device key": with_device(CLEAN, "ndj-core-01", host_key="changed", login=False),
    "device login": with_device(CLEAN, "ndj-core-01", login=False),
    "no portgroups": with_target(CLEAN, portgroups={}),
    "no datastores": with_target(CLEAN, datastores={}),
    "source dc empty": with_source(CLEAN, vms={}, hosts={}, clusters={}, datastores={}, portgroups={}, folders={}),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_skipped_check_always_comes_with_a_critical_finding(name: str) -> None:
    """Skipping is only allowed because of another check's critical finding: a skip never lets a wave pass."""
    report = check(SCENARIOS[name], 1)
    assert any(r.skipped for r in report.results), name
    assert report.blocked
    assert exit_code(report) == 1


def test_warnings_and_info_do_not_block() -> None:
    facts = with_vm(with_target_item(CLEAN, "hosts", "mj-esx01", connected=False), "ndj-dc01", cpu=3)
    report = check(facts, 1)
    assert report.counts[Severity.warning] == 2
    assert not report.blocked
    assert exit_code(report) == 0


def test_a_new_rule_needs_no_engine_change() -> None:
    @rule("vm.example_owner", title="Every VM has an app group", severity=Severity.warning)
    def vm_owner(ctx: CheckContext) -> Iterator[Outcome]:
        """Example rule registered by a test."""
        for vm in ctx.vms:
            subject = Subject("vm", vm.name, vm.site)
            yield ok(subject) if vm.app_group != "drift" else fail(subject, f"{vm.name} is a drift VM")

    try:
        report = check(CLEAN, 1)
        found = [(f.id, f.severity, f.subject, f.message) for f in report.findings if f.id == "vm.example_owner"]
        assert found == [
            ("vm.example_owner", "warning", "ndj-wsus01", "ndj-wsus01 is a drift VM"),
            ("vm.example_owner", "warning", "ndj-mgmt01", "ndj-mgmt01 is a drift VM"),
        ]
        assert len([r for r in report.results if r.rule_id == "vm.example_owner"]) == 8
    finally:
        del RULES["vm.example_owner"]


def test_rule_registration_refuses_bad_ids_duplicates_and_missing_docs() -> None:
    with pytest.raises(ValueError, match=r"must look like area\.name"):
        rule("Snapshots", title="x", severity=Severity.info)
    with pytest.raises(ValueError, match=r"rule id vm\.snapshots is registered twice"):
        rule("vm.snapshots", title="x", severity=Severity.info)(lambda ctx: iter(()))
    with pytest.raises(ValueError, match="needs a docstring"):
        rule("vm.undocumented", title="x", severity=Severity.info)(lambda ctx: iter(()))
    assert "vm.undocumented" not in RULES


def test_the_rules_of_the_issue_are_registered_with_their_severity() -> None:
    assert {rule_id: r.severity.value for rule_id, r in RULES.items()} == {
        "vcenter.reachable": "critical",
        "vcenter.login": "critical",
        "vcenter.tls": "warning",
        "vcenter.datacenter": "critical",
        "vm.exists": "critical",
        "vm.drift": "warning",
        "vm.placement": "warning",
        "vm.snapshots": "critical",
        "vm.media": "critical",
        "vm.shared_disks": "critical",
        "vm.passthrough": "critical",
        "vm.tools": "critical",
        "vm.name_conflict": "critical",
        "target.folder": "critical",
        "target.cluster": "critical",
        "target.hosts": "warning",
        "target.datastore": "critical",
        "capacity.cpu": "critical",
        "capacity.memory": "critical",
        "capacity.datastore": "critical",
        "netmap.mapped": "critical",
        "netmap.target_exists": "critical",
        "netmap.vlan": "critical",
        "device.reachable": "critical",
        "device.host_key": "critical",
        "device.login": "critical",
        "device.platform": "critical",
        "device.backup": "critical",
        "plan.dependencies": "critical",
        "plan.window": "critical",
        "plan.traffic_proof": "warning",
    }


def test_docs_describe_every_registered_rule_and_no_other() -> None:
    text = DOCS.read_text(encoding="utf-8")
    documented = re.findall(r"^### `([a-z_.]+)`", text, flags=re.M)
    assert sorted(documented) == sorted(RULES), "docs/prechecks.md and the registered rules differ"
    for rule_id, registered in RULES.items():
        section = text.split(f"### `{rule_id}`", 1)[1].split("\n### ", 1)[0]
        assert f"severity: **{registered.severity.value}**" in section, rule_id


def test_run_checks_is_pure() -> None:
    """Same input, same results (apart from the wall-clock start and finish)."""
    ctx = CheckContext(plan=PLAN, wave=2, facts=with_vm(CLEAN, "ndj-sql01", snapshots=["a"]), now=NOW)
    assert run_checks(ctx).results == run_checks(ctx).results


def test_docs_rule_reference_is_the_rules_docstrings() -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("<!-- rules:start -->\n", 1)[1].split("<!-- rules:end -->", 1)[0]
    assert section.strip() == rules_markdown().strip(), (
        "docs/prechecks.md's rule reference is out of date: regenerate it (see 'Adding a rule' there)"
    )


def test_severities_are_ordered_by_weight_not_alphabet() -> None:
    assert Severity.info < Severity.warning < Severity.critical
    assert max([Severity.warning, Severity.critical, Severity.info]) is Severity.critical
    assert sorted([Severity.critical, Severity.info, Severity.warning]) == [
        Severity.info,
        Severity.warning,
        Severity.critical,
    ]
