"""DL/T 645 conversations as sans-I/O exchanges (see :class:`edge_agent.model.Exchange`).

* :class:`ReadExchange` reads one DI (single or block) and follows up (2007 0x12 with a
  frame sequence number 1, 2, …; 1997 0x02) while the meter sets D5, then decodes the
  concatenated DATA.
* :class:`LoadProfileExchange` reads 06000001 records from a start time into rows.
* :class:`FreezeExchange` reads one daily or hourly freeze: its time, then its energies.
* :class:`CommandExchange` sends a prepared command whose normal reply has no values.
* :class:`ReadAddressExchange` asks the only meter on the bus for its address (0x13).

Frames that are not replies (D7 = 0, e.g. the echo of an RS-485 adapter) are skipped.
DL/T 645 mandates no line silence, so ``silence_chars`` is 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from ..errors import AbnormalReplyError, ConfigError, UnexpectedReplyError
from ..model import Value
from . import dlt645, dlt645_1997
from .dlt645 import (
    BROADCAST_ADDRESS,
    Code,
    Frame,
    decode_frame,
    normalize_address,
    reply_needed,
)
from .dlt645_1997 import Code1997
from .dlt645_catalogue import (
    DAILY_FREEZES,
    DI_LOAD_PROFILE,
    HOURLY_FREEZES,
    BadDataError,
    ItemKind,
    LoadRow,
    Version,
    daily_freeze_di,
    decode_item,
    decode_load_profile,
    di_bytes,
    di_size,
    hourly_freeze_di,
    lookup,
)

#: Error word bit 1 of 2007: the meter has no data for the request.
NO_DATA = 0x02
MAX_FOLLOW_UPS = 255


def next_reply(buffer: bytes) -> tuple[Frame | None, int]:
    """Find the first reply frame in ``buffer`` and the bytes used to its end (skip echoes)."""
    used = 0
    while True:
        frame, size = decode_frame(buffer[used:])
        if frame is None:
            return None, 0
        used += size
        if frame.is_reply:
            return frame, used


def address_matches(pattern: str, actual: str) -> bool:
    """Tell whether a reply from ``actual`` answers a request sent to ``pattern``."""
    if pattern == BROADCAST_ADDRESS:
        return True
    return all(p in ("A", a) for p, a in zip(pattern, actual, strict=True))


def refusal(version: Version) -> Callable[[int], AbnormalReplyError]:
    """Return the abnormal-reply error factory of an edition."""
    return dlt645.abnormal_error if version == Version.V2007 else dlt645_1997.abnormal_error_1997


def check_reply(frame: Frame, address: str, code: int, version: Version) -> None:
    """Raise unless ``frame`` is the normal reply with ``code`` from ``address``."""
    if frame.code != code:
        raise UnexpectedReplyError(f"expected a reply to code {code:02X}, got {frame.code:02X}")
    if not address_matches(address, frame.address):
        raise UnexpectedReplyError(f"reply from {frame.address}, expected {address}")
    if frame.is_abnormal:
        raise refusal(version)(frame.data[0] if frame.data else 0)


class _Conversation:
    """What every DL/T 645 exchange shares: no line silence, replies found by :func:`next_reply`."""

    silence_chars: float = 0.0

    def needed(self, data: bytes) -> int:
        """Bytes the buffer needs before a reply (or a broken frame) can be complete."""
        return reply_needed(data)


class ReadExchange(_Conversation):
    """Read one data identifier, following up until the meter has sent everything."""

    def __init__(
        self,
        address: str,
        di: int,
        keys: Mapping[int, str],
        *,
        version: Version = Version.V2007,
        count: int | None = None,
        start: datetime | None = None,
    ) -> None:
        self.address = normalize_address(address)
        self.di = di
        self.keys = dict(keys)
        self.version = Version(version)
        self.item = lookup(di, self.version)
        if self.version == Version.V1997 and (count is not None or start is not None):
            raise ConfigError("DL/T 645-1997 reads take no count or start time")
        self._count = count
        self._start = start
        self._chunks: list[bytes] = []
        self._seq = 0
        self._done = False
        self._decoded: dict[int, Value] = {}

    # --- Exchange protocol ---------------------------------------------------------

    def request(self) -> bytes:
        """Return the read, or the follow-up for the next frame."""
        if self.version == Version.V1997:
            if self._seq == 0:
                return dlt645_1997.read_request(self.address, self.di)
            return dlt645_1997.read_follow_up_request(self.address, self.di)
        if self._seq == 0:
            return dlt645.read_request(self.address, self.di, count=self._count, start=self._start)
        return dlt645.read_follow_up_request(self.address, self.di, self._seq)

    def receive(self, data: bytes) -> int:
        """Consume one reply frame from ``data``; 0 until one is complete."""
        frame, used = next_reply(data)
        if frame is None:
            return 0
        try:
            check_reply(frame, self.address, self._expected_code(), self.version)
        except AbnormalReplyError as exc:
            self._refused(exc)
            return used
        self._chunks.append(self._payload(frame))
        if frame.has_follow_up:
            if self._seq >= MAX_FOLLOW_UPS:
                raise UnexpectedReplyError(f"more than {MAX_FOLLOW_UPS} follow-up frames")
            self._seq += 1
        else:
            self._finish(b"".join(self._chunks))
        return used

    @property
    def done(self) -> bool:
        """True once the last frame has arrived and been decoded."""
        return self._done

    def values(self) -> dict[str, Value]:
        """Return decoded values by the canonical keys given in ``keys``."""
        return {self.keys[di]: v for di, v in self._decoded.items() if di in self.keys}

    # --- details -------------------------------------------------------------------

    @property
    def decoded(self) -> dict[int, Value]:
        """Decoded values by member DI, including those without a key."""
        return dict(self._decoded)

    def _expected_code(self) -> int:
        if self.version == Version.V1997:
            return Code1997.READ_FOLLOW_UP if self._seq else Code1997.READ
        return Code.READ_FOLLOW_UP if self._seq else Code.READ

    def _payload(self, frame: Frame) -> bytes:
        size = di_size(self.version)
        if frame.data[:size] != di_bytes(self.di, self.version):
            got = frame.data[:size][::-1].hex().upper()
            raise UnexpectedReplyError(f"reply carries DI {got}, expected {self.di:0{size * 2}X}")
        if self.version == Version.V1997 or self._seq == 0:
            return frame.data[size:]
        if len(frame.data) <= size or frame.data[-1] != self._seq & 0xFF:
            raise UnexpectedReplyError(f"follow-up reply lacks sequence number {self._seq}")
        return frame.data[size:-1]

    def _refused(self, error: AbnormalReplyError) -> None:
        raise error

    def _finish(self, payload: bytes) -> None:
        if self.item.kind != ItemKind.RECORD:
            self._decoded = decode_item(self.di, payload, self.version)
        self._done = True


class LoadProfileExchange(ReadExchange):
    """Read up to ``count`` load-profile records (06000001) stored from ``start`` on.

    A refusal with "no requested data" (nothing recorded since ``start``) ends the
    exchange with no rows, so a reader resuming from its last time stamp sees an empty
    result rather than an error.
    """

    def __init__(
        self, address: str, keys: Mapping[int, str], *, count: int, start: datetime
    ) -> None:
        super().__init__(address, DI_LOAD_PROFILE, keys, count=count, start=start)
        self._rows: list[LoadRow] = []

    def rows(self) -> list[tuple[datetime, dict[str, Value]]]:
        """Every record as (time stamp, values by canonical key), oldest first."""
        return [
            (when, {self.keys[di]: v for di, v in values.items() if di in self.keys})
            for when, values in self._rows
        ]

    def values(self) -> dict[str, Value]:
        """Values of the newest record (empty if there is none)."""
        rows = self.rows()
        return rows[-1][1] if rows else {}

    def _refused(self, error: AbnormalReplyError) -> None:
        if error.flags != NO_DATA:
            raise error
        self._done = True

    def _finish(self, payload: bytes) -> None:
        self._rows = decode_load_profile(payload)
        self._done = True


class FreezeExchange(_Conversation):
    """Read one daily (0506xxxx) or hourly (0504xxxx) freeze, ``back`` freezes ago.

    ``keys`` maps the *current* energy DIs (00010000, 00010100…, 00020000…) to quantity
    keys, as the freeze blocks list those DIs as members. Reads the freeze time first,
    then only the energy blocks that hold a keyed DI.
    """

    def __init__(
        self, address: str, keys: Mapping[int, str], *, hourly: bool = False, back: int = 1
    ) -> None:
        limit = HOURLY_FREEZES if hourly else DAILY_FREEZES
        if not 1 <= back <= limit:
            raise ConfigError(f"freeze number must be 1..{limit}, got {back}")
        make_di = hourly_freeze_di if hourly else daily_freeze_di
        dis = [make_di(0, back)] + [
            di for di in (make_di(1, back), make_di(2, back)) if set(lookup(di).members) & set(keys)
        ]
        self._reads = [ReadExchange(address, di, keys) for di in dis]
        self._index = 0

    def request(self) -> bytes:
        """Return the current read (or its follow-up)."""
        return self._reads[self._index].request()

    def receive(self, data: bytes) -> int:
        """Feed the current read; move to the next one when it is done."""
        used = self._reads[self._index].receive(data)
        if self._reads[self._index].done and self._index < len(self._reads) - 1:
            self._index += 1
        return used

    @property
    def done(self) -> bool:
        """True once every read is complete."""
        return self._reads[-1].done

    def values(self) -> dict[str, Value]:
        """Frozen values by canonical key."""
        merged: dict[str, Value] = {}
        for read in self._reads[1:]:
            merged.update(read.values())
        return merged

    @property
    def row(self) -> tuple[datetime, dict[str, Value]]:
        """(freeze time, values by canonical key), once done."""
        stamp = next(iter(self._reads[0].decoded.values()), None)
        try:
            when = datetime.fromisoformat(str(stamp))
        except ValueError:
            raise BadDataError(f"freeze time {stamp!r} is not a valid time") from None
        return when, self.values()


class CommandExchange(_Conversation):
    """Send a prepared command (write, relay, freeze…) and accept its empty normal reply.

    Broadcast commands get no reply: ``expects_reply`` is then False and ``done`` turns
    True as soon as ``request()`` has been called.
    """

    def __init__(
        self,
        request: bytes,
        address: str,
        code: int,
        *,
        version: Version = Version.V2007,
        expects_reply: bool | None = None,
    ) -> None:
        self._request = request
        self.address = normalize_address(address)
        self.code = code
        self.version = Version(version)
        self.expects_reply = (
            self.address != BROADCAST_ADDRESS if expects_reply is None else expects_reply
        )
        self._done = False
        self.reply: Frame | None = None

    def request(self) -> bytes:
        """Return the command bytes."""
        if not self.expects_reply:
            self._done = True
        return self._request

    def receive(self, data: bytes) -> int:
        """Consume the reply frame; raise on a refusal."""
        frame, used = next_reply(data)
        if frame is None:
            return 0
        check_reply(frame, self.address, self.code, self.version)
        self.reply = frame
        self._done = True
        return used

    @property
    def done(self) -> bool:
        """True once the meter has accepted the command (or it was a broadcast)."""
        return self._done

    def values(self) -> dict[str, Value]:
        """Commands carry no values."""
        return {}


class ReadAddressExchange(_Conversation):
    """0x13 read address on the wildcard address; ``address`` holds the answer when done."""

    def __init__(self) -> None:
        self.address: str | None = None

    def request(self) -> bytes:
        """Return the read-address request."""
        return dlt645.read_address_request()

    def receive(self, data: bytes) -> int:
        """Consume the reply and take the address from its DATA."""
        frame, used = next_reply(data)
        if frame is None:
            return 0
        check_reply(frame, dlt645.WILDCARD_ADDRESS, Code.READ_ADDRESS, Version.V2007)
        if len(frame.data) != 6:
            raise BadDataError(f"read-address reply has {len(frame.data)} DATA bytes, not 6")
        self.address = dlt645.address_from_bytes(frame.data)
        return used

    @property
    def done(self) -> bool:
        """True once the address is known."""
        return self.address is not None

    def values(self) -> dict[str, Value]:
        """Return nothing: the address is an attribute, not a quantity."""
        return {}
