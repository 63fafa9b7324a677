"""Binary encoding of readings, commands and acks (little-endian, no padding).

Every message is ``type/version byte, flags byte, fields, [MAC]``. Flags bit 0 says a MAC
trailer is present, bit 1 that it is 16 bytes long rather than 8; other bits must be 0.
The MAC covers every byte before it. docs/terminal-protocol.md has the byte tables.
"""

from __future__ import annotations

import struct

from ...model import Value
from . import _checks
from .auth import BINARY_MAC_LENGTHS, compute_mac, verify_mac
from .codes import BY_CODE, BY_KEY
from .errors import (
    AuthenticationError,
    EncodeError,
    PayloadFieldError,
    PayloadLengthError,
    UnknownQuantityError,
    UnsupportedVersionError,
)
from .message import MAX_METER_LEN, Ack, AckStatus, Command, CommandKind, TerminalMessage
from .topics import Channel

#: Type/version bytes: high nibble the message type, low nibble the layout version.
READING_TYPE = 0xB1
COMMAND_TYPE = 0xC1
ACK_TYPE = 0xA1

FLAG_MAC = 0x01
FLAG_MAC_16 = 0x02

#: Wire codes of command kinds and ack statuses.
COMMAND_CODES: dict[CommandKind, int] = {
    CommandKind.RELAY_TRIP: 1,
    CommandKind.RELAY_CLOSE: 2,
    CommandKind.TIME_SYNC: 3,
}
ACK_CODES: dict[AckStatus, int] = {
    AckStatus.OK: 0,
    AckStatus.FAILED: 1,
    AckStatus.UNSUPPORTED: 2,
    AckStatus.REJECTED: 3,
    AckStatus.INVALID: 4,
}
_COMMAND_KINDS = {code: kind for kind, code in COMMAND_CODES.items()}
_ACK_STATUSES = {code: status for status, code in ACK_CODES.items()}

_READING_HEAD = struct.Struct("<IIB")  # seq, timestamp, count
_VALUE = struct.Struct("<Bi")  # quantity code, scaled value
_COMMAND_HEAD = struct.Struct("<IIBB")  # id, issued_at, kind, meter length
_ACK = struct.Struct("<IB")  # command id, status
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


# --- reading ------------------------------------------------------------------------------


def encode_reading(message: TerminalMessage, key: bytes | None = None, mac_len: int = 16) -> bytes:
    """Encode a reading; every key needs a quantity code and values are rounded to its scale."""
    if len(message.values) > 255:
        raise EncodeError(f"{len(message.values)} values do not fit one message (at most 255)")
    head = _READING_HEAD.pack(
        _checks.u32("seq", message.seq), _checks.u32("ts", message.timestamp), len(message.values)
    )
    body = b"".join(_encode_value(k, v) for k, v in message.values.items())
    return _seal(
        READING_TYPE, head + body, message.terminal_id, Channel.UP, key=key, mac_len=mac_len
    )


def decode_reading(payload: bytes, terminal_id: str, key: bytes | None = None) -> TerminalMessage:
    """Decode a reading; with ``key``, a valid MAC is required."""
    fields = _open(payload, READING_TYPE, terminal_id, Channel.UP, key)
    if len(fields) < _READING_HEAD.size:
        raise PayloadLengthError(f"reading of {len(payload)} bytes is shorter than its header")
    seq, timestamp, count = _READING_HEAD.unpack_from(fields)
    expected = _READING_HEAD.size + count * _VALUE.size
    if len(fields) != expected:
        raise PayloadLengthError(
            f"reading announces {count} values ({expected} bytes of fields), has {len(fields)}"
        )
    values: dict[str, Value] = {}
    for code, raw in _VALUE.iter_unpack(fields[_READING_HEAD.size :]):
        row = BY_CODE.get(code)
        if row is None:
            raise UnknownQuantityError(f"unknown quantity code 0x{code:02X}")
        if row.key in values:
            raise PayloadFieldError(f"quantity code 0x{code:02X} appears twice")
        values[row.key] = row.from_raw(raw)
    return TerminalMessage(terminal_id, seq, timestamp, values)


def _encode_value(key: str, value: Value) -> bytes:
    number = _checks.number(key, value)
    row = BY_KEY.get(key)
    if row is None:
        raise EncodeError(f"quantity {key!r} has no binary code; use the JSON encoding")
    raw = row.to_raw(number)
    if not _I32_MIN <= raw <= _I32_MAX:
        raise EncodeError(f"{key} = {value} does not fit a signed 32-bit value at its scale")
    return _VALUE.pack(row.code, raw)


# --- command ------------------------------------------------------------------------------


def encode_command(
    command: Command, terminal_id: str, key: bytes | None = None, mac_len: int = 16
) -> bytes:
    """Encode a command for the terminal's ``down`` topic."""
    meter = b"" if command.meter is None else _checks.meter(command.meter).encode("ascii")
    head = _COMMAND_HEAD.pack(
        _checks.u32("id", command.id),
        _checks.u32("ts", command.issued_at),
        COMMAND_CODES[command.kind],
        len(meter),
    )
    return _seal(COMMAND_TYPE, head + meter, terminal_id, Channel.DOWN, key=key, mac_len=mac_len)


def decode_command(payload: bytes, terminal_id: str, key: bytes | None = None) -> Command:
    """Decode a command (the terminal side)."""
    fields = _open(payload, COMMAND_TYPE, terminal_id, Channel.DOWN, key)
    if len(fields) < _COMMAND_HEAD.size:
        raise PayloadLengthError(f"command of {len(payload)} bytes is shorter than its header")
    command_id, issued_at, kind_code, meter_len = _COMMAND_HEAD.unpack_from(fields)
    if len(fields) != _COMMAND_HEAD.size + meter_len:
        raise PayloadLengthError(f"command announces a {meter_len}-byte meter address")
    kind = _COMMAND_KINDS.get(kind_code)
    if kind is None:
        raise PayloadFieldError(f"unknown command kind {kind_code}")
    meter = fields[_COMMAND_HEAD.size :]
    if meter_len > MAX_METER_LEN or not meter.isascii():
        raise PayloadFieldError(f"meter address must be at most {MAX_METER_LEN} ASCII characters")
    return Command(command_id, kind, issued_at, meter.decode("ascii") or None)


# --- ack ------------------------------------------------------------------------------------


def encode_ack(ack: Ack, terminal_id: str, key: bytes | None = None, mac_len: int = 16) -> bytes:
    """Encode a command acknowledgement (``detail`` is not carried)."""
    fields = _ACK.pack(_checks.u32("id", ack.command_id), ACK_CODES[ack.status])
    return _seal(ACK_TYPE, fields, terminal_id, Channel.ACK, key=key, mac_len=mac_len)


def decode_ack(payload: bytes, terminal_id: str, key: bytes | None = None) -> Ack:
    """Decode a command acknowledgement."""
    fields = _open(payload, ACK_TYPE, terminal_id, Channel.ACK, key)
    if len(fields) != _ACK.size:
        raise PayloadLengthError(f"ack fields are {len(fields)} bytes, expected {_ACK.size}")
    command_id, status_code = _ACK.unpack(fields)
    status = _ACK_STATUSES.get(status_code)
    if status is None:
        raise PayloadFieldError(f"unknown ack status {status_code}")
    return Ack(command_id, status)


# --- framing and signing ----------------------------------------------------------------


def _seal(
    type_byte: int,
    fields: bytes,
    terminal_id: str,
    channel: Channel,
    *,
    key: bytes | None,
    mac_len: int,
) -> bytes:
    if key is None:
        return bytes((type_byte, 0)) + fields
    if mac_len not in BINARY_MAC_LENGTHS:
        raise EncodeError(f"binary MAC length must be one of {BINARY_MAC_LENGTHS}, not {mac_len}")
    flags = FLAG_MAC | (FLAG_MAC_16 if mac_len == 16 else 0)
    signed = bytes((type_byte, flags)) + fields
    return signed + compute_mac(key, terminal_id, channel, signed, mac_len)


def _open(
    payload: bytes, type_byte: int, terminal_id: str, channel: Channel, key: bytes | None
) -> bytes:
    """Check type and flags, verify the MAC if a key is given; return the fields."""
    if len(payload) < 2:
        raise PayloadLengthError(f"binary payload of {len(payload)} bytes has no header")
    if payload[0] != type_byte:
        raise UnsupportedVersionError(
            f"type/version byte 0x{payload[0]:02X}, expected 0x{type_byte:02X}"
        )
    flags = payload[1]
    if flags & ~(FLAG_MAC | FLAG_MAC_16) or flags == FLAG_MAC_16:
        raise UnsupportedVersionError(f"unknown flags 0x{flags:02X}")
    mac_len = 0 if not flags & FLAG_MAC else 16 if flags & FLAG_MAC_16 else 8
    if len(payload) < 2 + mac_len:
        raise PayloadLengthError(
            f"payload of {len(payload)} bytes cannot hold its {mac_len}-byte MAC"
        )
    signed, tag = payload[: len(payload) - mac_len], payload[len(payload) - mac_len :]
    if key is not None:
        if not mac_len:
            raise AuthenticationError(f"missing MAC from terminal {terminal_id!r}")
        verify_mac(key, terminal_id, channel, signed, tag)
    return signed[2:]
