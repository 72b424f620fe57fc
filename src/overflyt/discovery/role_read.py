"""Device discovery's reading through the project's own ``net_facts`` role.

Once discovery has checked a device's host key and login itself (:mod:`.devices`, which names the
key's fingerprint, something Ansible cannot), every device that passed is read in one run of
``playbooks/discover_devices.yml``: the ``net_facts`` role with ``net_facts_interfaces``, over
``network_cli`` as every step of a wave reads devices (strict host keys against the plan's
known_hosts, ``ssh.insecure_host_keys`` honoured), read-only. It reports ``show version``, saves
the running configuration and parses the interfaces with ``ansible.utils.cli_parse``
(:mod:`.interfaces`).

The run's record is a throwaway one (kind ``precheck``, wave 0: the same read-only reading) in a
temporary directory, removed when the reading is done; nothing is left in the state directory.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from overflyt.ansible.step import StepContext, first_line, run_step
from overflyt.plan import Plan
from overflyt.plan.credentials import ResolvedCredential
from overflyt.plan.loader import load
from overflyt.record import Run

log = logging.getLogger(__name__)

PLAYBOOK = "discover_devices.yml"


@dataclass(frozen=True)
class RoleRead:
    """What the role reported of one device, or why it could not (``error``)."""

    version_text: str = ""
    config: str | None = None
    interfaces: Mapping[str, Any] | None = None  # {"platform", "brief", "config"}: cli_parse's rows
    error: str | None = None


def read_with_role(
    plan_path: Path,
    plan: Plan,
    credentials: Mapping[str, ResolvedCredential],
    hostnames: Collection[str],
    *,
    forks: int,
    timeout_s: int,
) -> dict[str, RoleRead]:
    """Each of ``hostnames`` (devices of ``plan``, ``credentials`` by hostname) read by the
    ``net_facts`` role in one playbook run."""
    if not hostnames:
        return {}
    loaded = load(plan_path)
    by_reference = {d.credentials: credentials[d.hostname] for d in plan.devices if d.hostname in credentials}
    sites = sorted({d.site for d in plan.devices if d.hostname in hostnames})
    with tempfile.TemporaryDirectory(prefix="overflyt-discover-") as temp:
        base = Path(temp)
        run = Run.create("precheck", plan.municipality.code, 0, sites, dry_run=True, base=base)
        backups = run.dir / "backups"
        backups.mkdir(mode=0o700)
        device_vars = {
            d.hostname: {
                "overflyt_discover": d.hostname in hostnames,
                "net_facts_backup_dir": str(backups),
                "net_facts_interfaces": True,
            }
            for d in plan.devices
            if d.site in sites
        }
        result = run_step(
            StepContext(loaded, 0, run, by_reference), PLAYBOOK, "discover", sites=sites,
            device_vars=device_vars, dry_run=True, timeout_s=timeout_s, forks=forks, vcenters=False,
        )  # fmt: skip
        reported: dict[str, Any] = dict(result.result.get("devices") or {})
        parsed: dict[str, Any] = dict(result.result.get("device_interfaces") or {})
        out: dict[str, RoleRead] = {}
        for name in hostnames:
            data = reported.get(name)
            failure = next((f for f in result.failures if f.host == name), None)
            if not data:
                why = first_line(failure.message, 300) if failure else f"not read: the playbook ended {result.status}"
                out[name] = RoleRead(error=why)
                continue
            backup = Path(str(data.get("backup_file") or ""))
            config = backup.read_text(encoding="utf-8", errors="surrogateescape") if backup.is_file() else None
            interfaces = parsed.get(name)
            if interfaces is None and failure is not None:  # e.g. a device that is not the plan's platform
                log.warning("%s: interfaces not parsed: %s", name, failure.said or failure.message)
            out[name] = RoleRead(version_text=str(data.get("version_text") or ""), config=config, interfaces=interfaces)
        return out
