"""A wave in the lab on an inventory in the layouts real teams use (issue 17, point 2): the light
copy of the sample plan (five VMs fewer than Norddjurs), its inventory rewritten so that
``hosts.yml`` only names the hosts, each device's address and port live in
``host_vars/<host>.yaml``, ``group_vars/network/`` is a directory, and the devices' password is an
inline ``!vault`` value (vault id ``lab``, its password from ``ANSIBLE_VAULT_IDENTITY_LIST``). The
plan's own credentials reference holds a wrong password, so only the vault value can log in."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from ansible.parsing.vault import VaultLib, VaultSecret

from overflyt.cutover.wave import Approval, rollback_site, run_wave
from overflyt.plan import load

from .labtools import estate, light_plan, side_reached

pytestmark = pytest.mark.lab


def rewrite_inventory(lab: dict[str, Any], plan_dir: Path, vault_pass: Path) -> str:
    hosts = "".join(f"            {d['name']}:\n" for d in lab["devices"])
    (plan_dir / "hosts.yml").write_text(
        f"all:\n  children:\n    network:\n      children:\n        frr:\n          hosts:\n{hosts}"
    )
    shutil.rmtree(plan_dir / "host_vars")
    (plan_dir / "host_vars").mkdir()
    for d in lab["devices"]:
        (plan_dir / "host_vars" / f"{d['name']}.yaml").write_text(
            f"ansible_host: {d['address']}\nansible_port: {d['port']}\n"
        )
    network = plan_dir / "group_vars" / "network"
    network.mkdir()
    (plan_dir / "group_vars" / "network.yml").rename(network / "connection.yml")
    password = lab["devices"][0]["password"]
    vault_pass.write_text("lab vault password\n")
    text = VaultLib().encrypt(password, VaultSecret(b"lab vault password"), vault_id="lab").decode()
    (network / "vault.yml").write_text(
        "ansible_password: !vault |\n" + "".join(f"  {line}\n" for line in text.splitlines())
    )
    return str(password)


def test_a_wave_runs_on_host_vars_yaml_a_group_vars_directory_and_an_inline_vault_password(
    lab: dict[str, Any], si: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in lab["env"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OVERFLYT_NDJ_NETWORK_PASSWORD", "not the devices' password")
    plan = light_plan(lab, tmp_path)
    vault_pass = tmp_path / "vault-pass"
    password = rewrite_inventory(lab, plan.parent, vault_pass)
    monkeypatch.setenv("ANSIBLE_VAULT_IDENTITY_LIST", f"lab@{vault_pass}")
    loaded = load(plan)
    assert loaded.connections.host_vars["ndj-core-01"]["ansible_port"] == 2222
    assert loaded.connections.secrets["ndj-core-01"] == frozenset({"ansible_password"})
    before = estate(si, lab)

    outcome = run_wave(plan, 1, dry_run=False, approval=Approval("Test (inventory)", "CHG-17"), outside_window=True)
    assert outcome.exit_code == 0, [(s.site, s.status, s.error) for s in outcome.sites]
    assert [s.status for s in outcome.sites] == ["done"]
    assert side_reached(lab, "kattegatskolen", "10.70.10.11") == "target"
    records = Path(os.environ["OVERFLYT_STATE_DIR"])
    assert not [p for p in records.rglob("*") if p.is_file() and password.encode() in p.read_bytes()]

    back = rollback_site(plan, "grenaa-raadhus")
    assert back.exit_code == 0, [(s.site, s.status, s.error) for s in back.sites]
    assert estate(si, lab) == before
    assert side_reached(lab, "kattegatskolen", "10.70.10.11") == "source"
