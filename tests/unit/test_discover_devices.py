"""Device discovery's pure parts, on output captured from the lab's FRR 8.4.4 over SSH (an exec
channel per command, as discovery reads it): parsing show version, show interface brief and the
running configuration, the config hash, the estate merge and the plan compare; and the refusals
and failures that need no lab (bad estate file, missing credential, nothing listening)."""

from __future__ import annotations

import hashlib
import inspect
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from overflyt.cli import main
from overflyt.discovery.devices import (
    DeviceRead,
    Unreadable,
    check_device,
    compare,
    config_sha256,
    merge,
    parse_hostname,
    parse_interface_brief,
    parse_version,
)
from overflyt.discovery.estate import DeviceInterface, dump_estate, load_estate
from overflyt.discovery.interfaces import parsers
from overflyt.plan import load_plan
from overflyt.steps import config_text

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "inventories" / "norddjurs" / "plan.yml"

# Captured from the lab (`overflyt lab up`, FRR 8.4.4 on Debian 12) with paramiko's exec_command,
# byte for byte.

# `show version` of ndj-core-01
CORE_SHOW_VERSION = (
    "FRRouting 8.4.4 (ndj-core-01) on Linux(6.18.44-fc-v782).\n"
    "Copyright 1996-2005 Kunihiro Ishiguro, et al.\n"
    "configured with:\n"
    "    '--build=x86_64-linux-gnu' '--prefix=/usr' '--includedir=${prefix}/include' '--mandir=${prefix}/share/man' '--infodir=${prefix}/share/info' '--sysconfdir=/etc' '--localstatedir=/var' '--disable-option-checking' '--disable-silent-rules' '--libdir=${prefix}/lib/x86_64-linux-gnu' '--libexecdir=${prefix}/lib/x86_64-linux-gnu' '--disable-maintainer-mode' '--localstatedir=/var/run/frr' '--sbindir=/usr/lib/frr' '--sysconfdir=/etc/frr' '--with-vtysh-pager=/usr/bin/pager' '--libdir=/usr/lib/x86_64-linux-gnu/frr' '--with-moduledir=/usr/lib/x86_64-linux-gnu/frr/modules' '--disable-dependency-tracking' '--enable-rpki' '--disable-scripting' '--disable-pim6d' '--with-libpam' '--enable-doc' '--enable-doc-html' '--enable-snmp' '--enable-fpm' '--disable-protobuf' '--disable-zeromq' '--enable-ospfapi' '--enable-bgp-vnc' '--enable-multipath=256' '--enable-user=frr' '--enable-group=frr' '--enable-vty-group=frrvty' '--enable-configfile-mask=0640' '--enable-logfile-mask=0640' 'build_alias=x86_64-linux-gnu' 'PYTHON=python3'\n"
)

# `show interface brief` of ndj-core-01
CORE_INTERFACE_BRIEF = (
    "Interface       Status  VRF             Addresses\n"
    "---------       ------  ---             ---------\n"
    "lan             up      default         10.70.100.1/24\n"
    "lo              up      default         \n"
    "to-auning       up      default         10.70.250.5/30\n"
    "to-aunskole     up      default         10.70.250.13/30\n"
    "to-bibliotek    up      default         10.70.250.25/30\n"
    "to-dc-core      up      default         10.255.70.2/30\n"
    "to-digterparken up      default         10.70.250.17/30\n"
    "to-fw           up      default         10.70.251.1/30\n"
    "to-kattegat     up      default         10.70.250.9/30\n"
    "to-materiel     up      default         10.70.250.29/30\n"
    "to-ostervang    up      default         10.70.250.21/30\n"
    "to-sw-raadhus   up      default         10.70.251.5/30\n"
    "z-10.70.10.0    up      default         10.70.252.1/30\n"
    "\n"
)

# `show interface brief` of ndj-fw-01 with lo given 192.0.2.1/32, 192.0.2.2/32, 198.51.100.1/24 and
# 198.51.100.2/24, and to-core shut down (then put back): further addresses, `+`, a down interface
FW_INTERFACE_BRIEF_CHANGED = (
    "Interface       Status  VRF             Addresses\n"
    "---------       ------  ---             ---------\n"
    "lo              up      default         192.0.2.1/32\n"
    "                                        192.0.2.2/32\n"
    "                                        + 198.51.100.1/24\n"
    "to-core         down    default         10.70.251.2/30\n"
    "\n"
)

# `show running-config` of ndj-kattegat-rtr-01
KATTEGAT_RUNNING_CONFIG = (
    "Building configuration...\n"
    "\n"
    "Current configuration:\n"
    "!\n"
    "frr version 8.4.4\n"
    "frr defaults traditional\n"
    "hostname ndj-kattegat-rtr-01\n"
    "no ipv6 forwarding\n"
    "service integrated-vtysh-config\n"
    "!\n"
    "ip route 0.0.0.0/0 10.70.250.9\n"
    "!\n"
    "interface lan\n"
    " description client LAN kattegatskolen\n"
    " ip address 10.70.102.1/24\n"
    "exit\n"
    "!\n"
    "interface to-core\n"
    " description uplink ndj-core-01\n"
    " ip address 10.70.250.10/30\n"
    "exit\n"
    "!\n"
    "interface to-dc-core\n"
    " description dc_link mj-dc-core\n"
    " ip address 10.255.70.10/30\n"
    "exit\n"
    "!\n"
    "end\n"
)

# what FRR answers (exit status 1) to a command it does not know, `show clock`
UNKNOWN_COMMAND = "% Unknown command: show clock\n"


# -- parsing ---------------------------------------------------------------------------------------


def test_show_version_tells_frr_and_its_version() -> None:
    assert parse_version(CORE_SHOW_VERSION) == ("frr", "8.4.4")


def test_an_unknown_platform_keeps_the_first_line_as_its_version() -> None:
    assert parse_version("\nAcme NetOS 1.2\nuptime 3 days\n") == (None, "Acme NetOS 1.2")


def test_interface_brief_lists_every_interface_with_state_and_address() -> None:
    interfaces = parse_interface_brief(CORE_INTERFACE_BRIEF)
    assert len(interfaces) == 13
    assert interfaces[0] == DeviceInterface.model_validate(
        {"name": "lan", "state": "up", "addresses": ["10.70.100.1/24"]}
    )
    assert interfaces[1] == DeviceInterface(name="lo", state="up", addresses=[])
    assert [(i.name, [str(a) for a in i.addresses]) for i in interfaces[-3:]] == [
        ("to-ostervang", ["10.70.250.21/30"]),
        ("to-sw-raadhus", ["10.70.251.5/30"]),
        ("z-10.70.10.0", ["10.70.252.1/30"]),
    ]
    assert "to-digterparken" in [i.name for i in interfaces]  # a 15-character name leaves one space


def test_interface_brief_further_addresses_plus_marks_and_a_down_interface() -> None:
    interfaces = {i.name: i for i in parse_interface_brief(FW_INTERFACE_BRIEF_CHANGED)}
    assert [str(a) for a in interfaces["lo"].addresses] == ["192.0.2.1/32", "192.0.2.2/32", "198.51.100.1/24"]
    assert interfaces["to-core"].state == "down"
    assert [str(a) for a in interfaces["to-core"].addresses] == ["10.70.251.2/30"]


def test_interface_brief_refuses_a_line_it_does_not_understand() -> None:
    text = CORE_INTERFACE_BRIEF.replace("to-fw           up ", "to-fw           dormant ")
    with pytest.raises(Unreadable) as refused:
        parse_interface_brief(text)
    assert str(refused.value) == (
        "show interface brief: line 10 not understood: 'to-fw           dormant      default         10.70.251.1/30'"
    )
    with pytest.raises(Unreadable) as refused:
        parse_interface_brief(CORE_INTERFACE_BRIEF.replace("10.70.100.1/24", "10.70.100.300/24"))
    assert str(refused.value).startswith("show interface brief: ")
    assert "10.70.100.300/24" in str(refused.value)


def test_hostname_comes_from_the_running_config() -> None:
    assert parse_hostname(KATTEGAT_RUNNING_CONFIG) == "ndj-kattegat-rtr-01"
    assert parse_hostname("!\ninterface lan\n description hostname x\n") is None


# -- the config hash -------------------------------------------------------------------------------


def test_normalisation_strips_frrs_header_and_nothing_else() -> None:
    header, blank, current, rest = KATTEGAT_RUNNING_CONFIG.split("\n", 3)
    assert (header, blank, current) == ("Building configuration...", "", "Current configuration:")
    assert config_text.normalise(KATTEGAT_RUNNING_CONFIG) == rest
    assert rest.startswith("!\nfrr version 8.4.4\n")
    assert rest.endswith("\nend\n")
    assert config_sha256(KATTEGAT_RUNNING_CONFIG) == hashlib.sha256(rest.encode()).hexdigest()


def test_the_hash_ignores_volatile_lines_and_whitespace_and_sees_every_real_change() -> None:
    sha = config_sha256(KATTEGAT_RUNNING_CONFIG)
    noisy = (
        "\r\n\r\n"
        + KATTEGAT_RUNNING_CONFIG.replace("\n", "  \r\n").replace(
            "!\r\nfrr version",
            "! Last configuration change at 10:01:02 CET Mon Nov 3 2025 by admin\r\n"
            "! NVRAM config last updated at 09:00:00 CET Mon Nov 3 2025\r\nntp clock-period 36028797\r\n!\r\nfrr version",
            1,
        )
        + "\r\n"
    )
    assert config_sha256(noisy) == sha
    assert config_sha256(KATTEGAT_RUNNING_CONFIG.replace("client LAN kattegatskolen", "client LAN")) != sha
    assert config_sha256(KATTEGAT_RUNNING_CONFIG.replace(" ip address 10.70.102.1/24\n", "")) != sha
    assert config_sha256(KATTEGAT_RUNNING_CONFIG.replace("!\nip route", "! a comment\nip route")) != sha
    assert config_sha256(KATTEGAT_RUNNING_CONFIG.replace("interface lan", " interface lan")) != sha


def test_discovery_hashes_with_the_one_normaliser_every_role_uses() -> None:
    # no copy: discovery's hash is overflyt.steps.config_text's, which net_backup, net_facts, net_verify
    # and net_restore call through the overflyt.network filters (tests/unit/test_config_text.py)
    assert config_sha256 is config_text.config_sha256
    backup_tasks = (REPO / "roles" / "net_backup" / "tasks" / "main.yml").read_text()
    assert "overflyt.network.running_config:" in backup_tasks  # it normalises with config_text.normalise
    plugin = REPO / "collections/ansible_collections/overflyt/network/plugins/action/running_config.py"
    assert "config = normalise(text)" in plugin.read_text()


def test_only_show_commands_are_ever_sent() -> None:
    """Discovery checks a device's host key and login with paramiko and sends it nothing (no channel
    is opened), then reads it through the net_facts role: every command the role sends, its
    parsers' included, is a show command."""
    source = inspect.getsource(check_device)
    assert "exec_command" not in source
    assert "invoke_shell" not in source
    assert "open_session" not in source
    commands: list[str] = []
    brief = "{{ __net_facts_parsers[overflyt_platform].brief.command }}"  # the parsers' commands, below
    for path in sorted((REPO / "roles" / "net_facts" / "tasks").glob("*.yml")):
        for task in yaml.safe_load(path.read_text()):
            commands += [c for c in task.get("overflyt.network.show", {}).get("commands", []) if c != brief]
            if "overflyt.network.running_config" in task:
                read = task["overflyt.network.running_config"]
                commands += [*read.get("show", []), read.get("command", "show running-config")]
            assert not {"cisco.ios.ios_command", "ansible.netcommon.cli_command"} & task.keys(), task
            if "ansible.utils.cli_parse" in task:  # parses text already read, on the controller
                assert task["ansible.utils.cli_parse"].keys() == {"text", "parser"}, task
                assert task["delegate_to"] == "localhost", task
    commands += [spec["command"] for platform in parsers(REPO).values() for spec in platform.values()]
    assert len(commands) == 6
    assert all(command.startswith("show ") for command in commands), commands


# -- estate merge and plan compare -----------------------------------------------------------------


def _read(hostname: str, **changes: Any) -> DeviceRead:
    plan = load_plan(SAMPLE)
    device = next(d for d in plan.devices if d.hostname == hostname)
    values: dict[str, Any] = {
        "hostname": hostname,
        "address": str(device.management),
        "port": device.port,
        "host_key": "match",
        "name": hostname,
        "platform": "frr",
        "version": "8.4.4",
        "interfaces": parse_interface_brief(CORE_INTERFACE_BRIEF)[:2],
        "config_sha256": config_sha256(KATTEGAT_RUNNING_CONFIG),
    }
    return DeviceRead(**(values | changes))


def test_merge_replaces_what_the_device_tells_and_keeps_what_a_person_wrote() -> None:
    plan = load_plan(SAMPLE)
    existing = [
        {
            "hostname": "ndj-core-01",
            "site": "grenaa-raadhus",
            "role": "firewall",
            "platform": "ios",
            "management": "127.0.70.1",
            "version": "8.1",
        },
        {
            "hostname": "ndj-retired-01",
            "site": "grenaa-raadhus",
            "role": "access",
            "platform": "ios",
            "management": "10.0.0.9",
        },
    ]
    reads = [_read("ndj-core-01"), _read("ndj-fw-01"), _read("ndj-kattegat-rtr-01", platform=None, version=None)]
    devices, changes = merge(existing, reads, plan, {"grenaa-raadhus"})
    core = devices[0]
    assert (core["site"], core["role"]) == ("grenaa-raadhus", "firewall")  # a person's, kept
    assert (core["platform"], core["version"], core["port"]) == ("frr", "8.4.4", 2222)
    assert core["interfaces"] == [
        {"name": "lan", "state": "up", "addresses": ["10.70.100.1/24"]},
        {"name": "lo", "state": "up", "addresses": []},
    ]
    assert devices[1] == existing[1]  # not in the plan: discovery cannot tell it is gone
    assert devices[2] == {
        "hostname": "ndj-fw-01",
        "site": "grenaa-raadhus",
        "role": "firewall",
        "platform": "frr",
        "management": "127.0.70.2",
        "port": 2222,
        "version": "8.4.4",
        "interfaces": core["interfaces"],
        "config_sha256": config_sha256(KATTEGAT_RUNNING_CONFIG),
    }
    assert len(devices) == 3
    assert changes == [
        "changed: ndj-core-01: platform, port, version, interfaces, config_sha256",
        "new: ndj-fw-01 (site and role from the plan)",
        "not added: ndj-kattegat-rtr-01: its site kattegatskolen is not one of the estate's sites",
    ]
    again, changes = merge(devices, reads[:2], plan, {"grenaa-raadhus"})
    assert (again, changes) == (devices, [])


def test_a_new_device_whose_platform_was_not_told_is_not_added() -> None:
    devices, changes = merge([], [_read("ndj-fw-01", platform=None)], load_plan(SAMPLE))
    assert devices == []
    assert changes == ["not added: ndj-fw-01: platform: the device did not tell it"]


def test_merged_devices_load_as_an_estate(tmp_path: Path) -> None:
    plan = load_plan(SAMPLE)
    devices, _ = merge([], [_read(d.hostname) for d in plan.devices], plan)
    sites = [
        {"id": s.id, "name": s.name, "kind": s.kind.value, "address_block": str(s.address_block)} for s in plan.sites
    ]
    data = {"municipality": {"code": "707", "name": "Norddjurs Kommune"}, "sites": sites, "devices": devices}
    path = tmp_path / "estate.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    estate = load_estate(path)
    path.write_text(dump_estate(estate))
    assert load_estate(path) == estate
    assert [str(a) for a in estate.devices[0].interfaces[0].addresses] == ["10.70.100.1/24"]  # type: ignore[index]
    assert estate.devices[0].config_sha256 == config_sha256(KATTEGAT_RUNNING_CONFIG)


def test_compare_names_each_device_that_answers_as_something_else() -> None:
    plan = load_plan(SAMPLE)
    reads = [_read(d.hostname) for d in plan.devices]
    assert compare(plan, reads) == []
    reads[0] = _read("ndj-core-01", name="ndj-fw-01")
    reads[1] = _read("ndj-fw-01", platform="ios")
    reads[2] = _read("ndj-sw-raadhus-01", error="unreachable: Connection refused", name=None, platform=None)
    assert [str(d) for d in compare(plan, reads)] == [
        "device ndj-core-01 (127.0.70.1:2222): hostname: plan says 'ndj-core-01', the device says 'ndj-fw-01'",
        "device ndj-fw-01 (127.0.70.2:2222): platform: plan says 'frr', the device says 'ios'",
    ]


# -- refusals and failures that need no lab --------------------------------------------------------


def test_a_bad_estate_file_is_refused_before_any_device_is_contacted(tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "estate.yml"
    bad.write_text("devices: {ndj-core-01: frr}\n")
    assert main(["discover", "devices", str(SAMPLE), "--estate", str(bad)]) == 2
    assert capsys.readouterr() == ("", f"overflyt: {bad}: an estate file's devices is a list\n")
    bad.write_text("devices:\n  - {name: ndj-core-01}\n")
    assert main(["discover", "devices", str(SAMPLE), "--estate", str(bad)]) == 2
    assert capsys.readouterr().err == f"overflyt: {bad}: every entry of devices needs a hostname\n"


def test_a_missing_credential_names_every_device_and_contacts_none(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.delenv("OVERFLYT_NDJ_NETWORK_PASSWORD", raising=False)
    assert main(["discover", "devices", str(SAMPLE)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert (
        lines[0] == "overflyt: 10 device(s) cannot be read, their credentials do not resolve (no device was contacted):"
    )
    assert (
        lines[1]
        == "  ndj-core-01 (127.0.70.1:2222): credentials 'ndj-network': environment variable OVERFLYT_NDJ_NETWORK_PASSWORD is not set"
    )
    assert len(lines) == 11


def test_workers_must_be_at_least_one(capsys: Any) -> None:
    assert main(["discover", "devices", str(SAMPLE), "--workers", "0"]) == 2
    assert capsys.readouterr().err == "overflyt: --workers must be at least 1, not 0\n"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there


def test_unreachable_devices_fail_one_line_each_and_the_estate_file_is_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The sample plan with every device's management moved to 127.0.0.1 and a port nothing listens on."""
    plan_dir = tmp_path / "norddjurs"
    shutil.copytree(SAMPLE.parent, plan_dir)
    port = _closed_port()
    plan_file, hosts_file = plan_dir / "plan.yml", plan_dir / "hosts.yml"
    text = plan_file.read_text().replace("known_hosts: ../../lab/.state/known_hosts", "known_hosts: known_hosts")
    for n in range(1, 11):
        text = text.replace(f"management: 127.0.70.{n}, port: 2222", f"management: 127.0.0.{n}, port: {port}")
        hosts = hosts_file.read_text().replace(
            f"{{ansible_host: 127.0.70.{n}, ansible_port: 2222}}",
            f"{{ansible_host: 127.0.0.{n}, ansible_port: {port}}}",
        )
        hosts_file.write_text(hosts)
    plan_file.write_text(text)
    (plan_dir / "known_hosts").write_text("")
    monkeypatch.setenv("OVERFLYT_NDJ_NETWORK_PASSWORD", "not-used")
    estate = tmp_path / "estate.yml"
    estate.write_text("devices:\n  - {hostname: ndj-core-01, site: grenaa-raadhus, role: core}\n")
    before = estate.read_bytes()
    assert main(["discover", "devices", str(plan_file), "--estate", str(estate)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"overflyt: reading 10 devices of {plan_file} over SSH, 16 at a time"
    assert sorted(lines[1:11]) == sorted(
        f"overflyt: {d.hostname} ({d.management}:{port}): not read: unreachable: Connection refused"
        for d in load_plan(plan_file).devices
    )
    assert lines[11:] == [f"overflyt: 10 of 10 devices could not be read; {estate} not changed"]
    assert estate.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["estate.yml", "norddjurs"]  # no partial file left
