"""JSON encoding of readings, commands and acks.

Signing: the sender writes the object without ``mac``, computes the tag over those exact
bytes, then replaces the closing ``}`` with ``,"mac":"<hex tag>"}``. The receiver undoes
the same textual step, so no JSON canonicalisation is needed on either side.
"""

from __future__ import annotations

import json
from typing import Any

from ...model import Value
from ...quantities import QUANTITIES
from . import _checks
from .auth import JSON_MAC_LENGTHS, compute_mac, verify_mac
from .errors import (
    AuthenticationError,
    EncodeError,
    MalformedJsonError,
    PayloadFieldError,
    UnknownQuantityError,
)
from .message import (
    MAX_METER_LEN,
    U32_MAX,
    Ack,
    AckStatus,
    Command,
    CommandKind,
    TerminalMessage,
)
from .topics import Channel

_MAC_OPEN = b',"mac":"'
_MAC_CLOSE = b'"}'


# --- reading ------------------------------------------------------------------------------


def encode_reading(message: TerminalMessage, key: bytes | None = None, mac_len: int = 16) -> bytes:
    """Encode a reading; sign it when ``key`` is given."""
    obj = {
        "seq": _checks.u32("seq", message.seq),
        "ts": _checks.u32("ts", message.timestamp),
        "values": {k: _checks.number(k, v) for k, v in message.values.items()},
    }
    return _seal(obj, message.terminal_id, Channel.UP, key, mac_len)


def decode_reading(payload: bytes, terminal_id: str, key: bytes | None = None) -> TerminalMessage:
    """Decode a reading; with ``key``, a valid MAC is required."""
    obj = _open(payload, terminal_id, Channel.UP, key)
    raw_values = obj.get("values")
    if not isinstance(raw_values, dict):
        raise PayloadFieldError("field 'values' must be an object of quantity key -> number")
    values: dict[str, Value] = {}
    for name, value in raw_values.items():
        if name not in QUANTITIES:
            raise UnknownQuantityError(f"unknown quantity key {name!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PayloadFieldError(f"value of {name!r} must be a number")
        values[name] = value
    return TerminalMessage(terminal_id, _u32_in(obj, "seq"), _u32_in(obj, "ts"), values)


# --- command ------------------------------------------------------------------------------


def encode_command(
    command: Command, terminal_id: str, key: bytes | None = None, mac_len: int = 16
) -> bytes:
    """Encode a command for the terminal's ``down`` topic."""
    obj: dict[str, Any] = {
        "id": _checks.u32("id", command.id),
        "cmd": str(command.kind),
        "ts": _checks.u32("ts", command.issued_at),
    }
    if command.meter is not None:
        obj["meter"] = _checks.meter(command.meter)
    return _seal(obj, terminal_id, Channel.DOWN, key, mac_len)


def decode_command(payload: bytes, terminal_id: str, key: bytes | None = None) -> Command:
    """Decode a command (the terminal side)."""
    obj = _open(payload, terminal_id, Channel.DOWN, key)
    kind = _enum_in(obj, "cmd", CommandKind)
    meter = obj.get("meter")
    if meter is not None and (not isinstance(meter, str) or not 0 < len(meter) <= MAX_METER_LEN):
        raise PayloadFieldError(f"field 'meter' must be a string of 1..{MAX_METER_LEN} characters")
    return Command(_u32_in(obj, "id"), kind, _u32_in(obj, "ts"), meter)


# --- ack ------------------------------------------------------------------------------------


def encode_ack(ack: Ack, terminal_id: str, key: bytes | None = None, mac_len: int = 16) -> bytes:
    """Encode a command acknowledgement (the terminal side)."""
    obj: dict[str, Any] = {"id": _checks.u32("id", ack.command_id), "status": str(ack.status)}
    if ack.detail:
        obj["detail"] = ack.detail
    return _seal(obj, terminal_id, Channel.ACK, key, mac_len)


def decode_ack(payload: bytes, terminal_id: str, key: bytes | None = None) -> Ack:
    """Decode a command acknowledgement."""
    obj = _open(payload, terminal_id, Channel.ACK, key)
    detail = obj.get("detail", "")
    if not isinstance(detail, str):
        raise PayloadFieldError("field 'detail' must be a string")
    return Ack(_u32_in(obj, "id"), _enum_in(obj, "status", AckStatus), detail)


# --- framing and signing ----------------------------------------------------------------


def _seal(
    obj: dict[str, Any], terminal_id: str, channel: Channel, key: bytes | None, mac_len: int
) -> bytes:
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    if key is None:
        return body
    if mac_len not in JSON_MAC_LENGTHS:
        raise EncodeError(f"JSON MAC length must be one of {JSON_MAC_LENGTHS}, not {mac_len}")
    tag = compute_mac(key, terminal_id, channel, body, mac_len).hex().encode()
    return body[:-1] + _MAC_OPEN + tag + _MAC_CLOSE


def _open(payload: bytes, terminal_id: str, channel: Channel, key: bytes | None) -> dict[str, Any]:
    obj = _parse(payload)
    tag_hex = obj.pop("mac", None)
    if key is None:
        return obj
    if tag_hex is None:
        raise AuthenticationError(f"missing MAC from terminal {terminal_id!r}")
    if not isinstance(tag_hex, str):
        raise AuthenticationError("field 'mac' must be a hex string")
    try:
        tag = bytes.fromhex(tag_hex)
    except ValueError:
        raise AuthenticationError("field 'mac' is not hex") from None
    text = payload.rstrip()
    suffix = _MAC_OPEN + tag_hex.encode() + _MAC_CLOSE
    if not text.endswith(suffix):
        raise AuthenticationError('the MAC must be the last member, written as ,"mac":"<hex>"}')
    body = text[: -len(suffix)] + b"}"
    verify_mac(key, terminal_id, channel, body, tag)
    # Decode what was signed, not the unsigned envelope around it.
    signed = _parse(body)
    signed.pop("mac", None)
    return signed


def _parse(payload: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(
            payload.decode("utf-8"),
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError) as err:
        raise MalformedJsonError(f"not JSON: {err}") from None
    if not isinstance(obj, dict):
        raise MalformedJsonError("payload must be a JSON object")
    return obj


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        names = [name for name, _ in pairs]
        duplicate = next(name for name in names if names.count(name) > 1)
        raise PayloadFieldError(f"member {duplicate!r} appears twice")
    return obj


def _reject_constant(name: str) -> None:
    raise MalformedJsonError(f"{name} is not a number")


# --- fields -------------------------------------------------------------------------------


def _u32_in(obj: dict[str, Any], name: str) -> int:
    value = obj.get(name)
    if value is None:
        raise PayloadFieldError(f"missing field {name!r}")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U32_MAX:
        raise PayloadFieldError(f"field {name!r} must be an integer 0..{U32_MAX}")
    return value


def _enum_in[E: (CommandKind, AckStatus)](obj: dict[str, Any], name: str, enum: type[E]) -> E:
    value = obj.get(name)
    try:
        if isinstance(value, str):
            return enum(value)
    except ValueError:
        pass
    choices = ", ".join(enum)
    raise PayloadFieldError(f"field {name!r} must be one of {choices}")
