"""Grid indicators: pure computations and 1-minute accumulators, no I/O.

See docs/indicators.md for the formulas, the standards and the limits.
"""

from .accumulators import Band, ChannelStats, Excursion, MinuteAccumulator, PeriodStats
from .errors import IndicatorError, StateError
from .frequency import (
    FREQUENCY_LIMIT,
    FREQUENCY_LIMIT_SMALL_SYSTEM,
    NOMINAL_FREQUENCY,
    frequency_band,
    frequency_deviation,
    frequency_qualification,
)
from .instant import INSTANT_INDICATORS, IndicatorInfo, instant_indicators
from .load import (
    DEFAULT_LOAD_BANDS,
    LoadBand,
    LoadBands,
    apparent_power,
    load_factor,
    load_rate,
    load_statistics,
)
from .power_factor import (
    PF_TARGET,
    PF_TARGET_AGRICULTURAL,
    PF_TARGET_GENERAL,
    PF_TARGET_HIGH_VOLTAGE_INDUSTRIAL,
    capacitor_kvar,
    power_factor,
    round_up_kvar,
    tan_phi,
)
from .unbalance import (
    CURRENT_UNBALANCE_LIMIT,
    VOLTAGE_UNBALANCE_LIMIT,
    VOLTAGE_UNBALANCE_SHORT_TIME_LIMIT,
    current_unbalance,
    neutral_current_ratio,
    sequence_components,
    voltage_unbalance_approx,
    voltage_unbalance_from_lines,
    voltage_unbalance_from_phasors,
)
from .voltage import (
    HIGH_VOLTAGE_LIMITS,
    SINGLE_PHASE_LIMITS,
    THREE_PHASE_LIMITS,
    DeviationLimits,
    gbt12325_limits,
    voltage_deviation,
    voltage_qualification,
)

__all__ = [
    "CURRENT_UNBALANCE_LIMIT",
    "DEFAULT_LOAD_BANDS",
    "FREQUENCY_LIMIT",
    "FREQUENCY_LIMIT_SMALL_SYSTEM",
    "HIGH_VOLTAGE_LIMITS",
    "INSTANT_INDICATORS",
    "NOMINAL_FREQUENCY",
    "PF_TARGET",
    "PF_TARGET_AGRICULTURAL",
    "PF_TARGET_GENERAL",
    "PF_TARGET_HIGH_VOLTAGE_INDUSTRIAL",
    "SINGLE_PHASE_LIMITS",
    "THREE_PHASE_LIMITS",
    "VOLTAGE_UNBALANCE_LIMIT",
    "VOLTAGE_UNBALANCE_SHORT_TIME_LIMIT",
    "Band",
    "ChannelStats",
    "DeviationLimits",
    "Excursion",
    "IndicatorError",
    "IndicatorInfo",
    "LoadBand",
    "LoadBands",
    "MinuteAccumulator",
    "PeriodStats",
    "StateError",
    "apparent_power",
    "capacitor_kvar",
    "current_unbalance",
    "frequency_band",
    "frequency_deviation",
    "frequency_qualification",
    "gbt12325_limits",
    "instant_indicators",
    "load_factor",
    "load_rate",
    "load_statistics",
    "neutral_current_ratio",
    "power_factor",
    "round_up_kvar",
    "sequence_components",
    "tan_phi",
    "voltage_deviation",
    "voltage_qualification",
    "voltage_unbalance_approx",
    "voltage_unbalance_from_lines",
    "voltage_unbalance_from_phasors",
]
