"""bench/p2_national.py finds the pre-checks it times. They register themselves when their package
is imported, which ``overflyt.precheck`` (imported on first use) no longer does by itself: P2 once
failed with a KeyError for every rule; this keeps it from happening again without a 10-second run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_p2_finds_every_offline_precheck_it_times() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("bench_p2_national", BENCH / "p2_national.py")
        assert spec is not None
        assert spec.loader is not None
        p2 = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = p2  # its dataclasses look their module up there
        spec.loader.exec_module(p2)
        found = p2.offline_prechecks()
    finally:
        sys.path.remove(str(BENCH))
        sys.modules.pop("bench_p2_national", None)
    assert list(found) == list(p2.OFFLINE_PRECHECKS) == ["plan.dependencies", "plan.window", "netmap.mapped"]
    assert all(rule.id == rule_id for rule_id, rule in found.items())
