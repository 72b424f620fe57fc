"""Cancellation of a running step, and the shield that keeps a rollback from being cancelled.

A cancel request (SIGTERM/SIGINT of the CLI, Prefect cancelling the flow run) stops the running
playbook through ansible-runner's own cancel_callback: Prefect's task timeout and cancellation
hooks cannot interrupt a blocking call in a worker thread, the runner call can. Rollback runs
shielded, so a cancelled cutover still restores its site. Sites of a wave running at once (threads)
all see one cancel request and each rolls back its own site; the shield is per thread (a context
variable), so one site's rollback never shields another site's cutover.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import signal
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

# How often whatever waits on a running step or site looks again, so that a cancel is acted on
# within this: ansible-runner's check for a cancel (overflyt.ansible.runner), and the main thread
# waiting on sites run at once (overflyt.cutover.parallel), where Python runs the signal handler.
POLL_S = 0.2

_CANCEL = threading.Event()
_CANCEL_REASON: list[str] = []
_SHIELDED: contextvars.ContextVar[bool] = contextvars.ContextVar("overflyt_shielded", default=False)


def request_cancel(reason: str) -> None:
    if not _CANCEL.is_set():
        _CANCEL_REASON.append(reason)
        log.warning("cancel requested: %s", reason)
    _CANCEL.set()


def cancel_requested() -> bool:
    return _CANCEL.is_set() and not _SHIELDED.get()


def cancel_reason() -> str:
    return _CANCEL_REASON[0] if _CANCEL_REASON else "cancelled"


def reset_cancel() -> None:
    _CANCEL.clear()
    _CANCEL_REASON.clear()


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Playbooks started inside are not stopped by a cancel request (rollback must finish)."""
    token = _SHIELDED.set(True)
    try:
        yield
    finally:
        _SHIELDED.reset(token)


def install_cancel_handlers() -> None:
    """SIGTERM and SIGINT request a cancel instead of killing the process mid-change (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handle(signum: int, _frame: object) -> None:
        request_cancel(f"signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def cancel_is_set() -> bool:
    """A cancel was requested (shielded or not)."""
    return _CANCEL.is_set()


def is_shielded() -> bool:
    return _SHIELDED.get()
