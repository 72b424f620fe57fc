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
