"""Reading numbers out of meter values: finite numbers only, never bools or strings."""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..errors import ConfigError
from ..model import Value


def number(value: object) -> float | None:
    """Return ``value`` as a finite float, or None for strings, bools, NaN, infinities and None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def numbers(values: Mapping[str, Value], keys: tuple[str, ...]) -> tuple[float, ...] | None:
    """Return the values of all ``keys`` as floats, or None when any of them is missing."""
    found = tuple(number(values.get(key)) for key in keys)
    if any(v is None for v in found):
        return None
    return tuple(v for v in found if v is not None)


def require_positive(value: float, what: str) -> float:
    """Return ``value`` if it is a finite positive number; raise :class:`ConfigError` otherwise."""
    if isinstance(value, bool) or not (math.isfinite(value) and value > 0.0):
        raise ConfigError(f"{what} {value!r} must be a positive number")
    return value
