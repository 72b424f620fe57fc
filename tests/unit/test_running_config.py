"""overflyt.network.running_config, the action plugin the net_* roles read a device with: the
backup it writes and the earlier backup it refuses to replace (the guard net_backup had as three
tasks), and the clear failure on a connection that is not network_cli, through a real
ansible-playbook. Its read over a real router is proven in the lab (test_netops, test_molecule)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from overflyt.steps.config_text import config_sha256, normalise

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "collections" / "ansible_collections" / "overflyt" / "network"
PLUGIN = COLLECTION / "plugins" / "action" / "running_config.py"
RUNNING = "Building configuration...\n\nhostname r1\nip route 10.1.0.0/16 10.255.70.1   \n!\nend\n"


def _plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("overflyt_running_config_under_test", PLUGIN)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_backup_is_the_normalised_text_0600_and_a_rerun_with_the_same_text_keeps_it(tmp_path: Path) -> None:
    save = _plugin()._save
    target = tmp_path / "r1.cfg"
    assert save(str(target), normalise(RUNNING), False, "r1") is None
    assert target.read_bytes() == normalise(RUNNING).encode()
    assert hashlib.sha256(target.read_bytes()).hexdigest() == config_sha256(RUNNING)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    before = target.stat().st_mtime_ns
    assert save(str(target), normalise(RUNNING), False, "r1") is None
    assert target.stat().st_mtime_ns == before
    assert not (tmp_path / "r1.cfg.partial").exists()


def test_a_different_earlier_backup_is_refused_unless_overwrite(tmp_path: Path) -> None:
    save = _plugin()._save
    target = tmp_path / "r1.cfg"
    target.write_text("hostname r1\nip route 0.0.0.0/0 10.0.0.1\n")
    old = hashlib.sha256(target.read_bytes()).hexdigest()
    refusal = save(str(target), normalise(RUNNING), False, "r1")
    assert refusal is not None
    assert f"{target} already holds a different configuration of r1 (sha256 {old})" in refusal
    assert "net_backup_overwrite" in refusal
    assert hashlib.sha256(target.read_bytes()).hexdigest() == old
    assert save(str(target), normalise(RUNNING), True, "r1") is None
    assert target.read_bytes() == normalise(RUNNING).encode()


def test_ansible_resolves_it_by_fqcn_and_it_refuses_a_connection_that_is_not_network_cli(tmp_path: Path) -> None:
    (tmp_path / "play.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Read\n      overflyt.network.running_config:\n"
        f"        backup_file: {tmp_path}/r1.cfg\n"
    )
    (tmp_path / "hosts").write_text(f"r1 ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(REPO / "collections"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
        ANSIBLE_NOCOLOR="1",
    )
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "hosts", "play.yml"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "r1: running_config needs an ansible.netcommon.network_cli connection, not local" in done.stdout
    assert not (tmp_path / "r1.cfg").exists()
