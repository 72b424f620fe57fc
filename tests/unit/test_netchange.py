"""Desired state of a site cutover's devices (pure) and the platform templates rendered with
StrictUndefined and the overflyt.network filters — no lab. (net_restore's line diff is tested
with the rest of overflyt.steps.config_text in test_config_text.py.)"""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import jinja2
import pytest

from overflyt.plan import Plan, load_plan
from overflyt.plan.model import NetworkMapping, Platform
from overflyt.steps import config_text
from overflyt.steps.device_changes import (
    DeviceChange,
    Services,
    dc_peer,
    device_changes,
    moved_subnets,
    postcheck_targets,
)

REPO = Path(__file__).resolve().parents[2]
PLAN = load_plan(REPO / "inventories" / "norddjurs" / "plan.yml")
TEMPLATES = REPO / "roles" / "net_configure" / "templates"


def routes(change: DeviceChange) -> list[tuple[str, str]]:
    return [(str(r.prefix), str(r.next_hop)) for r in change.routes]


# -- desired state ---------------------------------------------------------------------------------


def test_wave_1_town_hall_routes_its_own_subnet_on_the_core_and_leaves_fw_and_switch_alone() -> None:
    changes = device_changes(PLAN, 1, "grenaa-raadhus")
    assert list(changes) == ["ndj-core-01", "ndj-fw-01", "ndj-sw-raadhus-01"]
    assert routes(changes["ndj-core-01"]) == [("10.70.10.0/24", "10.255.70.1")]
    assert changes["ndj-core-01"].gateway
    for name in ["ndj-fw-01", "ndj-sw-raadhus-01"]:
        assert (changes[name].routes, changes[name].services, changes[name].empty) == ((), None, True)


def test_wave_2_auning_routes_earlier_subnets_and_its_own() -> None:
    changes = device_changes(PLAN, 2, "auning-adm")
    assert routes(changes["ndj-auning-rtr-01"]) == [
        ("10.70.10.0/24", "10.255.70.5"),
        ("10.70.20.0/24", "10.255.70.5"),
        ("10.70.30.0/24", "10.255.70.5"),
    ]


def test_wave_2_school_does_not_route_subnets_another_site_moves_in_the_same_wave() -> None:
    changes = device_changes(PLAN, 2, "kattegatskolen")
    assert routes(changes["ndj-kattegat-rtr-01"]) == [("10.70.10.0/24", "10.255.70.9")]


def test_wave_3_care_centre_routes_everything_moved() -> None:
    changes = device_changes(PLAN, 3, "digterparken")
    assert routes(changes["ndj-digterparken-rtr-01"]) == [(f"10.70.{n}.0/24", "10.255.70.17") for n in (10, 20, 30, 40)]


def test_a_subnet_without_vms_never_moves() -> None:
    empty = NetworkMapping(source="VM-Tom-50", target="NDJ-707-Tom", vlan=1750, subnet="10.70.50.0/24")  # type: ignore[arg-type]
    plan = PLAN.model_copy(update={"network_map": [*PLAN.network_map, empty]})
    assert [str(m.subnet) for m in moved_subnets(plan, 3, "digterparken")] == [
        "10.70.10.0/24",
        "10.70.20.0/24",
        "10.70.30.0/24",
        "10.70.40.0/24",
    ]


def test_dc_peer_is_the_first_host_of_the_dc_link() -> None:
    assert dc_peer(PLAN, "grenaa-raadhus") == IPv4Address("10.255.70.1")
    assert dc_peer(PLAN, "materielgaarden") == IPv4Address("10.255.70.29")


def test_device_vars_are_the_overflyt_desired_state() -> None:
    change = device_changes(PLAN, 2, "kattegatskolen")["ndj-kattegat-rtr-01"]
    assert change.device_vars() == {
        "overflyt_gateway": True,
        "overflyt_routes": [{"prefix": "10.70.10.0/24", "next_hop": "10.255.70.9"}],
        "overflyt_route_prefixes": ["10.70.10.0/24"],
        "overflyt_services": {},
    }


def with_platform(plan: Plan, hostname: str, platform: Platform) -> Plan:
    devices = [d.model_copy(update={"platform": platform}) if d.hostname == hostname else d for d in plan.devices]
    return plan.model_copy(update={"devices": devices})


@pytest.mark.parametrize("platform", [Platform.ios, Platform.aoscx])
def test_ios_and_aoscx_devices_get_the_shared_services_even_when_not_gateway(platform: Platform) -> None:
    plan = with_platform(PLAN, "ndj-fw-01", platform)
    change = device_changes(plan, 1, "grenaa-raadhus")["ndj-fw-01"]
    assert change.routes == ()
    assert change.services == Services(
        dns=(IPv4Address("10.200.0.53"), IPv4Address("10.200.0.54")),
        ntp=(IPv4Address("10.200.0.123"),),
        syslog=(IPv4Address("10.200.0.114"),),
        dhcp=(IPv4Address("10.200.0.67"),),
        aaa=(IPv4Address("10.200.0.49"),),
    )
    assert change.device_vars()["overflyt_services"] == {
        "dns": ["10.200.0.53", "10.200.0.54"],
        "ntp": ["10.200.0.123"],
        "syslog": ["10.200.0.114"],
        "dhcp": ["10.200.0.67"],
        "aaa": ["10.200.0.49"],
    }
    assert not change.empty


def test_postcheck_targets_are_the_powered_on_servers_of_moved_subnets() -> None:
    assert postcheck_targets(PLAN, 2, "kattegatskolen") == [f"10.70.10.{n}" for n in (11, 12, 13, 14, 15, 16, 17, 20)]
    auning = postcheck_targets(PLAN, 2, "auning-adm")
    assert len(auning) == 8 + 20 + 5
    assert [a for a in auning if a in ("10.70.20.21", "10.70.30.11")] == ["10.70.20.21", "10.70.30.11"]
    assert "10.70.20.94" not in auning  # ndj-vikar01 is powered off
    assert "10.70.30.31" not in auning  # ndj-archive01 is powered off


# -- templates (as Ansible renders them: trim_blocks, undefined variables are errors, the filters of
# the overflyt.network collection) ----------------------------------------------------------------


def render(template: str, **values: Any) -> list[str]:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=False,
    )
    env.filters["comment"] = lambda text, decoration="# ": "\n".join(decoration + x for x in text.splitlines())
    env.filters.update(
        {
            "overflyt.network.config_top_lines": config_text.top_lines,
            "overflyt.network.config_route_changes": config_text.route_changes,
            "overflyt.network.config_service_changes": config_text.service_changes,
            "overflyt.network.config_missing_lines": config_text.missing_lines,
        }
    )
    text = env.get_template(template).render(ansible_managed="Ansible managed", **values)
    assert text.startswith("! Ansible managed\n")
    return [line.rstrip() for line in text.splitlines() if line.strip() and not line.startswith("!")]


IOS_RUNNING = """Building configuration...
Current configuration : 1234 bytes
!
! Last configuration change at 10:00:00 UTC Mon Mar 1 2027
hostname ndj-fw-01
ip name-server 10.0.0.53 10.200.0.53
ip name-server vrf Mgmt-intf 10.9.9.9
ntp server 10.0.0.123 prefer
ntp server 10.200.0.123 prefer
logging host 10.0.0.114
logging facility local7
tacacs-server host 10.0.0.49
ip route 10.70.10.0/24 10.70.252.2
ip route 10.70.10.0/24 10.70.252.3 5
ip route 10.70.20.0/24 10.70.250.6
interface GigabitEthernet0/1
 ip helper-address 10.0.0.67
"""
SERVICES = {
    "dns": ["10.200.0.53", "10.200.0.54"],
    "ntp": ["10.200.0.123"],
    "syslog": ["10.200.0.114"],
    "dhcp": ["10.200.0.67"],
    "aaa": ["10.200.0.49"],
}
ROUTES = [{"prefix": "10.70.10.0/24", "next_hop": "10.255.70.1"}]


def test_ios_template_adds_missing_lines_and_removes_what_they_replace() -> None:
    lines = render(
        "ios.j2",
        net_configure_running=IOS_RUNNING,
        overflyt_routes=ROUTES,
        overflyt_services=SERVICES,
        net_configure_extra_lines=[],
    )
    assert lines == [
        "ip route 10.70.10.0/24 10.255.70.1",
        "no ip route 10.70.10.0/24 10.70.252.2",
        "no ip route 10.70.10.0/24 10.70.252.3 5",
        "ip name-server 10.200.0.54",
        "no ip name-server 10.0.0.53",
        "no ntp server 10.0.0.123",
        "logging host 10.200.0.114",
        "no logging host 10.0.0.114",
        "tacacs-server host 10.200.0.49",
        "no tacacs-server host 10.0.0.49",
    ]


def test_aoscx_template_uses_aoscx_commands() -> None:
    running = "hostname sw\nip dns server-address 10.0.0.53 vrf mgmt\nlogging 10.0.0.114 severity info\n"
    lines = render(
        "aoscx.j2",
        net_configure_running=running,
        overflyt_routes=ROUTES,
        overflyt_services=SERVICES,
        net_configure_extra_lines=[],
    )
    assert lines == [
        "ip route 10.70.10.0/24 10.255.70.1",
        "ip dns server-address 10.200.0.53",
        "ip dns server-address 10.200.0.54",
        "no ip dns server-address 10.0.0.53",
        "ntp server 10.200.0.123",
        "logging 10.200.0.114",
        "no logging 10.0.0.114",
        "tacacs-server host 10.200.0.49",
    ]


AFTER = {
    "ios.j2": """hostname ndj-fw-01
ip name-server 10.200.0.53 10.200.0.54
ip name-server vrf Mgmt-intf 10.9.9.9
ntp server 10.200.0.123 prefer
logging host 10.200.0.114
logging facility local7
tacacs-server host 10.200.0.49
ip route 10.1.0.0/16 10.255.70.1
ip route 10.70.10.0/24 10.255.70.1
interface GigabitEthernet0/1
 ip helper-address 10.0.0.67
""",
    "aoscx.j2": """hostname sw
ip dns server-address 10.200.0.53
ip dns server-address 10.200.0.54 vrf mgmt
ntp server 10.200.0.123 iburst
logging 10.200.0.114 severity info
tacacs-server host 10.200.0.49 vrf mgmt
ip route 10.1.0.0/16 10.255.70.1
ip route 10.70.10.0/24 10.255.70.1
""",
    "frr.j2": "hostname r\nip route 10.1.0.0/16 10.255.70.1\nip route 10.70.10.0/24 10.255.70.1\n",
}


@pytest.mark.parametrize("template", ["ios.j2", "aoscx.j2", "frr.j2"])
def test_rendering_against_the_changed_configuration_pushes_nothing(template: str) -> None:
    lines = render(
        template,
        net_configure_running=AFTER[template],
        overflyt_routes=ROUTES,
        overflyt_services=SERVICES if template != "frr.j2" else {},
        net_configure_extra_lines=["ip route 10.1.0.0/16 10.255.70.1"],
    )
    assert lines == []


def test_frr_template_renders_routes_only() -> None:
    lines = render(
        "frr.j2",
        net_configure_running="hostname r\nip route 10.70.10.0/24 10.70.252.2\n",
        overflyt_routes=ROUTES,
        overflyt_services={},
        net_configure_extra_lines=[],
    )
    assert lines == ["ip route 10.70.10.0/24 10.255.70.1", "no ip route 10.70.10.0/24 10.70.252.2"]


@pytest.mark.parametrize("template", ["ios.j2", "aoscx.j2", "frr.j2"])
def test_a_missing_variable_is_an_error_not_an_empty_line(template: str) -> None:
    with pytest.raises(jinja2.UndefinedError, match="'overflyt_routes' is undefined"):
        render(template, net_configure_running="", overflyt_services={}, net_configure_extra_lines=[])


def test_templates_carry_no_timestamp() -> None:
    for path in TEMPLATES.glob("*.j2"):
        text = path.read_text()
        for volatile in ("ansible_date_time", "now(", "template_"):
            assert volatile not in text, path.name
