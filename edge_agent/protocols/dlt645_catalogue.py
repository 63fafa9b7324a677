"""DL/T 645 data-identifier catalogue (2007 and 1997) and value encode/decode.

Every number is packed BCD sent lowest byte first. Where DL/T 645-2007 Appendix A says a
value carries a direction (combined energies, currents, active/reactive power, power
factor, demand, temperature) bit 7 of the most significant byte is the sign, so
``XX.XXXX`` ranges -79.9999..79.9999. DL/T 645-1997 has no sign convention (power
direction is in the status word C020), so its numbers are unsigned.

Value shapes: numbers -> float in the canonical unit; dates ``YYMMDDWW`` -> ``"YYYY-MM-DD"``
(the weekday byte is dropped on decode and recomputed on encode, 0 = Sunday); times
``hhmmss`` -> ``"hh:mm:ss"``; ``YYMMDDhhmm`` -> ``"YYYY-MM-DDThh:mm"``; addresses ->
12-digit strings; status words -> int (binary, lowest byte first).

Block DIs decode to one value per member DI. A meter may answer a block with fewer
members than listed (e.g. a single-phase meter answering 0201FF00 with phase A only, or
fewer tariffs); decoding accepts any whole prefix of the members. Freeze blocks (0504xxxx,
0506xxxx) list as members the *current* DIs whose values they snapshot (e.g. 05060101 ->
00010000, 00010100..00010400), so a profile's key for 00010000 also names the frozen
value.

Load profile 06000001 (``decode_load_profile`` / ``encode_load_record``) follows the
record layout of DL/T 645-2007 Appendix B::

    A0 A0 | LEN | mm hh DD MM YY | b1 AA | b2 AA | b3 AA | b4 AA | b5 AA | b6 AA | CS | E5

``LEN`` counts the bytes from the time stamp through the last ``AA``; ``CS`` is the sum
mod 256 from the first ``A0`` through the last ``AA``; a block the meter does not record
is empty (just its ``AA``); a record starting ``E0 E0`` is marked bad and skipped (its
checksum unchecked). The six blocks hold (member DIs in order): 1 voltages A/B/C,
currents A/B/C, frequency (17 bytes); 2 active power total/A/B/C, reactive power
total/A/B/C (24); 3 power factor total/A/B/C (8); 4 forward active, reverse active,
combined reactive 1 and 2 energy (16); 5 reactive energy quadrants I..IV (16); 6 active
and reactive demand (6).

Followed: DL/T 645-2007 Appendix A (data coding: 0000xxxx energies, 0201..0206 and 0280
variables, 0400xxxx parameters, 0504/0506 freezes) and Appendix B (load records);
DL/T 645-1997 data table (9010/901F, B611..B653, C010/C011, C020, C032), cross-checked
against published captures such as B611 -> ``00 01`` = 100 V.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum

from ..errors import ConfigError, FrameError, UnknownDataIdError
from ..model import Value
from .dlt645 import address_from_bytes, di_bytes_2007, normalize_address, time_bytes, to_bcd
from .dlt645_1997 import di_bytes_1997


class Version(IntEnum):
    """DL/T 645 edition."""

    V2007 = 2007
    V1997 = 1997


class ItemKind(StrEnum):
    """How the bytes of a data item are read."""

    NUMBER = "bcd"
    DATE = "date"
    TIME = "time"
    DATETIME = "datetime"
    STATUS = "status"
    ADDRESS = "address"
    RECORD = "record"


class BadDataError(FrameError):
    """The DATA of a reply does not fit its data item (length, non-BCD digits)."""


class ValueRangeError(ConfigError, ValueError):
    """A value cannot be encoded in the format of its data item."""


@dataclass(frozen=True, slots=True)
class DataItem:
    """One data identifier: its wire format and meaning."""

    di: int
    name: str
    #: Bytes on the wire (a block: the sum of its members; 0 = variable).
    length: int
    decimals: int
    signed: bool
    unit: str | None
    kind: ItemKind
    #: Member DIs of a block, in wire order.
    members: tuple[int, ...] = ()

    @property
    def is_block(self) -> bool:
        """True for a block DI."""
        return bool(self.members)


# --- catalogue construction -------------------------------------------------------------

_Table = dict[int, DataItem]


def _number(table: _Table, di: int, name: str, fmt: tuple[int, int, bool, str | None]) -> None:
    length, decimals, signed, unit = fmt
    table[di] = DataItem(di, name, length, decimals, signed, unit, ItemKind.NUMBER)


def _block(table: _Table, di: int, name: str, members: Iterable[int], lookup: _Table) -> None:
    parts = tuple(members)
    first = lookup[parts[0]]
    table[di] = DataItem(
        di,
        name,
        sum(lookup[m].length for m in parts),
        first.decimals,
        first.signed,
        first.unit,
        first.kind,
        parts,
    )


def _single(table: _Table, di: int, name: str, length: int, kind: ItemKind) -> None:
    table[di] = DataItem(di, name, length, 0, False, None, kind)


ENERGY = (4, 2, False, "kWh")
ENERGY_SIGNED = (4, 2, True, "kWh")
REACTIVE_ENERGY = (4, 2, False, "kvarh")
REACTIVE_ENERGY_SIGNED = (4, 2, True, "kvarh")

#: 2007 energy types (DI2) -> name, format.
_ENERGY_2007: dict[int, tuple[str, tuple[int, int, bool, str | None]]] = {
    0x00: ("combined active energy", ENERGY_SIGNED),
    0x01: ("forward active energy", ENERGY),
    0x02: ("reverse active energy", ENERGY),
    0x03: ("combined reactive energy 1", REACTIVE_ENERGY_SIGNED),
    0x04: ("combined reactive energy 2", REACTIVE_ENERGY_SIGNED),
    0x05: ("reactive energy quadrant I", REACTIVE_ENERGY),
    0x06: ("reactive energy quadrant II", REACTIVE_ENERGY),
    0x07: ("reactive energy quadrant III", REACTIVE_ENERGY),
    0x08: ("reactive energy quadrant IV", REACTIVE_ENERGY),
}
TARIFFS = 4
SETTLEMENTS = 12
DAILY_FREEZES = 62
HOURLY_FREEZES = 254
PHASE_NAMES = {0: "total", 1: "A", 2: "B", 3: "C"}

#: 2007 instantaneous variables: DI2 of 02xx -> name, format, first phase (0 = has total).
_VARIABLES_2007: dict[int, tuple[str, tuple[int, int, bool, str | None], int]] = {
    0x01: ("voltage", (2, 1, False, "V"), 1),
    0x02: ("current", (3, 3, True, "A"), 1),
    0x03: ("active power", (3, 4, True, "kW"), 0),
    0x04: ("reactive power", (3, 4, True, "kvar"), 0),
    0x05: ("apparent power", (3, 4, False, "kVA"), 0),
    0x06: ("power factor", (2, 3, True, None), 0),
}

DI_FREQUENCY = 0x02800002
DI_DATE = 0x04000101
DI_TIME = 0x04000102
DI_ADDRESS = 0x04000401
DI_LOAD_PROFILE = 0x06000001


def energy_di(kind: int, tariff: int = 0, back: int = 0) -> int:
    """2007 energy DI: ``kind`` 0 combined/1 forward/2 reverse…, tariff 0 = total, 0xFF block."""
    return (kind << 16) | (tariff << 8) | back


def daily_freeze_di(category: int, back: int) -> int:
    """2007 daily-freeze DI 0506 ``category`` ``back`` (0 time, 1 forward, 2 reverse)."""
    return 0x05060000 | (category << 8) | back


def hourly_freeze_di(category: int, back: int) -> int:
    """2007 hourly-freeze DI 0504 ``category`` ``back`` (0 time, 1 forward, 2 reverse total)."""
    return 0x05040000 | (category << 8) | back


def _energy_2007(table: _Table) -> None:
    for kind, (name, fmt) in _ENERGY_2007.items():
        for back in range(SETTLEMENTS + 1):
            when = f", settlement -{back}" if back else ""
            members = []
            for tariff in range(TARIFFS + 1):
                di = energy_di(kind, tariff, back)
                label = f"T{tariff}" if tariff else "total"
                _number(table, di, f"{name} {label}{when}", fmt)
                members.append(di)
            _block(table, energy_di(kind, 0xFF, back), f"{name} block{when}", members, table)


def _variables_2007(table: _Table) -> None:
    for kind, (name, fmt, first) in _VARIABLES_2007.items():
        members = []
        for phase in range(first, 4):
            di = 0x02000000 | (kind << 16) | (phase << 8)
            _number(table, di, f"{name} {PHASE_NAMES[phase]}", fmt)
            members.append(di)
        _block(table, 0x0200FF00 | (kind << 16), f"{name} block", members, table)
    _number(table, 0x02800001, "neutral current", (3, 3, False, "A"))
    _number(table, DI_FREQUENCY, "frequency", (2, 2, False, "Hz"))
    _number(table, 0x02800004, "active demand", (3, 4, True, "kW"))
    _number(table, 0x02800005, "reactive demand", (3, 4, True, "kvar"))
    _number(table, 0x02800007, "meter temperature", (2, 1, True, "°C"))


def _parameters_2007(table: _Table) -> None:
    _single(table, DI_DATE, "date", 4, ItemKind.DATE)
    _single(table, DI_TIME, "time", 3, ItemKind.TIME)
    _single(table, DI_ADDRESS, "communication address", 6, ItemKind.ADDRESS)
    _single(table, 0x04000402, "meter number", 6, ItemKind.ADDRESS)
    words = []
    for n in range(1, 8):
        _single(table, 0x04000500 | n, f"status word {n}", 2, ItemKind.STATUS)
        words.append(0x04000500 | n)
    _block(table, 0x040005FF, "status word block", words, table)


def _freezes_2007(table: _Table) -> None:
    forward = [energy_di(1, t) for t in range(TARIFFS + 1)]
    reverse = [energy_di(2, t) for t in range(TARIFFS + 1)]
    for back in range(1, DAILY_FREEZES + 1):
        when = f", daily freeze -{back}"
        _single(table, daily_freeze_di(0, back), f"freeze time{when}", 5, ItemKind.DATETIME)
        _block(table, daily_freeze_di(1, back), f"forward active energy{when}", forward, table)
        _block(table, daily_freeze_di(2, back), f"reverse active energy{when}", reverse, table)
    for back in range(1, HOURLY_FREEZES + 1):
        when = f", hourly freeze -{back}"
        _single(table, hourly_freeze_di(0, back), f"freeze time{when}", 5, ItemKind.DATETIME)
        _block(table, hourly_freeze_di(1, back), f"forward active energy{when}", forward[:1], table)
        _block(table, hourly_freeze_di(2, back), f"reverse active energy{when}", reverse[:1], table)


def _build_2007() -> _Table:
    table: _Table = {}
    _energy_2007(table)
    _variables_2007(table)
    _parameters_2007(table)
    _freezes_2007(table)
    _single(table, DI_LOAD_PROFILE, "load profile records from a given time", 0, ItemKind.RECORD)
    return table


#: 1997 families: block DI -> name, format, member DIs.
_FAMILIES_1997: dict[int, tuple[str, tuple[int, int, bool, str | None], tuple[int, ...]]] = {
    0x901F: ("forward active energy", ENERGY, (0x9010, 0x9011, 0x9012, 0x9013, 0x9014)),
    0x902F: ("reverse active energy", ENERGY, (0x9020, 0x9021, 0x9022, 0x9023, 0x9024)),
    0xB61F: ("voltage", (2, 0, False, "V"), (0xB611, 0xB612, 0xB613)),
    0xB62F: ("current", (2, 2, False, "A"), (0xB621, 0xB622, 0xB623)),
    0xB63F: ("active power", (3, 4, False, "kW"), (0xB630, 0xB631, 0xB632, 0xB633)),
    0xB64F: ("reactive power", (2, 2, False, "kvar"), (0xB640, 0xB641, 0xB642, 0xB643)),
    0xB65F: ("power factor", (2, 3, False, None), (0xB650, 0xB651, 0xB652, 0xB653)),
}


def _build_1997() -> _Table:
    table: _Table = {}
    for block, (name, fmt, members) in _FAMILIES_1997.items():
        energy = name.endswith("energy")
        for index, di in enumerate(members):
            offset = index if energy else (di & 0xF)
            label = (f"T{offset}" if offset else "total") if energy else PHASE_NAMES[offset]
            _number(table, di, f"{name} {label}", fmt)
        _block(table, block, f"{name} block", members, table)
    _single(table, 0xC010, "date", 4, ItemKind.DATE)
    _single(table, 0xC011, "time", 3, ItemKind.TIME)
    _single(table, 0xC020, "status word", 1, ItemKind.STATUS)
    _single(table, 0xC032, "meter number", 6, ItemKind.ADDRESS)
    return table


CATALOGUE: dict[Version, Mapping[int, DataItem]] = {
    Version.V2007: _build_2007(),
    Version.V1997: _build_1997(),
}


def lookup(di: int, version: Version = Version.V2007) -> DataItem:
    """Return the catalogue entry of ``di``; raise :class:`UnknownDataIdError` otherwise."""
    try:
        return CATALOGUE[Version(version)][di]
    except KeyError:
        width = 4 if version == Version.V2007 else 2
        raise UnknownDataIdError(
            f"data identifier {di:0{width * 2}X} is not in the DL/T 645-{int(version)} catalogue"
        ) from None


def di_bytes(di: int, version: Version = Version.V2007) -> bytes:
    """Encode a data identifier in wire order (lowest byte first)."""
    return di_bytes_2007(di) if version == Version.V2007 else di_bytes_1997(di)


def di_size(version: Version) -> int:
    """Bytes of a data identifier: 4 (2007) or 2 (1997)."""
    return 4 if version == Version.V2007 else 2


def di_from_bytes(raw: bytes, version: Version = Version.V2007) -> int:
    """Read the data identifier at the start of ``raw`` (wire order)."""
    size = di_size(version)
    if len(raw) < size:
        raise BadDataError(f"DATA of {len(raw)} bytes is too short for a {size}-byte DI")
    return int.from_bytes(raw[:size], "little")


# --- values -----------------------------------------------------------------------------


def _bcd_digits(raw: bytes, item: DataItem) -> tuple[int, bool]:
    """BCD digits of ``raw`` (wire order) as an int, and the sign flag."""
    msb_first = bytearray(raw[::-1])
    negative = False
    if item.signed and msb_first:
        negative = bool(msb_first[0] & 0x80)
        msb_first[0] &= 0x7F
    text = msb_first.hex()
    if not text.isdigit():
        raise BadDataError(f"{item.name} ({item.di:X}): {raw.hex(' ')} is not BCD")
    return int(text), negative


def _fields(raw: bytes, item: DataItem) -> list[int]:
    """Two-digit BCD fields, most significant first."""
    number, _ = _bcd_digits(raw, item)
    text = f"{number:0{len(raw) * 2}d}"
    return [int(text[i : i + 2]) for i in range(0, len(text), 2)]


def decode_value(item: DataItem, raw: bytes) -> Value:
    """Decode the bytes of one non-block item."""
    if len(raw) != item.length:
        raise BadDataError(f"{item.name} ({item.di:X}) needs {item.length} bytes, got {len(raw)}")
    match item.kind:
        case ItemKind.NUMBER:
            number, negative = _bcd_digits(raw, item)
            scale: int = 10**item.decimals
            value = number / scale
            return -value if negative else value
        case ItemKind.STATUS:
            return int.from_bytes(raw, "little")
        case ItemKind.ADDRESS:
            return address_from_bytes(raw)
        case ItemKind.DATE:
            yy, mo, dd, _weekday = _fields(raw, item)
            return f"{2000 + yy:04d}-{mo:02d}-{dd:02d}"
        case ItemKind.TIME:
            hh, mi, ss = _fields(raw, item)
            return f"{hh:02d}:{mi:02d}:{ss:02d}"
        case ItemKind.DATETIME:
            yy, mo, dd, hh, mi = _fields(raw, item)
            return f"{2000 + yy:04d}-{mo:02d}-{dd:02d}T{hh:02d}:{mi:02d}"
    raise BadDataError(f"{item.name} ({item.di:X}) is a record, not a value")


def _parse_stamp(item: DataItem, value: Value, pattern: str) -> datetime:
    if not isinstance(value, str):
        raise ValueRangeError(f"{item.name} needs a string like {pattern!r}, got {value!r}")
    try:
        return datetime.strptime(value, pattern)
    except ValueError:
        raise ValueRangeError(f"{item.name}: {value!r} does not match {pattern!r}") from None


def _encode_number(item: DataItem, value: Value) -> bytes:
    if isinstance(value, str | bool):
        raise ValueRangeError(f"{item.name} needs a number, got {value!r}")
    scaled = round(abs(value) * 10**item.decimals)
    limit = 10 ** (item.length * 2 - 1) * (8 if item.signed else 10)
    if scaled >= limit or (value < 0 and not item.signed):
        raise ValueRangeError(f"{value} does not fit {item.name} ({item.di:X})")
    raw = bytearray(to_bcd(scaled, item.length))
    if item.signed and value < 0 and scaled:
        raw[-1] |= 0x80
    return bytes(raw)


def encode_value(item: DataItem, value: Value) -> bytes:
    """Encode one non-block value (inverse of :func:`decode_value`)."""
    match item.kind:
        case ItemKind.NUMBER:
            return _encode_number(item, value)
        case ItemKind.STATUS:
            if not isinstance(value, int) or not 0 <= value < 256**item.length:
                raise ValueRangeError(f"{value!r} does not fit {item.name} ({item.di:X})")
            return value.to_bytes(item.length, "little")
        case ItemKind.ADDRESS:
            try:
                return bytes.fromhex(normalize_address(str(value)))[::-1]
            except ConfigError as exc:
                raise ValueRangeError(str(exc)) from None
        case ItemKind.DATE:
            day = _parse_stamp(item, value, "%Y-%m-%d")
            weekday = (day.weekday() + 1) % 7
            return to_bcd(weekday, 1) + time_bytes(day, "DMY")
        case ItemKind.TIME:
            return time_bytes(_parse_stamp(item, value, "%H:%M:%S"), "smh")
        case ItemKind.DATETIME:
            return time_bytes(_parse_stamp(item, value, "%Y-%m-%dT%H:%M"), "mhDMY")
    raise ValueRangeError(f"{item.name} ({item.di:X}) is a record, not a value")


def decode_item(di: int, data: bytes, version: Version = Version.V2007) -> dict[int, Value]:
    """Decode the DATA of a reply (after the DI): a block gives one value per member DI."""
    item = lookup(di, version)
    if not item.is_block:
        return {di: decode_value(item, data)}
    values: dict[int, Value] = {}
    pos = 0
    for member_di in item.members:
        if pos == len(data) and values:
            break
        member = lookup(member_di, version)
        values[member_di] = decode_value(member, data[pos : pos + member.length])
        pos += member.length
    if pos != len(data):
        raise BadDataError(f"{item.name} ({di:X}): {len(data)} bytes do not split into members")
    return values


def encode_item(di: int, values: Mapping[int, Value], version: Version = Version.V2007) -> bytes:
    """Encode values for ``di`` (simulator use); a block takes a prefix of its members."""
    item = lookup(di, version)
    if not item.is_block:
        try:
            return encode_value(item, values[di])
        except KeyError:
            raise ValueRangeError(f"no value given for {item.name} ({di:X})") from None
    present = [m for m in item.members if m in values]
    if not present or item.members[: len(present)] != tuple(present):
        raise ValueRangeError(f"{item.name} ({di:X}) needs a leading run of its members")
    return b"".join(encode_value(lookup(m, version), values[m]) for m in present)


# --- load profile (06000001) --------------------------------------------------------------

RECORD_START = b"\xa0\xa0"
RECORD_BAD = b"\xe0\xe0"
RECORD_END = 0xE5
SEPARATOR = 0xAA

#: Member DIs of the six load-profile blocks, in record order.
LOAD_PROFILE_BLOCKS: tuple[tuple[int, ...], ...] = (
    (0x02010100, 0x02010200, 0x02010300, 0x02020100, 0x02020200, 0x02020300, DI_FREQUENCY),
    (
        0x02030000,
        0x02030100,
        0x02030200,
        0x02030300,
        0x02040000,
        0x02040100,
        0x02040200,
        0x02040300,
    ),
    (0x02060000, 0x02060100, 0x02060200, 0x02060300),
    (energy_di(1), energy_di(2), energy_di(3), energy_di(4)),
    (energy_di(5), energy_di(6), energy_di(7), energy_di(8)),
    (0x02800004, 0x02800005),
)

LoadRow = tuple[datetime, dict[int, Value]]

_STAMP = DataItem(0, "record time", 5, 0, False, None, ItemKind.DATETIME)


def _block_length(members: tuple[int, ...]) -> int:
    return sum(lookup(m).length for m in members)


def encode_load_record(when: datetime, values: Mapping[int, Value]) -> bytes:
    """One load-profile record; a block is written when any of its members is given."""
    body = bytearray(time_bytes(when, "mhDMY"))
    for members in LOAD_PROFILE_BLOCKS:
        if any(m in values for m in members):
            missing = [f"{m:08X}" for m in members if m not in values]
            if missing:
                raise ValueRangeError(f"load-profile block needs {', '.join(missing)} too")
            body += b"".join(encode_value(lookup(m), values[m]) for m in members)
        body.append(SEPARATOR)
    head = RECORD_START + bytes([len(body)])
    return head + body + bytes([sum(head + body) & 0xFF, RECORD_END])


def _decode_record(record: bytes) -> dict[int, Value]:
    """Decode the blocks of one record body (after the time stamp, up to the last AA)."""
    values: dict[int, Value] = {}
    pos = 0
    for members in LOAD_PROFILE_BLOCKS:
        if pos < len(record) and record[pos] != SEPARATOR:
            size = _block_length(members)
            chunk = record[pos : pos + size]
            for di in members:
                item = lookup(di)
                values[di] = decode_value(item, chunk[: item.length])
                chunk = chunk[item.length :]
            pos += size
        if pos >= len(record) or record[pos] != SEPARATOR:
            raise BadDataError("load-profile block is not followed by AA")
        pos += 1
    if pos != len(record):
        raise BadDataError("load-profile record has bytes after its sixth block")
    return values


def decode_load_profile(data: bytes) -> list[LoadRow]:
    """Decode concatenated load-profile records (reply DATA after the DI)."""
    rows: list[LoadRow] = []
    pos = 0
    while pos < len(data):
        head = data[pos : pos + 2]
        if head not in (RECORD_START, RECORD_BAD) or len(data) < pos + 3:
            raise BadDataError(f"load-profile record does not start with A0 A0 at byte {pos}")
        length = data[pos + 2]
        end = pos + 3 + length + 2
        if len(data) < end or length < 5:
            raise BadDataError(f"load-profile record at byte {pos} is truncated")
        if data[end - 1] != RECORD_END:
            raise BadDataError(f"load-profile record at byte {pos} does not end with E5")
        if head == RECORD_START:
            if sum(data[pos : end - 2]) & 0xFF != data[end - 2]:
                raise BadDataError(f"load-profile record at byte {pos} has a bad checksum")
            stamp = str(decode_value(_STAMP, data[pos + 3 : pos + 8]))
            try:
                when = datetime.fromisoformat(stamp)
            except ValueError:
                raise BadDataError(f"load-profile record time {stamp!r} is invalid") from None
            rows.append((when, _decode_record(data[pos + 8 : end - 2])))
        pos = end
    return rows
