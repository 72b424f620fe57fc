"""Move slots hold across processes (real processes, real kernel locks) and die with their holder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from overflyt.plan import load_plan
from overflyt.steps import slots, vm_batches
from overflyt.steps.slots import Need, SlotsUnavailable, hold

SAMPLE = Path(__file__).resolve().parents[2] / "inventories" / "norddjurs" / "plan.yml"


def _child(
    base: Path, wanted: list[tuple[str, int, int]], holder: dict[str, object], body: str
) -> subprocess.Popen[str]:
    """A separate Python process that holds ``wanted`` slots, prints "held", then runs ``body``."""
    code = "\n".join(
        [
            "import time",
            "from pathlib import Path",
            "from overflyt.steps.slots import Need, hold",
            f"with hold([Need(*w) for w in {wanted!r}], {holder!r}, timeout_s=30, base=Path({str(base)!r})):",
            '    print("held", flush=True)',
            textwrap.indent(textwrap.dedent(body).strip(), "    "),
        ]
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_a_limit_holds_across_processes(tmp_path: Path) -> None:
    timeline = tmp_path / "timeline"
    body = f"""
with open({str(timeline)!r}, "a") as out:
    out.write(f"start {{time.time()}}\\n")
time.sleep(0.8)
with open({str(timeline)!r}, "a") as out:
    out.write(f"end {{time.time()}}\\n")
"""
    children = [_child(tmp_path, [("datastore vc/DC/shared-ds", 2, 1)], {"site": f"s{i}"}, body) for i in range(6)]
    for child in children:
        assert child.wait(timeout=60) == 0
    events = sorted(
        (float(t), 1 if kind == "start" else -1)
        for kind, t in (line.split() for line in timeline.read_text().splitlines())
    )
    running, most = 0, 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        running += step
        most = max(most, running)
    assert len(events) == 12
    assert most == 2  # never more than the limit, and the limit was used


def test_a_killed_holder_frees_its_slot_and_a_waiter_names_it(tmp_path: Path) -> None:
    holder = {"municipality": "751", "wave": 2, "site": "aarhus-raadhus"}
    child = _child(tmp_path, [("vcenter vc.shared:443", 1, 1)], holder, "time.sleep(120)")
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        with (
            pytest.raises(SlotsUnavailable) as refused,
            hold([Need("vcenter vc.shared:443", 1, 1)], {}, timeout_s=0.5, base=tmp_path),
        ):
            pass
        assert "vcenter vc.shared:443 (limit 1, needs 1) held by municipality 751 wave 2 site aarhus-raadhus" in str(
            refused.value
        )
        assert f"(pid {child.pid})" in str(refused.value)
        assert "nothing was started" in str(refused.value)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        with hold([Need("vcenter vc.shared:443", 1, 1)], {}, timeout_s=5, base=tmp_path) as waited:
            assert waited < 0.5
    finally:
        child.kill()
        child.wait()


def test_a_waiting_run_takes_all_of_its_slots_or_none(tmp_path: Path) -> None:
    child = _child(tmp_path, [("datastore A", 1, 1)], {"site": "a"}, "time.sleep(120)")
    got: list[float] = []
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"

        def wait_for_both() -> None:
            with hold([Need("datastore A", 1, 1), Need("datastore B", 1, 1)], {}, timeout_s=20, base=tmp_path) as w:
                got.append(w)

        waiter = threading.Thread(target=wait_for_both)
        waiter.start()
        time.sleep(0.6)
        # B is free while the waiter waits for A: the waiter does not sit on half of what it needs
        with hold([Need("datastore B", 1, 1)], {}, timeout_s=0, base=tmp_path):
            assert not got
        child.kill()
        waiter.join(timeout=20)
        assert len(got) == 1
        assert got[0] > 0.5
    finally:
        child.kill()
        child.wait()


def test_more_moves_than_the_limit_is_refused_at_once(tmp_path: Path) -> None:
    too_many = [Need("datastore X", 2, 3)]
    with (
        pytest.raises(SlotsUnavailable, match=r"datastore X: 3 moves at once exceed its limit of 2"),
        hold(too_many, {}, timeout_s=10, base=tmp_path),
    ):
        pass


def test_the_holder_is_written_into_the_slot(tmp_path: Path) -> None:
    with hold(slots.needs({("host vc/esx1", 2): 1}), {"municipality": "707"}, timeout_s=1, base=tmp_path):
        data = json.loads((tmp_path / "slots" / "host_vc_esx1" / "0").read_text())
    assert data["municipality"] == "707"
    assert data["pid"] == os.getpid()


def test_a_move_loads_the_target_vcenter_the_source_host_and_both_datastores() -> None:
    plan = load_plan(SAMPLE)
    loads = vm_batches.loads(plan, host="esx-a", datastores=["src-ds"], target_datastore="tgt-ds")
    src, tgt = plan.source.vcenter.hostport, plan.target.vcenter.hostport
    limits = plan.concurrency
    assert loads == {
        (f"vcenter {tgt}", limits.global_),
        (f"host {src}/esx-a", limits.per_host),
        (f"datastore {src}/{plan.source.datacenter}/src-ds", limits.per_datastore),
        (f"datastore {tgt}/{plan.target.datacenter}/tgt-ds", limits.per_datastore),
    }


def test_each_move_frees_its_own_slots_while_the_others_keep_theirs(tmp_path: Path) -> None:
    groups = {"long": [Need("datastore A", 2, 1)], "short": [Need("datastore A", 2, 1), Need("host h", 1, 1)]}
    with slots.hold_each(groups, {"site": "s"}, timeout_s=1, base=tmp_path) as (waited, release):
        assert waited < 1
        with pytest.raises(SlotsUnavailable), hold([Need("datastore A", 2, 1)], {}, timeout_s=0, base=tmp_path):
            pass
        release("short")  # its transfer is over: its datastore slot and its host slot are free
        with hold([Need("datastore A", 2, 1), Need("host h", 1, 1)], {}, timeout_s=0, base=tmp_path):
            pass
        with pytest.raises(SlotsUnavailable), hold([Need("datastore A", 2, 2)], {}, timeout_s=0, base=tmp_path):
            pass  # "long" still holds one of the two
    with hold([Need("datastore A", 2, 2), Need("host h", 1, 1)], {}, timeout_s=0, base=tmp_path):
        pass  # everything is free once the block ends


def test_moves_started_together_take_their_slots_all_or_none(tmp_path: Path) -> None:
    groups = {"a": [Need("datastore A", 1, 1)], "b": [Need("datastore B", 1, 1)]}
    with hold([Need("datastore B", 1, 1)], {"site": "other"}, timeout_s=0, base=tmp_path):
        with (
            pytest.raises(SlotsUnavailable, match="datastore B"),
            slots.hold_each(groups, {}, timeout_s=0.3, base=tmp_path),
        ):
            pass
        with hold([Need("datastore A", 1, 1)], {}, timeout_s=0, base=tmp_path):
            pass  # the waiter did not keep A while B was taken
