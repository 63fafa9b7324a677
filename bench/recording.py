"""A bus simulator that logs every transaction with its wire times.

:class:`RecordingSimulator` hands out sessions that note, for each request that gets a
reply, which meter it addressed, what it asked for, when the request started and ended on
the wire and when the reply's last byte went out. All times are ``loop.time()``
(``time.monotonic()``), so another process on the same machine can compare them with its
own clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import astuple, dataclass

from edge_agent.errors import FrameError
from edge_agent.model import SerialSettings
from edge_agent.protocols import dlt645
from edge_agent.protocols.modbus import Framing, decode_request
from edge_agent.simulator import BusSession, BusSimulator, PlannedReply, SimMeter, SimStats

_DLT_STARTS = frozenset({dlt645.WAKE_UP, dlt645.START})


@dataclass(frozen=True, slots=True)
class Transaction:
    """One request and its reply as the simulated wire saw them."""

    meter: str
    #: What was asked: ``"fc:address:count"`` for Modbus, ``"dlt:DI"`` for DL/T 645.
    key: str
    request_start: float
    request_end: float
    #: When the simulator planned the reply's first byte to start (after any required silence).
    reply_ready: float
    reply_bytes: int
    reply_end: float

    def as_list(self) -> list[str | float]:
        """Compact JSON form."""
        return list(astuple(self))

    @classmethod
    def from_list(cls, row: list[str | float]) -> Transaction:
        """Inverse of :meth:`as_list`."""
        meter, key, start, end, ready, size, reply_end = row
        return cls(
            str(meter),
            str(key),
            float(start),
            float(end),
            float(ready),
            int(size),
            float(reply_end),
        )


def request_key(frame: bytes) -> str:
    """Name what a request frame asks for (``"?"`` when it cannot be decoded)."""
    if frame and frame[0] in _DLT_STARTS:
        try:
            decoded, _used = dlt645.decode_frame(frame)
        except FrameError:
            return "?"
        if decoded is None:
            return "?"
        di = int.from_bytes(decoded.data[:4], "little")
        return f"dlt:{decoded.code:02X}:{di:08X}"
    _used, request = decode_request(frame, Framing.RTU)
    if request is None:
        return "?"
    return f"{request.function}:{request.address}:{request.count}"


#: How far a reply may end before its ideal end and still be the one just sent (s).
_PAIRING_SLACK = 0.001


class RecordingSession(BusSession):
    """A session that appends a :class:`Transaction` to ``log`` for every reply sent."""

    def __init__(self, sim: RecordingSimulator, *, mbap: bool, char_time: float | None) -> None:
        super().__init__(sim, mbap=mbap, char_time=char_time)
        self._log = sim.log
        self._owners = sim.owners
        self._frame = bytearray()
        self._first = 0.0
        self._in_flight: deque[tuple[str, str, float, float, float, int]] = deque()

    def feed(self, data: bytes, now: float) -> list[PlannedReply]:
        """Take received bytes as the base session does, noting the requests answered."""
        if not self.pending:
            self._frame.clear()
            self._first = now
        self._frame += data
        replies = super().feed(data, now)
        if replies:
            key = request_key(bytes(self._frame))
            end = max(now, self._first + len(self._frame) * (self.char_time or 0.0))
            for reply in replies:
                meter = self._owners.get(id(reply.stats[0]), "?")
                self._in_flight.append(
                    (meter, key, self._first, end, reply.not_before, len(reply.data))
                )
        if not self.pending:
            self._frame.clear()
        return replies

    def reply_sent(self, end: float) -> None:
        """Close the open transaction whose reply this was.

        Replies go out in order, but one that collided on the line is never sent (the
        simulator counts it in ``collisions``): an older entry is dropped once a later
        one could have ended by ``end``, so one lost reply does not shift the pairing of
        every transaction after it.
        """
        super().reply_sent(end)
        char_time = self.char_time or 0.0
        while len(self._in_flight) > 1:
            _meter, _key, _start, _end, ready, size = self._in_flight[1]
            if ready + size * char_time > end + _PAIRING_SLACK:
                break
            self._in_flight.popleft()
        if self._in_flight:
            meter, key, start, request_end, ready, size = self._in_flight.popleft()
            self._log.append(Transaction(meter, key, start, request_end, ready, size, end))


class RecordingSimulator(BusSimulator):
    """A :class:`BusSimulator` whose sessions log transactions into :attr:`log`."""

    def __init__(
        self,
        meters: Sequence[SimMeter],
        settings: SerialSettings | None = None,
        *,
        turnaround: float = 0.0,
    ) -> None:
        super().__init__(meters, settings, turnaround=turnaround)
        self.log: list[Transaction] = []
        #: Meter stats object id -> meter address, to name the meter of a reply.
        self.owners: dict[int, str] = {id(m.stats): m.address for m in self.meters}

    def session(self, *, mbap: bool = False, paced: bool = True) -> BusSession:
        """Open a recording byte stream onto this bus."""
        return RecordingSession(self, mbap=mbap, char_time=self.char_time if paced else None)


def stats_dict(stats: SimStats) -> dict[str, float]:
    """Plain dict of simulator counters."""
    return {name: getattr(stats, name) for name in stats.__dataclass_fields__}
