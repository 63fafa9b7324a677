"""A simulated DL/T 645 meter (2007 or 1997): reads, follow-ups, history and commands.

Answers, per edition:

* read (2007 0x11, 1997 0x01) of any catalogue DI: single items, blocks (every member
  encoded; a single-phase meter answers phase blocks with phase A only), settlement
  energies (``…01``–``…0C``: the 1st of the month, 00:00), daily (0506) and hourly (0504)
  freezes, and load-profile records 06000001 from the model's history; a reply longer
  than ``max_frame_data`` goes out in follow-up frames (2007 0x12 with a sequence
  number, 1997 0x02);
* read address 0x13, write (acknowledged; 04000101/04000102 set the clock), freeze 0x16
  (acknowledged, a record is stored), relay control 0x1C (trip / close; a wrong password
  is refused with error bit 2), and the 1997 address, baud and password commands
  (acknowledged, nothing changes).

A DI outside the catalogue, or a block DI on a meter with ``reject_block_dis``, gets
an abnormal reply with bit 1 ("no requested data"). Broadcast time (0x08) is applied by
the engine to every meter, with no reply.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..errors import AbnormalReplyError, FrameError, UnknownDataIdError
from ..model import Value
from ..profiles.model import ProfileProtocol
from ..protocols.dlt645 import Code, Frame, RelayAction, address_bytes, reply_frame
from ..protocols.dlt645_1997 import Code1997
from ..protocols.dlt645_catalogue import (
    DI_DATE,
    DI_LOAD_PROFILE,
    DI_TIME,
    LOAD_PROFILE_BLOCKS,
    DataItem,
    ItemKind,
    ValueRangeError,
    Version,
    decode_value,
    di_bytes,
    di_from_bytes,
    di_size,
    encode_item,
    encode_load_record,
    lookup,
)
from .dimap import derived_values, di_keys
from .meter import SimMeterState

OTHER_ERROR = 0x01
NO_DATA = 0x02
WRONG_PASSWORD = 0x04
#: 1997 error word bit 1: wrong data identifier.
WRONG_DI_1997 = 0x02

_DAILY, _HOURLY = 0x0506, 0x0504
_RECORD_STAMP = DataItem(0, "record start", 5, 0, False, None, ItemKind.DATETIME)
_ACK_ONLY_1997 = frozenset({Code1997.WRITE_ADDRESS, Code1997.CHANGE_BAUD, Code1997.CHANGE_PASSWORD})
#: A command handler: (request DATA, simulated instant) -> (reply DATA, follow-up flag).
_Handler = Callable[[bytes, float], tuple[bytes, bool]]
_CLOSE_ACTIONS = frozenset({RelayAction.CLOSE_ALLOWED, 0x1C})


def _refuse(flags: int, why: str) -> AbnormalReplyError:
    return AbnormalReplyError(f"simulated meter refuses: {why}", flags)


def bcd_fields(raw: bytes) -> list[int]:
    """Packed-BCD bytes as two-digit numbers, in wire order; FrameError if not BCD."""
    fields = []
    for byte in raw:
        high, low = byte >> 4, byte & 0x0F
        if high > 9 or low > 9:
            raise FrameError(f"{raw.hex(' ')} is not BCD")
        fields.append(high * 10 + low)
    return fields


def parse_broadcast_time(data: bytes) -> datetime:
    """Parse the ssmmhhDDMMYY of a broadcast-time command; FrameError when malformed."""
    if len(data) != 6:
        raise FrameError(f"broadcast time needs 6 bytes, got {len(data)}")
    second, minute, hour, day, month, year = bcd_fields(data)
    try:
        return datetime(2000 + year, month, day, hour, minute, second)
    except ValueError:
        raise FrameError(f"broadcast time {data.hex(' ')} is not a valid time") from None


@dataclass(slots=True)
class _FollowUp:
    """The rest of a long answer, waiting for follow-up requests."""

    di: int
    chunks: list[bytes]
    next_seq: int = 1


class DltMeter:
    """Builds the replies of one DL/T 645 meter."""

    def __init__(self, state: SimMeterState) -> None:
        self.state = state
        self.version = (
            Version.V1997
            if state.profile.protocol is ProfileProtocol.DLT645_1997
            else Version.V2007
        )
        self.keys = di_keys(state.profile)
        self._di_size = di_size(self.version)
        self._pending: _FollowUp | None = None
        self._handlers = (
            self._handlers_2007() if self.version == Version.V2007 else self._handlers_1997()
        )

    # --- dispatch -----------------------------------------------------------------------

    def reply(self, frame: Frame, t: float, *, broadcast: bool = False) -> bytes | None:
        """Return the reply to ``frame`` at simulated instant ``t`` (None: no reply is due)."""
        if frame.code == Code.BROADCAST_TIME:
            self.broadcast_time(frame.data, t)
            return None
        try:
            data, follow_up = self._answer(frame, t)
        except AbnormalReplyError as refusal:
            data, follow_up, abnormal = bytes([refusal.flags]), False, True
        except FrameError:
            data, follow_up, abnormal = bytes([OTHER_ERROR]), False, True
        else:
            abnormal = False
        if broadcast:
            return None
        return reply_frame(
            frame,
            data,
            follow_up=follow_up,
            abnormal=abnormal,
            address=self.state.address,
            preamble=self.state.config.preamble,
        )

    def broadcast_time(self, data: bytes, t: float) -> None:
        """Set the meter clock from a broadcast-time command (ignored when malformed)."""
        with contextlib.suppress(FrameError):
            self.state.set_meter_time(parse_broadcast_time(data), t)

    def _answer(self, frame: Frame, t: float) -> tuple[bytes, bool]:
        """Return (DATA, follow-up flag) of a normal reply; raise AbnormalReplyError to refuse."""
        handler = self._handlers.get(frame.code)
        if handler is None:
            raise _refuse(OTHER_ERROR, f"function code {frame.code:02X} is not supported")
        return handler(frame.data, t)

    def _handlers_2007(self) -> dict[int, _Handler]:
        return {
            Code.READ: self._read,
            Code.READ_FOLLOW_UP: lambda data, _t: self._follow_up(data, with_seq=True),
            Code.READ_ADDRESS: lambda _data, _t: (address_bytes(self.state.address), False),
            Code.WRITE: self._write,
            Code.FREEZE: self._freeze,
            Code.RELAY: self._relay,
        }

    def _handlers_1997(self) -> dict[int, _Handler]:
        handlers: dict[int, _Handler] = {
            Code1997.READ: self._read,
            Code1997.READ_FOLLOW_UP: lambda data, _t: self._follow_up(data, with_seq=False),
            Code1997.WRITE: self._write,
        }
        for code in _ACK_ONLY_1997:
            handlers[code] = lambda _data, _t: (b"", False)
        return handlers

    # --- reads --------------------------------------------------------------------------

    def _read(self, data: bytes, t: float) -> tuple[bytes, bool]:
        self._pending = None
        di = di_from_bytes(data, self.version)
        if self.version == Version.V2007 and di == DI_LOAD_PROFILE:
            payload = self._load_profile(data[self._di_size :], t)
        else:
            payload = self._item(di, t)
        return self._split(di, payload)

    def _split(self, di: int, payload: bytes) -> tuple[bytes, bool]:
        """First frame's DATA; the rest is kept for follow-up requests."""
        head = di_bytes(di, self.version)
        limit = self.state.config.max_frame_data
        first = max(1, limit - len(head))
        if len(payload) <= first:
            return head + payload, False
        per_frame = max(1, first - (1 if self.version == Version.V2007 else 0))
        rest = payload[first:]
        chunks = [rest[i : i + per_frame] for i in range(0, len(rest), per_frame)]
        self._pending = _FollowUp(di, chunks)
        return head + payload[:first], True

    def _follow_up(self, data: bytes, *, with_seq: bool) -> tuple[bytes, bool]:
        di = di_from_bytes(data, self.version)
        pending = self._pending
        if pending is None or pending.di != di or not pending.chunks:
            raise _refuse(NO_DATA, f"no follow-up pending for {di:X}")
        seq = data[self._di_size] if with_seq and len(data) > self._di_size else pending.next_seq
        chunk = pending.chunks.pop(0)
        pending.next_seq = seq + 1
        more = bool(pending.chunks)
        if not more:
            self._pending = None
        tail = bytes([seq & 0xFF]) if with_seq else b""
        return di_bytes(di, self.version) + chunk + tail, more

    def _item(self, di: int, t: float) -> bytes:
        """Encode the value(s) of a catalogue DI at ``t`` (history DIs at their instant)."""
        try:
            item = lookup(di, self.version)
        except UnknownDataIdError:
            raise _refuse(NO_DATA, f"{di:X} is not in the catalogue") from None
        if item.is_block and self.state.config.reject_block_dis:
            raise _refuse(NO_DATA, f"block {di:X} is refused by configuration")
        when = self._history_instant(di, t)
        if self.version == Version.V2007 and (di >> 16) in (_DAILY, _HOURLY) and not item.is_block:
            stamp = self.state.meter_time(when).strftime("%Y-%m-%dT%H:%M")
            return self._encode(di, {di: stamp})
        members = self._members(item) if item.is_block else (di,)
        return self._encode(di, self._values(members, when))

    def _members(self, item: DataItem) -> tuple[int, ...]:
        """Block members the meter answers (a single-phase meter: phase A only)."""
        if self.state.profile.phases != 1 or self.version != Version.V2007:
            return item.members
        phase_family = item.di >> 24 == 0x02 and (item.di >> 8) & 0xFF == 0xFF
        if not phase_family:
            return item.members
        return tuple(m for m in item.members if (m >> 8) & 0xFF in (0, 1))

    def _encode(self, di: int, values: dict[int, Value]) -> bytes:
        try:
            return encode_item(di, values, self.version)
        except ValueRangeError as err:
            raise _refuse(OTHER_ERROR, str(err)) from None

    def _history_instant(self, di: int, t: float) -> float:
        """When the value of a history DI was taken; ``t`` for current values."""
        if self.version != Version.V2007:
            return t
        back = di & 0xFF
        shown = self.state.meter_time(t)
        family = di >> 16
        if family == _DAILY and back:
            midnight = shown.replace(hour=0, minute=0, second=0, microsecond=0)
            return self.state.sim_time(midnight - timedelta(days=back - 1))
        if family == _HOURLY and back:
            hour = shown.replace(minute=0, second=0, microsecond=0)
            return self.state.sim_time(hour - timedelta(hours=back - 1))
        if di >> 24 == 0x00 and back:
            month = shown.year * 12 + shown.month - 1 - (back - 1)
            first = datetime(month // 12, month % 12 + 1, 1)
            return self.state.sim_time(first)
        return t

    def _values(self, members: Iterable[int], t: float) -> dict[int, Value]:
        """Values of member DIs (current DIs) at simulated instant ``t``."""
        model = self.state.values_at(t)
        model.update(derived_values(model))
        values: dict[int, Value] = {}
        for di in members:
            item = lookup(di, self.version)
            key = self.keys.get(self._current_di(di))
            match item.kind:
                case ItemKind.DATE:
                    values[di] = self.state.meter_time(t).strftime("%Y-%m-%d")
                case ItemKind.TIME:
                    values[di] = self.state.meter_time(t).strftime("%H:%M:%S")
                case ItemKind.DATETIME:
                    values[di] = self.state.meter_time(t).strftime("%Y-%m-%dT%H:%M")
                case ItemKind.ADDRESS:
                    values[di] = self.state.address
                case ItemKind.STATUS:
                    raw = model.get(key, 0) if key else 0
                    values[di] = int(raw) if isinstance(raw, int | float) else 0
                case _:
                    raw = model.get(key, 0.0) if key else 0.0
                    values[di] = raw if isinstance(raw, int | float) else 0.0
        return values

    def _current_di(self, di: int) -> int:
        """Return the DI of the current value (2007 settlement energies end in their number)."""
        if self.version == Version.V2007 and di >> 24 == 0x00:
            return di & ~0xFF
        return di

    def _load_profile(self, request: bytes, t: float) -> bytes:
        """Encode records from the requested start (``NN mmhhDDMMYY``), one per interval."""
        minutes = max(1, self.state.config.record_minutes)
        shown_now = self.state.meter_time(t)
        if len(request) >= 6:
            (count,) = bcd_fields(request[:1])
            stamp = str(decode_value(_RECORD_STAMP, request[1:6]))
            try:
                start = datetime.fromisoformat(stamp)
            except ValueError:
                raise FrameError(f"load-profile start {stamp!r} is not a valid time") from None
        else:
            count, start = 1, shown_now - timedelta(minutes=minutes)
        offset = (start.minute % minutes) * 60 + start.second
        when = start - timedelta(seconds=offset)
        if offset:
            when += timedelta(minutes=minutes)
        members = [di for block in LOAD_PROFILE_BLOCKS for di in block]
        records: list[bytes] = []
        while len(records) < count and when <= shown_now:
            values = self._values(members, self.state.sim_time(when))
            try:
                records.append(encode_load_record(when, values))
            except ValueRangeError as err:
                raise _refuse(OTHER_ERROR, str(err)) from None
            when += timedelta(minutes=minutes)
        if not records:
            raise _refuse(NO_DATA, f"no load-profile record since {start:%Y-%m-%d %H:%M}")
        return b"".join(records)

    # --- commands -----------------------------------------------------------------------

    def _check_password(self, password: bytes) -> None:
        if password != self.state.config.password:
            raise _refuse(WRONG_PASSWORD, "wrong password")

    def _freeze(self, _data: bytes, t: float) -> tuple[bytes, bool]:
        self.state.freeze(t)
        return b"", False

    def _write(self, data: bytes, t: float) -> tuple[bytes, bool]:
        """Acknowledge a write; date and time writes set the meter clock.

        DATA: DI, PA P0 P1 P2, (2007: C0..C3), value.
        """
        di = di_from_bytes(data, self.version)
        password_at = self._di_size + 1
        self._check_password(data[password_at : password_at + 3])
        value_at = password_at + 3 + (4 if self.version == Version.V2007 else 0)
        if self.version == Version.V2007 and di in (DI_DATE, DI_TIME):
            value = str(decode_value(lookup(di), data[value_at:]))
            shown = self.state.meter_time(t)
            try:
                if di == DI_DATE:
                    day = datetime.fromisoformat(value)
                    shown = shown.replace(year=day.year, month=day.month, day=day.day)
                else:
                    hh, mm, ss = (int(part) for part in value.split(":"))
                    shown = shown.replace(hour=hh, minute=mm, second=ss)
            except ValueError:
                raise FrameError(f"{value!r} is not a valid date or time") from None
            self.state.set_meter_time(shown, t)
        return b"", False

    def _relay(self, data: bytes, t: float) -> tuple[bytes, bool]:
        """0x1C: PA P0 P1 P2, C0..C3, N1 action, N2, N3..N8 valid-until."""
        if len(data) < 10:
            raise _refuse(OTHER_ERROR, "relay command too short")
        self._check_password(data[1:4])
        action = data[8]
        if action == RelayAction.TRIP:
            self.state.model.set_relay(False, t)
        elif action in _CLOSE_ACTIONS:
            self.state.model.set_relay(True, t)
        elif action not in set(RelayAction):
            raise _refuse(OTHER_ERROR, f"unknown relay action {action:02X}")
        return b"", False
