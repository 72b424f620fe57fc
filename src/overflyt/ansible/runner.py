"""The runner adapter: the only module that imports ``ansible_runner``.

``run_playbook`` runs one playbook of ``playbooks/`` in its own private data dir inside the run
record, with the generated inventory, and returns a :class:`PlaybookResult` built from runner
events — the roles' results come from ``set_stats`` (``overflyt_result``) on the
``playbook_on_stats`` event, never from stdout.

Secrets never touch the private data dir: ansible-runner writes ``envvars``, ``passwords`` and the
whole process environment (``artifacts/<id>/command``) to disk, so the environment handed to
ansible-playbook is reduced to an allow-list, and each secret is written to a 0600 file in a
RAM-backed directory outside the run record that the inventory reads through
``lookup('ansible.builtin.file', ...)``. The directory is removed when the run ends.

Failure reasons are said the way a person reads them: every secret value of the run is scrubbed
from each message and from the roles' results (:func:`scrub`), and each reason goes through the one
translation table (:mod:`overflyt.ansible.reasons`). A ``no_log`` task's result reaches the runner
withheld (``censored``): such a failure is marked ``hidden``, shown to nobody as progress, and its
role says the reason — with every secret removed — in a task of its own.

On Linux ansible-playbook runs under the guard (:mod:`overflyt.ansible.guard`): what it starts ends
when the playbook ends, is cancelled or times out, and when this process dies, however it dies.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, SecretStr

from overflyt.ansible import guard
from overflyt.ansible.cancel import POLL_S, cancel_is_set, is_shielded
from overflyt.ansible.reasons import Device, devices_of, explain
from overflyt.errors import OverflytError
from overflyt.project import find_project

log = logging.getLogger(__name__)

# The environment ansible-playbook may see. Anything else — above all a secret the operator
# exported in their shell — is dropped, because ansible-runner writes the environment to disk.
_ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "USER", "LOGNAME", "TMPDIR", "PYTHONPATH")
_ENV_ALLOW_PREFIX = ("ANSIBLE_", "RUNNER_", "JOB_ID", "AWX_", "PYTHONUNBUFFERED", "PYTHONHASHSEED")

Status = Literal["successful", "failed", "timeout", "canceled"]


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HostStats(Model):
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0


class TaskFailure(Model):
    """A failed task of a host. ``message`` is the reason as a person reads it (translated by
    :mod:`overflyt.ansible.reasons`, every secret value scrubbed); ``hidden`` marks a ``no_log``
    task, whose result Ansible withholds — its role says the reason in a task of its own. ``said`` is
    the reason as the device, the provider or Ansible's connection said it (scrubbed, not translated):
    what a classifier of causes (the pre-check's) reads."""

    host: str
    task: str
    message: str
    said: str = ""
    unreachable: bool = False
    hidden: bool = False


class AnsibleEvent(Model):
    """One task result, as progress for a person to follow (no module output, no secrets)."""

    host: str | None
    task: str | None
    status: Literal["ok", "changed", "failed", "unreachable", "skipped", "start"]
    message: str | None = None


class PlaybookResult(Model):
    playbook: str
    status: Status
    rc: int | None
    duration_s: float
    private_dir: str
    hosts: dict[str, HostStats] = {}
    failures: list[TaskFailure] = []
    result: dict[str, Any] = {}  # set_stats overflyt_result, merged over all hosts

    @property
    def ok(self) -> bool:
        return self.status == "successful"

    @property
    def failed_hosts(self) -> list[str]:
        return sorted({f.host for f in self.failures})


class RunnerSetupError(OverflytError):
    """ansible-runner could not start the playbook at all (missing playbook, bad inventory)."""


def run_playbook(
    playbook: str,
    inventory: Mapping[str, Any],
    private_dir: Path,
    *,
    run_id: str,
    dry_run: bool,
    secrets: Mapping[str, SecretStr] | None = None,
    home: Path | None = None,
    limit: str | None = None,
    forks: int = 10,
    timeout_s: int = 1800,
    cancel: Callable[[], bool] | None = None,
    on_event: Callable[[AnsibleEvent], None] | None = None,
    project: Path | None = None,
    process_record: Path | None = None,
) -> PlaybookResult:
    """Run ``playbooks/<playbook>`` and return what happened.

    ``inventory`` may refer to a secret by name with ``{{ overflyt_secret_files['<name>'] }}``
    (see :func:`secret_lookup`). ``dry_run`` runs with ``--check --diff``. ``timeout_s`` and
    ``cancel`` stop the run hard (status ``timeout`` / ``canceled``); neither is ever reported as
    success. ``home`` becomes ``$HOME`` of ansible-playbook (its ``.ssh/known_hosts`` is what
    device host keys are checked against). ``project`` is the directory holding ``playbooks/``,
    ``roles/`` and ``collections/`` (default: :func:`overflyt.project.find_project`).
    ``process_record`` is the run record's ``processes.jsonl``: the guard appends what it starts.
    """
    import ansible_runner

    project = project or find_project()
    path = project / "playbooks" / playbook
    if not path.is_file():
        raise RunnerSetupError(f"playbook {playbook}: not found in {project / 'playbooks'}")
    private_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (private_dir / "inventory").mkdir(exist_ok=True, mode=0o700)
    inventory_file = private_dir / "inventory" / "hosts.yml"
    # network_cli's persistent-connection sockets are AF_UNIX (at most 107 bytes of path): they
    # live in a short temporary directory, not in the (possibly deep) run record.
    with _secret_dir(secrets or {}) as secret_files, tempfile.TemporaryDirectory(prefix="ofl-pc-") as control:
        inv = _with_secret_files(inventory, secret_files)
        inventory_file.write_text(yaml.safe_dump(inv, sort_keys=False), encoding="utf-8")
        envvars = _ansible_env(project, private_dir, home, Path(control))
        cmdline = "--check --diff" if dry_run else None
        config = ansible_runner.RunnerConfig(
            private_data_dir=str(private_dir),
            playbook=str(path),
            inventory=str(inventory_file),
            extravars={"overflyt_run_id": run_id, "overflyt_dry_run": dry_run},
            envvars=envvars,
            limit=limit,
            forks=forks,
            cmdline=cmdline,
            timeout=timeout_s,
            quiet=True,
            suppress_env_files=False,
            rotate_artifacts=0,
        )
        config.prepare()
        # How often the runner asks whether to cancel (and checks the time limit): only when its
        # wait for a password prompt times out, every 5 s by default, so a short playbook ran to
        # its end before a cancel was seen. Set after prepare(), which drops a `settings` argument
        # when the private dir has no env/settings file.
        config.pexpect_timeout = POLL_S
        config.env = _scrubbed(config.env)
        if sys.platform == "linux":  # ansible-runner's cancel and timeout still SIGKILL ansible-playbook's group
            config.command = guard.command(os.getpid(), process_record, config.command)
        events: list[dict[str, Any]] = []
        said = _Said(secret_values(secrets or {}), devices_of(inventory))

        def handle(event: dict[str, Any]) -> bool:
            events.append(event)
            progress = _progress(event, said)
            if progress is not None and on_event is not None:
                on_event(progress)
            return True

        started = time.monotonic()
        shield = is_shielded()

        def should_cancel() -> bool:
            return (not shield and cancel_is_set()) or (cancel is not None and cancel())

        runner = ansible_runner.Runner(config=config, event_handler=handle, cancel_callback=should_cancel)
        try:
            runner.run()
        except (OSError, RuntimeError) as exc:
            raise RunnerSetupError(f"playbook {playbook}: ansible-runner could not run it: {exc}") from exc
        duration = time.monotonic() - started
    status = _status(runner)
    result = _result(playbook, status, runner.rc, duration, private_dir, events, said)
    log.info("playbook %s: %s in %.1fs (rc=%s)", playbook, status, duration, runner.rc)
    return result


def secret_values(secrets: Mapping[str, SecretStr]) -> list[str]:
    """The values :func:`scrub` removes: every secret of the run, longest first."""
    return sorted({v.get_secret_value() for v in secrets.values() if v.get_secret_value()}, key=len, reverse=True)


def scrub(value: Any, secrets: list[str]) -> Any:
    """``value`` (text, or lists and dicts of it) with every secret value replaced by ``********``."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "********")
        return value
    if isinstance(value, dict):
        return {k: scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    return value


class _Said:
    """How a run's failure reasons are said: scrubbed of its secrets, translated for its devices."""

    def __init__(self, secrets: list[str], devices: Mapping[str, Device]) -> None:
        self.secrets = secrets
        self.devices = devices

    def failure(self, host: str | None, res: Mapping[str, Any]) -> tuple[str, bool]:
        """(the reason of a failed task's result as a person reads it, whether Ansible hid it)."""
        if res.get("censored"):
            return "failed (its result is withheld: the task handles a secret)", True
        return explain(self.raw(res), self.devices.get(host or "")), False

    def raw(self, res: Mapping[str, Any]) -> str:
        """The reason of a failed task's result as it was said, scrubbed of the run's secrets."""
        if res.get("censored"):
            return ""
        msg = res.get("msg") or res.get("stderr") or res.get("module_stderr") or "failed"
        return str(scrub(str(msg), self.secrets)).strip()[:2000]


def secret_lookup(name: str) -> str:
    """The Jinja expression an inventory uses to read secret ``name`` at run time."""
    return "{{ lookup('ansible.builtin.file', overflyt_secret_files['" + name + "']) }}"


def _ansible_env(project: Path, private_dir: Path, home: Path | None, control: Path) -> dict[str, str]:
    collections = [str(project / "collections")] if (project / "collections").is_dir() else []
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")]),
        "ANSIBLE_ROLES_PATH": str(project / "roles"),
        "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(collections) if collections else "",
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "true",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_LOCAL_TEMP": str(private_dir / "tmp"),
        "ANSIBLE_PERSISTENT_CONTROL_PATH_DIR": str(control),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_PARAMIKO_HOST_KEY_AUTO_ADD": "False",
        "ANSIBLE_PARAMIKO_RECORD_HOST_KEYS": "False",
        "ANSIBLE_PARAMIKO_LOOK_FOR_KEYS": "False",
        # paramiko_ssh (probe hosts): an unknown host key fails at once instead of prompting; no
        # other effect here (network_cli is persistent anyway, local and paramiko_ssh never are)
        "ANSIBLE_USE_PERSISTENT_CONNECTIONS": "True",
        # network_cli's connection process (ansible-connection) ends when no task of its host reaches it
        # for this long (Ansible's default 30 s). With many devices on a busy controller a host's next
        # task can come later than that, and a task that meets the process as it ends fails ("Unable
        # to connect to socket ... Connection reset by peer": P4 at 50 routers on 2 cores). The guard
        # (overflyt.ansible.guard) stops these processes when the playbook ends, so none lingers.
        "ANSIBLE_PERSISTENT_CONNECT_TIMEOUT": "600",
        "ANSIBLE_NETWORK_CLI_SSH_TYPE": "paramiko",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_GATHERING": "explicit",
    }
    if home is not None:
        env["HOME"] = str(home)
    return env


def _scrubbed(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k in _ENV_ALLOW or k == "HOME" or k.startswith(_ENV_ALLOW_PREFIX)}


SECRET_DIR_PREFIX = "overflyt-secrets-"  # + the pid of the run that owns it + "-" + random


def _sweep_secret_dirs(base: Path) -> None:
    """Remove the secret dirs of runs that died without cleaning up (SIGKILL, power loss of a
    worker): each dir names its owner's pid; a dir whose owner is gone is removed."""
    for directory in base.glob(f"{SECRET_DIR_PREFIX}*-*"):
        owner = directory.name.removeprefix(SECRET_DIR_PREFIX).split("-", 1)[0]
        if not owner.isdigit() or int(owner) == os.getpid():
            continue
        try:
            os.kill(int(owner), 0)
        except ProcessLookupError:
            shutil.rmtree(directory, ignore_errors=True)
            log.info("removed the secret files of a run that died without cleaning up (pid %s)", owner)
        except PermissionError:
            continue  # alive, someone else's


@contextlib.contextmanager
def _secret_dir(secrets: Mapping[str, SecretStr]) -> Iterator[dict[str, str]]:
    """Write each secret to a 0600 file in a fresh 0700 RAM-backed dir; remove it afterwards."""
    if not secrets:
        yield {}
        return
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    _sweep_secret_dirs(Path(base or tempfile.gettempdir()))
    directory = Path(tempfile.mkdtemp(prefix=f"{SECRET_DIR_PREFIX}{os.getpid()}-", dir=base))
    try:
        files: dict[str, str] = {}
        for i, (name, value) in enumerate(sorted(secrets.items())):
            file = directory / f"s{i}"
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(value.get_secret_value())
            files[name] = str(file)
        yield files
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _with_secret_files(inventory: Mapping[str, Any], files: Mapping[str, str]) -> dict[str, Any]:
    inv = dict(inventory)
    group = dict(inv.get("all") or {})
    group_vars = dict(group.get("vars") or {})
    group_vars["overflyt_secret_files"] = dict(files)
    group["vars"] = group_vars
    inv["all"] = group
    return inv


def _status(runner: Any) -> Status:
    if runner.canceled:
        return "canceled"
    if runner.timed_out:
        return "timeout"
    return "successful" if runner.status == "successful" else "failed"


_PROGRESS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
    "playbook_on_task_start": "start",
}


def _progress(event: dict[str, Any], said: _Said) -> AnsibleEvent | None:
    kind = _PROGRESS.get(str(event.get("event")))
    if kind is None:
        return None
    data = event.get("event_data") or {}
    res = data.get("res") or {}
    if kind == "ok" and res.get("changed"):
        kind = "changed"
    message = None
    if kind in ("failed", "unreachable"):
        if data.get("ignore_errors"):
            return None
        message, hidden = said.failure(data.get("host"), res)
        if hidden:  # a no_log task: its role says the reason in a task of its own
            return None
    return AnsibleEvent(host=data.get("host"), task=data.get("task"), status=kind, message=message)


def _result(
    playbook: str,
    status: Status,
    rc: int | None,
    duration: float,
    private_dir: Path,
    events: list[dict[str, Any]],
    said: _Said,
) -> PlaybookResult:
    hosts: dict[str, HostStats] = {}
    failures: list[TaskFailure] = []
    result: dict[str, Any] = {}
    for event in events:
        kind = event.get("event")
        data = event.get("event_data") or {}
        if kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            message, hidden = said.failure(data.get("host"), data.get("res") or {})
            failures.append(
                TaskFailure(
                    host=str(data.get("host")),
                    task=str(data.get("task")),
                    message=message,
                    said=said.raw(data.get("res") or {}),
                    unreachable=kind == "runner_on_unreachable",
                    hidden=hidden,
                )
            )
        elif kind == "playbook_on_stats":
            for field in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored"):
                for host, count in (data.get(field) or {}).items():
                    current = hosts.get(host, HostStats()).model_dump()
                    key = {"failures": "failed", "dark": "unreachable"}.get(field, field)
                    current[key] = count
                    hosts[host] = HostStats(**current)
            result = scrub(dict((data.get("artifact_data") or {}).get("overflyt_result") or {}), said.secrets)
    return PlaybookResult(
        playbook=playbook,
        status=status,
        rc=rc,
        duration_s=round(duration, 3),
        private_dir=str(private_dir),
        hosts=hosts,
        failures=failures,
        result=result,
    )
