"""Load rate of a transformer or feeder and the daily load factor."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo
from enum import StrEnum

from ..errors import ConfigError
from ..model import Value
from ._numbers import number, require_positive
from .accumulators import MinuteAccumulator, PeriodStats

#: Canonical key the load statistics accumulate.
ACTIVE_POWER_KEY = "power_active_total"


class LoadBand(StrEnum):
    """Where a load rate lies."""

    LIGHT = "light"
    NORMAL = "normal"
    HEAVY = "heavy"
    OVERLOAD = "overload"


@dataclass(frozen=True, slots=True)
class LoadBands:
    """Band edges in % of rated power.

    Light below ``light``, heavy above ``heavy``, overload above ``overload``.
    """

    light: float = 20.0
    heavy: float = 80.0
    overload: float = 100.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.light <= self.heavy <= self.overload:
            raise ConfigError(
                f"load bands need 0 <= light <= heavy <= overload, got "
                f"{self.light}/{self.heavy}/{self.overload} %"
            )

    def classify(self, rate: float) -> LoadBand:
        """Return the band of a load rate in %."""
        if rate > self.overload:
            return LoadBand.OVERLOAD
        if rate > self.heavy:
            return LoadBand.HEAVY
        if rate < self.light:
            return LoadBand.LIGHT
        return LoadBand.NORMAL


DEFAULT_LOAD_BANDS = LoadBands()


def apparent_power(values: Mapping[str, Value]) -> float | None:
    """Total apparent power in kVA: read, else from P and Q, else from P and the power factor."""
    s = number(values.get("power_apparent_total"))
    if s is not None:
        return abs(s)
    p = number(values.get("power_active_total"))
    if p is None:
        return None
    q = number(values.get("power_reactive_total"))
    if q is not None:
        return math.hypot(p, q)
    pf = number(values.get("power_factor_total"))
    if pf is not None and 0.0 < abs(pf) <= 1.0:
        return abs(p) / abs(pf)
    return None


def load_rate(apparent_kva: float, rated_kva: float) -> float:
    """``S / S_rated`` in %."""
    return abs(apparent_kva) / require_positive(rated_kva, "rated power (kVA)") * 100.0


def load_statistics(*, tz: tzinfo) -> MinuteAccumulator:
    """Create an accumulator of the 1-minute active power, for the daily load factor."""
    return MinuteAccumulator((ACTIVE_POWER_KEY,), tz=tz)


def load_factor(period: PeriodStats) -> float | None:
    """Average over maximum of the 1-minute active power in a period, in %.

    None before the first minute or when the maximum is not a positive load (export).
    """
    stats = period.channel(ACTIVE_POWER_KEY)
    if stats.mean is None or stats.maximum is None or stats.maximum <= 0.0:
        return None
    return stats.mean / stats.maximum * 100.0
