"""Run a playbook of a unit test with the venv's real ansible-playbook and this repository's
collections, on hosts the test names with a local connection (no lab)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def ansible_playbook(
    directory: Path, hosts: str, timeout_s: int = 180, *, inventory: str | None = None, args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """ansible-playbook on ``directory``/play.yml from ``directory``, with an inventory of ``hosts``
    (names separated by spaces), each with a local connection and this venv's python, or with the
    INI ``inventory`` given; ``args`` go on its command line."""
    if inventory is None:
        inventory = "".join(
            f"{host} ansible_connection=local ansible_python_interpreter={sys.executable}\n" for host in hosts.split()
        )
    (directory / "hosts").write_text(inventory)
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(REPO / "collections"),
        ANSIBLE_LOCAL_TEMP=str(directory / "tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="0",
    )
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "hosts", *args, "play.yml"],
        cwd=directory, env=env, capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
