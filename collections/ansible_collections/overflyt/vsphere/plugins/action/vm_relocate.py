"""overflyt.vsphere.vm_relocate in the task's worker: see plugins/plugin_utils/in_worker.py (the
documentation is in plugins/modules/vm_relocate.py)."""

from __future__ import annotations

from ansible_collections.overflyt.vsphere.plugins.plugin_utils.in_worker import ModuleInWorker


class ActionModule(ModuleInWorker):
    MODULE = "vm_relocate"
