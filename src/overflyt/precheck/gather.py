"""Gathers the facts pre-checks judge, read-only, by running ``playbooks/precheck_wave.yml``.

Devices are read over SSH by Ansible (``net_facts`` role) with strict host-key checking against
the plan's known_hosts, copied into the run's own ``$HOME``. A device that could not be read is
classified from the runner's failure event: unknown or changed host key, login refused, or
unreachable.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from overflyt.ansible.inventory import CONTROLLER
from overflyt.ansible.runner import PlaybookResult, TaskFailure
from overflyt.ansible.step import StepContext, first_line, run_step
from overflyt.plan.model import VCenterEndpoint
from overflyt.precheck.facts import DeviceFacts, EstateFacts, HostKeyState, VCenterFacts

log = logging.getLogger(__name__)

_PLATFORMS = (("FRRouting", "frr"), ("ArubaOS-CX", "aoscx"), ("Cisco IOS", "ios"))


def gather_estate(ctx: StepContext, sites: list[str], *, timeout_s: int = 600) -> tuple[EstateFacts, PlaybookResult]:
    """Read both vCenters and every device of ``sites`` (reachability, host key, login, platform,
    config backup) in one read-only playbook run."""
    plan = ctx.plan
    backups = ctx.run.dir / "backups"
    backups.mkdir(exist_ok=True, mode=0o700)
    device_vars = {device.hostname: {"net_facts_backup_dir": str(backups)} for device in plan.devices}
    datacenters = {"source": [plan.source.datacenter], "target": [plan.target.datacenter]}
    result = run_step(
        ctx, "precheck_wave.yml", "precheck", sites=sites, device_vars=device_vars,
        controller_vars={"vm_facts_datacenters": datacenters}, dry_run=True, timeout_s=timeout_s,
    )  # fmt: skip
    reported: dict[str, Any] = dict(result.result.get("devices") or {})
    facts: dict[str, DeviceFacts] = {}
    for device in plan.devices:
        if device.site not in sites:
            continue
        insecure = device.hostname in plan.ssh.insecure_host_keys
        common = {"hostname": device.hostname, "address": str(device.management), "port": device.port}
        data = reported.get(device.hostname)
        if data:
            version = str(data.get("version_text") or data.get("version") or "")
            facts[device.hostname] = DeviceFacts(
                **common,
                reachable=True,
                host_key="insecure_override" if insecure else "match",
                login=True,
                platform=detect_platform(version),
                version=str(data.get("version") or "").strip() or None,
                running_config_sha256=str(data.get("config_sha256") or "") or None,
                backup_file=str(data.get("backup_file") or "") or None,
            )
            continue
        failure = next((f for f in result.failures if f.host == device.hostname), None)
        facts[device.hostname] = classify_failure(common, failure, result)
    vcenters = dict(result.result.get("vcenters") or {})
    estate = EstateFacts(
        source=_vcenter_facts(plan.source.vcenter, vcenters.get("source"), result),
        target=_vcenter_facts(plan.target.vcenter, vcenters.get("target"), result),
        devices=facts,
    )
    return estate, result


def _vcenter_facts(endpoint: VCenterEndpoint, data: Any, result: PlaybookResult) -> VCenterFacts:
    if isinstance(data, dict) and data:
        return VCenterFacts.model_validate(data)
    failure = next((f for f in result.failures if f.host == CONTROLLER), None)
    why = failure.message if failure else f"not read: the pre-check playbook ended {result.status}"
    return VCenterFacts(name=endpoint.name, url=endpoint.url, reachable=False, error=why)


def detect_platform(version_text: str) -> str | None:
    for marker, platform in _PLATFORMS:
        if marker in version_text:
            return platform
    return None


def classify_failure(common: dict[str, Any], failure: TaskFailure | None, result: PlaybookResult) -> DeviceFacts:
    """What a failed read of a device means, from the runner's failure event for that host."""
    if failure is None:
        why = f"not read: the pre-check playbook ended {result.status}"
        return DeviceFacts(**common, reachable=False, error=why)
    message = failure.said or failure.message  # the cause as it was said: the translation merges some
    host_key: HostKeyState = "not_checked"
    reachable, login = False, False
    if re.search(r"authenticity of host .* can't be established|not found in known_hosts", message, re.I):
        host_key, reachable = "unknown", True
        error = "host key is not in the plan's known_hosts"
    elif re.search(r"host key mismatch|REMOTE HOST IDENTIFICATION HAS CHANGED|BadHostKey", message, re.I):
        host_key, reachable = "changed", True
        error = "host key differs from the one in the plan's known_hosts"
    elif re.search(
        r"authentication (failed|timeout)|Invalid/incorrect (username|password)|AuthenticationException", message, re.I
    ):
        host_key, reachable = "match", True
        error = "login refused (check the credentials reference's username and secret)"
    else:
        error = first_line(failure.message, 300)  # as a person reads it (overflyt.ansible.reasons)
    return DeviceFacts(**common, reachable=reachable, host_key=host_key, login=login, error=error)
