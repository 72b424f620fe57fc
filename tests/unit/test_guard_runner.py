"""ansible-playbook under the guard, through the runner adapter and ansible-runner themselves: a
playbook on localhost daemonises a grandchild (as ansible-connection does), then hangs. A cancel
stops it as before, within a second (status canceled, rc 254: ansible-runner SIGKILLs the
process group it spawned), and the daemon, in a session of its own, ends with it; the run record lists the guard
and ansible-playbook with the run's process as their owner."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from overflyt.ansible import processes
from overflyt.ansible.cancel import POLL_S
from overflyt.ansible.runner import run_playbook

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the guard is Linux's (prctl)")

PLAYBOOK = """\
- name: Leave a daemon behind, then hang
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Daemonise a grandchild in a session of its own
      ansible.builtin.shell: "setsid -f sh -c 'echo $$ > {{ daemon_pidfile }}; exec sleep 300'"
      changed_when: true
    - name: Hang
      ansible.builtin.command: sleep 300
      changed_when: true
"""


def _processes_naming(path: Path) -> list[int]:
    """Every process whose environment names ``path`` (ansible-playbook's ANSIBLE_LOCAL_TEMP lies in
    the private dir; what it starts inherits that)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and processes.identify(int(entry.name)) is not None:
            try:
                if str(path).encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_cancelled_playbook_leaves_nothing_behind(tmp_path: Path) -> None:
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "hang.yml").write_text(PLAYBOOK)
    pidfile = tmp_path / "daemon.pid"
    record = tmp_path / "processes.jsonl"
    inventory = {
        "all": {
            "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
            "vars": {"daemon_pidfile": str(pidfile)},
        }
    }
    asked: list[float] = []

    def cancel() -> bool:
        if pidfile.exists() and not asked:
            asked.append(time.monotonic())
        return bool(asked) and time.monotonic() - asked[0] > 1  # the hanging task has started

    result = run_playbook(
        "hang.yml", inventory, tmp_path / "private", run_id="t", dry_run=False, timeout_s=120, cancel=cancel,
        project=tmp_path, process_record=record,
    )  # fmt: skip
    assert (result.status, result.rc) == ("canceled", 254)
    # ansible-runner asks for a cancel only between waits for output; overflyt makes those short
    # (its default of 5 s let a short playbook run to its end after the cancel, issue 19's CI)
    assert time.monotonic() - (asked[0] + 1) < POLL_S + 1.5, "the cancel was seen late"
    daemon = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while processes.identify(daemon) is not None:
        assert time.monotonic() < deadline, "the daemonised grandchild outlived the cancelled playbook"
        time.sleep(0.05)
    left = [pid for pid in _processes_naming(tmp_path) if pid != os.getpid()]
    assert left == [], "processes of the playbook (their environment names its private dir) outlived it"
    lines = processes.recorded(record)
    assert [r.name for r in lines] == ["overflyt guard", "overflyt guard", "ansible-playbook"]
    assert {r.owner for r in lines} == {processes.identify(os.getpid())}
    assert not any(processes.alive(r.process) for r in lines)
