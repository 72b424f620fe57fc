"""The one way a unit of work runs a playbook: :func:`run_step` builds the run's inventory from a
:class:`StepContext`, runs the playbook through the runner adapter in its own private dir of the
run record, and returns the :class:`~overflyt.ansible.runner.PlaybookResult`; :func:`failure_text`
and :func:`raise_on_failure` say what went wrong in one line per failed host.

A :class:`StepContext` is everything a step needs, bound once per run: the loaded plan (plan, its
directory, its connection inventory, the project), the wave, the run record, the resolved
credentials and the sink for Ansible's progress events.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overflyt.ansible.inventory import build_inventory
from overflyt.ansible.runner import AnsibleEvent, PlaybookResult, run_playbook
from overflyt.errors import PlaybookFailed
from overflyt.plan import LoadedPlan, Plan
from overflyt.plan.credentials import ResolvedCredential
from overflyt.plan.model import ProbeSSH
from overflyt.record import Run

log = logging.getLogger(__name__)

OnEvent = Callable[[AnsibleEvent], None]


@dataclass(frozen=True)
class StepContext:
    """What every step of a run gets (Forklift's plan context, nornir's Task): bound once."""

    loaded: LoadedPlan
    wave: int
    run: Run
    credentials: Mapping[str, ResolvedCredential]
    on_event: OnEvent | None = None
    # Why no further VM move of a site may start now (None: they may) — the wave's window with
    # on_window_end: rollback; asked before each batch of a real migration.
    stop_moves: Callable[[str], str | None] | None = None

    @property
    def plan(self) -> Plan:
        return self.loaded.plan


def run_step(
    ctx: StepContext,
    playbook: str,
    step: str,
    *,
    sites: Sequence[str] = (),
    hosts: Sequence[str] | None = None,
    device_vars: Mapping[str, Mapping[str, Any]] | None = None,
    controller_vars: Mapping[str, Any] | None = None,
    vm_hosts: Mapping[str, Mapping[str, Any]] | None = None,
    dry_run: bool,
    timeout_s: int,
    forks: int = 10,
    devices_home: bool = True,
    vcenters: bool = True,
    probe_hosts: Mapping[str, ProbeSSH] | None = None,
) -> PlaybookResult:
    """Run ``playbooks/<playbook>`` over the devices of ``sites`` (only ``hosts`` of them when
    given; with their ``device_vars``), the controller (``controller_vars``) and the VMs of
    ``vm_hosts``, in the run record's private dir ``<NN>-<step>``. A device of
    ``plan.ssh.insecure_host_keys`` gets host-key checking off (the plan's explicit, reported
    override); ``devices_home`` gives ansible-playbook a $HOME whose known_hosts holds the plan's
    trusted device keys; ``vcenters`` puts the vCenters' connections (and their secrets) into the
    inventory — a step that talks to devices only goes without; ``probe_hosts`` adds SSH probe
    hosts (group ``probes``, their keys checked like devices')."""
    plan = ctx.plan
    values: dict[str, dict[str, Any]] = {}
    for host, extra in (device_vars or {}).items():
        values[host] = dict(extra)
        if host in plan.ssh.insecure_host_keys:
            values[host]["ansible_host_key_checking"] = False
    inventory, secrets = build_inventory(
        plan,
        ctx.loaded.connections,
        ctx.loaded.directory,
        sites=list(sites),
        hosts=None if hosts is None else list(hosts),
        credentials=ctx.credentials,
        device_vars=values,
        controller_vars=controller_vars,
        vm_hosts=vm_hosts,
        vcenters=vcenters,
        probe_hosts=probe_hosts,
    )
    result = run_playbook(
        playbook,
        inventory,
        ctx.run.private_dir(step),
        run_id=ctx.run.record.run_id,
        dry_run=dry_run,
        secrets=secrets,
        home=prepare_home(ctx.run, plan, ctx.loaded.directory) if devices_home else None,
        forks=max(1, forks),
        timeout_s=max(1, timeout_s),
        on_event=ctx.on_event,
        project=ctx.loaded.project,
        process_record=ctx.run.processes,
    )
    log.info("%s: %s in %.1fs", step, result.status, result.duration_s)
    return result


def prepare_home(run: Run, plan: Plan, plan_dir: Path) -> Path:
    """The run's $HOME, whose .ssh/known_hosts holds the plan's trusted device keys (or nothing)."""
    home = run.dir / "home"
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True, mode=0o700)
    known = ssh / "known_hosts"
    if plan.ssh.known_hosts:
        source = plan_dir / plan.ssh.known_hosts
        if source.is_file():
            shutil.copyfile(source, known)
        else:
            log.warning("known_hosts file %s not found: every device key counts as unknown", source)
            known.write_text("")
    else:
        known.write_text("")
    known.chmod(0o600)
    return home


def raise_on_failure(result: PlaybookResult, what: str) -> None:
    """PlaybookFailed naming every failed host and why, unless the playbook succeeded."""
    if result.ok:
        return
    raise PlaybookFailed(f"{what} failed ({result.status}): {failure_text(result)}", result.failed_hosts)


def failure_text(result: PlaybookResult, hosts: Sequence[str] = ()) -> str:
    """Each failed task as ``host: task: first line of its reason``, then ``host: no result`` for
    each of ``hosts`` that has no failure of its own. A ``no_log`` task's failure, whose result
    Ansible withholds, is left out when its host says why in a task of its own."""
    said = {f.host for f in result.failures if not f.hidden}
    shown = [f for f in result.failures if not f.hidden or f.host not in said]
    parts = [f"{f.host}: {f.task}: {first_line(f.message)}" for f in shown]
    parts += [f"{h}: no result" for h in hosts if h not in {f.host for f in result.failures}]
    return "; ".join(parts) or f"the playbook ended {result.status} without a task failure (rc={result.rc})"


def first_line(text: str, limit: int = 500) -> str:
    line = next((x.strip() for x in text.splitlines() if x.strip()), text.strip())
    return line[:limit]
