"""overflyt.steps.config_text, the one definition of what the net_* roles compute from a device's
configuration text, on FRR output captured from the lab and on IOS text; and the overflyt.network
collection that hands it to the roles: one documented filter per function, loaded by Ansible under
its FQCN, whose backup is byte-identical to the Jinja expression net_backup used before."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import yaml
from localplay import ansible_playbook

from overflyt.steps import config_text
from overflyt.steps.config_text import (
    VOLATILE,
    config_sha256,
    first_line,
    missing_lines,
    normalise,
    pending_lines,
    restore_plan,
    route_changes,
    service_changes,
    split_pending,
    text_sha256,
    top_lines,
)

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "collections" / "ansible_collections" / "overflyt" / "network"
FILTERS = COLLECTION / "plugins" / "filter"

# `show running-config` of the lab's ndj-kattegat-rtr-01 (FRR 8.4.4), byte for byte as read over SSH
FRR_RUNNING = (
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

# An IOS running configuration with every volatile line IOS prints, as a terminal shows it (CRLF)
IOS_RUNNING = (
    "Building configuration...\r\n"
    "\r\n"
    "Current configuration : 1234 bytes\r\n"
    "!\r\n"
    "! Last configuration change at 10:01:02 CET Mon Nov 3 2025 by admin\r\n"
    "! NVRAM config last updated at 09:00:00 CET Mon Nov 3 2025 by admin\r\n"
    "!\r\n"
    "version 15.2\r\n"
    "hostname ndj-fw-01\r\n"
    "!\r\n"
    "ip name-server 10.0.0.53 10.200.0.53\r\n"
    "ip name-server vrf Mgmt-intf 10.9.9.9\r\n"
    "ntp clock-period 36028797\r\n"
    "ntp server 10.0.0.123 prefer\r\n"
    "ntp server 10.200.0.123 prefer\r\n"
    "logging host 10.0.0.114\r\n"
    "logging facility local7\r\n"
    "tacacs-server host 10.0.0.49\r\n"
    "ip route 10.70.10.0/24 10.70.252.2\r\n"
    "ip route 10.70.10.0/24 10.70.252.3 5\r\n"
    "ip route 10.70.20.0/24 10.70.250.6\r\n"
    "!\r\n"
    "interface GigabitEthernet0/1\r\n"
    " ip address 10.70.250.1 255.255.255.252\r\n"
    " ip helper-address 10.0.0.67   \r\n"
    "!\r\n"
    "line vty 0 4\r\n"
    " transport input ssh\r\n"
    "!\r\n"
    "end\r\n"
)
IOS_NORMALISED = """!
!
version 15.2
hostname ndj-fw-01
!
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
!
interface GigabitEthernet0/1
 ip address 10.70.250.1 255.255.255.252
 ip helper-address 10.0.0.67
!
line vty 0 4
 transport input ssh
!
end
"""


# -- the backup's format ---------------------------------------------------------------------------


def test_the_volatile_lines_are_frrs_and_ioss_headers_and_stamps() -> None:
    assert VOLATILE == (
        "Building configuration",
        "Current configuration",
        "! Last configuration change",
        "! NVRAM config last updated",
        "! No configuration change since last restart",
        "ntp clock-period",
    )


def test_normalising_frr_strips_its_header_and_nothing_else() -> None:
    header, blank, current, rest = FRR_RUNNING.split("\n", 3)
    assert (header, blank, current) == ("Building configuration...", "", "Current configuration:")
    assert normalise(FRR_RUNNING) == rest
    assert config_sha256(FRR_RUNNING) == hashlib.sha256(rest.encode()).hexdigest()


def test_normalising_ios_strips_volatile_lines_trailing_blanks_and_crlf() -> None:
    assert normalise(IOS_RUNNING) == IOS_NORMALISED
    assert normalise(
        IOS_RUNNING.replace("! Last configuration change at 10:01:02", "! Last configuration change at 11:00:00")
    ) == (IOS_NORMALISED)
    no_change = IOS_RUNNING.replace(
        "! Last configuration change at 10:01:02 CET Mon Nov 3 2025 by admin",
        "! No configuration change since last restart",
    )
    assert normalise(no_change) == IOS_NORMALISED


def test_normalising_ends_in_one_newline_and_twice_changes_nothing() -> None:
    assert normalise("") == "\n"
    assert normalise("\n\n  \nhostname r  \n\n\n") == "hostname r\n"
    assert normalise("hostname r") == "hostname r\n"
    assert normalise(" indented first\n!\n") == " indented first\n!\n"  # leading whitespace is kept
    assert normalise("x\n\n\ny\n") == "x\n\n\ny\n"  # inner blank lines are kept
    assert normalise(" Building configuration...\n") == " Building configuration...\n"  # only at line start
    for text in (FRR_RUNNING, IOS_RUNNING, "", "a\r\nb\x0bc\u2028d  \n"):
        assert normalise(normalise(text)) == normalise(text)


def test_the_hash_is_of_the_normalised_text_and_sees_every_real_change() -> None:
    sha = config_sha256(IOS_RUNNING)
    assert sha == hashlib.sha256(IOS_NORMALISED.encode()).hexdigest() == text_sha256(IOS_NORMALISED)
    assert text_sha256(IOS_RUNNING) != sha  # a raw hash stays raw
    assert config_sha256(IOS_NORMALISED) == sha
    assert config_sha256(IOS_RUNNING.replace("ntp clock-period 36028797", "ntp clock-period 1")) == sha
    assert config_sha256(IOS_RUNNING.replace("10.0.0.67", "10.0.0.68")) != sha
    assert config_sha256(IOS_RUNNING.replace(" transport input ssh", "  transport input ssh")) != sha
    # text decoded with surrogateescape hashes as the bytes it came from, as Ansible's hash filter does
    assert (
        text_sha256(b"hostname r\xff\n".decode("utf-8", "surrogateescape"))
        == hashlib.sha256(b"hostname r\xff\n").hexdigest()
    )
    assert text_sha256("hostname ø\n") == hashlib.sha256("hostname ø\n".encode()).hexdigest()


def test_the_version_line_is_the_first_line() -> None:
    assert first_line("FRRouting 8.4.4 (ndj-core-01) on Linux(6.1.0).\nCopyright 1996-2005\n") == (
        "FRRouting 8.4.4 (ndj-core-01) on Linux(6.1.0)."
    )
    assert first_line("Cisco IOS Software, C2900\r\nROM: 15.0\r\n") == "Cisco IOS Software, C2900\r"
    assert first_line("one line") == "one line"
    assert first_line("\nsecond") == ""


# -- net_configure's render ------------------------------------------------------------------------


def test_top_lines_are_the_unindented_non_blank_lines() -> None:
    assert top_lines(FRR_RUNNING)[:5] == [
        "Building configuration...",
        "Current configuration:",
        "!",
        "frr version 8.4.4",
        "frr defaults traditional",
    ]
    assert "interface lan" in top_lines(FRR_RUNNING)
    assert " ip address 10.70.102.1/24" not in top_lines(FRR_RUNNING)
    assert top_lines(IOS_RUNNING)[-3:] == ["line vty 0 4", "!", "end"]
    assert all(not line.endswith((" ", "\r")) for line in top_lines(IOS_RUNNING))


ROUTES = [{"prefix": "10.70.10.0/24", "next_hop": "10.255.70.1"}]


def test_routes_make_before_break_and_nothing_once_held() -> None:
    top = top_lines(IOS_RUNNING)
    assert route_changes(top, ROUTES) == [
        "ip route 10.70.10.0/24 10.255.70.1",
        "no ip route 10.70.10.0/24 10.70.252.2",
        "no ip route 10.70.10.0/24 10.70.252.3 5",
    ]
    held = top_lines("ip route 10.70.10.0/24 10.255.70.1\nip route 10.70.100.0/24 10.70.252.2\n")
    assert route_changes(held, ROUTES) == []
    frr = top_lines(FRR_RUNNING)
    assert route_changes(frr, [{"prefix": "10.70.102.0/24", "next_hop": "10.255.70.9"}]) == [
        "ip route 10.70.102.0/24 10.255.70.9"
    ]
    assert route_changes(frr, [{"prefix": "0.0.0.0/0", "next_hop": "10.255.70.9"}]) == [
        "ip route 0.0.0.0/0 10.255.70.9",
        "no ip route 0.0.0.0/0 10.70.250.9",
    ]
    assert route_changes(frr, []) == []


def test_services_add_the_wanted_servers_and_remove_the_others() -> None:
    top = top_lines(IOS_RUNNING)
    assert service_changes(top, "ip name-server", ["10.200.0.53", "10.200.0.54"]) == [
        "ip name-server 10.200.0.54",
        "no ip name-server 10.0.0.53",
    ]  # the vrf line is left alone
    assert service_changes(top, "ntp server", ["10.200.0.123"]) == ["no ntp server 10.0.0.123"]  # options kept
    assert service_changes(top, "logging host", ["10.200.0.114"]) == [
        "logging host 10.200.0.114",
        "no logging host 10.0.0.114",
    ]
    assert service_changes(top, "tacacs-server host", ["10.0.0.49"]) == []
    assert service_changes(top, "ip name-server", []) == []  # an empty list leaves the service alone
    assert service_changes(top, "logging", ["10.200.0.114"]) == [
        "logging 10.200.0.114"
    ]  # `logging facility` is no server
    twice = ["ntp server 10.0.0.1", "ntp server 10.0.0.1 prefer", "ntp server 1.2.3 x", "ntp server a.b.c.d"]
    assert service_changes(twice, "ntp server", ["10.0.0.2"]) == ["ntp server 10.0.0.2", "no ntp server 10.0.0.1"]


def test_extra_lines_are_pushed_when_missing() -> None:
    top = top_lines(FRR_RUNNING)
    assert missing_lines(top, ["no ipv6 forwarding", "ip route 10.1.0.0/16 10.255.70.1"]) == [
        "ip route 10.1.0.0/16 10.255.70.1"
    ]
    assert missing_lines(top, []) == []


def test_pending_lines_leave_out_blanks_and_comments_and_split_into_added_and_removed() -> None:
    rendered = (
        "! Ansible managed\n! FRR (vtysh): static routes only\nip route 10.70.10.0/24 10.255.70.1  \n\n   \n"
        "no ip route 10.70.10.0/24 10.70.252.2\n!\nno ipv6 forwarding\n"
    )
    pending = pending_lines(rendered)
    assert pending == [
        "ip route 10.70.10.0/24 10.255.70.1",
        "no ip route 10.70.10.0/24 10.70.252.2",
        "no ipv6 forwarding",
    ]
    assert split_pending(pending) == {
        "added": ["ip route 10.70.10.0/24 10.255.70.1"],
        "removed": ["ip route 10.70.10.0/24 10.70.252.2", "ipv6 forwarding"],
    }
    assert split_pending([]) == {"added": [], "removed": []}
    assert pending_lines("! only a comment\n") == []


# -- net_restore's remediation (hier_config) -----------------------------------------------------------

FRR_BACKUP = """!
frr version 8.4.4
hostname ndj-core-01
no ipv6 forwarding
!
ip route 10.70.10.0/24 10.70.252.2
!
interface lan
 description client LAN
exit
!
router rip
 network 10.70.102.0/24
 passive-interface default
exit
!
end
"""


def test_restore_plan_inverts_top_level_lines_removals_first() -> None:
    current = FRR_BACKUP.replace("ip route 10.70.10.0/24 10.70.252.2", "ip route 10.70.10.0/24 10.255.70.1")
    current = current.replace("no ipv6 forwarding\n", "")
    commands = ["no ip route 10.70.10.0/24 10.255.70.1", "no ipv6 forwarding", "ip route 10.70.10.0/24 10.70.252.2"]
    assert restore_plan(current, FRR_BACKUP, "frr") == {
        "commands": commands,
        "config": "\n".join(commands) + "\n",
        "unrestorable": [],
    }
    assert restore_plan(FRR_BACKUP, FRR_BACKUP, "frr") == {"commands": [], "config": "", "unrestorable": []}


def test_restore_plan_restores_inside_sections_and_closes_each_with_exit() -> None:
    current = FRR_BACKUP.replace(" description client LAN", " description by hand")
    current = current.replace(" passive-interface default\n", " network 10.99.0.0/16\n")
    current = current.replace("end\n", "interface new\n description x\nexit\nend\n")
    plan = restore_plan(current, FRR_BACKUP, "frr")
    assert plan["commands"] == [
        "no interface new",
        "interface lan",
        " description client LAN",
        "router rip",
        " no network 10.99.0.0/16",
        " passive-interface default",
    ]
    assert plan["config"] == (
        "no interface new\ninterface lan\n description client LAN\nexit\n"
        "router rip\n no network 10.99.0.0/16\n passive-interface default\nexit\n"
    )
    assert plan["unrestorable"] == []
    gone = FRR_BACKUP.replace("router rip\n network 10.70.102.0/24\n passive-interface default\nexit\n", "")
    assert restore_plan(gone, FRR_BACKUP, "frr")["config"] == (
        "router rip\n network 10.70.102.0/24\n passive-interface default\nexit\n"
    )


def test_restore_plan_names_what_no_command_restores() -> None:
    current = FRR_BACKUP.replace("8.4.4", "9.0")
    assert restore_plan(current, FRR_BACKUP, "frr") == {
        "commands": [],
        "config": "",
        "unrestorable": ["frr version 9.0 (not in the backup)", "frr version 8.4.4 (in the backup only)"],
    }
    swapped = FRR_BACKUP.replace(
        " network 10.70.102.0/24\n passive-interface default\n", " passive-interface default\n network 10.70.102.0/24\n"
    )
    assert restore_plan(swapped, FRR_BACKUP, "frr")["unrestorable"] == ["the same lines in another order"]


def test_restore_plan_of_the_captured_frr_config_changed_by_hand() -> None:
    backup = normalise(FRR_RUNNING)
    current = backup.replace("ip route 0.0.0.0/0 10.70.250.9\n", "ip route 10.70.98.0/24 10.255.70.9\n")
    plan = restore_plan(current, backup, "frr")
    assert plan["commands"] == ["no ip route 10.70.98.0/24 10.255.70.9", "ip route 0.0.0.0/0 10.70.250.9"]
    assert plan["unrestorable"] == []
    moved = backup.replace("interface to-core\n description uplink ndj-core-01\n", "interface to-core\n")
    assert restore_plan(moved, backup, "frr")["config"] == (
        "interface to-core\n description uplink ndj-core-01\nexit\n"
    )


def test_restore_plan_on_ios_sections_closed_by_bang() -> None:
    backup = normalise(IOS_RUNNING)
    current = backup.replace("ntp server 10.0.0.123 prefer\n", "").replace("hostname ndj-fw-01", "hostname x")
    current = current.replace(" transport input ssh\n", " transport input ssh\n exec-timeout 5 0\n")
    current = current.replace(" ip address 10.70.250.1", " ip address 10.70.250.2")
    assert restore_plan(current, backup) == {
        "commands": [
            "no hostname x",
            "hostname ndj-fw-01",
            "ntp server 10.0.0.123 prefer",
            "interface GigabitEthernet0/1",
            " ip address 10.70.250.1 255.255.255.252",
            "line vty 0 4",
            " no exec-timeout 5 0",
        ],
        "config": (
            "no hostname x\nhostname ndj-fw-01\nntp server 10.0.0.123 prefer\n"
            "interface GigabitEthernet0/1\n ip address 10.70.250.1 255.255.255.252\nexit\n"
            "line vty 0 4\n no exec-timeout 5 0\nexit\n"
        ),
        "unrestorable": [],
    }
    swapped = backup.replace(
        " ip address 10.70.250.1 255.255.255.252\n ip helper-address 10.0.0.67\n",
        " ip helper-address 10.0.0.67\n ip address 10.70.250.1 255.255.255.252\n",
    )
    assert restore_plan(swapped, backup)["unrestorable"] == ["the same lines in another order"]


# -- the overflyt.network collection ---------------------------------------------------------------

WRAPS = {
    "config_normalise": "normalise",
    "config_sha256": "config_sha256",
    "config_top_lines": "top_lines",
    "config_route_changes": "route_changes",
    "config_service_changes": "service_changes",
    "config_missing_lines": "missing_lines",
    "config_pending_lines": "pending_lines",
    "config_pending_split": "split_pending",
    "config_restore_plan": "restore_plan",
    "first_line": "first_line",
}


def filter_file(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"overflyt_network_{name}", FILTERS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_collection_has_one_documented_filter_per_function_and_each_calls_it() -> None:
    galaxy = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())
    assert (galaxy["namespace"], galaxy["name"]) == ("overflyt", "network")
    assert sorted(p.stem for p in FILTERS.glob("*.py")) == sorted(WRAPS)
    for name, function in WRAPS.items():
        module = filter_file(name)
        assert module.FilterModule().filters() == {name: getattr(config_text, function)}, name
        doc = yaml.safe_load(module.DOCUMENTATION)
        assert doc["name"] == name
        assert doc["short_description"]
        assert doc["description"]
        positional = [p.strip() for p in doc["positional"].split(",")]
        assert positional[0] == "_input"
        assert set(positional) == set(doc["options"]), name
        assert all(option.get("type") for option in doc["options"].values()), name
        assert yaml.safe_load(module.RETURN)["_value"]["type"], name
        assert yaml.safe_load(module.EXAMPLES), name


def test_every_overflyt_network_filter_a_role_uses_exists_and_no_role_has_filters_of_its_own() -> None:
    used: set[str] = set()
    for path in (REPO / "roles").rglob("*"):
        if path.is_file() and path.suffix in (".yml", ".j2"):
            used |= set(re.findall(r"overflyt\.network\.(\w+)", path.read_text()))
    # the collection's modules: action plugins, each with its documentation stub
    modules = {p.stem for p in (COLLECTION / "plugins" / "modules").glob("*.py")}
    assert (
        modules
        == {p.stem for p in (COLLECTION / "plugins" / "action").glob("*.py")}
        == {"running_config", "show", "read_backup"}
    )
    assert used <= set(WRAPS) | modules, sorted(used - set(WRAPS) - modules)
    assert {"running_config", "show", "read_backup"} <= used
    assert {"config_normalise", "config_sha256", "config_restore_plan", "config_pending_lines"} <= used
    assert [p.relative_to(REPO) for p in (REPO / "roles").glob("net_*/filter_plugins")] == []


# net_backup's normalisation as it was written in Jinja before these filters (its ignore list was
# config_text.VOLATILE): the filter's backup must stay byte-identical to it
PLAYBOOK = r"""
- name: The overflyt.network filters under Ansible
  hosts: localhost
  gather_facts: false
  vars:
    samples: "{{ lookup('ansible.builtin.file', 'samples.json') | from_json }}"
    ignore_lines: "{{ lookup('ansible.builtin.file', 'volatile.json') | from_json }}"
    ignore_re: "{{ ('(' ~ (ignore_lines | join(')|(')) ~ ')') if ignore_lines else '(?!)' }}"
  tasks:
    - name: Normalise each sample as net_backup does
      ansible.builtin.set_fact:
        new_backups: "{{ new_backups | default({}) | combine({item.key: item.value | overflyt.network.config_normalise}) }}"
      loop: "{{ samples | dict2items }}"

    - name: Normalise each sample as net_backup's Jinja expression did
      ansible.builtin.set_fact:
        old_backups: "{{ old_backups | default({}) | combine({item.key: (item.value.splitlines() | map('regex_replace', '\\s+$', '')
          | reject('match', ignore_re) | join('\n')).strip('\n') ~ '\n'}) }}"
      loop: "{{ samples | dict2items }}"

    - name: Write one backup as net_backup writes it
      ansible.builtin.copy:
        content: "{{ samples.ios | overflyt.network.config_normalise }}"
        dest: "{{ playbook_dir }}/ios.cfg"
        mode: "0600"

    - name: Write what every filter returns
      ansible.builtin.copy:
        content: "{{ results | to_json }}"
        dest: "{{ playbook_dir }}/results.json"
        mode: "0600"
      vars:
        top: "{{ samples.ios | overflyt.network.config_top_lines }}"
        results:
          new_backups: "{{ new_backups }}"
          old_backups: "{{ old_backups }}"
          sha256: "{{ samples.ios | overflyt.network.config_sha256 }}"
          normalised_hash: "{{ samples.ios | overflyt.network.config_normalise | ansible.builtin.hash('sha256') }}"
          top: "{{ top }}"
          routes: "{{ top | overflyt.network.config_route_changes([{'prefix': '10.70.10.0/24', 'next_hop': '10.255.70.1'}]) }}"
          dns: "{{ top | overflyt.network.config_service_changes('ip name-server', ['10.200.0.53', '10.200.0.54']) }}"
          extra: "{{ top | overflyt.network.config_missing_lines(['hostname ndj-fw-01', 'ip route 10.1.0.0/16 10.255.70.1']) }}"
          pending: "{{ '! x\nip route a b \n\nno ip route c d\n' | overflyt.network.config_pending_lines }}"
          split: "{{ ['ip route a b', 'no ip route c d'] | overflyt.network.config_pending_split }}"
          restore: "{{ samples.frr | overflyt.network.config_normalise
                       | overflyt.network.config_restore_plan(samples.frr_backup, 'frr') }}"
          version: "{{ samples.frr | overflyt.network.first_line }}"
"""


def test_ansible_runs_the_filters_by_fqcn_and_the_backup_is_byte_identical_to_the_old_jinja(tmp_path: Path) -> None:
    samples = {
        "frr": FRR_RUNNING,
        "ios": IOS_RUNNING,
        "frr_backup": normalise(FRR_RUNNING).replace(
            "ip route 0.0.0.0/0 10.70.250.9", "ip route 0.0.0.0/0 10.70.250.1"
        ),
        "noisy": "\n\n" + FRR_RUNNING.replace("\n", "  \r\n") + " \t\n\n",
        "tricky": "hostname r\x0bip route x y \u2028ntp clock-period 5\n!\n  \n",
        "empty": "",
    }
    (tmp_path / "samples.json").write_text(json.dumps(samples))
    (tmp_path / "volatile.json").write_text(json.dumps(list(VOLATILE)))
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    done = ansible_playbook(tmp_path, "localhost", timeout_s=120)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results.pop("new_backups") == results.pop("old_backups") == {k: normalise(v) for k, v in samples.items()}
    assert (tmp_path / "ios.cfg").read_bytes() == IOS_NORMALISED.encode()
    top = top_lines(IOS_RUNNING)
    assert results == {
        "sha256": config_sha256(IOS_RUNNING),
        "normalised_hash": config_sha256(IOS_RUNNING),
        "top": top,
        "routes": route_changes(top, ROUTES),
        "dns": service_changes(top, "ip name-server", ["10.200.0.53", "10.200.0.54"]),
        "extra": ["ip route 10.1.0.0/16 10.255.70.1"],
        "pending": ["ip route a b", "no ip route c d"],
        "split": {"added": ["ip route a b"], "removed": ["ip route c d"]},
        "restore": {
            "commands": ["no ip route 0.0.0.0/0 10.70.250.9", "ip route 0.0.0.0/0 10.70.250.1"],
            "config": "no ip route 0.0.0.0/0 10.70.250.9\nip route 0.0.0.0/0 10.70.250.1\n",
            "unrestorable": [],
        },
        "version": "Building configuration...",
    }
