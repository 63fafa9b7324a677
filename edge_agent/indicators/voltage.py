"""Supply voltage deviation and qualification rate (GB/T 12325-2008).

Deviation ``δ = (U - Un) / Un x 100 %``. A 1-minute average is qualified when
``-lower <= δ <= +upper``; the qualification rate is
``(1 - (minutes above + minutes below) / minutes monitored) x 100 %``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import tzinfo

from ..errors import ConfigError
from ..quantities import LINES, PHASES
from ._numbers import require_positive
from .accumulators import Band, MinuteAccumulator

#: Canonical keys of the phase-to-neutral and line-to-line voltages.
PHASE_VOLTAGES = tuple(f"voltage_{p}" for p in PHASES)
LINE_VOLTAGES = tuple(f"voltage_{line}" for line in LINES)

#: Above this nominal system voltage GB/T 12325 gives a 10 % span instead of ±7 %.
_LV_MV_CEILING = 20_000.0


@dataclass(frozen=True, slots=True)
class DeviationLimits:
    """Allowed deviation from nominal, in % (both positive: +upper / -lower)."""

    upper: float
    lower: float

    def __post_init__(self) -> None:
        for name in ("upper", "lower"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value < 100.0):
                raise ConfigError(f"voltage deviation limit {name}={value} must be in [0, 100) %")

    @property
    def span(self) -> float:
        """``upper + lower``; GB/T 12325 caps it at 10 % for 35 kV and above."""
        return self.upper + self.lower

    def band(self, nominal: float) -> Band:
        """Return the qualified band in volts around ``nominal``."""
        require_positive(nominal, "nominal voltage")
        return Band(nominal * (1.0 - self.lower / 100.0), nominal * (1.0 + self.upper / 100.0))


#: Three-phase supply of 20 kV and below: ±7 %.
THREE_PHASE_LIMITS = DeviationLimits(upper=7.0, lower=7.0)
#: 220 V single-phase supply: +7 % / -10 %.
SINGLE_PHASE_LIMITS = DeviationLimits(upper=7.0, lower=10.0)
#: 35 kV and above: absolute deviations sum to at most 10 %; ±5 % unless a contract says otherwise.
HIGH_VOLTAGE_LIMITS = DeviationLimits(upper=5.0, lower=5.0)


def gbt12325_limits(nominal_system_voltage: float, *, phases: int = 3) -> DeviationLimits:
    """Default limits of GB/T 12325-2008 for a supply.

    ``nominal_system_voltage`` is the line-to-line nominal of a three-phase system
    (380, 10 000, 35 000 V) or the nominal of a single-phase one (220 V).
    """
    require_positive(nominal_system_voltage, "nominal system voltage")
    if phases == 1:
        return SINGLE_PHASE_LIMITS
    if phases != 3:
        raise ConfigError(f"a supply has 1 or 3 phases, not {phases}")
    if nominal_system_voltage <= _LV_MV_CEILING:
        return THREE_PHASE_LIMITS
    return HIGH_VOLTAGE_LIMITS


def voltage_deviation(voltage: float, nominal: float) -> float:
    """Deviation of ``voltage`` from ``nominal`` in %."""
    require_positive(nominal, "nominal voltage")
    return (voltage - nominal) / nominal * 100.0


def voltage_qualification(
    nominal_voltage: float,
    *,
    tz: tzinfo,
    limits: DeviationLimits = THREE_PHASE_LIMITS,
    line: bool = False,
) -> MinuteAccumulator:
    """Create an accumulator of the voltage qualification rate per phase and in total.

    ``nominal_voltage`` is the phase-to-neutral nominal (220 V). With ``line`` True the
    line-to-line voltages are monitored against ``√3 x nominal_voltage`` instead (for
    three-wire supplies without a neutral).
    """
    if line:
        return MinuteAccumulator(
            LINE_VOLTAGES, tz=tz, band=limits.band(nominal_voltage * math.sqrt(3.0))
        )
    return MinuteAccumulator(PHASE_VOLTAGES, tz=tz, band=limits.band(nominal_voltage))
