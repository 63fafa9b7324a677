"""A message the daemon will publish, as data."""

from __future__ import annotations

from typing import NamedTuple


class Outgoing(NamedTuple):
    """One reading on its way to the spool and the broker.

    A named tuple in the spool's row order, so a batch goes to ``Spool.append_many``
    as it is (this is the hot path of the terminal bridge).
    """

    topic: str
    payload: bytes
    qos: int
    #: Unix time the values were read (kept through the spool, replayed unchanged).
    timestamp: float
