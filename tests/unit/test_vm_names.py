"""VM names as vSphere has them: what a plan accepts (and refuses, with file:line), the alias rule
(stable, collision-free, ASCII, read back through the record), vSphere's escaping of a name, and
the VM steps keying the roles' hosts by alias with the real name beside it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from overflyt.ansible.runner import AnsibleEvent, HostStats, PlaybookResult, TaskFailure
from overflyt.ansible.step import StepContext
from overflyt.cli import main
from overflyt.plan.names import by_alias, fold, vm_alias
from overflyt.providers.vsphere.names import escape, unescape
from overflyt.steps import vm_batches
from overflyt.steps.vm_results import VmMigration, VmMove, read_move, read_restore

SAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs"
DASH = "\u2013"  # en dash
NAMES = {
    "ndj-dc01": f"Test/Udvikling {DASH} gammel",
    "ndj-dc02": "SRV-ØKONOMI-01 (Grenå) 100%",
    "ndj-dhcp01": f"ESDH app (ny) {DASH} æøå",
    "ndj-pki01": "web01",
    "ndj-radius01": "WEB01",  # differs from web01 only in case: another VM for vCenter, and here
}


def renamed(tmp_path: Path, names: dict[str, str], *edits: tuple[str, str]) -> str:
    """The sample plan in tmp_path with VMs renamed (in ``vms`` and every ``depends_on``) and ``edits``."""
    text = (SAMPLE / "plan.yml").read_text(encoding="utf-8")
    for old, new in names.items():
        text = re.sub(rf"(?<=[\[{{ ,]){re.escape(old)}(?=[,\]}}])", json.dumps(new, ensure_ascii=False), text)
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    (tmp_path / "plan.yml").write_text(text, encoding="utf-8")
    return text


def validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["plan", "validate", str(tmp_path / "plan.yml")])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out + err


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if needle in line)


# -- the plan ---------------------------------------------------------------------------------------


def test_a_plan_takes_every_name_vsphere_allows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    renamed(tmp_path, NAMES)
    code, out = validate(tmp_path, capsys)
    assert code == 0, out
    from overflyt.plan import load_plan

    plan = load_plan(tmp_path / "plan.yml")
    names = {vm.name for vm in plan.vms}
    assert set(NAMES.values()) <= names
    dhcp = next(vm for vm in plan.vms if vm.name == NAMES["ndj-dhcp01"])
    assert dhcp.depends_on == [NAMES["ndj-dc01"]]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ('""', "String should have at least 1 character (value: '')"),
        ('"   "', "a VM name cannot be empty or only spaces (value: '   ')"),
        (
            json.dumps("Ø" * 81, ensure_ascii=False),
            "a VM name has at most 80 characters (vSphere's limit), this one has 81 (value: '" + "Ø" * 76 + "...)",
        ),
        ('"tab\\there"', "a VM name cannot hold control characters (tab, newline, ...) (value: 'tab\\there')"),
        (
            '"app {{ x }}"',
            "a VM name cannot hold '{{', '{%' or '{#' (Ansible would read it as a template) (value: 'app {{ x }}')",
        ),
    ],
)
def test_a_name_vsphere_refuses_is_refused_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, reason: str
) -> None:
    text = renamed(tmp_path, {}, ("{name: ndj-vikar01,", f"{{name: {name},"))
    code, out = validate(tmp_path, capsys)
    assert code == 2, out
    line = line_of(text, "site: auning-adm, host: ndj-esx04, datastore: ndj-ds-auning-02, cpu: 2, memory_mb: 4096")
    assert f"plan.yml:{line}: vms[28].name: {reason}" in out, out


def test_duplicate_names_are_compared_exactly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``web01`` and ``WEB01`` are two VMs (above); the same name twice is one VM given twice."""
    text = renamed(tmp_path, {**NAMES, "ndj-radius01": NAMES["ndj-dc02"]})
    code, out = validate(tmp_path, capsys)
    assert code == 2, out
    line = line_of(
        text, "{name: " + json.dumps(NAMES["ndj-dc02"], ensure_ascii=False) + ", site: grenaa-raadhus, host: ndj-esx01"
    )
    assert (
        f"plan.yml:{line}: vms[4].name: duplicate VM name (already used above) (value: {NAMES['ndj-dc02']!r})" in out
    ), out


# -- the alias --------------------------------------------------------------------------------------


def test_the_alias_is_stable_ascii_and_says_which_vm() -> None:
    assert vm_alias("SRV-ØKONOMI-01") == vm_alias("SRV-ØKONOMI-01")
    assert vm_alias("ndj-dc01") == "vm-ndj-dc01-" + __import__("hashlib").sha256(b"ndj-dc01").hexdigest()[:10]
    assert vm_alias("SRV-ØKONOMI-01").startswith("vm-srv-oekonomi-01-")
    assert vm_alias("Grenå print").startswith("vm-grenaa-print-")
    assert vm_alias(f"Test/Udvikling {DASH} gammel").startswith("vm-test-udvikling-gammel-")
    assert fold(f"ESDH app (ny) {DASH} Ærø") == "esdh-app-ny-aeroe"
    for name in [*NAMES.values(), "Ø" * 80, "((()))", "日本語サーバ", "x"]:
        alias = vm_alias(name)
        assert re.fullmatch(r"vm-[a-z0-9]+(-[a-z0-9]+)*", alias), alias
        assert len(alias) <= 54, alias


def test_names_differing_only_in_case_or_punctuation_get_different_aliases() -> None:
    twins = ["web01", "WEB01", "Web01", "web-01", "web_01", "web 01", "web/01", "web%2f01", "web.01", "web01 ",
             "wéb01", "web01\u00a0"]  # fmt: skip
    aliases = [vm_alias(n) for n in twins]
    assert len(set(aliases)) == len(twins), aliases
    assert len({fold(n) for n in ("web-01", "web_01", "web 01", "web/01")}) == 1  # only the hash tells them apart


def test_an_alias_is_read_back_through_the_record() -> None:
    names = list(NAMES.values())
    table = by_alias(names)
    assert sorted(table.values()) == sorted(names)
    assert all(table[vm_alias(n)] == n for n in names)
    migration = VmMigration(
        site="grenaa-raadhus", wave=1, dry_run=False, duration_s=1.0, batches=[names],
        vms={n: VmMove(vm=n, status="moved", batch=1) for n in names},
    )  # fmt: skip
    record = json.loads(migration.model_dump_json())
    assert {v["alias"]: n for n, v in record["vms"].items()} == table
    again = VmMigration.model_validate(record)  # a record read back keeps its aliases
    assert again == migration


def test_roles_hosts_are_aliases_carrying_the_real_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch's inventory hosts (what Ansible, its artifacts and its job events see) are aliases;
    the real name is the host's ``overflyt_vm_name``; what comes back — the roles' reports, failures,
    host stats, progress events — names the VM again."""
    seen: dict[str, Any] = {}
    events: list[AnsibleEvent] = []
    dc01, dc02 = NAMES["ndj-dc01"], NAMES["ndj-dc02"]

    def run_step(ctx: Any, playbook: str, step: str, *, vm_hosts: Any, **_: Any) -> PlaybookResult:
        seen.update(vm_hosts)
        ctx.on_event(AnsibleEvent(host=vm_alias(dc02), task="Move the VM", status="start"))
        report = {vm_alias(dc01): {"status": "moved", "seconds": 2.0}}
        failure = TaskFailure(host=vm_alias(dc02), task="Move the VM", message="no datastore mj-ds-gold-01")
        return PlaybookResult(playbook=playbook, status="failed", rc=2, duration_s=1.0, private_dir="",
                              hosts={vm_alias(dc02): HostStats(failed=1)}, failures=[failure],
                              result={"vms": report})  # fmt: skip

    class Loaded:  # stands in for the loaded plan: a dry run reads only its concurrency
        class plan:
            class concurrency:
                global_ = 4

    ctx = StepContext(Loaded(), 1, None, {}, on_event=events.append)  # type: ignore[arg-type]
    monkeypatch.setattr(vm_batches, "run_step", run_step)
    hosts = {n: {"overflyt_vm_tools": "ok"} for n in (dc01, dc02)}
    result, _ = vm_batches.run_batch(ctx, "migrate_vms.yml", "vm-migrate-x-1", hosts, site_id="x", loads={},
                                     dry_run=True, timeout_s=60)  # fmt: skip
    assert seen == {vm_alias(n): {"overflyt_vm_name": n, "overflyt_vm_tools": "ok"} for n in (dc01, dc02)}
    assert [e.host for e in events] == [dc02]
    assert (result.failed_hosts, list(result.hosts)) == ([dc02], [dc02])
    moved, failed = read_move(dc01, 1, result), read_move(dc02, 1, result)
    assert (moved.vm, moved.alias, moved.status, moved.seconds) == (dc01, vm_alias(dc01), "moved", 2.0)
    assert (failed.vm, failed.status, failed.error) == (dc02, "failed", "no datastore mj-ds-gold-01")
    assert read_restore(dc01, 1, result).alias == vm_alias(dc01)


# -- vSphere's escaping -----------------------------------------------------------------------------


def test_vsphere_escapes_slash_percent_and_backslash_and_nothing_else() -> None:
    assert escape(f"Test/Udvikling {DASH} gammel") == f"Test%2fUdvikling {DASH} gammel"
    assert escape("100% (æøå)") == "100%25 (æøå)"
    assert escape("a\\b") == "a%5cb"
    for name in [*NAMES.values(), "100%", "a%2fb", "%25", "a\\b/c%d"]:
        assert unescape(escape(name)) == name
    assert unescape("Test%2FUdvikling") == "Test/Udvikling"  # either case of hex, as vCenter writes both
    assert unescape("%c3%98konomi") == "Økonomi"  # a client may escape any character
