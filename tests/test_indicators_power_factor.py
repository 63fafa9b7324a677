"""Power factor and capacitor sizing Qc = P (tan φ1 - tan φ2)."""

from __future__ import annotations

import pytest

from edge_agent.errors import ConfigError
from edge_agent.indicators import (
    PF_TARGET,
    IndicatorError,
    capacitor_kvar,
    power_factor,
    round_up_kvar,
    tan_phi,
)


def test_worked_example_100_kw_from_0_8_to_0_95() -> None:
    assert tan_phi(0.8) == pytest.approx(0.75)
    assert tan_phi(0.95) == pytest.approx(0.3287, abs=5e-5)
    qc = capacitor_kvar(100.0, 0.8, 0.95)
    assert qc == pytest.approx(42.13, abs=0.005)
    assert round_up_kvar(qc) == 45.0
    assert round_up_kvar(qc, 10.0) == 50.0


def test_default_target_and_no_compensation_when_met() -> None:
    assert PF_TARGET == 0.90
    assert capacitor_kvar(100.0, 0.8) == pytest.approx(100 * (0.75 - 0.484322), abs=1e-4)
    assert capacitor_kvar(100.0, 0.92) == 0.0
    assert capacitor_kvar(0.0, 0.5) == 0.0
    assert round_up_kvar(40.0) == 40.0
    assert round_up_kvar(0.0) == 0.0


def test_power_factor_from_p_and_q() -> None:
    assert power_factor(80.0, 60.0) == pytest.approx(0.8)
    assert power_factor(-80.0, -60.0) == pytest.approx(0.8)
    with pytest.raises(IndicatorError):
        power_factor(0.0, 0.0)


def test_bad_inputs_are_typed_errors() -> None:
    with pytest.raises(IndicatorError):
        tan_phi(0.0)
    with pytest.raises(IndicatorError):
        capacitor_kvar(-5.0, 0.8)
    with pytest.raises(ConfigError):
        capacitor_kvar(100.0, 0.8, 1.2)
    with pytest.raises(ConfigError):
        round_up_kvar(10.0, 0.0)
