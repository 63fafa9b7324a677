"""Power-system frequency deviation and qualification rate (GB/T 15945-2008).

Normal limit ±0.2 Hz; systems smaller than 3000 MW may use ±0.5 Hz. The rate is
formed from 1-minute averages exactly like the voltage qualification rate.
"""

from __future__ import annotations

from datetime import tzinfo

from ._numbers import require_positive
from .accumulators import Band, MinuteAccumulator

NOMINAL_FREQUENCY = 50.0
#: Normal limit of GB/T 15945-2008, Hz.
FREQUENCY_LIMIT = 0.2
#: Limit allowed for systems smaller than 3000 MW, Hz.
FREQUENCY_LIMIT_SMALL_SYSTEM = 0.5
#: Canonical key of the frequency reading, also the accumulator's channel.
FREQUENCY_KEY = "frequency"


def frequency_deviation(frequency: float, nominal: float = NOMINAL_FREQUENCY) -> float:
    """``f - f_nominal`` in Hz."""
    return frequency - require_positive(nominal, "nominal frequency")


def frequency_band(nominal: float = NOMINAL_FREQUENCY, limit: float = FREQUENCY_LIMIT) -> Band:
    """Return the qualified band ``nominal ± limit`` in Hz."""
    require_positive(nominal, "nominal frequency")
    require_positive(limit, "frequency limit")
    return Band(nominal - limit, nominal + limit)


def frequency_qualification(
    *, tz: tzinfo, nominal: float = NOMINAL_FREQUENCY, limit: float = FREQUENCY_LIMIT
) -> MinuteAccumulator:
    """Create an accumulator of the frequency qualification rate."""
    return MinuteAccumulator((FREQUENCY_KEY,), tz=tz, band=frequency_band(nominal, limit))
