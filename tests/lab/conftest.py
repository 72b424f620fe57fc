"""Fixtures every lab test may use (the ``lab`` fixture itself is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .labtools import source_vcenter


@pytest.fixture
def si(lab: dict[str, Any]) -> Iterator[Any]:
    """A pyVmomi session on the municipality's vCenter."""
    with source_vcenter(lab) as conn:
        yield conn
