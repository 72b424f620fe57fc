"""The guard (overflyt.ansible.guard) with real processes: a tree of sleeping children and a
daemonised grandchild (setsid -f, as ansible-connection daemonises) end with the guard's parent —
SIGKILL of the parent alone, SIGKILL of the guard's process group (ansible-runner's cancel and
timeout), a stop signal — and not when a thread of the parent ends; the command's exit status
comes through; what the guard starts is recorded with its start time."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from overflyt.ansible import guard, processes

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the guard is Linux's (prctl)")

# Two sleeping children (one in a subshell), a daemonised grandchild in a session of its own, and
# a double fork whose middle process ends: each writes its pid, then the shell waits.
TREE = textwrap.dedent(
    """\
    sleep 300 & echo $! >> "$PIDS"
    (sleep 300 & echo $! >> "$PIDS"; wait) &
    setsid -f sh -c 'echo $$ >> "$PIDS"; exec sleep 300'
    ( (sleep 300 & echo $! >> "$PIDS") & )
    wait
    """
)
TREE_SIZE = 4


# The guard's parent: starts the guard (with THREAD=1 from a thread that ends once the tree runs),
# prints the guard's pid, then sleeps until killed.
PARENT = textwrap.dedent(
    """\
    import os, subprocess, sys, threading, time
    from pathlib import Path
    from overflyt.ansible import guard
    record = Path(os.environ["RECORD"]) if os.environ.get("RECORD") else None
    started = []
    def start():
        started.append(subprocess.Popen(guard.command(os.getpid(), record, ["sh", "-c", os.environ["TREE"]]),
                                        start_new_session=True))
    def start_and_wait():  # until the guard has long set its parent-death signal
        start()
        pids = Path(os.environ["PIDS"])
        while len(pids.read_text().split() if pids.exists() else []) < int(os.environ["SIZE"]):
            time.sleep(0.05)
    if os.environ.get("THREAD"):
        thread = threading.Thread(target=start_and_wait)
        thread.start()
        thread.join()  # the thread that forked the guard has ended
    else:
        start()
    print(started[0].pid, flush=True)
    time.sleep(300)
    """
)


def _wait_for(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if processes.identify(pid) is not None]


@contextlib.contextmanager
def _parent(
    tmp_path: Path, *, thread: bool = False, record: Path | None = None
) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    """A parent running the guard over TREE: yields (parent, the guard's pid, the tree's pid file)
    once the whole tree runs; kills whatever is left afterwards."""
    pids = tmp_path / "pids"
    env = dict(
        os.environ,
        PIDS=str(pids),
        SIZE=str(TREE_SIZE),
        TREE=TREE,
        THREAD="1" if thread else "",
        RECORD=str(record or ""),
    )
    parent = subprocess.Popen([sys.executable, "-c", PARENT], env=env, stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    front = int(parent.stdout.readline())
    try:
        _wait_for(lambda: len(_pids(pids)) == TREE_SIZE, 20, f"the tree did not start: {_pids(pids)}")
        yield parent, front, pids
    finally:
        parent.kill()
        parent.wait()
        for pid in [front, *_pids(pids)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_sigkill_of_the_parent_ends_the_whole_tree(tmp_path: Path) -> None:
    with _parent(tmp_path) as (parent, front, pids):
        tree = _pids(pids)
        keeper = processes.descendants(front)[0]
        assert _alive(tree) == tree
        parent.kill()  # SIGKILL: no handler of the parent runs
        parent.wait()
        _wait_for(lambda: not _alive([front, keeper, *tree]), 10, f"alive 10 s after: {_alive([front, keeper, *tree])}")


def test_a_thread_that_ends_is_not_the_parent_dying(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG fires when the forking thread ends: the guard looks again and goes on."""
    with _parent(tmp_path, thread=True) as (parent, front, pids):
        tree = _pids(pids)
        time.sleep(2 * guard.POLL_S + 0.5)
        assert _alive([front, *tree]) == [front, *tree], "the guard stopped when a thread of its parent ended"
        parent.kill()
        parent.wait()
        _wait_for(lambda: not _alive([front, *tree]), 10, f"alive 10 s after: {_alive([front, *tree])}")


def test_sigkill_of_the_guards_group_leaves_nothing(tmp_path: Path) -> None:
    """ansible-runner's cancel and timeout SIGKILL the spawned process's group: the command dies
    with it as before, and the keeper (in a group of its own) ends what left that group."""
    with _parent(tmp_path) as (parent, front, pids):
        tree = _pids(pids)
        keeper = processes.descendants(front)[0]
        assert os.getpgid(keeper) == keeper != os.getpgid(front)
        os.killpg(front, signal.SIGKILL)
        _wait_for(lambda: not _alive([front, keeper, *tree]), 10, f"alive 10 s after: {_alive([keeper, *tree])}")
        assert parent.poll() is None  # the parent lives on: only what it started ended


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_ends_the_whole_tree(tmp_path: Path, signum: signal.Signals) -> None:
    with _parent(tmp_path) as (_, front, pids):
        tree = _pids(pids)
        os.kill(front, signum)
        _wait_for(lambda: not _alive([front, *tree]), 10, f"alive 10 s after {signum.name}: {_alive(tree)}")


def test_the_exit_status_comes_through_and_leftovers_end_with_the_command(tmp_path: Path) -> None:
    me = os.getpid()
    assert subprocess.run(guard.command(me, None, ["sh", "-c", "exit 3"])).returncode == 3
    assert subprocess.run(guard.command(me, None, ["sh", "-c", "kill -TERM $$"])).returncode == -signal.SIGTERM
    missing = subprocess.run(guard.command(me, None, ["no-such-command-here"]), capture_output=True, text=True)
    assert missing.returncode == 127
    assert "overflyt guard: cannot run no-such-command-here: No such file or directory" in missing.stderr
    pids = tmp_path / "pids"
    tree_then_exit = TREE.replace("wait\n", f'until [ "$(wc -l < "$PIDS")" -ge {TREE_SIZE} ]; do sleep 0.05; done\n')
    done = subprocess.run(guard.command(me, None, ["sh", "-c", tree_then_exit]), env=dict(os.environ, PIDS=str(pids)))
    assert done.returncode == 0
    assert len(_pids(pids)) == TREE_SIZE
    assert _alive(_pids(pids)) == [], "what the command left outlived it"


def test_a_parent_that_is_gone_starts_nothing() -> None:
    gone = subprocess.run(guard.command(1, None, ["sh", "-c", "echo ran"]), capture_output=True, text=True)
    assert gone.returncode == 1
    assert gone.stdout == ""
    assert gone.stderr == "overflyt guard: process 1 is gone; not starting sh\n"


def test_the_guard_records_what_it_starts_with_its_owner(tmp_path: Path) -> None:
    record = tmp_path / "processes.jsonl"
    with _parent(tmp_path, record=record) as (parent, front, _):
        [first, keeper, command] = processes.recorded(record)
        assert [first.name, keeper.name, command.name] == ["overflyt guard", "overflyt guard", "sh"]
        assert first.process == processes.identify(front)
        assert keeper.process.pid == processes.descendants(front)[0]
        assert {r.owner for r in (first, keeper, command)} == {processes.identify(parent.pid)}
        assert all(processes.alive(r.process) for r in (first, keeper, command))
