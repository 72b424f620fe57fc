"""Sites of a wave at once: the rule that decides when the next site starts.

The wave's sites start in the plan's order, each as soon as fewer than ``concurrency.sites`` are
running (``1``: one after another, in the calling thread, as before). Before a site starts,
``hold(site)`` may keep it from starting (a stale plan, the window) — its outcome is then the one
``hold`` gave. Once a site ends with ``stops(outcome)`` true (a failure under ``on_site_failure:
stop``, a failed rollback, a cancel), no new site starts: those running finish, or roll back, on
their own (a cancel reaches each of them: each rolls back its own site). Each site still runs its own cutover and
rollback (:class:`overflyt.cutover.site.Cutover`); the outcomes come back in the plan's order.

Sites run in threads, each in a copy of the caller's context (so a Prefect subflow started in one
is a child of the wave's flow run). The plan's move slots (:mod:`overflyt.steps.slots`, kernel
locks) keep the VM moves of sites running at once within the per host, per datastore and global
limits. A site with a VM that ``depends_on`` a VM of another site of the wave (``after``) starts
only once that site has ended, however it ended — as it did when sites ran one after another; the
sites behind it in the plan's order may start before it meanwhile. A site that raised (a bug, an
interrupt) stops new starts too; what it raised is raised again once every running site has ended.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from overflyt.ansible.cancel import POLL_S
from overflyt.cutover.outcome import SiteOutcome

log = logging.getLogger(__name__)

Hold = Callable[[str], SiteOutcome | None]  # a site's outcome when it may not start now, else None
Cut = Callable[[str], SiteOutcome]  # a site's cutover, start to end (rollback included)
Stops = Callable[[SiteOutcome], bool]  # after a site ended: no new site starts


def cut_sites(
    sites: Sequence[str],
    limit: int,
    hold: Hold,
    cut: Cut,
    stops: Stops,
    after: Mapping[str, Collection[str]] | None = None,
) -> list[SiteOutcome]:
    """The outcomes of the sites that started or were held back, in ``sites``' order (those after
    a stop are left out: they were not started and nothing of them was touched). ``after[site]``:
    the sites of ``sites`` that must have ended before ``site`` starts."""
    ended: dict[str, SiteOutcome] = {}
    if limit <= 1:
        for site in sites:
            held = hold(site)
            if held is not None:
                ended[site] = held
                continue
            ended[site] = outcome = cut(site)
            if stops(outcome):
                break
        return [ended[s] for s in sites if s in ended]
    waiting = list(sites)
    running: dict[Future[SiteOutcome], str] = {}
    stopped = False
    raised: BaseException | None = None
    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="overflyt-site") as pool:
        while running or (waiting and not stopped):
            while waiting and not stopped and len(running) < limit:
                ready = [w for w in waiting if all(a in ended or a not in sites for a in (after or {}).get(w, ()))]
                if not ready and running:
                    break  # each waits for a site still running
                ready = ready or waiting[:1]  # sites that depend on each other: the plan's order, as before
                site = ready[0]
                waiting.remove(site)
                held = hold(site)
                if held is not None:
                    ended[site] = held
                    continue
                context = contextvars.copy_context()
                running[pool.submit(context.run, cut, site)] = site
                log.info("site %s started (%d of at most %d running)", site, len(running), limit)
            if not running:
                break
            done: set[Future[SiteOutcome]] = set()
            # Python runs a signal's handler (the cancel of SIGTERM/SIGINT) only in the main thread,
            # when it runs; the kernel may hand the signal to a site's thread. Woken each POLL_S, the
            # cancel is not held back until a site ends.
            while not done:
                done, _ = wait(running, timeout=POLL_S, return_when=FIRST_COMPLETED)
            for future in done:
                site = running.pop(future)
                try:
                    ended[site] = outcome = future.result()
                except BaseException as exc:  # noqa: BLE001 - raised again below, once the running sites have ended
                    raised = raised or exc
                    stopped = True
                    continue
                if stops(outcome):
                    stopped = True
    if raised is not None:
        raise raised
    return [ended[s] for s in sites if s in ended]
