"""The estate file: a good one loads; every kind of bad one gets one clear error per problem —
file, line, field path, value, reason — and `overflyt plan waves` exits 2 without writing a plan.

Each case edits a small estate as text (so line numbers are the ones a person sees in an editor)
and runs the command in-process.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from overflyt.cli import main
from overflyt.discovery.estate import Estate, EstateInvalid, dump_estate, load_estate, validate_estate
from overflyt.lab import synth

ESTATE = """\
schema_version: 1
municipality: {code: "999", name: Testrup Kommune}
vcenters:
  - {name: t999-vcenter, url: "https://vcenter.t999.example.invalid/sdk", datacenter: T999-DC, cluster: T999-Cluster}
hosts:
  - {name: t999-esx01, vcenter: t999-vcenter, site: raadhus, cpu_cores: 32, memory_mb: 524288}
  - {name: t999-esx02, vcenter: t999-vcenter, site: pleje, cpu_cores: 16, memory_mb: 262144}
sites:
  - {id: raadhus, name: Testrup Rådhus, kind: town_hall, address_block: 10.99.0.0/24}
  - id: skole
    name: Testrup Skole
    kind: school
    address_block: 10.99.1.0/24
    uplink: {device: t999-core-01, subnet: 172.16.99.0/30, bandwidth_mbps: 1000}
    access_points: [skole-ap001, skole-ap002]
  - id: pleje
    name: Plejecenter Testrup
    kind: care_centre
    address_block: 10.99.2.0/24
    uplink: {device: t999-core-01, subnet: 172.16.99.4/30, bandwidth_mbps: 500}
    access_points: [pleje-ap001]
portgroups:
  - {name: VM-Faelles, vlan: 10, subnet: 10.99.10.0/24}
  - {name: VM-Pleje, vlan: 40, subnet: 10.99.40.0/24}
vms:
  - {name: t999-dc01, host: t999-esx01, datastore: ds-raadhus, cpu: 2, memory_mb: 8192, disks_gb: [80], portgroups: [VM-Faelles], ip: 10.99.10.11, power: powered_on, role: ad, tags: [dns, ntp], app_group: ad}
  - {name: t999-dhcp01, host: t999-esx01, datastore: ds-raadhus, cpu: 2, memory_mb: 4096, disks_gb: [60], portgroups: [VM-Faelles], ip: 10.99.10.12, power: powered_on, role: dhcp, app_group: ad, depends_on: [t999-dc01]}
  - {name: t999-nodkald01, uuid: 4f6b7c2e-1d2a-4e0f-9a51-0d6c1f2b3a4c, host: t999-esx02, datastore: ds-pleje, folder: Pleje, cpu: 2, memory_mb: 4096, disks_gb: [60, 20], portgroups: [VM-Pleje], ip: 10.99.40.11, power: powered_on, tools: old, app_group: nodkald, criticality: critical, depends_on: [t999-dc01]}
devices:
  - {hostname: t999-core-01, site: raadhus, role: core, platform: ios, management: 172.24.99.1}
  - {hostname: t999-skole-rtr-01, site: skole, role: distribution, platform: aoscx, management: 172.24.99.2}
  - {hostname: t999-pleje-rtr-01, site: pleje, role: distribution, platform: ios, management: 172.24.99.3, port: 2222}
"""


@dataclass
class Edited:
    text: str

    def line_of(self, needle: str, nth: int = 1) -> int:
        found = 0
        for number, line in enumerate(self.text.splitlines(), start=1):
            if needle in line:
                found += 1
                if found == nth:
                    return number
        raise AssertionError(f"{needle!r} not in the edited estate")


@pytest.fixture
def edit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write the estate with text edits into tmp_path and chdir there."""
    monkeypatch.chdir(tmp_path)

    def apply(*edits: tuple[str, str]) -> Edited:
        text = ESTATE
        for old, new in edits:
            assert old in text, f"edit anchor {old!r} not found"
            text = text.replace(old, new, 1)
        (tmp_path / "estate.yml").write_text(text, encoding="utf-8")
        return Edited(text)

    return apply


def assert_refused(capsys: pytest.CaptureFixture[str], *expected: str) -> None:
    """`plan waves` exits 2 listing exactly these errors, writes no plan and shows no traceback."""
    code = main(["plan", "waves", "estate.yml", "--output", "plan.yml", "--first-window", "2027-03-06 18:00"])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert out == ""
    count = len(expected)
    assert err == "".join(
        [f"overflyt: estate invalid: {count} error{'s' if count != 1 else ''}\n", *(f"  {e}\n" for e in expected)]
    )
    assert not Path("plan.yml").exists()


def test_a_good_estate_loads_with_every_field(edit) -> None:
    edit()
    estate = load_estate("estate.yml")
    assert estate.municipality.code == "999"
    assert [s.id for s in estate.sites] == ["raadhus", "skole", "pleje"]
    assert estate.sites[0].uplink is None
    assert estate.sites[2].uplink is not None
    assert estate.sites[2].uplink.subnet == IPv4Network("172.16.99.4/30")
    dc, _, nodkald = estate.vms
    assert dc.role == "ad"
    assert dc.tags == ["dns", "ntp"]
    assert dc.ip == IPv4Address("10.99.10.11")
    assert dc.tools.value == "ok"  # the default
    assert str(nodkald.uuid) == "4f6b7c2e-1d2a-4e0f-9a51-0d6c1f2b3a4c"
    assert nodkald.disks_gb == [60, 20]
    assert nodkald.folder == "Pleje"
    assert nodkald.depends_on == ["t999-dc01"]
    assert estate.devices[2].port == 2222
    assert estate.devices[0].management == IPv4Address("172.24.99.1")
    assert [s.access_points for s in estate.sites] == [[], ["skole-ap001", "skole-ap002"], ["pleje-ap001"]]
    assert validate_estate(estate) == []


def test_estate_model_is_frozen(edit) -> None:
    edit()
    estate = load_estate("estate.yml")
    with pytest.raises(ValueError, match="frozen"):
        estate.vms[0].cpu = 4  # type: ignore[misc]


def test_dump_and_load_give_the_same_estate(tmp_path: Path) -> None:
    original = synth.estate("825")
    (tmp_path / "estate.yml").write_text(dump_estate(original), encoding="utf-8")
    assert load_estate(tmp_path / "estate.yml") == original


def test_fast_address_parsing_agrees_with_ipaddress(edit) -> None:
    """The C fast path takes canonical dotted quads only; the rest goes to pydantic, which refuses them."""
    edit()
    data = load_estate("estate.yml").model_dump()
    for good in ("0.0.0.0", "255.255.255.255", "10.99.10.11"):
        data["vms"][0]["ip"] = good
        assert Estate.model_validate(data).vms[0].ip == IPv4Address(good)
    for bad in ("10.99.10.011", "10.99.10", "10.99.10.256", " 10.99.10.11", "1.2.3.4/32"):
        data["vms"][0]["ip"] = bad
        with pytest.raises(ValueError, match="valid IPv4 address"):
            Estate.model_validate(data)


def test_missing_file(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert_refused(capsys, "estate.yml: file not found")


def test_malformed_yaml(edit, capsys) -> None:
    estate = edit(('code: "999"', 'code: ["999"'))
    line = estate.line_of('code: ["999"')
    assert_refused(
        capsys,
        f"estate.yml:{line}: malformed YAML: while parsing a flow sequence (started at line {line}): "
        "expected ',' or ']', but got '}'",
    )


def test_not_a_mapping(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "estate.yml").write_text("- a list\n", encoding="utf-8")
    assert_refused(capsys, "estate.yml:1: an estate must be a YAML mapping (key: value) at the top")


def test_key_given_twice(edit, capsys) -> None:
    estate = edit(("    kind: school\n", "    kind: school\n    kind: library\n"))
    assert_refused(
        capsys,
        f"estate.yml:{estate.line_of('kind: library')}: sites[1].kind: key given twice "
        f"(first at line {estate.line_of('kind: school')})",
    )


def test_unknown_field(edit, capsys) -> None:
    estate = edit(("power: powered_on, role: dhcp", "power: powered_on, rolle: dhcp"))
    assert_refused(
        capsys,
        f"estate.yml:{estate.line_of('rolle: dhcp')}: vms[1].rolle: unknown field "
        "(docs/planner.md lists the fields of an estate)",
    )


def test_missing_field(edit, capsys) -> None:
    estate = edit(
        ("disks_gb: [80], portgroups: [VM-Faelles], ip: 10.99.10.11, ", "portgroups: [VM-Faelles], ip: 10.99.10.11, ")
    )
    assert_refused(
        capsys, f"estate.yml:{estate.line_of('name: t999-dc01')}: vms[0].disks_gb: required field is missing"
    )


def test_wrong_types_and_values(edit, capsys) -> None:
    estate = edit(
        ("cpu: 2, memory_mb: 8192", "cpu: eight, memory_mb: 8192"),
        ("kind: school", "kind: castle"),
        ("address_block: 10.99.1.0/24", "address_block: 10.99.1.5/24"),
        ("subnet: 172.16.99.0/30", "subnet: 172.16.99.0/29"),
        ("platform: aoscx", "platform: junos"),
    )
    assert_refused(
        capsys,
        f"estate.yml:{estate.line_of('kind: castle')}: sites[1].kind: Input should be 'town_hall', 'school', "
        "'care_centre', 'daycare', 'depot', 'library', 'office' or 'datacentre' (value: 'castle')",
        f"estate.yml:{estate.line_of('10.99.1.5/24')}: sites[1].address_block: Input is not a valid IPv4 network "
        "(value: '10.99.1.5/24')",
        f"estate.yml:{estate.line_of('/29')}: sites[1].uplink.subnet: a link subnet must be a /30 or /31, not /29 "
        "(value: '172.16.99.0/29')",
        f"estate.yml:{estate.line_of('cpu: eight')}: vms[0].cpu: Input should be a valid integer, unable to parse "
        "string as an integer (value: 'eight')",
        f"estate.yml:{estate.line_of('junos')}: devices[1].platform: Input should be 'ios', 'aoscx' or 'frr' "
        "(value: 'junos')",
    )


def test_references_to_nothing(edit, capsys) -> None:
    estate = edit(
        ("site: pleje, cpu_cores: 16", "site: plejecenter, cpu_cores: 16"),
        (
            "host: t999-esx01, datastore: ds-raadhus, cpu: 2, memory_mb: 4096",
            "host: t999-esx09, datastore: ds-raadhus, cpu: 2, memory_mb: 4096",
        ),
        ("portgroups: [VM-Pleje]", "portgroups: [VM-Plejer]"),
        (
            "app_group: nodkald, criticality: critical, depends_on: [t999-dc01]",
            "app_group: nodkald, criticality: critical, depends_on: [t999-dc1]",
        ),
        (
            "uplink: {device: t999-core-01, subnet: 172.16.99.4/30",
            "uplink: {device: t999-core-02, subnet: 172.16.99.4/30",
        ),
    )
    assert_refused(
        capsys,
        f"estate.yml:{estate.line_of('plejecenter, cpu_cores')}: hosts[1].site: unknown site (value: 'plejecenter')",
        f"estate.yml:{estate.line_of('t999-core-02')}: sites[2].uplink.device: unknown device (value: 't999-core-02')",
        f"estate.yml:{estate.line_of('t999-esx09')}: vms[1].host: unknown host (value: 't999-esx09')",
        f"estate.yml:{estate.line_of('VM-Plejer')}: vms[2].depends_on[0]: depends on an unknown VM (value: 't999-dc1')",
        f"estate.yml:{estate.line_of('VM-Plejer')}: vms[2].portgroups[0]: unknown portgroup (value: 'VM-Plejer')",
    )


def test_duplicates(edit, capsys) -> None:
    estate = edit(
        ("{name: t999-dhcp01,", "{name: t999-dc01,"),
        ("ip: 10.99.40.11", "ip: 10.99.10.11, nothing: 1"),
    )
    # The unknown field hides the rest: single objects are checked before references between them.
    assert_refused(
        capsys,
        f"estate.yml:{estate.line_of('nothing: 1')}: vms[2].nothing: unknown field (docs/planner.md lists the fields of an estate)",
    )
    estate = edit(
        ("{name: t999-dhcp01,", "{name: t999-dc01,"),
        ("management: 172.24.99.3, port: 2222", "management: 172.24.99.2, port: 22"),
        ("access_points: [pleje-ap001]", "access_points: [skole-ap002]"),
    )
    assert_refused(
        capsys,
        f"estate.yml:{estate.line_of('access_points: [skole-ap002]')}: sites[2].access_points[0]: access point given "
        "twice (already used above) (value: 'skole-ap002')",
        f"estate.yml:{estate.line_of('name: t999-dc01', 2)}: vms[1].depends_on[0]: a VM cannot depend on itself "
        "(value: 't999-dc01')",
        f"estate.yml:{estate.line_of('name: t999-dc01', 2)}: vms[1].name: given twice (already used above) "
        "(value: 't999-dc01')",
        f"estate.yml:{estate.line_of('management: 172.24.99.2', 2)}: devices[2].management: same management "
        "address and port as device t999-skole-rtr-01 (value: '172.24.99.2:22')",
    )


def test_self_dependency_and_address_outside_its_subnet(edit, capsys) -> None:
    estate = edit(
        ("role: dhcp, app_group: ad, depends_on: [t999-dc01]", "role: dhcp, app_group: ad, depends_on: [t999-dhcp01]"),
        ("ip: 10.99.40.11", "ip: 10.99.41.11"),
    )
    assert_refused(
        capsys,
        f"estate.yml:{estate.line_of('depends_on: [t999-dhcp01]')}: vms[1].depends_on[0]: a VM cannot depend on "
        "itself (value: 't999-dhcp01')",
        f"estate.yml:{estate.line_of('10.99.41.11')}: vms[2].ip: address is outside its portgroups' subnets "
        "(10.99.40.0/24) (value: '10.99.41.11')",
    )


def test_every_overlapping_pair_of_networks(edit, capsys) -> None:
    """Nested blocks: the /16 holds three networks, and one of them holds another; each pair is reported
    once, on the network later in the file, naming the earlier one."""
    estate = edit(
        ("address_block: 10.99.2.0/24", "address_block: 10.99.0.128/25"),
        ("{name: VM-Pleje, vlan: 40, subnet: 10.99.40.0/24}", "{name: VM-Pleje, vlan: 40, subnet: 10.99.0.0/16}"),
        ("ip: 10.99.40.11", "ip: 10.99.40.12"),
    )
    pleje, wide = estate.line_of("10.99.0.128/25"), estate.line_of("10.99.0.0/16")
    assert_refused(
        capsys,
        f"estate.yml:{pleje}: sites[2].address_block: overlaps site raadhus's address_block (10.99.0.0/24) "
        "(value: '10.99.0.128/25')",
        f"estate.yml:{wide}: portgroups[1].subnet: overlaps site raadhus's address_block (10.99.0.0/24) "
        "(value: '10.99.0.0/16')",
        f"estate.yml:{wide}: portgroups[1].subnet: overlaps site skole's address_block (10.99.1.0/24) "
        "(value: '10.99.0.0/16')",
        f"estate.yml:{wide}: portgroups[1].subnet: overlaps site pleje's address_block (10.99.0.128/25) "
        "(value: '10.99.0.0/16')",
        f"estate.yml:{wide}: portgroups[1].subnet: overlaps portgroup VM-Faelles's subnet (10.99.10.0/24) "
        "(value: '10.99.0.0/16')",
    )


def test_load_estate_raises_estate_invalid_with_its_issues(edit) -> None:
    edit(("kind: school", "kind: castle"))
    with pytest.raises(EstateInvalid) as caught:
        load_estate("estate.yml")
    assert caught.value.exit_code == 2
    assert [(i.path, i.value) for i in caught.value.issues] == [("sites[1].kind", "'castle'")]
