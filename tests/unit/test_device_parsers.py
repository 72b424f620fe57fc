"""Device discovery parses IOS and AOS-CX as well as FRR: captured `show version`,
`show ip interface brief` and `show running-config` text (tests/unit/data/captured/) parsed with the
net_facts role's parsers (ntc-templates' cisco_ios template, the role's TextFSM templates) into the
estate's interfaces — in Python and through `ansible.utils.cli_parse` itself, as the role runs it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import ansible_runner
import pytest
import yaml

from overflyt.discovery.devices import parse_hostname, parse_version
from overflyt.discovery.estate import DeviceInterface
from overflyt.discovery.interfaces import NotParsed, from_parsed, parse, parsers

REPO = Path(__file__).resolve().parents[2]
CAPTURED = REPO / "tests" / "unit" / "data" / "captured"


def captured(name: str) -> str:
    return (CAPTURED / name).read_text()


IOS = [
    {"name": "GigabitEthernet0/0", "state": "up", "addresses": ["10.70.250.10/30"]},
    {"name": "GigabitEthernet0/1", "state": "up", "addresses": ["10.70.102.1/24", "10.70.103.1/24"]},
    {"name": "GigabitEthernet0/2", "state": "down", "addresses": []},
    {"name": "GigabitEthernet0/3", "state": "down", "addresses": ["10.255.70.10/30"]},  # protocol down
    {"name": "Loopback0", "state": "up", "addresses": ["10.70.255.2/32"]},
    {"name": "Vlan1", "state": "down", "addresses": []},
]
AOSCX = [
    {"name": "1/1/1", "state": "up", "addresses": ["10.70.250.14/30"]},
    {"name": "1/1/2", "state": "down", "addresses": []},
    {"name": "1/1/3", "state": "down", "addresses": ["10.255.70.14/30"]},  # link down
    {"name": "loopback0", "state": "up", "addresses": ["10.70.255.3/32"]},
    {"name": "vlan10", "state": "up", "addresses": ["10.70.104.1/24"]},
    {"name": "vlan20", "state": "down", "addresses": ["10.70.105.1/25"]},  # admin down
]


def test_ios_interfaces_from_the_brief_and_the_running_configs_masks() -> None:
    brief = parse(REPO, "ios", "brief", captured("ios_show_ip_interface_brief.txt"))
    config = parse(REPO, "ios", "config", captured("ios_show_running-config.txt"))
    assert brief[0] == {
        "interface": "GigabitEthernet0/0", "ip_address": "10.70.250.10", "status": "up", "proto": "up",
    }  # fmt: skip
    assert [row["interface"] for row in config] == [
        "Loopback0", "GigabitEthernet0/0", "GigabitEthernet0/1", "GigabitEthernet0/2", "GigabitEthernet0/3", "Vlan1",
    ]  # fmt: skip
    interfaces = from_parsed("ios", brief, config)
    assert interfaces == IOS
    assert [DeviceInterface.model_validate(i).name for i in interfaces] == [i["name"] for i in IOS]


def test_ios_version_and_hostname() -> None:
    assert parse_version(captured("ios_show_version.txt")) == ("ios", "15.9(3)M6")
    assert parse_hostname(captured("ios_show_running-config.txt")) == "ndj-kattegat-rtr-01"


def test_aoscx_interfaces_version_and_hostname() -> None:
    brief = parse(REPO, "aoscx", "brief", captured("aoscx_show_ip_interface_brief.txt"))
    assert from_parsed("aoscx", brief) == AOSCX
    assert parse_version(captured("aoscx_show_version.txt")) == ("aoscx", "FL.10.13.1000")
    assert parse_hostname(captured("aoscx_show_running-config.txt")) == "ndj-aunskole-sw-01"


def test_a_line_the_parser_does_not_know_is_refused_by_its_number() -> None:
    text = captured("aoscx_show_ip_interface_brief.txt").replace("down/down", "lowerLayerDown")
    with pytest.raises(NotParsed) as refused:
        parse(REPO, "aoscx", "brief", text)
    assert (
        str(refused.value)
        == "show ip interface brief: line 5 not understood: '1/1/2           No Address          lowerLayerDown'"
    )


@pytest.mark.timeout(120)
def test_the_roles_cli_parse_parses_the_captured_text_as_python_does(tmp_path: Path) -> None:
    """The role's parser settings (roles/net_facts/vars/main.yml) given to ansible.utils.cli_parse
    with the captured text, in a play that runs inside the role's directory as the role does."""
    specs = parsers(REPO)
    tasks: list[dict[str, Any]] = []
    texts = {
        ("ios", "brief"): "ios_show_ip_interface_brief.txt",
        ("ios", "config"): "ios_show_running-config.txt",
        ("aoscx", "brief"): "aoscx_show_ip_interface_brief.txt",
    }
    for (platform, which), name in texts.items():
        spec = specs[platform][which]
        parser = {"command": spec["command"], **spec["parser"]}
        tasks.append({
            "name": f"{platform} {which}",
            "ansible.utils.cli_parse": {"text": captured(name), "parser": parser},
        })  # fmt: skip
    role = tmp_path / "project" / "roles" / "parse_check"
    (role / "tasks").mkdir(parents=True)
    (role / "tasks" / "main.yml").write_text(yaml.safe_dump(tasks))
    (role / "templates").symlink_to(REPO / "roles" / "net_facts" / "templates")
    (tmp_path / "project" / "play.yml").write_text(
        yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "roles": ["parse_check"]}])
    )
    run = ansible_runner.run(
        private_data_dir=str(tmp_path),
        playbook="play.yml",
        inventory="localhost ansible_connection=local",
        envvars={
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        },
        quiet=True,
    )
    results = {
        e["event_data"]["task"]: e["event_data"]["res"]
        for e in run.events
        if e["event"] in ("runner_on_ok", "runner_on_failed")
    }
    assert run.status == "successful", json.dumps(results)[-3000:]
    assert from_parsed("ios", results["ios brief"]["parsed"], results["ios config"]["parsed"]) == IOS
    assert from_parsed("aoscx", results["aoscx brief"]["parsed"]) == AOSCX
