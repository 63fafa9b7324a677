"""Indicators computable from one reading.

:func:`instant_indicators` returns only what the reading supports: a key is absent
when an input is missing or the result would need a division by zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..model import Value
from ..quantities import LINES, PHASES
from ._numbers import number, numbers
from .errors import IndicatorError
from .frequency import NOMINAL_FREQUENCY, frequency_deviation
from .load import apparent_power, load_rate
from .power_factor import PF_TARGET, capacitor_kvar, power_factor
from .unbalance import (
    current_unbalance,
    neutral_current_ratio,
    voltage_unbalance_approx,
    voltage_unbalance_from_lines,
    voltage_unbalance_from_phasors,
)
from .voltage import LINE_VOLTAGES, PHASE_VOLTAGES, voltage_deviation

PHASE_CURRENTS = tuple(f"current_{p}" for p in PHASES)
VOLTAGE_ANGLES = tuple(f"angle_voltage_{p}" for p in PHASES)
#: A phasor result above this means the "angles" are not phase angles (some meters
#: report the U-I angle under that name); the supply never gets near it.
_PLAUSIBLE_PHASOR_UNBALANCE = 50.0


@dataclass(frozen=True, slots=True)
class IndicatorInfo:
    """Unit and name of one indicator key."""

    key: str
    unit: str | None
    name: str


INSTANT_INDICATORS: dict[str, IndicatorInfo] = {
    info.key: info
    for info in (
        *(
            IndicatorInfo(f"voltage_deviation_{p}", "%", f"Voltage deviation {p.upper()}")
            for p in (*PHASES, *LINES)
        ),
        IndicatorInfo("voltage_unbalance", "%", "Voltage unbalance"),
        IndicatorInfo(
            "voltage_unbalance_approx", "%", "Voltage unbalance (approximation, phase voltages)"
        ),
        IndicatorInfo("current_unbalance", "%", "Current unbalance"),
        IndicatorInfo("neutral_current_ratio", "%", "Neutral current ratio"),
        IndicatorInfo("frequency_deviation", "Hz", "Frequency deviation"),
        IndicatorInfo("power_factor", None, "Power factor"),
        IndicatorInfo("reactive_compensation", "kvar", "Reactive compensation to target"),
        IndicatorInfo("load_rate", "%", "Load rate"),
    )
}


def _attempt(compute: Callable[[], float]) -> float | None:
    try:
        return compute()
    except IndicatorError:
        return None


def instant_indicators(
    values: Mapping[str, Value],
    *,
    nominal_voltage: float,
    nominal_frequency: float = NOMINAL_FREQUENCY,
    power_factor_target: float = PF_TARGET,
    rated_power: float | None = None,
) -> dict[str, float]:
    """Compute the indicators of one reading, keyed as in :data:`INSTANT_INDICATORS`.

    ``nominal_voltage`` is the phase-to-neutral nominal; line voltages are compared
    with ``√3`` times it. ``rated_power`` (kVA) enables ``load_rate``.
    """
    out: dict[str, float] = {}
    out |= _deviations(values, PHASE_VOLTAGES, nominal_voltage)
    out |= _deviations(values, LINE_VOLTAGES, nominal_voltage * math.sqrt(3.0))
    out |= _voltage_unbalance(values)
    out |= _currents(values)
    f = number(values.get("frequency"))
    if f is not None:
        out["frequency_deviation"] = frequency_deviation(f, nominal_frequency)
    out |= _power(values, power_factor_target, rated_power)
    return out


def _deviations(
    values: Mapping[str, Value], keys: tuple[str, ...], nominal: float
) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in keys:
        v = number(values.get(key))
        if v is not None:
            out["voltage_deviation_" + key.removeprefix("voltage_")] = voltage_deviation(v, nominal)
    return out


def _voltage_unbalance(values: Mapping[str, Value]) -> dict[str, float]:
    lines = numbers(values, LINE_VOLTAGES)
    if lines is not None:
        exact = _attempt(lambda: voltage_unbalance_from_lines(*lines))
        if exact is not None:
            return {"voltage_unbalance": exact}
    phases = numbers(values, PHASE_VOLTAGES)
    if phases is None:
        return {}
    angles = numbers(values, VOLTAGE_ANGLES)
    if angles is not None:
        exact = _attempt(lambda: voltage_unbalance_from_phasors(phases, angles))
        if exact is not None and exact <= _PLAUSIBLE_PHASOR_UNBALANCE:
            return {"voltage_unbalance": exact}
    approx = _attempt(lambda: voltage_unbalance_approx(*phases))
    return {} if approx is None else {"voltage_unbalance_approx": approx}


def _currents(values: Mapping[str, Value]) -> dict[str, float]:
    currents = numbers(values, PHASE_CURRENTS)
    if currents is None:
        return {}
    out: dict[str, float] = {}
    unbalance = _attempt(lambda: current_unbalance(*currents))
    if unbalance is not None:
        out["current_unbalance"] = unbalance
    i_n = number(values.get("current_n"))
    if i_n is not None:
        ratio = _attempt(lambda: neutral_current_ratio(i_n, *currents))
        if ratio is not None:
            out["neutral_current_ratio"] = ratio
    return out


def _power(
    values: Mapping[str, Value], target: float, rated_power: float | None
) -> dict[str, float]:
    out: dict[str, float] = {}
    p = number(values.get("power_active_total"))
    q = number(values.get("power_reactive_total"))
    pf = number(values.get("power_factor_total"))
    if pf is not None and abs(pf) <= 1.0:
        out["power_factor"] = abs(pf)
    elif p is not None and q is not None:
        computed = _attempt(lambda: power_factor(p, q))
        if computed is not None:
            out["power_factor"] = computed
    if p is not None and p >= 0.0 and "power_factor" in out:
        leading = q is not None and q < 0.0
        kvar = _attempt(lambda: capacitor_kvar(p, out["power_factor"], target))
        if kvar is not None:
            out["reactive_compensation"] = 0.0 if leading else kvar
    s = apparent_power(values)
    if rated_power is not None and s is not None:
        out["load_rate"] = load_rate(s, rated_power)
    return out
