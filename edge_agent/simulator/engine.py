"""The bus simulator: many meters of mixed protocols behind one byte stream.

:class:`BusSimulator` holds the meters, the clock and the totals; each byte stream (the
pty, each TCP connection) gets a :class:`BusSession` that cuts received bytes into
requests, asks the addressed meter for its reply and says when that reply may start on
the wire. Sessions do no I/O: the transports feed them bytes with the time they arrived
and hand the planned replies to a :class:`~.pacing.Pacer`.

On a serial stream a request starting with FE or 68 is DL/T 645 (unless it is a valid
Modbus read for unit 0x68), anything else Modbus RTU; an MBAP stream carries Modbus TCP.

Wire model (with :class:`~edge_agent.model.SerialSettings`): a request of ``n`` bytes
whose first byte arrived at ``t0`` ends at ``t0 + n·char_time``; a Modbus reply may start
3.5 characters after that, a DL/T 645 reply at once; both add the turnaround and the
meter's ``faults.delay``. A Modbus request that starts less than 3.5 characters after the
line went quiet counts as a gap violation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError, FrameError
from ..model import SerialSettings
from ..protocols import dlt645
from ..protocols.dlt645 import BROADCAST_ADDRESS, Frame
from ..protocols.modbus import READ_FUNCTIONS, Framing, ModbusRequest, decode_request
from . import faults as fault_tools
from .clock import SimClock
from .dlt645_meter import DltMeter
from .meter import SimMeter, SimMeterState
from .modbus_meter import ModbusMeter
from .stats import SimStats

#: Bytes of a Modbus RTU read request.
RTU_REQUEST_SIZE = 8
#: Characters of silence that delimit Modbus RTU frames.
RTU_GAP_CHARS = 3.5
_DLT_STARTS = frozenset({dlt645.WAKE_UP, dlt645.START})
_MBAP_HEADER = 6
#: MBAP unit ids that address "the device behind this socket".
_ANY_UNIT = frozenset({0, 255})


@dataclass(frozen=True, slots=True)
class PlannedReply:
    """Bytes a meter sends and the earliest time (``loop.time()``) they may start."""

    data: bytes
    not_before: float
    stats: tuple[SimStats, ...]


def _wildcard_match(pattern: str, address: str) -> bool:
    return all(p in ("A", a) for p, a in zip(pattern, address, strict=True))


class BusSimulator:
    """Simulated meters sharing one bus.

    ``settings`` paces replies at the line's character time (None: answer at once, as
    a Modbus TCP device does). ``turnaround`` is every meter's processing time in
    seconds; ``time_scale`` speeds up (or, at 0, freezes) the meters' clock, which
    starts at ``start`` (Unix seconds, default now).
    """

    def __init__(
        self,
        meters: Sequence[SimMeter],
        settings: SerialSettings | None = None,
        *,
        turnaround: float = 0.0,
        time_scale: float = 1.0,
        start: float | None = None,
    ) -> None:
        self.settings = settings
        self.turnaround = turnaround
        self.clock = (
            SimClock(time_scale=time_scale)
            if start is None
            else SimClock(start=start, time_scale=time_scale)
        )
        self.stats = SimStats()
        self.meters: list[SimMeterState] = []
        self._modbus: dict[int, ModbusMeter] = {}
        self._dlt: dict[str, DltMeter] = {}
        for config in meters:
            state = SimMeterState(config, self.clock)
            taken = self._modbus if state.unit is not None else self._dlt
            if (state.unit if state.unit is not None else state.address) in taken:
                raise ConfigError(f"two simulated meters share address {state.address}")
            if state.unit is not None:
                self._modbus[state.unit] = ModbusMeter(state)
            else:
                self._dlt[state.address] = DltMeter(state)
            self.meters.append(state)

    @property
    def char_time(self) -> float | None:
        """Seconds per character on the simulated line, None without serial settings."""
        return self.settings.char_time if self.settings else None

    def meter(self, address: str | int) -> SimMeterState:
        """Return the running state of the meter with a Modbus unit id or DL/T 645 address."""
        text = str(address).strip()
        if text.isdigit() and int(text) in self._modbus:
            return self._modbus[int(text)].state
        try:
            return self._dlt[dlt645.normalize_address(text)].state
        except (ConfigError, KeyError):
            raise ConfigError(f"no simulated meter has address {address!r}") from None

    def session(self, *, mbap: bool = False, paced: bool = True) -> BusSession:
        """Open a new byte stream onto this bus (``paced`` False ignores serial settings)."""
        return BusSession(self, mbap=mbap, char_time=self.char_time if paced else None)

    # --- dispatch (used by sessions) ------------------------------------------------------

    def modbus_meter(self, unit: int, *, any_unit: bool = False) -> ModbusMeter | None:
        """Return the Modbus meter for a unit id; an MBAP 0/255 reaches a lone meter."""
        found = self._modbus.get(unit)
        if found is None and any_unit and unit in _ANY_UNIT and len(self._modbus) == 1:
            found = next(iter(self._modbus.values()))
        return found

    def dlt_targets(self, address: str) -> list[DltMeter]:
        """DL/T 645 meters that receive a frame sent to ``address``.

        The broadcast address reaches every meter. A wildcard reaches the matching
        meters; as real meters would all answer at once and collide, only a lone DL/T
        645 meter or those configured ``responds_to_wildcard`` take part.
        """
        if address == BROADCAST_ADDRESS:
            return list(self._dlt.values())
        if "A" not in address:
            found = self._dlt.get(address)
            return [found] if found else []
        matching = [m for m in self._dlt.values() if _wildcard_match(address, m.state.address)]
        if len(self._dlt) == 1:
            return matching
        return [m for m in matching if m.state.config.responds_to_wildcard][:1]


class BusSession:
    """One byte stream onto a :class:`BusSimulator` (sans-I/O; times are ``loop.time()``)."""

    def __init__(self, sim: BusSimulator, *, mbap: bool, char_time: float | None) -> None:
        self.sim = sim
        self.mbap = mbap
        self.char_time = char_time
        self._buffer = bytearray()
        #: Wire time at which the first buffered byte arrived.
        self._start = 0.0
        #: When the line last went quiet (end of a request or of a reply).
        self._quiet_since = float("-inf")
        #: Planned end of the last reply (the line is busy until then).
        self._reply_end = float("-inf")

    @property
    def pending(self) -> bool:
        """True while received bytes wait for the rest of their frame."""
        return bool(self._buffer)

    @property
    def stale_after(self) -> float:
        """Seconds after which an incomplete frame is given up (a byte is dropped)."""
        return max(0.05, 40 * (self.char_time or 0.0))

    def feed(self, data: bytes, now: float) -> list[PlannedReply]:
        """Take received bytes; return the replies they call for."""
        if not self._buffer:
            self._start = now
        self._buffer += data
        self.sim.stats.bytes_in += len(data)
        return self._drain(now)

    def expire(self, now: float) -> list[PlannedReply]:
        """Give up the first byte of an incomplete frame and try again."""
        if self._buffer:
            self._discard(1)
        return self._drain(now)

    def reply_sent(self, end: float) -> None:
        """Note that a reply's last byte went out at ``end`` (called by the pacer)."""
        self._quiet_since = max(self._quiet_since, end)
        self._reply_end = max(self._reply_end, end)

    # --- framing ----------------------------------------------------------------------

    def _wire(self, count: int) -> float:
        return count * (self.char_time or 0.0)

    def _discard(self, count: int) -> None:
        del self._buffer[:count]
        self._start += self._wire(count)
        self.sim.stats.discarded_bytes += count

    def _take(self, count: int, now: float) -> tuple[float, float, float]:
        """Remove one frame; return its start and end on the wire and the quiet before it.

        The quiet is when the line went quiet before the frame: the end of the previous
        request or reply.
        """
        quiet_before = max(self._quiet_since, self._reply_end)
        start = self._start
        end = max(start + self._wire(count), now)
        del self._buffer[:count]
        self._start = end
        self._quiet_since = max(self._quiet_since, end)
        return start, end, quiet_before

    def _drain(self, now: float) -> list[PlannedReply]:
        replies: list[PlannedReply] = []
        while self._buffer:
            step = self._step_mbap(now) if self.mbap else self._step_serial(now)
            if step is None:
                break
            replies.extend(step)
        return replies

    def _step_mbap(self, now: float) -> list[PlannedReply] | None:
        buffer = bytes(self._buffer)
        try:
            used, request = decode_request(buffer, Framing.TCP)
        except FrameError:
            size = _MBAP_HEADER + int.from_bytes(buffer[4:6], "big") if len(buffer) >= 6 else 1
            self._discard(min(size, len(buffer)))
            return []
        if request is None:
            return None
        return self._modbus(request, used, self._take(used, now), Framing.TCP)

    def _step_serial(self, now: float) -> list[PlannedReply] | None:
        """Handle the frame at the head of the buffer; None while it is incomplete."""
        buffer = bytes(self._buffer)
        first = buffer[0]
        modbus = 1 <= first <= 247 and (len(buffer) < 2 or buffer[1] in READ_FUNCTIONS)
        if modbus and len(buffer) >= RTU_REQUEST_SIZE:
            _used, request = decode_request(buffer[:RTU_REQUEST_SIZE], Framing.RTU)
            if request is not None:
                timing = self._take(RTU_REQUEST_SIZE, now)
                return self._modbus(request, RTU_REQUEST_SIZE, timing, Framing.RTU)
            modbus = False
        if first in _DLT_STARTS:
            try:
                frame, used = dlt645.decode_frame(buffer)
            except FrameError:
                self._discard(1)
                return []
            if frame is not None:
                _start, end, _quiet = self._take(used, now)
                return self._dlt(frame, used, end)
            return None
        if modbus:
            return None
        self._discard(1)
        return []

    # --- dispatch ---------------------------------------------------------------------

    def _modbus(
        self,
        request: ModbusRequest,
        size: int,
        timing: tuple[float, float, float],
        framing: Framing,
    ) -> list[PlannedReply]:
        sim = self.sim
        start, end, quiet_before = timing
        gap = RTU_GAP_CHARS * self.char_time if self.char_time and framing is Framing.RTU else 0.0
        violation = bool(gap) and start < quiet_before + gap - 1e-6
        sim.stats.requests += 1
        sim.stats.gap_violations += violation
        meter = sim.modbus_meter(request.unit, any_unit=framing is Framing.TCP)
        if meter is None:
            return []
        state = meter.state
        state.stats.requests += 1
        state.stats.bytes_in += size
        state.stats.gap_violations += violation
        if state.faults.silent:
            return []
        frame = meter.reply(request, framing, sim.clock.at(end))
        payload = (9, len(frame)) if framing is Framing.TCP else (3, len(frame) - 2)
        return [self._plan(state, frame, payload, end + gap, avoid=request.unit)]

    def _dlt(self, frame: Frame, size: int, end: float) -> list[PlannedReply]:
        if frame.is_reply:  # another meter's answer or an adapter echo
            return []
        sim = self.sim
        sim.stats.requests += 1
        broadcast = frame.address == BROADCAST_ADDRESS
        t = sim.clock.at(end)
        replies: list[PlannedReply] = []
        for meter in sim.dlt_targets(frame.address):
            state = meter.state
            state.stats.requests += 1
            state.stats.bytes_in += size
            if state.faults.silent:
                continue
            reply = meter.reply(frame, t, broadcast=broadcast)
            if reply is not None:
                preamble = len(reply) - len(reply.lstrip(bytes([dlt645.WAKE_UP])))
                first = preamble + 10
                payload = (first, first + max(1, reply[preamble + 9]))
                replies.append(self._plan(state, reply, payload, end, avoid=-1))
        return replies

    def _plan(
        self,
        state: SimMeterState,
        frame: bytes,
        payload: tuple[int, int],
        ready: float,
        *,
        avoid: int,
    ) -> PlannedReply:
        """Apply the meter's faults to a reply and count it."""
        faults, rng = state.faults, state.rng
        totals = self.sim.stats
        if faults.corrupt_rate > 0 and rng.random() < faults.corrupt_rate:
            frame = fault_tools.corrupt(frame, *payload, rng)
            state.stats.corrupted += 1
            totals.corrupted += 1
        if faults.noise_rate > 0 and rng.random() < faults.noise_rate:
            frame = fault_tools.noise(rng, faults.noise_bytes, avoid) + frame
            state.stats.noise_bursts += 1
            totals.noise_bursts += 1
        for stats in (state.stats, totals):
            stats.transactions += 1
            stats.bytes_out += len(frame)
        not_before = ready + self.sim.turnaround + max(0.0, faults.delay)
        self._reply_end = max(self._reply_end, not_before + self._wire(len(frame)))
        return PlannedReply(frame, not_before, (state.stats, totals))
