"""A failed cutover says why — naming the endpoint and the cause — even when the task that failed
handles a secret (issue 22).

Each fault hits a real peer from the run's own step and event callbacks, on the light wave 1 (one
site, three VMs): the vCenter simulator is paused (SIGSTOP, then SIGCONT) before the second batch's
read, the devices' login user gets a new password between the pre-check and the backup, and the
target datastores leave the target datacenter after the pre-check. Each site ends rolled back,
its reason is the same line in the outcome, report.md, report.json and record.json, and nothing a
person reads says "output hidden" or holds a secret. A wave blocked by a critical pre-check
finding names it on the console and in the Prefect run's state message.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pyVmomi import vim

from overflyt.ansible.runner import AnsibleEvent
from overflyt.cutover.outcome import WaveOutcome
from overflyt.cutover.wave import Approval, run_wave

from .labtools import estate, find, light_plan, wait

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("lab_env")]

APPROVAL = Approval("Natvagt (test)", "CHG-0022")
# The vm_migrate role's first task: the read before a launch's relocations (the pause waits for it).
READ_TASK = yaml.safe_load((Path(__file__).resolve().parents[2] / "roles/vm_migrate/tasks/main.yml").read_text())[0][
    "name"
]
assert READ_TASK.startswith("Read where the launch's VMs are"), READ_TASK


@pytest.fixture
def light(lab: dict[str, Any], tmp_path: Path) -> Path:
    return light_plan(lab, tmp_path)


def secrets_of(lab: dict[str, Any]) -> list[str]:
    return [v["password"] for v in lab["vcenters"]] + [lab["devices"][0]["password"]]


def said(outcome: WaveOutcome, lab: dict[str, Any]) -> str:
    """The rolled-back site's reason, checked to be the same line in every place a person reads it,
    none of which says "output hidden" or holds a secret."""
    [site] = outcome.sites
    assert site.status == "rolled_back", (site.status, site.error)
    assert site.error is not None
    run_dir = Path(outcome.run_dir)
    texts = {name: (run_dir / name).read_text() for name in ("record.json", "report.md", "report.json")}
    assert site.error in texts["report.md"]
    assert site.error in json.loads(texts["report.json"])["sites"][0]["error"]
    assert site.error in json.dumps(json.loads(texts["record.json"]), ensure_ascii=False)
    for name, text in texts.items():
        assert "output hidden" not in text, name
        assert "withheld" not in text, name
        assert not [s for s in secrets_of(lab) if s in text], name
    return site.error


def set_password(user: str, password: str) -> None:
    subprocess.run(["chpasswd"], input=f"{user}:{password}\n", text=True, check=True)


@pytest.fixture
def paused_simulator(lab: dict[str, Any]) -> Iterator[list[int]]:
    """The simulator's pid, and SIGCONT to it however the test ends."""
    pid = int(lab["vcsim_pid"])
    try:
        yield [pid]
    finally:
        os.kill(pid, signal.SIGCONT)


def test_vcenter_paused_mid_move_rolls_back_and_names_the_vcenter(
    lab: dict[str, Any], si: Any, light: Path, paused_simulator: list[int]
) -> None:
    """The first batch moves; the vCenter stops answering as the second batch reads where its VMs
    are (the read is a no_log task: it carries the vCenter's password), and answers again once the
    migrate step has failed. The moved VMs go back; the reason names the vCenter and the timeout."""
    before = estate(si, lab)
    [pid] = paused_simulator
    reads: list[str] = []

    def on_event(event: AnsibleEvent) -> None:
        if event.status == "start" and event.task == READ_TASK:
            reads.append(event.task)
            if len(reads) == 2:
                os.kill(pid, signal.SIGSTOP)

    def on_step(site: str, step: str, status: str) -> None:
        if step == "migrate" and status != "started":
            os.kill(pid, signal.SIGCONT)

    outcome = run_wave(
        light, 1, dry_run=False, approval=APPROVAL, outside_window=True, on_event=on_event, on_step=on_step
    )
    error = said(outcome, lab)
    assert len(reads) >= 2, "the second batch never started"
    assert re.search(r"ndj-dhcp01: vCenter \S+ \(https://127\.0\.0\.1:\d+/sdk\) did not answer within 15 s", error), (
        error
    )
    assert "(moved before the failure: ndj-dc01, ndj-dc02)" in error, error
    assert estate(si, lab) == before


def test_device_password_changed_after_the_precheck_rolls_back_and_names_device_and_user(
    lab: dict[str, Any], si: Any, light: Path
) -> None:
    """The devices' login user gets a new password once the pre-check has passed: the backup is
    refused, and the reason names the device, its address, the user and the credentials entry."""
    before = estate(si, lab)
    user, password = lab["devices"][0]["user"], lab["devices"][0]["password"]

    def on_step(site: str, step: str, status: str) -> None:
        if step == "backup" and status == "started":
            set_password(user, "Changed-by-someone-else-22")
        elif step == "backup":
            set_password(user, password)  # the rollback may reach the devices again

    try:
        outcome = run_wave(light, 1, dry_run=False, approval=APPROVAL, outside_window=True, on_step=on_step)
    finally:
        set_password(user, password)
    error = said(outcome, lab)
    assert error.startswith("backup: "), error
    assert re.search(rf"device ndj-\S+ \(\S+:\d+\) refused the login of user {user}", error), error
    assert "check credentials entry ndj-network (user and secret)" in error, error  # the plan's entry, named
    assert "Changed-by-someone-else-22" not in error
    assert estate(si, lab) == before


def test_target_datastore_removed_after_the_precheck_rolls_back_and_names_it(
    lab: dict[str, Any], si: Any, light: Path
) -> None:
    """The target datastores leave the target datacenter once the migrate step has started (the
    lab moves them into the source datacenter: govmomi 0.24's simulator cannot remove a datastore
    that holds files). No VM moves; the reason names the datastore, datacenter and vCenter."""
    elsewhere = find(si, vim.Datacenter, "NDJ-DC").datastoreFolder
    stores = [find(si, vim.Datastore, name) for name in ("mj-ds-gold-01", "mj-ds-silver-01")]
    homes = [ds.parent for ds in stores]
    before = estate(si, lab)

    def put_back() -> None:
        for ds, home in zip(stores, homes, strict=True):
            if ds.parent != home:
                wait(home.MoveIntoFolder_Task([ds]))

    def on_step(site: str, step: str, status: str) -> None:
        if step == "migrate" and status == "started":
            wait(elsewhere.MoveIntoFolder_Task(stores))
        elif step == "migrate":
            put_back()

    try:
        outcome = run_wave(light, 1, dry_run=False, approval=APPROVAL, outside_window=True, on_step=on_step)
    finally:
        put_back()
    assert [ds.parent for ds in stores] == homes, "the datastores are not back"
    error = said(outcome, lab)
    assert re.search(
        r"datastore mj-ds-gold-01 is missing from datacenter MJ-DC1 of vCenter mj-vcenter \(https://", error
    ), error
    assert estate(si, lab) == before


def test_a_blocked_wave_names_its_critical_finding_on_the_console_and_in_prefect(
    lab: dict[str, Any], si: Any, light: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Wave 1's window is months ahead: a real run without --outside-window is blocked by the
    pre-check's critical plan.window finding, which the CLI's output and the run's state say."""
    from flows import MigrateWaveParams, migrate_wave

    from overflyt.cli.wave import _flow_result, _print_wave

    before = estate(si, lab)
    state = migrate_wave(
        MigrateWaveParams(plan=str(light), wave=1, dry_run=False, approved_by="test"), return_state=True
    )
    assert state.is_failed()
    assert state.message is not None
    assert "critical plan.window wave 1: Wave 1's window opens only at" in state.message, state.message
    assert _print_wave(_flow_result(state, "migrate-wave"), quiet=True) == 1
    console = capsys.readouterr().out
    assert "wave 1: blocked before any change, by:\n  critical plan.window wave 1: Wave 1's window opens only at" in (
        console
    ), console
    assert estate(si, lab) == before
