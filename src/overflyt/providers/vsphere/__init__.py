"""The vSphere provider: overflyt's only importer of pyVmomi, split by job.

Owns:

* :mod:`.models` — how to reach a vCenter (:class:`VCenterConnection`) and where a VM is or
  should go (:class:`Placement`, :class:`RelocationTarget`, results); no pyVmomi;
* :mod:`.session` — connecting, TLS trust (CA file, SHA-256 pin, system CA store or an explicit
  insecure override; failing closed), login and logout, and the translation of pyVmomi, socket
  and TLS errors into overflyt's (:class:`LoginFailed`, ``ProviderUnreachable``,
  ``MigrationStepFailed``);
* :mod:`.collector` — bulk reads through the PropertyCollector and the inventory they build;
* :mod:`.reads` — read-only facts (:func:`gather_facts`, :func:`collect_facts`) and
  :func:`vm_placement`;
* :mod:`.tasks` — waiting for a vCenter task, and a VM's relocation a killed or cancelled run
  left under way, waited for or cancelled before the VM moves again;
* :mod:`.changes` — the migration primitives: :func:`relocate_vm`, :func:`set_power`,
  :func:`ensure_folder`, :func:`destroy_vm`;
* :mod:`.names` — entity names as vSphere stores them (``/``, ``%``, ``\\`` escaped) and as
  people see them; no pyVmomi;
* :mod:`.placement` — what the VM roles decide about one VM (locate it; check it after the
  moves and report it), pure functions of facts already read; no pyVmomi.

May import: ``overflyt.errors``, ``overflyt.precheck.facts`` (the shape of what is read),
pydantic, and (session, collector, reads, tasks, changes only) pyVmomi. Never imports the plan, the
cutover, the steps or Ansible: the Ansible modules of ``collections/.../overflyt/vsphere`` call
it. Within the package the modules import each other only downwards: models, session, collector,
reads / tasks, changes; placement needs only models.

The names below are the package's public surface (``from overflyt.providers.vsphere import X``).
"""

from typing import TYPE_CHECKING, Any

from overflyt import lazy

if TYPE_CHECKING:
    from overflyt.providers.vsphere.changes import (
        destroy_vm,
        ensure_folder,
        relocate_vm,
        set_power,
    )
    from overflyt.providers.vsphere.collector import PAGE_SIZE
    from overflyt.providers.vsphere.models import (
        DEFAULT_TIMEOUT_S,
        Placement,
        PowerResult,
        PowerState,
        RelocationResult,
        RelocationTarget,
        ToolsState,
        VCenterConnection,
    )
    from overflyt.providers.vsphere.placement import (
        Checked,
        Located,
        MoveReport,
        Relocated,
        RestoreReport,
        Wanted,
        check_migrated,
        check_restored,
        locate_for_migration,
        locate_for_rollback,
        relocation_of,
        report_migration,
        report_rollback,
        wanted_after_migration,
    )
    from overflyt.providers.vsphere.reads import collect_facts, gather_facts, vm_placement
    from overflyt.providers.vsphere.session import LoginFailed, VSphereSession, connect, disconnect
    from overflyt.providers.vsphere.tasks import TASK_TIMEOUT_S, InFlight, Progress

# Imported on first use (overflyt.lazy).
_WHERE: dict[str, str] = {
    "TASK_TIMEOUT_S": "overflyt.providers.vsphere.tasks",
    "Progress": "overflyt.providers.vsphere.tasks",
    "InFlight": "overflyt.providers.vsphere.tasks",
    "destroy_vm": "overflyt.providers.vsphere.changes",
    "ensure_folder": "overflyt.providers.vsphere.changes",
    "relocate_vm": "overflyt.providers.vsphere.changes",
    "set_power": "overflyt.providers.vsphere.changes",
    "PAGE_SIZE": "overflyt.providers.vsphere.collector",
    "DEFAULT_TIMEOUT_S": "overflyt.providers.vsphere.models",
    "Placement": "overflyt.providers.vsphere.models",
    "PowerResult": "overflyt.providers.vsphere.models",
    "PowerState": "overflyt.providers.vsphere.models",
    "RelocationResult": "overflyt.providers.vsphere.models",
    "RelocationTarget": "overflyt.providers.vsphere.models",
    "ToolsState": "overflyt.providers.vsphere.models",
    "VCenterConnection": "overflyt.providers.vsphere.models",
    "Checked": "overflyt.providers.vsphere.placement",
    "Located": "overflyt.providers.vsphere.placement",
    "MoveReport": "overflyt.providers.vsphere.placement",
    "Relocated": "overflyt.providers.vsphere.placement",
    "RestoreReport": "overflyt.providers.vsphere.placement",
    "Wanted": "overflyt.providers.vsphere.placement",
    "check_migrated": "overflyt.providers.vsphere.placement",
    "check_restored": "overflyt.providers.vsphere.placement",
    "locate_for_migration": "overflyt.providers.vsphere.placement",
    "locate_for_rollback": "overflyt.providers.vsphere.placement",
    "relocation_of": "overflyt.providers.vsphere.placement",
    "report_migration": "overflyt.providers.vsphere.placement",
    "report_rollback": "overflyt.providers.vsphere.placement",
    "wanted_after_migration": "overflyt.providers.vsphere.placement",
    "collect_facts": "overflyt.providers.vsphere.reads",
    "gather_facts": "overflyt.providers.vsphere.reads",
    "vm_placement": "overflyt.providers.vsphere.reads",
    "LoginFailed": "overflyt.providers.vsphere.session",
    "VSphereSession": "overflyt.providers.vsphere.session",
    "connect": "overflyt.providers.vsphere.session",
    "disconnect": "overflyt.providers.vsphere.session",
}

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "PAGE_SIZE",
    "TASK_TIMEOUT_S",
    "Checked",
    "InFlight",
    "Located",
    "LoginFailed",
    "MoveReport",
    "Placement",
    "PowerResult",
    "PowerState",
    "Progress",
    "Relocated",
    "RelocationResult",
    "RelocationTarget",
    "RestoreReport",
    "ToolsState",
    "VCenterConnection",
    "VSphereSession",
    "Wanted",
    "check_migrated",
    "check_restored",
    "collect_facts",
    "connect",
    "destroy_vm",
    "disconnect",
    "ensure_folder",
    "gather_facts",
    "locate_for_migration",
    "locate_for_rollback",
    "relocate_vm",
    "relocation_of",
    "report_migration",
    "report_rollback",
    "set_power",
    "vm_placement",
    "wanted_after_migration",
]


def __getattr__(name: str) -> Any:
    return lazy.attribute(__name__, _WHERE, name, globals())
