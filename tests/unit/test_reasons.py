"""Why a step failed, as a person reads it (issue 22): one test per translation of
:mod:`overflyt.ansible.reasons`, the runner adapter's scrubbing and its handling of no_log results,
the vSphere collection's safe reason, and a blocked wave's lines."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import SecretStr
from test_precheck_facts import CLEAN, check, with_vm

from overflyt.ansible import reasons
from overflyt.ansible.reasons import Device, devices_of, explain, translate
from overflyt.ansible.runner import _progress, _result, _Said, scrub, secret_values
from overflyt.ansible.step import failure_text
from overflyt.cli.wave import _print_wave
from overflyt.cutover.outcome import SiteOutcome, WaveOutcome
from overflyt.cutover.report import report_data, report_markdown
from overflyt.cutover.wave import blocking_lines
from overflyt.precheck.findings import Severity

REPO = Path(__file__).resolve().parents[2]
VSPHERE = REPO / "collections/ansible_collections/overflyt/vsphere/plugins"
MJ = "vCenter mj-vcenter (https://127.0.0.1:18444/sdk)"
CORE = Device("ndj-core-01", "127.0.1.1:22", "overflyt", "credentials entry ndj-network")


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- one test per translation ---------------------------------------------------------------------

CASES: dict[str, tuple[str, Device | None, str]] = {
    "vcenter_timeout": (
        f"{MJ}: no answer within 30 s while relocating vm ndj-dc01 to mj-esx01 / mj-ds-gold-01",
        None,
        f"{MJ} did not answer within 30 s while relocating vm ndj-dc01 to mj-esx01 / mj-ds-gold-01; check that it "
        "is up and reachable, then rerun the wave (a rerun resumes it)",
    ),
    "vcenter_task_timeout": (
        f"{MJ}: relocating vm ndj-dc01 to mj-esx01 did not finish within 600 s (task task-12 cancelled)",
        None,
        f"{MJ} did not finish relocating vm ndj-dc01 to mj-esx01 within 600 s (task task-12 cancelled); look at "
        "the task in vCenter, then rerun the wave (a rerun resumes it)",
    ),
    "vcenter_login": (
        f"{MJ}: login failed for user svc-overflyt@midtjylland.local: Cannot complete login due to an incorrect "
        "user name or password.",
        None,
        f"{MJ} refused the login of svc-overflyt@midtjylland.local; check its credentials entry (user and secret) "
        "and that the account is neither locked nor expired",
    ),
    "vcenter_session": (
        f"{MJ}: the session is no longer logged in while looking up vm ndj-dc01",
        None,
        f"{MJ} ended overflyt's session while looking up vm ndj-dc01 (logged out or restarted); then rerun the "
        "wave (a rerun resumes it)",
    ),
    "vcenter_certificate": (
        f"{MJ}: TLS verification failed: fingerprint mismatch (expected AA:BB, got CC:DD)",
        None,
        f"{MJ} presented a certificate overflyt does not trust — it changed, or the plan's ca_file or thumbprint "
        "is out of date (fingerprint mismatch (expected AA:BB, got CC:DD)); confirm the new certificate with the "
        "vCenter's owner before you trust it",
    ),
    "vcenter_busy": (
        f"{MJ}: vCenter refused relocating vm ndj-dc01 to mj-esx01: TaskInProgress: The operation is not allowed "
        "in the current state.",
        None,
        f"{MJ} refused relocating vm ndj-dc01 to mj-esx01: the VM is locked or busy with another task "
        "(TaskInProgress: The operation is not allowed in the current state.); wait for that task to end, then "
        "rerun the wave (a rerun resumes it)",
    ),
    "datastore_full": (
        f"{MJ}: vCenter refused relocating vm ndj-dc01 to mj-esx01: InsufficientDiskSpace: not enough space",
        None,
        f"{MJ} refused relocating vm ndj-dc01 to mj-esx01: the datastore is full (InsufficientDiskSpace: not "
        "enough space); free space on it or map the VM to another datastore (storage_map), then re-run the "
        "pre-check",
    ),
    "datastore_missing": (
        f"{MJ}, datacenter MJ-DC1: no datastore mj-ds-gold-01",
        None,
        f"datastore mj-ds-gold-01 is missing from datacenter MJ-DC1 of {MJ}; restore it or change the plan's "
        "storage_map, then re-run the pre-check",
    ),
    "vcenter_unreachable": (
        f"{MJ}: connection lost while looking up vm ndj-dc01: connection reset by peer",
        None,
        f"{MJ} could not be reached while looking up vm ndj-dc01 (connection reset by peer); check that it is up "
        "and reachable, then rerun the wave (a rerun resumes it)",
    ),
    "device_login": (
        "ssh connection failed: Failed to authenticate.",
        CORE,
        "device ndj-core-01 (127.0.1.1:22) refused the login of user overflyt; check credentials entry "
        "ndj-network (user and secret) and the device's AAA",
    ),
    "device_host_key": (
        "host key mismatch for 127.0.1.1",
        CORE,
        "device ndj-core-01 (127.0.1.1:22) presented an SSH host key that is not the one in the plan's "
        "known_hosts; confirm the new key with the device's owner, then update known_hosts",
    ),
    "device_timeout": (
        "command timeout triggered, timeout value is 30 secs.",
        CORE,
        "device ndj-core-01 (127.0.1.1:22) did not answer in time; check that it is up and reachable, then rerun "
        "the wave (a rerun resumes it)",
    ),
    "device_refused": (
        "ssh connection failed: [Errno None] Unable to connect to port 22 on 127.0.1.1",
        CORE,
        "device ndj-core-01 (127.0.1.1:22) refused the SSH connection; check that its SSH server is up, then "
        "rerun the wave (a rerun resumes it)",
    ),
}


def test_every_translation_has_a_case() -> None:
    assert sorted(CASES) == sorted(t.cause for t in reasons.TRANSLATIONS)


@pytest.mark.parametrize("cause", sorted(CASES))
def test_translation(cause: str) -> None:
    reason, device, line = CASES[cause]
    assert translate(reason, device) == (cause, line)
    assert explain(line, device) == line  # a translated line stays as it is


def test_an_unknown_reason_is_kept_and_device_causes_need_a_device() -> None:
    assert explain("vm ndj-dc01: in neither datacenter") == "vm ndj-dc01: in neither datacenter"
    assert explain("ssh connection failed: Failed to authenticate.") == "ssh connection failed: Failed to authenticate."


def test_devices_of_a_generated_inventory() -> None:
    inventory = {
        "all": {
            "children": {
                "controller": {"hosts": {"localhost": {"ansible_connection": "local"}}},
                "network": {
                    "hosts": {
                        "ndj-core-01": {
                            "ansible_connection": "ansible.netcommon.network_cli",
                            "ansible_host": "127.0.1.1",
                            "ansible_port": 22,
                            "ansible_user": "overflyt",
                            "ansible_password": "{{ lookup('ansible.builtin.file', 'x') }}",
                            "overflyt_credentials": "credentials entry ndj-network",
                        }
                    }
                },
            }
        }
    }
    assert devices_of(inventory) == {"ndj-core-01": CORE}


# -- the runner adapter: scrubbed, translated, a no_log result left to its role -------------------


def _failed(host: str, task: str, res: dict[str, Any], **data: Any) -> dict[str, Any]:
    return {"event": "runner_on_failed", "event_data": {"host": host, "task": task, "res": res, **data}}


def test_the_runner_scrubs_secrets_translates_and_leaves_a_no_log_failure_to_its_role(tmp_path: Path) -> None:
    secret = "Hemmelig-kanariefugl-22"
    said = _Said(secret_values({"mj-vcenter": SecretStr(secret), "empty": SecretStr("")}), {"ndj-core-01": CORE})
    events = [
        _failed("ndj-dhcp01", "Read where the batch's VMs are", {"censored": "the output has been hidden ..."}),
        _failed("ndj-dhcp01", "Stop the batch", {"msg": f"{MJ}: no answer within 15 s while logging in with {secret}"}),
        _failed(
            "ndj-core-01", "Read the running configuration", {"msg": "ssh connection failed: Failed to authenticate."}
        ),
        _failed("ndj-dc02", "Move the VM", {"censored": "the output has been hidden ..."}),
        {
            "event": "playbook_on_stats",
            "event_data": {"artifact_data": {"overflyt_result": {"vms": {"x": {"error": f"got {secret}"}}}}},
        },
    ]
    result = _result("migrate_vms.yml", "failed", 2, 1.0, tmp_path, events, said)
    assert [f.hidden for f in result.failures] == [True, False, False, True]
    assert result.result == {"vms": {"x": {"error": "got ********"}}}
    text = failure_text(result)
    assert text == (
        f"ndj-dhcp01: Stop the batch: {MJ} did not answer within 15 s while logging in with ********; check that it is up and reachable, then "
        "rerun the wave (a rerun resumes it); ndj-core-01: Read the running configuration: device ndj-core-01 "
        "(127.0.1.1:22) refused the login of user overflyt; check credentials entry ndj-network (user and "
        "secret) and the device's AAA; ndj-dc02: Move the VM: failed (its result is withheld: the task handles a secret)"
    )
    assert secret not in text
    assert "output hidden" not in text
    # a no_log task's failure is no progress to show: its role says why in the next task
    assert _progress(events[0], said) is None
    progress = _progress(events[1], said)
    assert progress is not None
    assert progress.message is not None
    assert secret not in progress.message


def test_scrub_goes_through_lists_and_dicts() -> None:
    assert scrub({"a": ["x-top-secret-x", 3]}, ["top-secret"]) == {"a": ["x-********-x", 3]}
    assert scrub("nothing", []) == "nothing"


# -- the vSphere collection: the safe reason and the filter that reads it --------------------------


def test_a_module_fails_with_a_safe_reason_and_the_filter_reads_it() -> None:
    common = _load(VSPHERE / "module_utils/common.py")
    params = {"vcenter": {"name": "mj", "password": "pw-Hemmelig-1"}, "target_vcenter": {"password": "pw-2-xyz"}}
    assert common.safe_reason("bad pw-Hemmelig-1 and pw-2-xyz\n here", params) == "bad ******** and ******** here"

    class Module:
        def __init__(self) -> None:
            self.params = params
            self.failed: dict[str, Any] = {}

        def fail_json(self, **kwargs: Any) -> None:
            self.failed = kwargs

    module = Module()
    common.fail(module, "login of pw-Hemmelig-1 failed", changed=False)
    assert module.failed == {
        "msg": "login of ******** failed",
        "overflyt_reason": "login of ******** failed",
        "changed": False,
    }

    reason = _load(VSPHERE / "filter/failure_reason.py").FilterModule().filters()["failure_reason"]
    loop = {
        "failed": True,
        "msg": "One or more items failed",
        "results": [{"failed": False}, {"failed": True, "overflyt_reason": "b\n c", "msg": "m"}],
    }
    assert reason(loop) == "b c"
    assert reason({"failed": True, "msg": "only msg"}) == "only msg"
    assert reason({}) == "failed without a message"


# -- a blocked wave says what blocked it -----------------------------------------------------------


def test_a_blocked_wave_names_its_critical_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = check(with_vm(CLEAN, "ndj-dc01", snapshots=["før patch"]), 1)
    critical = [f for f in report.findings if f.severity == Severity.critical]
    assert critical
    lines = blocking_lines(report)
    assert lines == [f"critical {f.id} {f.subject_kind} {f.subject}: {' '.join(f.message.split())}" for f in critical]
    assert any(line.startswith("critical vm.snapshots vm ndj-dc01: ") for line in lines), lines
    outcome = WaveOutcome("707", 1, False, "r1", tmp_path, blocked=True, blocked_by=lines)
    assert outcome.decided_by() == lines
    markdown = report_markdown(outcome)
    assert all(f"- {line}" in markdown for line in lines)
    assert _print_wave(report_data(outcome), quiet=True) == 1
    assert capsys.readouterr().out == "wave 1: blocked before any change, by:\n" + "".join(f"  {x}\n" for x in lines)


def test_a_failed_wave_names_each_site_that_did_not_end_done(tmp_path: Path) -> None:
    outcome = WaveOutcome("707", 1, False, "r1", tmp_path)
    outcome.sites = [SiteOutcome("a", "done"), SiteOutcome("b", "rolled_back", error="migrate: why")]
    assert outcome.decided_by() == ["b: rolled_back — migrate: why"]


@pytest.mark.parametrize(
    ("said", "host_key", "error"),
    [
        ("host key mismatch for 127.0.1.1", "changed", "host key differs from the one in the plan's known_hosts"),
        (  # paramiko's RejectPolicy
            "ssh connection failed: Server '[127.0.1.1]:22' not found in known_hosts",
            "unknown",
            "host key is not in the plan's known_hosts",
        ),
    ],
)
def test_the_precheck_classifies_a_device_failure_by_what_was_said_not_by_its_translation(
    tmp_path: Path, said: str, host_key: str, error: str
) -> None:
    """The runner translates a device's host-key failure for people (one line for an unknown and a
    changed key); the pre-check's classifier tells the two apart from the reason as it was said."""
    from overflyt.precheck.gather import classify_failure

    events = [_failed("ndj-core-01", "Read the running configuration", {"msg": said})]
    result = _result("precheck.yml", "failed", 2, 1.0, tmp_path, events, _Said([], {"ndj-core-01": CORE}))
    [failure] = result.failures
    assert failure.message.startswith("device ndj-core-01 (127.0.1.1:22) presented an SSH host key")
    assert failure.said == said
    facts = classify_failure({"hostname": "ndj-core-01", "address": "127.0.1.1", "port": 22}, failure, result)
    assert (facts.reachable, facts.host_key, facts.error) == (True, host_key, error)
