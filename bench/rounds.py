"""Poll cycles from the simulated wire's transaction log (pure).

Two ways of polling need two readings of the same log:

* Grid Meter polls all meters, then idles until the next update: a *poll* is a run of
  transactions without an idle gap; its cycle is its first request's start to its last
  reply's end.
* Home Assistant's core modbus reads one register per sensor, sensors queued on one lock,
  back to back: a *round* is as many consecutive transactions as there are sensors; its
  cycle is the first request's start to the start of the first request after it (so every
  transaction's pause is in).
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .recording import Transaction


@dataclass(frozen=True, slots=True)
class Cycle:
    """A measured poll cycle."""

    seconds: float
    transactions: int
    meters: int
    #: How many cycles the figure is the median of.
    samples: int
    #: Share of the expected (meter, request) pairs seen exactly once in the cycle.
    coverage: float = 1.0
    #: Longest idle between consecutive transactions inside the cycle, in seconds.
    max_idle: float = 0.0


def split_polls(log: Sequence[Transaction], idle: float) -> list[list[Transaction]]:
    """Split a log at every idle gap longer than ``idle`` seconds."""
    polls: list[list[Transaction]] = []
    for t in sorted(log, key=lambda t: t.request_start):
        if polls and t.request_start - polls[-1][-1].reply_end <= idle:
            polls[-1].append(t)
        else:
            polls.append([t])
    return polls


def _max_idle(run: Sequence[Transaction]) -> float:
    return max((b.request_start - a.reply_end for a, b in itertools.pairwise(run)), default=0.0)


def poll_cycle(log: Sequence[Transaction], idle: float, expected: int) -> Cycle | None:
    """Median cycle of the complete polls (``expected`` transactions or more) in a log."""
    complete = [p for p in split_polls(log, idle) if len(p) >= expected]
    if not complete:
        return None
    spans = [p[-1].reply_end - p[0].request_start for p in complete]
    middle = complete[sorted(range(len(spans)), key=spans.__getitem__)[len(spans) // 2]]
    return Cycle(
        seconds=statistics.median(spans),
        transactions=len(middle),
        meters=len({t.meter for t in middle}),
        samples=len(complete),
        max_idle=_max_idle(middle),
    )


def round_cycle(log: Sequence[Transaction], sensors: int, after: float) -> Cycle | None:
    """Cycle of the first full round of ``sensors`` transactions starting after ``after``."""
    ordered = [t for t in sorted(log, key=lambda t: t.request_start) if t.request_start >= after]
    if len(ordered) <= sensors:
        return None
    window = ordered[:sensors]
    seen = Counter((t.meter, t.key) for t in window)
    once = sum(1 for count in seen.values() if count == 1)
    return Cycle(
        seconds=ordered[sensors].request_start - window[0].request_start,
        transactions=len(window),
        meters=len({t.meter for t in window}),
        samples=1,
        coverage=once / sensors,
        max_idle=_max_idle(window),
    )
