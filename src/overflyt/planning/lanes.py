"""How long a wave's cutovers take when up to ``concurrency.sites`` run at once: the rule the
cutover runs (:mod:`overflyt.cutover.parallel`) — each cutover, in order, starts as soon as fewer
than ``limit`` are running — applied to the estimated minutes of each. Pure code."""

from __future__ import annotations

import heapq
from collections.abc import Sequence


def makespan(minutes: Sequence[float], limit: int) -> float:
    """The minutes from the first cutover's start to the last one's end, each of ``minutes`` started
    in order on the first of ``limit`` lanes to free up (``limit`` 1: their sum)."""
    if limit <= 1:
        return float(sum(minutes))
    lanes = [0.0] * min(limit, max(len(minutes), 1))
    for each in minutes:
        heapq.heappush(lanes, heapq.heappop(lanes) + each)
    return max(lanes)
