"""Every kind of bad plan gets one clear error — file, line, field path, value, reason — and exit 2.

Each case edits the real sample plan as text (so line numbers are the ones a person would see in
their editor), runs `overflyt plan validate` in-process and asserts the exact error line.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from overflyt.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs"


@dataclass
class Edited:
    dir: Path
    text: str

    def line_of(self, needle: str, nth: int = 1) -> int:
        found = 0
        for number, line in enumerate(self.text.splitlines(), start=1):
            if needle in line:
                found += 1
                if found == nth:
                    return number
        raise AssertionError(f"{needle!r} not in the edited plan")


@pytest.fixture
def edit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Copy the sample plan (without its inventory) into tmp_path, apply text edits, chdir there."""
    monkeypatch.chdir(tmp_path)

    def apply(*edits: tuple[str, str], with_inventory: bool = False) -> Edited:
        text = (SAMPLE / "plan.yml").read_text(encoding="utf-8")
        for old, new in edits:
            assert text.count(old) >= 1, f"edit anchor {old!r} not found"
            text = text.replace(old, new, 1)
        (tmp_path / "plan.yml").write_text(text, encoding="utf-8")
        if with_inventory:
            shutil.copy(SAMPLE / "hosts.yml", tmp_path / "hosts.yml")
            shutil.copytree(SAMPLE / "group_vars", tmp_path / "group_vars")
            shutil.copytree(SAMPLE / "host_vars", tmp_path / "host_vars")
        return Edited(tmp_path, text)

    return apply


def validate(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = main(["plan", "validate", "plan.yml", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def assert_error(capsys: pytest.CaptureFixture[str], expected: str, count: int = 1) -> None:
    code, out, err = validate(capsys)
    assert code == 2, (out, err)
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"overflyt: plan invalid: {count} error{'s' if count != 1 else ''}", err
    assert f"  {expected}" in lines[1:], err
    assert "Traceback" not in err


VM_DC01 = "{name: ndj-dc01, site: grenaa-raadhus, host: ndj-esx01"
VM_SQL01 = "{name: ndj-sql01, site: auning-adm"


def test_sample_plan_is_valid(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(SAMPLE)
    code = main(["plan", "validate", "plan.yml"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == "plan.yml: valid — Norddjurs Kommune (707), 3 waves, 8 sites, 39 VMs, 10 devices\n"


def test_missing_file(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = validate(capsys)
    assert code == 2
    assert err == "overflyt: plan invalid: 1 error\n  plan.yml: file not found\n"


def test_malformed_yaml(edit, capsys) -> None:
    plan = edit(('  code: "707"', '  code: ["707"'))
    code, _, err = validate(capsys)
    assert code == 2
    start = plan.line_of("code: [")
    assert err == (
        f"overflyt: plan invalid: 1 error\n  plan.yml:{start + 1}: malformed YAML: while parsing a flow sequence "
        f"(started at line {start}): expected ',' or ']', but got '<scalar>'\n"
    )


def test_top_level_not_a_mapping(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plan.yml").write_text("- just\n- a list\n")
    assert_error(capsys, "plan.yml:1: a plan must be a YAML mapping (key: value) at the top")


def test_duplicate_yaml_key(edit, capsys) -> None:
    plan = edit(("  name: Norddjurs Kommune\n", "  name: Norddjurs Kommune\n  name: Norddjurs\n"))
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('name: Norddjurs', 2)}: municipality.name: key given twice (first at line 11)",
    )


def test_unknown_top_level_field(edit, capsys) -> None:
    plan = edit(("approval_required: true", "approval_required: true\napproval_requried: false"))
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('approval_requried')}: approval_requried: unknown field "
        "(see `overflyt plan schema` for the fields a plan may have)",
    )


def test_unknown_vm_field(edit, capsys) -> None:
    plan = edit((VM_DC01, VM_DC01 + ", colour: blue"))
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('colour: blue')}: vms[0].colour: unknown field "
        "(see `overflyt plan schema` for the fields a plan may have)",
    )


def test_wrong_type(edit, capsys) -> None:
    plan = edit(
        (
            VM_SQL01 + ", host: ndj-esx03, datastore: ndj-ds-auning-01, cpu: 8",
            VM_SQL01 + ", host: ndj-esx03, datastore: ndj-ds-auning-01, cpu: eight",
        )
    )
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('cpu: eight')}: vms[8].cpu: Input should be a valid integer, "
        "unable to parse string as an integer (value: 'eight')",
    )


def test_missing_required_field(edit, capsys) -> None:
    plan = edit(("ip: 10.70.10.11, power: powered_on, tools: ok", "ip: 10.70.10.11, tools: ok"))
    assert_error(capsys, f"plan.yml:{plan.line_of(VM_DC01)}: vms[0].power: required field is missing")


def test_bad_enum(edit, capsys) -> None:
    plan = edit(("    kind: depot", "    kind: castle"))
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('kind: castle')}: sites[7].kind: Input should be 'town_hall', 'school', "
        "'care_centre', 'daycare', 'depot', 'library', 'office' or 'datacentre' (value: 'castle')",
    )


def test_duplicate_vm(edit, capsys) -> None:
    plan = edit(("{name: ndj-dc02,", "{name: ndj-dc01,"))
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('{name: ndj-dc01,', 2)}: vms[1].name: duplicate VM name (already used above) "
        "(value: 'ndj-dc01')",
        count=4,  # and the three VMs that depended on the renamed ndj-dc02 now name an unknown VM
    )


def test_duplicate_site(edit, capsys) -> None:
    plan = edit(("  - id: auning-skole", "  - id: kattegatskolen"))
    code, _, err = validate(capsys)
    assert code == 2
    assert (
        f"  plan.yml:{plan.line_of('- id: kattegatskolen', 2)}: sites[3].id: duplicate site id (already used above) "
        "(value: 'kattegatskolen')"
    ) in err.splitlines()


def test_duplicate_device(edit, capsys) -> None:
    plan = edit(("{hostname: ndj-fw-01,", "{hostname: ndj-core-01,"))
    code, _, err = validate(capsys)
    assert code == 2
    assert (
        f"  plan.yml:{plan.line_of('{hostname: ndj-core-01,', 2)}: devices[1].hostname: duplicate device hostname "
        "(already used above) (value: 'ndj-core-01')"
    ) in err.splitlines()


def test_vm_in_two_waves(edit, capsys) -> None:
    plan = edit(
        (
            "    sites: [auning-adm, kattegatskolen, auning-skole]\n",
            "    sites: [auning-adm, kattegatskolen, auning-skole]\n    vms: [ndj-dc01]\n",
        )
    )
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('vms: [ndj-dc01]')}: waves[1].vms[0]: VM in two waves: it moves with its site "
        "grenaa-raadhus in wave 1; list a VM only to move it earlier than its site (value: 'ndj-dc01')",
    )


def test_vm_listed_in_two_waves(edit, capsys) -> None:
    plan = edit(
        ("    sites: [grenaa-raadhus]\n", "    sites: [grenaa-raadhus]\n    vms: [ndj-nodkald01]\n"),
        (
            "    sites: [auning-adm, kattegatskolen, auning-skole]\n",
            "    sites: [auning-adm, kattegatskolen, auning-skole]\n    vms: [ndj-nodkald01]\n",
        ),
    )
    code, _, err = validate(capsys)
    assert code == 2
    assert (
        f"  plan.yml:{plan.line_of('vms: [ndj-nodkald01]', 2)}: waves[1].vms[0]: VM in two waves (also listed in wave 1) "
        "(value: 'ndj-nodkald01')"
    ) in err.splitlines()


def test_site_in_no_wave(edit, capsys) -> None:
    plan = edit(
        (
            "sites: [digterparken, ostervang, grenaa-bibliotek, materielgaarden]",
            "sites: [digterparken, ostervang, grenaa-bibliotek]",
        )
    )
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('- id: materielgaarden')}: sites[7].id: site is in no wave (value: 'materielgaarden')",
    )


def test_site_in_two_waves(edit, capsys) -> None:
    plan = edit(
        (
            "sites: [digterparken, ostervang, grenaa-bibliotek, materielgaarden]",
            "sites: [digterparken, ostervang, grenaa-bibliotek, materielgaarden, kattegatskolen]",
        )
    )
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('materielgaarden, kattegatskolen]')}: waves[2].sites[4]: site is already cut over in "
        "wave 2 (value: 'kattegatskolen')",
    )


def test_wave_depends_on_later_wave(edit, capsys) -> None:
    plan = edit(
        (
            "app_group: ad, criticality: critical, depends_on: [ndj-dc01]}",
            "app_group: ad, criticality: critical, depends_on: [ndj-sql01]}",
        )
    )
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('depends_on: [ndj-sql01]}')}: vms[2].depends_on[0]: wave 1 depends on a later wave 2: "
        "ndj-dhcp01 needs ndj-sql01 (value: 'ndj-sql01')",
    )


def test_dependency_cycle(edit, capsys) -> None:
    plan = edit(
        (
            "ip: 10.70.20.21, power: powered_on, tools: ok, app_group: sql, criticality: critical, depends_on: [ndj-dc01]",
            "ip: 10.70.20.21, power: powered_on, tools: ok, app_group: sql, criticality: critical, depends_on: [ndj-sbsys-web01]",
        ),
    )
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of(VM_SQL01)}: vms[8].depends_on: dependency cycle: ndj-sql01 -> ndj-sbsys-web01 -> "
        "ndj-sbsys-app01 -> ndj-sql01",
    )


def test_unmapped_portgroup(edit, capsys) -> None:
    plan = edit(
        (
            "portgroups: [VM-Faelles-10], ip: 10.70.10.12",
            "portgroups: [VM-Faelles-10, VM-Gaest-99], ip: 10.70.10.12",
        )
    )
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('VM-Gaest-99')}: vms[1].portgroups[1]: portgroup has no network_map entry "
        "(value: 'VM-Gaest-99')",
    )


def test_invalid_ip(edit, capsys) -> None:
    plan = edit(("ip: 10.70.10.12,", "ip: 10.70.10.312,"))
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('10.70.10.312')}: vms[1].ip: Input is not a valid IPv4 address (value: '10.70.10.312')",
    )


def test_invalid_cidr(edit, capsys) -> None:
    plan = edit(("address_block: 10.70.104.0/24", "address_block: 10.70.104.0/33"))
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('10.70.104.0/33')}: sites[4].address_block: Input is not a valid IPv4 network "
        "(value: '10.70.104.0/33')",
    )


def test_window_ends_before_start(edit, capsys) -> None:
    plan = edit(
        (
            'window: {start: "2027-04-03 18:00", end: "2027-04-04 06:00"}',
            'window: {start: "2027-04-03 18:00", end: "2027-04-03 06:00"}',
        )
    )
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('2027-04-03 06:00')}: waves[2].window: window ends (2027-04-03T06:00:00+02:00) before it "
        "starts (2027-04-03T18:00:00+02:00)",
    )


def test_credentials_reference_resolves_to_nothing(edit, capsys) -> None:
    plan = edit(
        (
            "management: 127.0.70.9, port: 2222, credentials: ndj-network",
            "management: 127.0.70.9, port: 2222, credentials: ndj-netvaerk",
        )
    )
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('ndj-netvaerk')}: devices[8].credentials: credentials reference resolves to nothing "
        "(known: mj-vcenter, ndj-network, ndj-vcenter) (value: 'ndj-netvaerk')",
    )


def test_unknown_site_in_wave(edit, capsys) -> None:
    plan = edit(("sites: [grenaa-raadhus]", "sites: [grenaa-raadhus, grenaa-havn]"))
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('grenaa-havn')}: waves[0].sites[1]: unknown site (value: 'grenaa-havn')",
    )


def test_depends_on_unknown_vm(edit, capsys) -> None:
    plan = edit(("depends_on: [ndj-sbsys-app01]}", "depends_on: [ndj-sbsys-app09]}"))
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('ndj-sbsys-app09')}: vms[13].depends_on[0]: depends on an unknown VM "
        "(value: 'ndj-sbsys-app09')",
    )


def test_datastore_without_storage_map(edit, capsys) -> None:
    plan = edit(
        (
            "host: ndj-esx02, datastore: ndj-ds-grenaa-01, cpu: 2, memory_mb: 8192, disks_gb: [80], portgroups: [VM-Faelles-10], ip: 10.70.10.12",
            "host: ndj-esx02, datastore: ndj-ds-grenaa-02, cpu: 2, memory_mb: 8192, disks_gb: [80], portgroups: [VM-Faelles-10], ip: 10.70.10.12",
        )
    )
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('ndj-ds-grenaa-02')}: vms[1].datastore: datastore has no storage_map entry "
        "(value: 'ndj-ds-grenaa-02')",
    )


def test_storage_map_target_unknown(edit, capsys) -> None:
    plan = edit(
        (
            "{source: ndj-ds-pleje-01, target: mj-ds-silver-01}",
            "{source: ndj-ds-pleje-01, target: mj-ds-bronze-01}",
        )
    )
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('mj-ds-bronze-01')}: storage_map[3].target: not one of target.datastores "
        "(value: 'mj-ds-bronze-01')",
    )


def test_vm_ip_outside_subnet(edit, capsys) -> None:
    plan = edit(("ip: 10.70.40.31,", "ip: 10.70.41.31,"))
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('10.70.41.31')}: vms[38].ip: address is outside its portgroups' subnets "
        "(10.70.40.0/24) (value: '10.70.41.31')",
    )


def test_overlapping_address_blocks(edit, capsys) -> None:
    plan = edit(("address_block: 10.70.107.0/24", "address_block: 10.70.106.128/25"))
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('10.70.106.128/25')}: sites[7].address_block: overlaps site grenaa-bibliotek's "
        "address_block (10.70.106.0/24) (value: '10.70.106.128/25')",
    )


def test_link_not_point_to_point(edit, capsys) -> None:
    plan = edit(("subnet: 10.70.250.28/30", "subnet: 10.70.250.0/24"))
    code, _, err = validate(capsys)
    assert code == 2
    assert (
        f"  plan.yml:{plan.line_of('10.70.250.0/24')}: sites[7].uplink.subnet: a link subnet must be a /30 or /31, not /24 "
        "(value: '10.70.250.0/24')"
    ) in err.splitlines()


def test_duplicate_management_address(edit, capsys) -> None:
    plan = edit(("management: 127.0.70.10,", "management: 127.0.70.9,"))
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('ndj-materiel-rtr-01')}: devices[9].management: same management address and port as "
        "device ndj-bibliotek-rtr-01 (value: '127.0.70.9:2222')",
    )


def test_unknown_time_zone(edit, capsys) -> None:
    plan = edit(
        (
            'window: {start: "2027-03-06 18:00", end: "2027-03-07 06:00"}',
            'window: {start: "2027-03-06 18:00", end: "2027-03-07 06:00", timezone: Europe/Grenaa}',
        )
    )
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('Europe/Grenaa')}: waves[0].window.timezone: unknown time zone 'Europe/Grenaa' "
        "(value: 'Europe/Grenaa')",
    )


def test_secret_with_two_sources(edit, capsys) -> None:
    plan = edit(
        (
            "secret: {env: OVERFLYT_MJ_VCENTER_PASSWORD}",
            "secret: {env: OVERFLYT_MJ_VCENTER_PASSWORD, prefect_block: mj-vc}",
        )
    )
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('prefect_block: mj-vc')}: credentials.mj-vcenter.secret: give exactly one secret source "
        "of env, vault, prefect_block (got 2)",
    )


def test_duplicate_wave_number(edit, capsys) -> None:
    plan = edit(("  - number: 3", "  - number: 2"))
    code, _, err = validate(capsys)
    assert code == 2
    assert (
        f"  plan.yml:{plan.line_of('- number: 2', 2)}: waves[2].number: duplicate wave number (value: 2)"
        in err.splitlines()
    )


def test_municipality_code(edit, capsys) -> None:
    plan = edit(('  code: "707"', '  code: "7070"'))
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('7070')}: municipality.code: String should match pattern '^[0-9]{{3}}$' (value: '7070')",
    )


def test_insecure_tls_with_ca_file(edit, capsys) -> None:
    plan = edit(
        (
            "    credentials: mj-vcenter\n    tls: {ca_file: ../../lab/.state/tls/ca.pem}",
            "    credentials: mj-vcenter\n    tls: {ca_file: ../../lab/.state/tls/ca.pem, insecure: true}",
        )
    )
    assert_error(
        capsys,
        f"plan.yml:{plan.line_of('insecure: true')}: target.vcenter.tls: insecure: true cannot be combined with ca_file "
        "or thumbprint",
    )


def test_every_error_is_listed(edit, capsys) -> None:
    edit(("ip: 10.70.10.12,", "ip: 10.70.10.312,"), ("kind: depot", "kind: castle"), ("cpu: 8,", "cpu: eight,"))
    code, _, err = validate(capsys)
    assert code == 2
    assert err.splitlines()[0] == "overflyt: plan invalid: 3 errors"
    assert [line.split(": ")[1] for line in err.splitlines()[1:]] == [
        "vms[1].ip",
        "vms[8].cpu",
        "sites[7].kind",
    ] or sorted(line.split(": ")[1] for line in err.splitlines()[1:]) == [
        "sites[7].kind",
        "vms[1].ip",
        "vms[8].cpu",
    ]


def test_inventory_missing_device(edit, capsys) -> None:
    plan = edit(with_inventory=True)
    hosts = plan.dir / "hosts.yml"
    hosts.write_text(
        hosts.read_text().replace("            ndj-fw-01: {ansible_host: 127.0.70.2, ansible_port: 2222}\n", "")
    )
    assert_error(capsys, "hosts.yml:1: ndj-fw-01: plan device is missing from the inventory")


def test_inventory_address_differs(edit, capsys) -> None:
    plan = edit(with_inventory=True)
    hosts = plan.dir / "hosts.yml"
    hosts.write_text(hosts.read_text().replace("ansible_host: 127.0.70.5,", "ansible_host: 127.0.70.55,"))
    line = next(i for i, t in enumerate(hosts.read_text().splitlines(), 1) if "127.0.70.55" in t)
    assert_error(
        capsys,
        f"hosts.yml:{line}: ndj-kattegat-rtr-01.ansible_host: differs from the plan's management address 127.0.70.5 "
        "(value: '127.0.70.55')",
    )


def test_inventory_extra_host(edit, capsys) -> None:
    plan = edit(with_inventory=True)
    hosts = plan.dir / "hosts.yml"
    hosts.write_text(
        hosts.read_text() + "    ungrouped:\n      hosts:\n        ndj-old-rtr: {ansible_host: 127.0.70.99}\n"
    )
    line = next(i for i, t in enumerate(hosts.read_text().splitlines(), 1) if "ndj-old-rtr" in t)
    assert_error(capsys, f"hosts.yml:{line}: ndj-old-rtr: host is not a device of the plan")


def test_credentials_flag_reports_unset_variables(edit, capsys, monkeypatch) -> None:
    edit()
    for name in (
        "OVERFLYT_NDJ_VCENTER_PASSWORD",
        "OVERFLYT_MJ_VCENTER_PASSWORD",
        "OVERFLYT_NDJ_NETWORK_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OVERFLYT_MJ_VCENTER_PASSWORD", "")
    code, out, err = validate(capsys, "--credentials")
    assert code == 2
    assert out == ""
    assert err == (
        "overflyt: credentials 'ndj-vcenter': environment variable OVERFLYT_NDJ_VCENTER_PASSWORD is not set\n"
        "credentials 'mj-vcenter': environment variable OVERFLYT_MJ_VCENTER_PASSWORD is empty\n"
        "credentials 'ndj-network': environment variable OVERFLYT_NDJ_NETWORK_PASSWORD is not set\n"
    )


def test_credentials_flag_passes_when_set(edit, capsys, monkeypatch) -> None:
    edit()
    for name in (
        "OVERFLYT_NDJ_VCENTER_PASSWORD",
        "OVERFLYT_MJ_VCENTER_PASSWORD",
        "OVERFLYT_NDJ_NETWORK_PASSWORD",
    ):
        monkeypatch.setenv(name, "canary-Secret-4711")
    code, out, err = validate(capsys, "--credentials")
    assert code == 0, err
    assert out.endswith(", every credential resolves\n")
    assert "canary-Secret-4711" not in out + err


def test_usage_error_exit_code(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["plan", "validate"])
    assert exc.value.code == 2
    assert "the following arguments are required: PLAN" in capsys.readouterr().err
