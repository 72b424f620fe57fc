"""One normaliser and one hash for device configurations (issue 17, point 3): every role that hashes
a configuration does it through ``overflyt.network.config_sha256`` (a wrapper of
``overflyt.steps.config_text.config_sha256``, which discovery imports), so an IOS ``ntp
clock-period`` drift or the stamp a ``write memory`` rewrites changes no hash and the stale-plan
check does not refuse a site for them."""

from __future__ import annotations

import re
from pathlib import Path

from overflyt.discovery import devices as discovery_devices
from overflyt.plan import load_plan
from overflyt.precheck import fingerprint
from overflyt.precheck.facts import DeviceFacts, EstateFacts
from overflyt.steps import config_text

REPO = Path(__file__).resolve().parents[2]
PLAN = load_plan(REPO / "inventories" / "norddjurs" / "plan.yml")
HOST = "ndj-kattegat-rtr-01"

NIGHTLY = (
    "Building configuration...\r\n\r\nCurrent configuration : 1234 bytes\r\n!\r\n"
    "! Last configuration change at 10:01:02 CET Mon Nov 3 2025 by admin\r\n"
    "! NVRAM config last updated at 09:00:00 CET Mon Nov 3 2025 by admin\r\n"
    "!\r\nversion 15.2\r\nhostname ndj-kattegat-rtr-01\r\n!\r\n"
    "ntp clock-period 36028797\r\nntp server 10.0.0.123 prefer\r\n"
    "ip route 0.0.0.0/0 10.70.250.9\r\n!\r\ninterface GigabitEthernet0/1\r\n"
    " ip address 10.70.250.10 255.255.255.252\r\n!\r\nend\r\n"
)
# The morning of the cutover: the clock drifted, someone ran `write memory` (IOS rewrites the NVRAM
# stamp and the byte count) — no configuration change.
MORNING = (
    NIGHTLY.replace("ntp clock-period 36028797", "ntp clock-period 36028811")
    .replace("09:00:00 CET Mon Nov 3 2025", "06:12:40 CET Tue Nov 4 2025")
    .replace("1234 bytes", "1236 bytes")
)
CHANGED = NIGHTLY.replace("ip route 0.0.0.0/0 10.70.250.9", "ip route 0.0.0.0/0 10.70.250.1")


def test_ntp_clock_period_drift_and_a_write_memory_stamp_do_not_change_the_hash() -> None:
    assert MORNING != NIGHTLY
    assert config_text.config_sha256(MORNING) == config_text.config_sha256(NIGHTLY)
    assert config_text.config_sha256(
        NIGHTLY.replace("! NVRAM config last updated", "! No configuration change since last restart")
    ) == config_text.config_sha256(NIGHTLY)
    assert config_text.config_sha256(CHANGED) != config_text.config_sha256(NIGHTLY)


def facts_with(config: str) -> EstateFacts:
    device = DeviceFacts(
        hostname=HOST, address="127.0.70.5", port=2222, reachable=True, login=True,
        running_config_sha256=config_text.config_sha256(config),
    )  # fmt: skip
    return EstateFacts(devices={HOST: device})


def test_the_stale_plan_check_does_not_refuse_a_site_for_them_but_does_for_a_real_change() -> None:
    saved = fingerprint.take(PLAN, 2, ["kattegatskolen"], facts_with(NIGHTLY))
    assert saved["devices"][HOST] == config_text.config_sha256(NIGHTLY)
    assert fingerprint.stale(PLAN, saved, fingerprint.take(PLAN, 2, ["kattegatskolen"], facts_with(MORNING))) == {}
    refused = fingerprint.stale(PLAN, saved, fingerprint.take(PLAN, 2, ["kattegatskolen"], facts_with(CHANGED)))
    assert list(refused) == ["kattegatskolen"]
    assert refused["kattegatskolen"][0].startswith(f"device {HOST}'s running config changed since")


def test_every_role_hashes_a_configuration_with_the_one_filter_and_discovery_imports_the_same_function() -> None:
    reports: dict[str, str] = {}
    for path in sorted((REPO / "roles").glob("net_*/tasks/*.yml")):
        text = path.read_text()
        assert "hash('sha256')" not in text, f"{path.relative_to(REPO)} hashes raw text"
        for key, expression in re.findall(r"(\w*sha256): \"\{\{ (.*?) \}\}\"", text):
            reports[f"{path.parent.parent.name}.{key}"] = expression
    # net_facts' and net_backup's hashes (and files) come from overflyt.network.running_config,
    # which calls config_text; the other roles hash with the filter
    assert reports.pop("net_facts.config_sha256") == "__net_facts_config.sha256"
    # read_backup's argument: the hash recorded when the backup was taken, which it checks the file against
    assert reports.pop("net_restore.sha256") == "net_restore_backup_sha256"
    assert "overflyt.network.running_config:" in (REPO / "roles/net_facts/tasks/main.yml").read_text()
    assert {"net_verify.config_sha256", "net_restore.after_sha256"} <= set(reports)
    assert all(e.endswith("| overflyt.network.config_sha256") for e in reports.values()), reports
    backup = (REPO / "roles/net_backup/tasks/main.yml").read_text()
    assert "overflyt.network.running_config:" in backup
    assert "'sha256': __net_backup_shown.sha256" in backup
    plugin = REPO / "collections/ansible_collections/overflyt/network/plugins/action/running_config.py"
    assert '"sha256": config_sha256(text)' in plugin.read_text()
    assert discovery_devices.config_sha256 is config_text.config_sha256
