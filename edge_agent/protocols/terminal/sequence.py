"""Per-terminal sequence tracking: duplicates, gaps, late arrivals and restarts.

Terminals number their messages 0, 1, 2, … from boot. The tracker remembers the
timestamp of the last ``window`` sequence numbers and the ranges still missing, which
is enough to tell apart:

* a duplicate (QoS 1 redelivery): a recent number seen again with the same timestamp;
* a gap: a jump forward, reported with the missing ranges;
* an out-of-order arrival: a number that fills a known gap;
* a restart: any other jump back carrying a newer timestamp, or a zero one (the clock
  is lost at boot): a remembered number with a later timestamp than before, or a
  forgotten one not older than the latest message;
* a stale message: a jump back carrying an older timestamp than that.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum

#: An inclusive range of sequence numbers, (first, last).
SeqRange = tuple[int, int]


class SequenceKind(StrEnum):
    """How a sequence number relates to what came before."""

    FIRST = "first"
    IN_ORDER = "in_order"
    GAP = "gap"
    OUT_OF_ORDER = "out_of_order"
    DUPLICATE = "duplicate"
    RESTART = "restart"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class SequenceEvent:
    """The verdict on one message."""

    kind: SequenceKind
    seq: int
    #: For GAP: the ranges skipped by this jump.
    missing: tuple[SeqRange, ...] = ()
    #: For RESTART: the highest number seen before the reset.
    previous: int | None = None

    @property
    def fresh(self) -> bool:
        """Return True for a message not seen before and not older than the window."""
        return self.kind not in (SequenceKind.DUPLICATE, SequenceKind.STALE)


class SequenceTracker:
    """Classifies the sequence numbers of one terminal, in arrival order."""

    def __init__(self, window: int = 256, max_ranges: int = 64) -> None:
        """Remember ``window`` recent numbers and at most ``max_ranges`` missing ranges."""
        self._window = window
        self._max_ranges = max_ranges
        self._recent: OrderedDict[int, int] = OrderedDict()
        self._missing: list[SeqRange] = []
        self._last: int | None = None
        self._last_ts = 0

    @property
    def last(self) -> int | None:
        """Highest sequence number since the last (re)start; None before the first."""
        return self._last

    @property
    def missing(self) -> tuple[SeqRange, ...]:
        """Ranges skipped and not yet filled, oldest first."""
        return tuple(self._missing)

    def observe(self, seq: int, timestamp: int = 0) -> SequenceEvent:
        """Classify one message and update the state."""
        last = self._last
        if last is None:
            return self._restart(seq, timestamp, SequenceEvent(SequenceKind.FIRST, seq))
        if seq == last + 1:
            self._remember(seq, timestamp)
            return SequenceEvent(SequenceKind.IN_ORDER, seq)
        if seq > last:
            gap = (last + 1, seq - 1)
            self._missing = [*self._missing, gap][-self._max_ranges :]
            self._remember(seq, timestamp)
            return SequenceEvent(SequenceKind.GAP, seq, missing=(gap,))
        if self._fill(seq):
            self._remember(seq, timestamp)
            return SequenceEvent(SequenceKind.OUT_OF_ORDER, seq)
        kind = self._classify_old(seq, timestamp)
        if kind is SequenceKind.RESTART:
            return self._restart(seq, timestamp, SequenceEvent(kind, seq, previous=last))
        return SequenceEvent(kind, seq)

    def _classify_old(self, seq: int, timestamp: int) -> SequenceKind:
        """Classify a number at or below the last one that fills no gap."""
        seen_ts = self._recent.get(seq)
        if seen_ts is not None:
            if timestamp == seen_ts:
                return SequenceKind.DUPLICATE
            older = timestamp != 0 and timestamp < seen_ts
        else:
            older = 0 < timestamp < self._last_ts
        return SequenceKind.STALE if older else SequenceKind.RESTART

    def _restart(self, seq: int, timestamp: int, event: SequenceEvent) -> SequenceEvent:
        self._recent.clear()
        self._missing = []
        self._last = None
        self._remember(seq, timestamp)
        return event

    def _remember(self, seq: int, timestamp: int) -> None:
        if self._last is None or seq > self._last:
            self._last = seq
            self._last_ts = timestamp
        self._recent[seq] = timestamp
        while len(self._recent) > self._window:
            self._recent.popitem(last=False)

    def _fill(self, seq: int) -> bool:
        """Remove ``seq`` from the missing ranges; False if it was not missing."""
        for i, (first, end) in enumerate(self._missing):
            if first <= seq <= end:
                parts = [(a, b) for a, b in ((first, seq - 1), (seq + 1, end)) if a <= b]
                self._missing[i : i + 1] = parts
                return True
        return False
