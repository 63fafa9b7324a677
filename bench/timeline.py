"""Where the time of a poll goes, from the simulated wire's transaction log (pure).

Between one reply's end and the next reply's end a half-duplex bus spends: the silence
the protocol requires, the request on the wire, the silence again, the reply on the wire.
Everything else is lost either by the poller (it sent its request late) or by the
simulator (its reply went out later than planned).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from .recording import Transaction


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Time lost per transaction, in seconds (medians and sums over a log)."""

    transactions: int
    #: The poller's reaction: next request start minus (previous reply end + silence).
    poller_median: float
    poller_total: float
    #: The simulator's lateness: reply end minus (planned start + its bytes' wire time).
    simulator_median: float
    simulator_total: float


def breakdown(log: Sequence[Transaction], char_time: float, silence_chars: float) -> Breakdown:
    """Split the time between the wire's work and what each side lost."""
    silence = silence_chars * char_time
    poller = [
        later.request_start - (earlier.reply_end + silence)
        for earlier, later in itertools.pairwise(log)
    ]
    simulator = [t.reply_end - (t.reply_ready + t.reply_bytes * char_time) for t in log]
    return Breakdown(
        transactions=len(log),
        poller_median=statistics.median(poller) if poller else 0.0,
        poller_total=sum(poller),
        simulator_median=statistics.median(simulator) if simulator else 0.0,
        simulator_total=sum(simulator),
    )
