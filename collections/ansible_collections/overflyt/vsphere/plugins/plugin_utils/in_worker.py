"""Run an overflyt.vsphere module's work in the task's worker on the controller.

Every overflyt.vsphere module talks to a vCenter from the controller (its tasks run on localhost).
Run as a module, each task starts a Python interpreter that unpacks the module, compiles Ansible's
module_utils from the zip and imports pyVmomi and pydantic before it sends one request: most of the
task's CPU (bench/RESULTS.md, P1). The collection's action plugin of each module's name runs the
module's ``run`` in the worker instead, with the options validated against the same
``ARGUMENT_SPEC`` and ``REQUIRED_IF``, so the module and the action plugin cannot drift apart.
The module files stay the one definition of the work and of its documentation (ansible-doc); run
as a plain module process (``python vm_locate.py args.json``, as tests/unit/test_vsphere_modules.py
does) each returns what its action plugin returns."""

from __future__ import annotations

import importlib
import json
from typing import Any, NoReturn

from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase
from ansible_collections.overflyt.vsphere.plugins.module_utils.common import safe_reason


class _Ended(Exception):
    """The module called exit_json or fail_json: its result."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("module ended")
        self.result = result


class ModuleFacade:
    """What a module's ``run`` uses of AnsibleModule: params, check_mode, _diff, exit_json and
    fail_json (which end the run, as AnsibleModule's do)."""

    def __init__(self, params: dict[str, Any], check_mode: bool, diff: bool) -> None:
        self.params = params
        self.check_mode = check_mode
        self._diff = diff

    def exit_json(self, **result: Any) -> NoReturn:
        raise _Ended(result)

    def fail_json(self, msg: str, **result: Any) -> NoReturn:
        result.pop("exception", None)  # a traceback of the controller's own import, not the task's
        raise _Ended({**result, "failed": True, "msg": msg})


class ModuleInWorker(ActionBase):  # type: ignore[misc]
    """The action plugin of module ``MODULE`` of overflyt.vsphere."""

    MODULE = ""
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        module = importlib.import_module(f"ansible_collections.overflyt.vsphere.plugins.modules.{self.MODULE}")
        validation, args = self.validate_argument_spec(
            argument_spec=module.ARGUMENT_SPEC, required_if=module.REQUIRED_IF
        )
        # The options as a module receives them: plain JSON values (Ansible's templated values are
        # subclasses of str and dict that carry their origin).
        params = json.loads(json.dumps(args))
        try:
            module.run(ModuleFacade(params, bool(self._task.check_mode), bool(self._task.diff)))
        except _Ended as ended:
            out = ended.result
        except Exception as exc:  # noqa: BLE001 - a module process would crash: the task fails with the reason
            reason = safe_reason(f"{type(exc).__name__}: {exc}", params)
            out = {"failed": True, "msg": reason, "overflyt_reason": reason}
        else:
            out = {"failed": True, "msg": f"overflyt.vsphere.{self.MODULE} ended without a result"}
        # as AnsibleModule returns it: the options it ran with, each no_log value masked
        out.setdefault("invocation", {"module_args": params})
        result.update(remove_values(out, validation._no_log_values))
        return result
