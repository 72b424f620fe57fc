"""Shared by the overflyt.vsphere modules: the vcenter option and its conversion, and the
message of an option that does not validate."""

from __future__ import annotations

from typing import Any

VCENTER_SPEC: dict[str, Any] = {
    "type": "dict",
    "required": True,
    "options": {
        "name": {"type": "str", "required": True},
        "hostname": {"type": "str", "required": True},
        "port": {"type": "int", "default": 443},
        "username": {"type": "str", "required": True},
        "password": {"type": "str", "required": True, "no_log": True},
        "ca_file": {"type": "path"},
        "thumbprint": {"type": "str"},
        "insecure": {"type": "bool", "default": False},
        "timeout": {"type": "float", "default": 15.0},
    },
}


def connection_args(params: dict[str, Any]) -> dict[str, Any]:
    """The module's vcenter option as keyword arguments of VCenterConnection."""
    args = {k: v for k, v in params.items() if k != "timeout"}
    args["timeout_s"] = params["timeout"]
    return args


def validation_message(exc: Exception, option: str = "vcenter") -> str:
    """A pydantic validation error of ``option`` without the input values (which may hold the
    password)."""
    errors = exc.errors(include_input=False) if hasattr(exc, "errors") else []
    parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"] for e in errors]
    return f"{option}: " + ("; ".join(parts) if parts else type(exc).__name__)


def _secrets(params: Any) -> list[str]:
    """Every vCenter password among the module's parameters (the vcenter options, nested)."""
    if isinstance(params, dict):
        own = [params["password"]] if isinstance(params.get("password"), str) and params["password"] else []
        return own + [s for k, v in params.items() if k != "password" for s in _secrets(v)]
    return []


def safe_reason(reason: str, params: dict[str, Any]) -> str:
    """``reason`` on one line with every secret value among ``params`` removed."""
    text = " ".join(str(reason).split())
    for secret in sorted(set(_secrets(params)), key=len, reverse=True):
        text = text.replace(secret, "********")
    return text


def fail(module: Any, reason: str, **result: Any) -> None:
    """Fail the module with the safe reason as ``msg`` and ``overflyt_reason``: the task runs with
    no_log, so its role reads ``overflyt_reason`` from the registered result
    (``overflyt.vsphere.failure_reason``) and says it in a task of its own."""
    safe = safe_reason(reason, module.params)
    module.fail_json(msg=safe, overflyt_reason=safe, **result)
