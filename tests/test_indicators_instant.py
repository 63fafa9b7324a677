"""Indicators from one reading: what is computed, what is skipped."""

from __future__ import annotations

import math

import pytest

from edge_agent.indicators import INSTANT_INDICATORS, instant_indicators
from edge_agent.model import Value

THREE_PHASE: dict[str, Value] = {
    "voltage_a": 230.0,
    "voltage_b": 220.0,
    "voltage_c": 240.0,
    "voltage_ab": 400.0,
    "voltage_bc": 390.0,
    "voltage_ca": 410.0,
    "current_a": 100.0,
    "current_b": 80.0,
    "current_c": 60.0,
    "current_n": 20.0,
    "frequency": 49.93,
    "power_active_total": 100.0,
    "power_reactive_total": 75.0,
    "power_factor_total": 0.8,
    "energy_import_total": 1234.5,
}


def test_full_three_phase_reading() -> None:
    out = instant_indicators(
        THREE_PHASE, nominal_voltage=220.0, power_factor_target=0.95, rated_power=250.0
    )
    assert out["voltage_unbalance"] == pytest.approx(2.888, abs=5e-4)  # from line voltages
    assert "voltage_unbalance_approx" not in out
    assert out["voltage_deviation_a"] == pytest.approx(100 * 10 / 220)
    assert out["voltage_deviation_b"] == pytest.approx(0.0)
    assert out["voltage_deviation_ab"] == pytest.approx(100 * (400 / (220 * math.sqrt(3)) - 1))
    assert out["current_unbalance"] == pytest.approx(40.0)
    assert out["neutral_current_ratio"] == pytest.approx(25.0)
    assert out["frequency_deviation"] == pytest.approx(-0.07)
    assert out["power_factor"] == pytest.approx(0.8)
    assert out["reactive_compensation"] == pytest.approx(42.13, abs=0.005)
    assert out["load_rate"] == pytest.approx(50.0)  # 125 kVA of 250
    assert set(out) <= set(INSTANT_INDICATORS)


def test_phase_voltages_only_give_the_labelled_approximation() -> None:
    out = instant_indicators(
        {"voltage_a": 230.0, "voltage_b": 220.0, "voltage_c": 240.0}, nominal_voltage=220.0
    )
    assert "voltage_unbalance" not in out
    assert out["voltage_unbalance_approx"] == pytest.approx(10 / 230 * 100)


def test_phase_voltages_with_angles_give_the_exact_unbalance() -> None:
    values: dict[str, Value] = {
        "voltage_a": 230.0,
        "voltage_b": 220.0,
        "voltage_c": 240.0,
        "angle_voltage_a": 0.0,
        "angle_voltage_b": 240.0,  # = -120°
        "angle_voltage_c": 120.0,
    }
    out = instant_indicators(values, nominal_voltage=220.0)
    # U1 = 230 V; U2 = (230 + 220∠120° + 240∠-120°) / 3 = -j 20 (√3/2) / 3, |U2| = 10/√3 V.
    assert out["voltage_unbalance"] == pytest.approx(100 * (10 / math.sqrt(3)) / 230)
    assert "voltage_unbalance_approx" not in out
    # "Angles" that are really U-I angles are implausible and fall back to the approximation.
    values |= {"angle_voltage_a": 25.0, "angle_voltage_b": 30.0, "angle_voltage_c": 20.0}
    out = instant_indicators(values, nominal_voltage=220.0)
    assert "voltage_unbalance" not in out
    assert "voltage_unbalance_approx" in out


def test_single_phase_meter() -> None:
    values: dict[str, Value] = {
        "voltage_a": 198.0,
        "current_a": 5.0,
        "power_active_total": 1.0,
        "power_factor_total": 1.0,
        "frequency": 50.0,
    }
    out = instant_indicators(values, nominal_voltage=220.0)
    assert out == {
        "voltage_deviation_a": pytest.approx(-10.0),
        "frequency_deviation": 0.0,
        "power_factor": 1.0,
        "reactive_compensation": 0.0,
    }


def test_zeros_missing_and_garbage_are_skipped_never_divided_by() -> None:
    values: dict[str, Value] = {
        "voltage_ab": 0.0,
        "voltage_bc": 0.0,
        "voltage_ca": 0.0,
        "voltage_a": 0.0,
        "voltage_b": 0.0,
        "voltage_c": 0.0,
        "current_a": 0.0,
        "current_b": 0.0,
        "current_c": 0.0,
        "current_n": 0.0,
        "power_active_total": 0.0,
        "power_reactive_total": 0.0,
        "frequency": "n/a",
        "temperature": float("nan"),
    }
    out = instant_indicators(values, nominal_voltage=220.0, rated_power=100.0)
    for key in ("voltage_unbalance", "voltage_unbalance_approx", "current_unbalance"):
        assert key not in out
    assert "neutral_current_ratio" not in out
    assert "frequency_deviation" not in out
    assert "power_factor" not in out
    assert out["load_rate"] == 0.0
    assert out["voltage_deviation_a"] == -100.0
    assert instant_indicators({}, nominal_voltage=220.0) == {}
    # Two of three phases: no unbalance at all.
    two = {"voltage_a": 230.0, "voltage_b": 225.0, "current_a": 3.0, "current_b": 4.0}
    out = instant_indicators(two, nominal_voltage=220.0)
    assert set(out) == {"voltage_deviation_a", "voltage_deviation_b"}


def test_power_factor_from_p_and_q_and_leading_load_needs_no_capacitor() -> None:
    out = instant_indicators(
        {"power_active_total": 80.0, "power_reactive_total": 60.0}, nominal_voltage=220.0
    )
    assert out["power_factor"] == pytest.approx(0.8)
    assert out["reactive_compensation"] == pytest.approx(80 * (0.75 - math.sqrt(1 - 0.81) / 0.9))
    leading = instant_indicators(
        {"power_active_total": 80.0, "power_reactive_total": -60.0}, nominal_voltage=220.0
    )
    assert leading["reactive_compensation"] == 0.0
    exporting = instant_indicators(
        {"power_active_total": -80.0, "power_reactive_total": 60.0}, nominal_voltage=220.0
    )
    assert "reactive_compensation" not in exporting
