"""The pre-check rules. Importing this package registers every rule in :data:`~overflyt.precheck.registry.RULES`.

Rules run in the order of :data:`MODULES` and, within a module, in the order they are written; that is
the order reports list checks in. A new rule is a new decorated function in one of these modules (or a
new module named here); the engine does not change.
"""

import importlib

MODULES = ("vcenter", "vms", "target", "network", "devices", "plan")

for _module in MODULES:
    importlib.import_module(f"{__name__}.{_module}")
