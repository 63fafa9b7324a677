"""Range checks shared by the JSON and binary encoders."""

from __future__ import annotations

import math

from ...model import Value
from ...quantities import QUANTITIES
from .errors import EncodeError
from .message import MAX_METER_LEN, U32_MAX


def u32(name: str, value: int) -> int:
    """Return ``value`` if it fits an unsigned 32-bit field."""
    if not 0 <= value <= U32_MAX:
        raise EncodeError(f"{name} {value} is outside 0..{U32_MAX}")
    return value


def meter(address: str) -> str:
    """Return ``address`` if it fits a command's meter field."""
    if not 0 < len(address) <= MAX_METER_LEN or not address.isascii():
        raise EncodeError(f"meter address must be 1..{MAX_METER_LEN} ASCII characters")
    return address


def number(key: str, value: Value) -> float | int:
    """Return ``value`` if ``key`` is a canonical quantity and ``value`` a finite number."""
    if key not in QUANTITIES:
        raise EncodeError(f"unknown quantity key {key!r}")
    if isinstance(value, str | bool):
        raise EncodeError(f"value of {key!r} must be a number, not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise EncodeError(f"value of {key!r} is not finite")
    return value
