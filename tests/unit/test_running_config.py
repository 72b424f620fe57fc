"""overflyt.network.running_config and overflyt.network.show, the action plugins the net_* roles read
a device with, and overflyt.network.read_backup, net_restore's check and read of a backup: the backup running_config writes (``config_text.save_backup``, which the plugin
calls) and the earlier backup it refuses to replace (the guard net_backup had as three tasks), the
clear failure on a connection that is not network_cli, and show's refusal of any command that is not
a show command, read_backup's refusal of a missing or altered backup, through a real ansible-playbook. Its read over a real router is proven in
the lab (test_netops, test_molecule). The plugin is not imported here: Ansible's collection loader
wants to be the only one in a process that has one already."""

from __future__ import annotations

import base64
import hashlib
import socket
import stat
from pathlib import Path

from localplay import ansible_playbook

from overflyt.steps.config_text import config_sha256, normalise, save_backup

REPO = Path(__file__).resolve().parents[2]
COLLECTION = REPO / "collections" / "ansible_collections" / "overflyt" / "network"
PLUGIN = COLLECTION / "plugins" / "action" / "running_config.py"
RUNNING = "Building configuration...\n\nhostname r1\nip route 10.1.0.0/16 10.255.70.1   \n!\nend\n"


def test_the_backup_is_the_normalised_text_0600_and_a_rerun_with_the_same_text_keeps_it(tmp_path: Path) -> None:
    target = tmp_path / "r1.cfg"
    assert save_backup(str(target), normalise(RUNNING), overwrite=False, host="r1") is None
    assert target.read_bytes() == normalise(RUNNING).encode()
    assert hashlib.sha256(target.read_bytes()).hexdigest() == config_sha256(RUNNING)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    before = target.stat().st_mtime_ns
    assert save_backup(str(target), normalise(RUNNING), overwrite=False, host="r1") is None
    assert target.stat().st_mtime_ns == before
    assert not (tmp_path / "r1.cfg.partial").exists()


def test_a_different_earlier_backup_is_refused_unless_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "r1.cfg"
    target.write_text("hostname r1\nip route 0.0.0.0/0 10.0.0.1\n")
    old = hashlib.sha256(target.read_bytes()).hexdigest()
    refusal = save_backup(str(target), normalise(RUNNING), overwrite=False, host="r1")
    assert refusal is not None
    assert f"{target} already holds a different configuration of r1 (sha256 {old})" in refusal
    assert "net_backup_overwrite" in refusal
    assert hashlib.sha256(target.read_bytes()).hexdigest() == old
    assert save_backup(str(target), normalise(RUNNING), overwrite=True, host="r1") is None
    assert target.read_bytes() == normalise(RUNNING).encode()


def test_the_plugin_saves_and_hashes_with_config_text() -> None:
    source = PLUGIN.read_text()
    assert "from overflyt.steps.config_text import config_sha256, normalise, save_backup" in source
    assert 'save_backup(args["backup_file"], config, overwrite=args["overwrite"], host=host)' in source


def test_ansible_resolves_it_by_fqcn_and_it_refuses_a_connection_that_is_not_network_cli(tmp_path: Path) -> None:
    (tmp_path / "play.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Read\n      overflyt.network.running_config:\n"
        f"        backup_file: {tmp_path}/r1.cfg\n"
    )
    done = ansible_playbook(tmp_path, "r1", timeout_s=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "r1: running_config needs an ansible.netcommon.network_cli connection, not local" in done.stdout
    assert not (tmp_path / "r1.cfg").exists()


def test_show_refuses_a_command_that_is_not_a_show_command_before_it_sends_anything(tmp_path: Path) -> None:
    # a local connection: a command that got past the refusal would fail on the connection instead
    (tmp_path / "play.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Show then configure\n      overflyt.network.show:\n"
        "        commands: [show version, configure terminal, ' shows ']\n"
        "    - name: Only show\n      overflyt.network.show:\n"
        "        commands: [show version]\n"
        "      ignore_errors: true\n"
    )
    done = ansible_playbook(tmp_path, "r1", timeout_s=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        "r1: overflyt.network.show sends only show commands; not show commands: 'configure terminal', 'shows'"
        in done.stdout
    ), done.stdout
    assert "Only show" not in done.stdout  # the play ended at the refusal


def test_show_runs_show_commands_only_over_network_cli(tmp_path: Path) -> None:
    (tmp_path / "play.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Only show\n      overflyt.network.show:\n"
        "        commands: [show version]\n"
    )
    done = ansible_playbook(tmp_path, "r1", timeout_s=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "r1: show needs an ansible.netcommon.network_cli connection, not local" in done.stdout, done.stdout


def test_read_backup_reads_the_file_it_was_given_and_refuses_a_missing_or_altered_one(tmp_path: Path) -> None:
    backup = tmp_path / "r1.cfg"
    assert save_backup(str(backup), normalise(RUNNING), overwrite=False, host="r1") is None
    taken = config_sha256(RUNNING)
    (tmp_path / "play.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Read\n      overflyt.network.read_backup:\n"
        f"        path: {backup}\n        sha256: {taken}\n      register: read\n"
        '    - name: Say\n      ansible.builtin.debug:\n        msg: "READ {{ read.content | b64encode }} {{ read.sha256 }}"\n'
    )
    done = ansible_playbook(tmp_path, "r1", timeout_s=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"READ {base64.b64encode(normalise(RUNNING).encode()).decode()} {taken}" in done.stdout, done.stdout

    backup.write_text(normalise(RUNNING).replace("hostname r1", "hostname r2"))
    altered = hashlib.sha256(backup.read_bytes()).hexdigest()
    done = ansible_playbook(tmp_path, "r1", timeout_s=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"backup {backup} of r1 has sha256 {altered}, not the {taken} it had when it was taken" in done.stdout
    assert "READ" not in done.stdout

    backup.unlink()
    done = ansible_playbook(tmp_path, "r1", timeout_s=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"backup {backup} of r1 is missing" in done.stdout


def test_running_config_refuses_any_command_that_is_not_a_show_command_before_it_sends_anything(tmp_path: Path) -> None:
    (tmp_path / "play.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Version, then configure\n      overflyt.network.running_config:\n"
        "        show: [show version, write memory]\n"
        "      ignore_errors: true\n"
        "    - name: Configure as the configuration command\n      overflyt.network.running_config:\n"
        "        command: copy running-config startup-config\n"
    )
    done = ansible_playbook(tmp_path, "r1", timeout_s=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "r1: overflyt.network.running_config sends only show commands; not show commands: 'write memory'" in (
        done.stdout
    ), done.stdout
    assert (
        "r1: overflyt.network.running_config sends only show commands; not show commands: "
        "'copy running-config startup-config'" in done.stdout
    ), done.stdout


def test_only_the_tasks_that_read_the_device_start_an_ansible_connection_process(tmp_path: Path) -> None:
    """A task of a network_cli host makes Ansible start an ``ansible-connection`` process (a Python
    start-up and Ansible's imports, ~0.5 CPU s) unless its action never touches the device:
    read_backup and ansible.utils.fact_diff say so, and ansible.utils.cli_parse of text already read
    (which says it may) is delegated to the controller, as net_facts does. Only the show task tries
    the device (nothing listens on its port: it fails)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    backup = tmp_path / "r1.cfg"
    assert save_backup(str(backup), normalise(RUNNING), overwrite=False, host="r1") is None
    template = tmp_path / "words.textfsm"
    template.write_text("Value NAME (\\S+)\nValue STATE (\\S+)\n\nStart\n  ^${NAME} is ${STATE} -> Record\n")
    (tmp_path / "play.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        f"    - name: Read the backup\n      overflyt.network.read_backup:\n        path: {backup}\n"
        "    - name: Diff\n      ansible.utils.fact_diff:\n        before: [a]\n        after: [b]\n"
        "    - name: Parse on the controller\n      ansible.utils.cli_parse:\n"
        "        text: 'lo is up'\n"
        "        parser: {name: ansible.utils.textfsm, template_path: '" + str(template) + "'}\n"
        "      delegate_to: localhost\n"
        "    - name: Ask the device\n      overflyt.network.show:\n        commands: [show version]\n"
    )
    inventory = (
        f"r1 ansible_connection=ansible.netcommon.network_cli ansible_network_os=cisco.ios.ios"
        f" ansible_host=127.0.0.1 ansible_port={port} ansible_user=nobody ansible_password=none"
        f" ansible_network_cli_ssh_type=paramiko ansible_connect_timeout=5\n"
    )
    done = ansible_playbook(tmp_path, "r1", timeout_s=120, inventory=inventory, args=("-vvvv",))
    assert done.returncode != 0, done.stdout + done.stderr
    out = done.stdout
    tasks = (
        out.index("TASK [Read the backup]"),
        out.index("TASK [Diff]"),
        out.index("TASK [Parse on the controller]"),
        out.index("TASK [Ask the device]"),
    )
    starts = [i for i in range(len(out)) if out.startswith("attempting to start connection", i)]
    assert len(starts) == 1, out
    assert starts[0] > tasks[3], out
    assert "ok: [r1]" in out[tasks[0] : tasks[1]], out
    assert "changed: [r1]" in out[tasks[1] : tasks[2]], out  # fact_diff: a difference
    assert "ok: [r1 -> localhost]" in out[tasks[2] : tasks[3]], out
