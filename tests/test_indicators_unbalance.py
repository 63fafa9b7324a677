"""Voltage unbalance (GB/T 15543-2008) and current unbalance."""

from __future__ import annotations

import cmath
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.indicators import (
    IndicatorError,
    current_unbalance,
    neutral_current_ratio,
    sequence_components,
    voltage_unbalance_approx,
    voltage_unbalance_from_lines,
    voltage_unbalance_from_phasors,
)


def phasor(magnitude: float, degrees: float) -> complex:
    return cmath.rect(magnitude, math.radians(degrees))


def line_magnitudes(phasors: list[complex]) -> tuple[float, float, float]:
    a, b, c = phasors
    return abs(a - b), abs(b - c), abs(c - a)


def test_worked_example_line_voltages_400_390_410() -> None:
    assert voltage_unbalance_from_lines(400.0, 390.0, 410.0) == pytest.approx(2.888, abs=5e-4)


def test_balanced_lines_give_zero_and_degenerate_triangle_gives_100() -> None:
    assert voltage_unbalance_from_lines(380.0, 380.0, 380.0) == pytest.approx(0.0, abs=1e-6)
    # Collinear phasors (c = a + b): positive and negative sequence are equal.
    assert voltage_unbalance_from_lines(100.0, 100.0, 200.0) == pytest.approx(100.0)


def test_impossible_or_zero_line_voltages_are_typed_errors() -> None:
    with pytest.raises(IndicatorError):
        voltage_unbalance_from_lines(400.0, 100.0, 100.0)  # no triangle
    with pytest.raises(IndicatorError):
        voltage_unbalance_from_lines(0.0, 0.0, 0.0)
    with pytest.raises(IndicatorError):
        voltage_unbalance_from_lines(-400.0, 390.0, 410.0)


def test_sequence_components_of_pure_sequences() -> None:
    zero, pos, neg = sequence_components([phasor(1, 0), phasor(1, -120), phasor(1, 120)])
    assert (abs(zero), abs(pos), abs(neg)) == pytest.approx((0.0, 1.0, 0.0), abs=1e-12)
    zero, pos, neg = sequence_components([phasor(1, 0), phasor(1, 120), phasor(1, -120)])
    assert (abs(zero), abs(pos), abs(neg)) == pytest.approx((0.0, 0.0, 1.0), abs=1e-12)
    with pytest.raises(IndicatorError):
        sequence_components([1.0, 1.0])


def test_phasor_path_matches_magnitude_path_on_balanced_angles() -> None:
    """Unequal magnitudes 230/220/240 V at 0/-120/+120°: both paths give U2/U1."""
    mags, angles = (230.0, 220.0, 240.0), (0.0, -120.0, 120.0)
    from_phasors = voltage_unbalance_from_phasors(mags, angles)
    lines = line_magnitudes([phasor(m, a) for m, a in zip(mags, angles, strict=True)])
    assert from_phasors == pytest.approx(voltage_unbalance_from_lines(*lines), rel=1e-9)
    # By hand: U1 = (230 + 220 + 240) / 3 and U2 = (230 + 220∠120° + 240∠-120°) / 3.
    u2 = abs(230 + 220 * cmath.rect(1, math.radians(120)) + 240 * cmath.rect(1, math.radians(-120)))
    assert from_phasors == pytest.approx(u2 / (230 + 220 + 240) * 100, rel=1e-9)
    # Reverse rotation labelled A-C-B gives the same unbalance, not ~100 %.
    assert voltage_unbalance_from_phasors(mags, (0.0, 120.0, -120.0)) == pytest.approx(from_phasors)


@settings(max_examples=300, deadline=None)
@given(
    st.tuples(*[st.floats(150.0, 260.0)] * 3),
    st.tuples(*[st.floats(-15.0, 15.0)] * 3),
)
def test_property_phasor_and_line_paths_agree(
    mags: tuple[float, float, float], skew: tuple[float, float, float]
) -> None:
    angles = (skew[0], -120.0 + skew[1], 120.0 + skew[2])
    lines = line_magnitudes([phasor(m, a) for m, a in zip(mags, angles, strict=True)])
    assert voltage_unbalance_from_phasors(mags, angles) == pytest.approx(
        voltage_unbalance_from_lines(*lines), rel=1e-6, abs=1e-9
    )


def test_phase_voltage_approximation_is_max_deviation_over_mean() -> None:
    assert voltage_unbalance_approx(230.0, 220.0, 240.0) == pytest.approx(10 / 230 * 100)
    with pytest.raises(IndicatorError):
        voltage_unbalance_approx(0.0, 0.0, 0.0)


def test_line_formula_on_phase_voltages_would_be_wrong() -> None:
    """Zero sequence: equal phase magnitudes can hide a real unbalance."""
    phases = [phasor(230.0, 0.0), phasor(230.0, -110.0), phasor(230.0, 110.0)]
    exact = voltage_unbalance_from_phasors((230.0,) * 3, (0.0, -110.0, 110.0))
    assert exact > 5.0
    assert voltage_unbalance_from_lines(*line_magnitudes(phases)) == pytest.approx(exact)
    assert voltage_unbalance_from_lines(230.0, 230.0, 230.0) == pytest.approx(0.0, abs=1e-6)


def test_current_unbalance_and_neutral_ratio() -> None:
    assert current_unbalance(100.0, 80.0, 60.0) == pytest.approx(40.0)
    assert current_unbalance(-100.0, 80.0, 60.0) == pytest.approx(40.0)
    assert current_unbalance(5.0, 0.0, 0.0) == pytest.approx(100.0)
    assert neutral_current_ratio(20.0, 100.0, 80.0, 60.0) == pytest.approx(25.0)
    with pytest.raises(IndicatorError):
        current_unbalance(0.0, 0.0, 0.0)
    with pytest.raises(IndicatorError):
        neutral_current_ratio(1.0, 0.0, 0.0, 0.0)
