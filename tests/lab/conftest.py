"""Fixtures every lab test may use (the ``lab`` fixture itself is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .labtools import source_vcenter


@pytest.fixture
def si(lab: dict[str, Any]) -> Iterator[Any]:
    """A pyVmomi session on the municipality's vCenter."""
    with source_vcenter(lab) as conn:
        yield conn


@pytest.fixture
def lab_env(lab: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """This process sees the lab's credentials (the variables its plans name) and keeps its run
    records in the test's own state dir. A module uses it with ``pytest.mark.usefixtures("lab_env")``;
    one that needs another state dir defines its own."""
    for name, value in lab["env"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OVERFLYT_STATE_DIR", str(tmp_path / "state"))
    return lab
