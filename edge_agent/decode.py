"""Explain captured frames for people: address, control code, DI, values with units."""

from __future__ import annotations

from typing import Any

from .errors import (
    AbnormalReplyError,
    ModbusExceptionError,
    TruncatedFrameError,
    UnknownDataIdError,
)
from .protocols import dlt645, modbus
from .protocols.dlt645_1997 import Code1997, abnormal_error_1997
from .protocols.dlt645_catalogue import Version, decode_item, di_from_bytes, di_size, lookup
from .protocols.modbus import Framing

_CODE_NAMES = {
    Version.V2007: {c.value: c.name for c in dlt645.Code},
    Version.V1997: {c.value: c.name for c in Code1997},
}
_READ_CODES: dict[Version, set[int]] = {
    Version.V2007: {dlt645.Code.READ, dlt645.Code.READ_FOLLOW_UP},
    Version.V1997: {Code1997.READ, Code1997.READ_FOLLOW_UP},
}


def decode_capture(protocol: str, data: bytes) -> dict[str, Any]:
    """Decode the first frame of a capture; raise a FrameError subclass naming what is wrong."""
    if protocol == "modbus-rtu":
        return _modbus_rtu(data)
    return _dlt645(data, Version.V2007 if protocol == "dlt645-2007" else Version.V1997)


def _dlt645(data: bytes, version: Version) -> dict[str, Any]:
    frame = dlt645.parse_frame(data)
    out: dict[str, Any] = {
        "protocol": f"dlt645-{version.value}",
        "address": frame.address,
        "control": f"{frame.control:02X}",
        "code": _code_name(frame.code, version),
        "direction": "reply" if frame.is_reply else "request",
    }
    if frame.is_abnormal:
        error = _abnormal(frame.data[:1], version)
        out["error"] = str(error)
        return out
    if frame.has_follow_up:
        out["follow_up"] = True
    size = di_size(version)
    if len(frame.data) < size or frame.code not in _READ_CODES[version]:
        out["data"] = frame.data.hex(" ").upper()
        return out
    di = di_from_bytes(frame.data[:size], version)
    out["di"] = f"{di:0{2 * size}X}"
    item = lookup(di, version)
    out["name"] = item.name
    payload = frame.data[size:]
    if frame.is_reply and payload:
        values = decode_item(di, payload, version)
        out["values"] = {f"{k:0{2 * size}X}": _with_unit(k, v, version) for k, v in values.items()}
    return out


def _code_name(code: int, version: Version) -> str:
    return _CODE_NAMES[version].get(code, f"0x{code:02X}")


def _abnormal(flags: bytes, version: Version) -> AbnormalReplyError:
    value = flags[0] if flags else 0
    if version is Version.V2007:
        return dlt645.abnormal_error(value)
    return abnormal_error_1997(value)


def _with_unit(di: int, value: object, version: Version) -> str:
    try:
        unit = lookup(di, version).unit
    except UnknownDataIdError:
        unit = None
    return f"{value} {unit}" if unit else str(value)


def _modbus_rtu(data: bytes) -> dict[str, Any]:
    if len(data) < 4:
        raise TruncatedFrameError(f"a Modbus RTU frame has at least 4 bytes, got {len(data)}")
    out: dict[str, Any] = {"protocol": "modbus-rtu", "unit": data[0]}
    used, request = modbus.decode_request(data, Framing.RTU)
    if request is not None and used == len(data):
        out |= {"direction": "request", "function": request.function}
        out |= {"register": request.address, "count": request.count}
        return out
    function = data[1] & 0x7F
    out |= {"direction": "reply", "function": function}
    try:
        used, words = modbus.decode_reply(data, Framing.RTU, unit=data[0], function=function)
    except ModbusExceptionError as err:
        out["error"] = str(err)
        return out
    if words is None:
        raise TruncatedFrameError(f"Modbus RTU frame incomplete in {len(data)} bytes")
    out["values"] = {f"word {i}": f"0x{w:04X} ({w})" for i, w in enumerate(words)}
    return out
