"""What both discoveries share, light enough for the command line to import without paramiko or
pyVmomi: how many devices are read at once, and the estate file as plain data — read with its
shape checked before anything is contacted, and replaced whole — comments and layout kept — when
discovery updates it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from overflyt.errors import UsageError

# Devices `discover devices` reads at once unless told otherwise.
WORKERS = 16


def read_estate_file(path: Path) -> dict[str, Any]:
    """The estate file's data, read by the plan loader's reader (errors name the file and line)."""
    from overflyt.discovery.estate import EstateInvalid
    from overflyt.plan.loader import read_yaml

    data = read_yaml(path, "an estate file", EstateInvalid).data or {}
    if not isinstance(data, dict) or not isinstance(data.get("vms") or [], list):
        raise UsageError(f"{path}: an estate file is a mapping whose vms is a list")
    if any(not isinstance(vm, dict) or "name" not in vm for vm in data.get("vms") or []):
        raise UsageError(f"{path}: every entry of vms needs a name")
    if not isinstance(data.get("devices") or [], list):
        raise UsageError(f"{path}: an estate file's devices is a list")
    if any(not isinstance(d, dict) or "hostname" not in d for d in data.get("devices") or []):
        raise UsageError(f"{path}: every entry of devices needs a hostname")
    if not isinstance(data.get("sites") or [], list) or any(
        not isinstance(s, dict) or "id" not in s for s in data.get("sites") or []
    ):
        raise UsageError(f"{path}: an estate file's sites is a list of entries with an id")
    return data


def write_estate_file(path: Path, data: dict[str, Any]) -> None:
    """Replace the estate file whole with ``data``, its comments and layout kept
    (:func:`overflyt.discovery.roundtrip.render`): the new text is written and synced beside it,
    then renamed over it, so a reader sees the old file or the new one, never half of one."""
    from overflyt.discovery.roundtrip import render

    text = render(path.read_text(encoding="utf-8"), data)
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    shutil.copymode(path, partial)
    partial.replace(path)
