"""The simulator's value model: consistent, moving, deterministic three-phase values."""

from __future__ import annotations

import cmath
import itertools
import math
from collections.abc import Mapping

import pytest

from edge_agent.model import Value
from edge_agent.quantities import LINES, PHASES, QUANTITIES
from edge_agent.simulator import (
    MILD_UNBALANCE,
    STRONG_UNBALANCE,
    ModelOptions,
    SimClock,
    ValueModel,
)
from edge_agent.simulator.energy import CHANNELS

#: 2023-11-14 00:00 UTC; with utc_offset=0 the local day starts here.
MIDNIGHT = 1_699_920_000.0
HOUR = 3600.0


def _model(**options: object) -> ValueModel:
    return ValueModel(ModelOptions(utc_offset=0, **options), MIDNIGHT)  # type: ignore[arg-type]


def _num(values: Mapping[str, Value], key: str) -> float:
    value = values[key]
    assert isinstance(value, int | float)
    return float(value)


def _unbalance(values: Mapping[str, Value]) -> float:
    """Negative- over positive-sequence voltage (IEC 61000-4-30)."""
    a = cmath.rect(1.0, math.radians(120))
    ua, ub, uc = (
        cmath.rect(_num(values, f"voltage_{p}"), math.radians(-angle))
        for p, angle in zip(PHASES, (0, 120, 240), strict=True)
    )
    return abs(ua + a * a * ub + a * uc) / abs(ua + a * ub + a * a * uc)


def test_every_quantity_has_a_value() -> None:
    values = _model(seed=1).values_at(MIDNIGHT + 10 * HOUR)
    assert set(QUANTITIES) <= values.keys()
    assert all(isinstance(v, int | float) and math.isfinite(v) for v in values.values())


def test_same_seed_same_values_other_seed_other_values() -> None:
    t = MIDNIGHT + 5 * HOUR + 123.4
    assert _model(seed=7).values_at(t) == _model(seed=7).values_at(t)
    assert _model(seed=7).values_at(t)["voltage_a"] != _model(seed=8).values_at(t)["voltage_a"]


@pytest.mark.parametrize("hour", [0.5, 7.5, 13.0, 19.5, 23.9])
def test_derived_values_are_consistent(hour: float) -> None:
    v = _model(seed=3).values_at(MIDNIGHT + hour * HOUR)
    phasors = {}
    for p, angle in zip(PHASES, (0.0, 120.0, 240.0), strict=True):
        u, i, pf = _num(v, f"voltage_{p}"), _num(v, f"current_{p}"), _num(v, f"power_factor_{p}")
        assert _num(v, f"power_active_{p}") == pytest.approx(u * i * pf / 1000, rel=1e-9)
        assert _num(v, f"power_apparent_{p}") == pytest.approx(u * i / 1000, rel=1e-9)
        p_kw, q_kvar = _num(v, f"power_active_{p}"), _num(v, f"power_reactive_{p}")
        assert q_kvar == pytest.approx(math.sqrt((u * i / 1000) ** 2 - p_kw**2), rel=1e-6)
        assert 0.85 <= pf <= 0.98
        lag = (_num(v, f"angle_current_{p}") - _num(v, f"angle_voltage_{p}")) % 360
        assert math.cos(math.radians(lag)) == pytest.approx(pf, rel=1e-9)
        assert _num(v, f"angle_voltage_{p}") == angle
        phasors[p] = cmath.rect(u, -math.radians(angle))
    for line, (x, y) in zip(LINES, (("a", "b"), ("b", "c"), ("c", "a")), strict=True):
        assert _num(v, f"voltage_{line}") == pytest.approx(abs(phasors[x] - phasors[y]), rel=1e-9)
        assert _num(v, f"voltage_{line}") == pytest.approx(
            math.sqrt(3) * _num(v, f"voltage_{x}"), rel=0.03
        )
    total = sum(_num(v, f"power_active_{p}") for p in PHASES)
    reactive = sum(_num(v, f"power_reactive_{p}") for p in PHASES)
    assert _num(v, "power_active_total") == pytest.approx(total, rel=1e-12)
    assert _num(v, "power_reactive_total") == pytest.approx(reactive, rel=1e-12)
    assert _num(v, "power_apparent_total") == pytest.approx(math.hypot(total, reactive))
    assert _num(v, "power_factor_total") == pytest.approx(total / math.hypot(total, reactive))
    assert 49.94 < _num(v, "frequency") < 50.06
    assert 0 < _num(v, "thd_voltage_a") < 5 and 0 < _num(v, "thd_current_a") < 30


def test_daily_curve_peaks_in_the_evening_and_drops_at_night() -> None:
    model = _model(seed=5, peak_kw=10.0)

    def mean_power(hour: float) -> float:
        samples = [MIDNIGHT + day * 86400 + hour * HOUR for day in range(5)]
        return sum(_num(model.values_at(t), "power_active_total") for t in samples) / 5

    night, morning, evening = mean_power(3.0), mean_power(7.5), mean_power(19.5)
    assert night < 0.4 * evening
    assert morning > 1.5 * night
    assert 7.0 < evening < 12.0


def test_energy_counters_integrate_power_and_split_by_tariff() -> None:
    model = _model(seed=2)
    per_hour = 30
    times = [MIDNIGHT + k * HOUR / per_hour for k in range(24 * per_hour + 1)]
    samples = [model.values_at(t) for t in times]
    imports = [_num(v, "energy_import_total") for v in samples]
    assert all(b >= a for a, b in itertools.pairwise(imports))
    integral = sum(_num(v, "power_active_total") for v in samples[:-1]) / per_hour
    assert imports[-1] - imports[0] == pytest.approx(integral, rel=0.01)
    for v in (samples[0], samples[-1]):
        tariffs = sum(_num(v, f"energy_import_t{n}") for n in range(1, 5))
        assert tariffs == pytest.approx(_num(v, "energy_import_total"), rel=1e-9)
        per_phase = sum(_num(v, f"energy_import_{p}") for p in PHASES)
        assert per_phase == pytest.approx(_num(v, "energy_import_total"), rel=1e-9)
        assert _num(v, "energy_total") == pytest.approx(
            _num(v, "energy_import_total") + _num(v, "energy_export_total")
        )
    # Valley tariff (T4) only grows at night, sharp (T1) only in the evening.
    at = {hour: samples[hour * per_hour] for hour in (0, 3, 18, 20)}
    assert _num(at[3], "energy_import_t1") == _num(at[0], "energy_import_t1")
    assert _num(at[3], "energy_import_t4") > _num(at[0], "energy_import_t4")
    assert _num(at[20], "energy_import_t1") > _num(at[18], "energy_import_t1")


def test_history_before_the_start_is_consistent() -> None:
    model = _model(seed=4)
    earlier = model.values_at(MIDNIGHT - 30 * 86400)
    now = model.values_at(MIDNIGHT)
    assert 0 < _num(earlier, "energy_import_total") < _num(now, "energy_import_total")
    assert len(CHANNELS) == 8


def test_unbalance_mild_by_default_and_strong_on_request() -> None:
    times = [MIDNIGHT + k * 977.0 for k in range(40)]
    mild = _model(seed=9, excursion_probability=0.0)
    strong = _model(seed=9, excursion_probability=0.0, unbalance=STRONG_UNBALANCE)
    assert MILD_UNBALANCE < 0.01
    assert STRONG_UNBALANCE > 0.02
    assert max(_unbalance(mild.values_at(t)) for t in times) < 0.01
    assert min(_unbalance(strong.values_at(t)) for t in times) > 0.02
    currents = strong.values_at(MIDNIGHT + 19 * HOUR)
    spread = [_num(currents, f"current_{p}") for p in PHASES]
    assert max(spread) / min(spread) > 1.5


def test_voltage_excursions_follow_their_probability() -> None:
    times = [MIDNIGHT + k * 60.0 for k in range(300)]
    calm = _model(seed=11, excursion_probability=0.0)
    stormy = _model(seed=11, excursion_probability=1.0)
    calm_dev = [abs(_num(calm.values_at(t), "voltage_a") / 220 - 1) for t in times]
    stormy_dev = [abs(_num(stormy.values_at(t), "voltage_a") / 220 - 1) for t in times]
    assert max(calm_dev) < 0.05
    assert min(stormy_dev) > 0.04


def test_relay_open_drops_load_and_stops_counters() -> None:
    model = _model(seed=6)
    t_open, t_close = MIDNIGHT + 10 * HOUR, MIDNIGHT + 12 * HOUR
    before = model.values_at(t_open)
    model.set_relay(False, t_open)
    during = model.values_at(t_open + HOUR)
    assert during["relay_state"] == 0 and during["status_word_3"] != 0
    assert all(_num(during, f"current_{p}") == 0 for p in PHASES)
    assert _num(during, "power_active_total") == 0
    assert _num(during, "voltage_a") > 200
    assert _num(during, "energy_import_total") == pytest.approx(
        _num(before, "energy_import_total"), abs=1e-9
    )
    model.set_relay(True, t_close)
    after = model.values_at(t_close + HOUR)
    assert after["relay_state"] == 1 and _num(after, "power_active_total") > 0
    assert _num(after, "energy_import_total") > _num(during, "energy_import_total")
    # History keeps the outage: the relay was open at t_open + 1 h.
    assert model.values_at(t_open + HOUR)["relay_state"] == 0


def test_single_phase_model_loads_phase_a_only() -> None:
    v = _model(seed=1, phases=1).values_at(MIDNIGHT + 19 * HOUR)
    assert _num(v, "current_a") > 0 and _num(v, "current_b") == 0
    assert _num(v, "power_active_total") == pytest.approx(_num(v, "power_active_a"))


def test_clock_scales_and_freezes_time() -> None:
    clock = SimClock(start=1000.0, time_scale=60.0, origin=50.0)
    assert clock.at(50.0) == 1000.0
    assert clock.at(51.5) == 1090.0
    frozen = SimClock(start=1000.0, time_scale=0.0)
    assert frozen.now() == frozen.now() == 1000.0
