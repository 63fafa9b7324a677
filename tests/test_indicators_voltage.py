"""Voltage deviation and GB/T 12325-2008 limits."""

from __future__ import annotations

import math
from zoneinfo import ZoneInfo

import pytest

from edge_agent.errors import ConfigError
from edge_agent.indicators import (
    HIGH_VOLTAGE_LIMITS,
    SINGLE_PHASE_LIMITS,
    THREE_PHASE_LIMITS,
    DeviationLimits,
    Excursion,
    gbt12325_limits,
    voltage_deviation,
    voltage_qualification,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_deviation_in_percent() -> None:
    assert voltage_deviation(235.4, 220.0) == pytest.approx(7.0)
    assert voltage_deviation(198.0, 220.0) == pytest.approx(-10.0)
    assert voltage_deviation(10_500.0, 10_000.0) == pytest.approx(5.0)
    with pytest.raises(ConfigError):
        voltage_deviation(230.0, 0.0)


@pytest.mark.parametrize(
    ("nominal", "phases", "expected"),
    [
        (220.0, 1, SINGLE_PHASE_LIMITS),
        (380.0, 3, THREE_PHASE_LIMITS),
        (10_000.0, 3, THREE_PHASE_LIMITS),
        (20_000.0, 3, THREE_PHASE_LIMITS),
        (35_000.0, 3, HIGH_VOLTAGE_LIMITS),
        (110_000.0, 3, HIGH_VOLTAGE_LIMITS),
    ],
)
def test_gbt12325_default_limits(nominal: float, phases: int, expected: DeviationLimits) -> None:
    assert gbt12325_limits(nominal, phases=phases) == expected


def test_limit_values_and_span() -> None:
    assert (THREE_PHASE_LIMITS.upper, THREE_PHASE_LIMITS.lower) == (7.0, 7.0)
    assert (SINGLE_PHASE_LIMITS.upper, SINGLE_PHASE_LIMITS.lower) == (7.0, 10.0)
    assert HIGH_VOLTAGE_LIMITS.span == 10.0
    contract = DeviationLimits(upper=3.0, lower=7.0)  # 35 kV contract split, span 10
    assert contract.span == 10.0
    for bad in ((-1.0, 5.0), (5.0, float("nan")), (100.0, 5.0)):
        with pytest.raises(ConfigError):
            DeviationLimits(*bad)
    with pytest.raises(ConfigError):
        gbt12325_limits(380.0, phases=2)
    with pytest.raises(ConfigError):
        gbt12325_limits(-380.0)


def test_band_edges_single_phase() -> None:
    band = SINGLE_PHASE_LIMITS.band(220.0)
    assert band.excursion(220.0 * 1.07) is Excursion.WITHIN
    assert band.excursion(198.0) is Excursion.WITHIN
    assert band.excursion(197.9) is Excursion.BELOW
    assert band.excursion(235.5) is Excursion.ABOVE


def test_line_mode_monitors_line_voltages_against_root3_nominal() -> None:
    acc = voltage_qualification(220.0, tz=SHANGHAI, line=True)
    assert acc.channels == ("voltage_ab", "voltage_bc", "voltage_ca")
    assert acc.band is not None
    assert acc.band.high == pytest.approx(220.0 * math.sqrt(3.0) * 1.07)
    t = 1_714_500_000.0
    acc.feed(t, {"voltage_ab": 381.0, "voltage_bc": 420.0, "voltage_a": 100.0})
    acc.advance(t + 120)
    assert acc.day.channel("voltage_ab").above == 0
    assert acc.day.channel("voltage_bc").above == 1
    assert acc.day.total.monitored == 2
