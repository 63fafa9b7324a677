"""Advice rules: persistence, clearing, concrete numbers and texts in both languages."""

from __future__ import annotations

import json
import string
from collections.abc import Mapping

import pytest

from edge_agent.advice import (
    ADVICE_RULES,
    DEFAULT_TIMINGS,
    Advice,
    AdviceConfig,
    AdviceEvaluator,
    Severity,
    Timing,
    language_of,
    render,
)
from edge_agent.advice_texts import ADVICE_TEXTS
from edge_agent.errors import ConfigError
from edge_agent.indicators import SINGLE_PHASE_LIMITS, StateError
from edge_agent.model import Value

T0 = 1_714_500_000.0
MIN = 60.0

BALANCED: dict[str, Value] = {
    "voltage_a": 221.0,
    "voltage_b": 220.0,
    "voltage_c": 219.0,
    "current_a": 50.0,
    "current_b": 50.0,
    "current_c": 50.0,
    "frequency": 50.0,
    "power_active_total": 30.0,
    "power_reactive_total": 5.0,
}
IMBALANCED = BALANCED | {"current_a": 100.0, "current_b": 60.0, "current_c": 50.0}


def run(
    ev: AdviceEvaluator, values: Mapping[str, Value], start: float, minutes: int
) -> list[Advice]:
    """Feed one reading a minute for ``minutes`` minutes from ``start``; return the last result."""
    result: list[Advice] = []
    for m in range(minutes):
        result = ev.evaluate(start + m * MIN, values)
    return result


def rules(advice: list[Advice]) -> list[str]:
    return [a.rule for a in advice]


def test_imbalance_needs_15_minutes_and_names_phases_and_amps() -> None:
    ev = AdviceEvaluator()
    assert run(ev, IMBALANCED, T0, 15) == []  # 0..14 min: not yet
    (advice,) = ev.evaluate(T0 + 15 * MIN, IMBALANCED)
    assert advice.rule == "phase_load_imbalance"
    assert advice.severity is Severity.CRITICAL  # 50 % > 2 x 15 %
    assert advice.indicator == "current_unbalance"
    assert advice.value == pytest.approx(50.0)
    assert advice.since == T0
    # Mean 70 A: moving 20 A from A to C brings C to the mean without overshoot.
    assert advice.placeholders == {
        "value": 50,
        "limit": 15,
        "from_phase": "A",
        "to_phase": "C",
        "amps": 20,
        "target": 70,
    }
    assert render(advice, "en") == (
        "Current unbalance is 50 % (limit 15 %). Move about 20 A of single-phase load from "
        "phase A to phase C; balanced, each phase would carry about 70 A."
    )
    assert "从 A 相调至 C 相" in render(advice, "zh-Hans")


def test_one_noisy_sample_raises_nothing() -> None:
    ev = AdviceEvaluator()
    run(ev, BALANCED, T0, 30)
    assert ev.evaluate(T0 + 30 * MIN, IMBALANCED | {"frequency": 48.0, "voltage_a": 260.0}) == []
    assert run(ev, BALANCED, T0 + 31 * MIN, 30) == []


def test_advice_clears_only_after_the_off_delay_and_a_relapse_keeps_it() -> None:
    ev = AdviceEvaluator()
    run(ev, IMBALANCED, T0, 16)
    assert rules(ev.active) == ["phase_load_imbalance"]
    t = T0 + 16 * MIN
    assert rules(run(ev, BALANCED, t, 5)) == ["phase_load_imbalance"]  # quiet 0..4 min
    assert rules(ev.evaluate(t + 5 * MIN, IMBALANCED)) == ["phase_load_imbalance"]  # relapse
    assert rules(run(ev, BALANCED, t + 6 * MIN, 5)) == ["phase_load_imbalance"]
    assert ev.evaluate(t + 11 * MIN, BALANCED) == []  # 5 min quiet: cleared
    assert ev.to_dict()["rules"] == {}


def test_light_load_is_not_judged_for_balance() -> None:
    ev = AdviceEvaluator()
    light = BALANCED | {"current_a": 4.0, "current_b": 1.0, "current_c": 0.0}
    assert run(ev, light, T0, 60) == []
    zero = BALANCED | {"current_a": 0.0, "current_b": 0.0, "current_c": 0.0}
    assert run(ev, zero, T0 + 60 * MIN, 60) == []


def test_missing_inputs_keep_the_advice_as_it_was() -> None:
    ev = AdviceEvaluator()
    run(ev, IMBALANCED, T0, 16)
    no_currents = {k: v for k, v in BALANCED.items() if not k.startswith("current")}
    assert rules(run(ev, no_currents, T0 + 16 * MIN, 30)) == ["phase_load_imbalance"]


def test_sustained_high_and_low_voltage() -> None:
    ev = AdviceEvaluator()
    high = BALANCED | {"voltage_b": 240.0}  # +9.1 % > +7 %
    assert run(ev, high, T0, 10) == []
    (advice,) = ev.evaluate(T0 + 10 * MIN, high)
    assert (advice.rule, advice.severity, advice.indicator) == (
        "voltage_high",
        Severity.WARNING,
        "voltage_deviation_b",
    )
    assert advice.placeholders == {"phase": "B", "voltage": 240, "deviation": 9.1, "limit": 7}
    assert "lower-voltage position" in render(advice, "en")

    single = AdviceEvaluator(AdviceConfig(voltage_limits=SINGLE_PHASE_LIMITS))
    low = {"voltage_a": 196.0}  # -10.9 % < -10 %, single-phase limit
    (advice,) = run(single, low, T0, 11)
    assert advice.rule == "voltage_low" and advice.placeholders["deviation"] == 10.9
    assert advice.value == pytest.approx(-100 * 24 / 220)
    assert run(AdviceEvaluator(), {"voltage_a": 200.0}, T0, 11)[0].rule == "voltage_low"
    assert run(single, {"voltage_a": 199.0}, T0 + 11 * MIN, 6) == []  # within -10 %: cleared
    critical = run(AdviceEvaluator(), {"voltage_a": 176.0}, T0, 11)[0]
    assert critical.severity is Severity.CRITICAL  # -20 % beyond 1.5 x 7 %


def test_line_voltages_only_are_judged_against_root3_nominal() -> None:
    ev = AdviceEvaluator()
    values: dict[str, Value] = {"voltage_ab": 420.0, "voltage_bc": 381.0, "voltage_ca": 380.0}
    advice = {a.rule: a for a in run(ev, values, T0, 11)}
    assert set(advice) == {"voltage_high", "voltage_unbalance_high"}  # 6.8 % unbalance too
    assert advice["voltage_high"].placeholders["phase"] == "AB"
    assert advice["voltage_high"].value == pytest.approx(100 * (420 / (220 * 3**0.5) - 1))


def test_overload_and_heavy_load_against_rated_kva() -> None:
    cfg = AdviceConfig(rated_power=100.0)
    ev = AdviceEvaluator(cfg)
    heavy = {"power_apparent_total": 90.0}
    assert run(ev, heavy, T0, 30) == []
    (advice,) = ev.evaluate(T0 + 30 * MIN, heavy)
    assert (advice.rule, advice.severity) == ("heavy_load", Severity.WARNING)
    assert advice.placeholders == {"value": 90, "load": 90, "rated": 100, "limit": 80}

    ev = AdviceEvaluator(cfg)
    over = {"power_apparent_total": 125.0}
    (advice,) = run(ev, over, T0, 6)
    assert (advice.rule, advice.severity) == ("overload", Severity.CRITICAL)
    assert "Transfer load" in render(advice, "en")
    assert "过载" in render(advice, "zh-Hans")
    # Without a rated capacity the load rules cannot tell.
    assert run(AdviceEvaluator(), over, T0, 60) == []


def test_low_power_factor_asks_for_a_rounded_capacitor_bank() -> None:
    ev = AdviceEvaluator(AdviceConfig(power_factor_target=0.95))
    poor = {"power_active_total": 100.0, "power_factor_total": 0.8}
    (advice,) = run(ev, poor, T0, 31)
    assert (advice.rule, advice.severity, advice.indicator) == (
        "low_power_factor",
        Severity.INFO,
        "power_factor",
    )
    assert advice.placeholders == {"value": 0.8, "target": 0.95, "power": 100, "kvar": 45}
    assert render(advice, "en").endswith("Add a capacitor bank of about 45 kvar.")
    assert "45 kvar" in render(advice, "zh-Hans")
    # Default target 0.90, 10 kvar steps: Qc = 26.6 kvar -> 30 kvar.
    ten = AdviceEvaluator(AdviceConfig(capacitor_step=10.0))
    assert run(ten, poor, T0, 31)[0].placeholders["kvar"] == 30
    # Standby load is not worth compensating.
    assert run(AdviceEvaluator(), poor | {"power_active_total": 0.3}, T0, 60) == []


def test_frequency_deviation_is_reported_to_dispatch() -> None:
    ev = AdviceEvaluator()
    assert ev.evaluate(T0, {"frequency": 49.7}) == []
    (advice,) = ev.evaluate(T0 + MIN, {"frequency": 49.7})
    assert advice.rule == "frequency_deviation" and advice.severity is Severity.WARNING
    assert advice.placeholders == {"value": -0.3, "frequency": 49.7, "limit": 0.2}
    assert "dispatch" in render(advice, "en") and "调度" in render(advice, "zh")
    (advice,) = ev.evaluate(T0 + 2 * MIN, {"frequency": 50.6})
    assert advice.severity is Severity.CRITICAL and advice.since == T0


def test_voltage_unbalance_from_line_voltages() -> None:
    ev = AdviceEvaluator(AdviceConfig(nominal_voltage=230.0))  # 398 V line: 410 V is +2.9 %
    values: dict[str, Value] = {"voltage_ab": 400.0, "voltage_bc": 390.0, "voltage_ca": 410.0}
    (advice,) = run(ev, values, T0, 11)
    assert (advice.rule, advice.severity) == ("voltage_unbalance_high", Severity.WARNING)
    assert advice.placeholders == {"value": 2.89, "limit": 2, "short_limit": 4}


def test_configurable_timing_and_validation() -> None:
    fast = AdviceEvaluator(AdviceConfig(timings={"phase_load_imbalance": Timing(0.0, 0.0)}))
    assert rules(fast.evaluate(T0, IMBALANCED)) == ["phase_load_imbalance"]
    assert fast.evaluate(T0 + 1, BALANCED) == []
    assert fast.config.timing("overload") == DEFAULT_TIMINGS["overload"]
    with pytest.raises(ConfigError):
        AdviceConfig(timings={"no_such_rule": Timing(1.0, 1.0)})
    for bad in (
        {"rated_power": 0.0},
        {"nominal_voltage": -220.0},
        {"power_factor_target": 1.5},
        {"capacitor_step": 0.0},
    ):
        with pytest.raises(ConfigError):
            AdviceConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Timing(-1.0, 0.0)


def test_state_round_trip_and_bad_state() -> None:
    ev = AdviceEvaluator()
    run(ev, IMBALANCED, T0, 16)
    run(ev, BALANCED | {"frequency": 49.5}, T0 + 16 * MIN, 1)  # pending frequency, quiet imbalance
    stored = json.loads(json.dumps(ev.to_dict()))
    twin = AdviceEvaluator()
    twin.restore(stored)
    assert twin.to_dict() == ev.to_dict()
    assert twin.active == ev.active
    t = T0 + 17 * MIN
    for each in (ev, twin):
        run(each, BALANCED | {"frequency": 49.5}, t, 6)
    assert twin.active == ev.active
    assert rules(twin.active) == ["frequency_deviation"]
    for bad in (None, {"version": 2}, {"version": 1, "rules": {"overload": {"since": "x"}}}):
        with pytest.raises(StateError):
            twin.restore(bad)
    assert twin.active == ev.active


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_texts_exist_for_every_rule_in_both_languages_with_identical_placeholders() -> None:
    assert set(ADVICE_TEXTS) == {"en", "zh-Hans"}
    for language in ADVICE_TEXTS.values():
        assert set(language) == set(ADVICE_RULES)
    for rule in ADVICE_RULES:
        assert _fields(ADVICE_TEXTS["en"][rule]) == _fields(ADVICE_TEXTS["zh-Hans"][rule])
    assert all(rule.isidentifier() and rule.islower() for rule in ADVICE_RULES)
    assert set(DEFAULT_TIMINGS) == set(ADVICE_RULES)


def test_every_rule_fills_exactly_its_text_placeholders() -> None:
    cfg = AdviceConfig(rated_power=100.0, timings={r: Timing(0.0, 0.0) for r in ADVICE_RULES})
    scenarios: list[dict[str, Value]] = [
        IMBALANCED | {"voltage_a": 240.0, "frequency": 49.0, "power_factor_total": 0.7},
        {
            "voltage_ab": 300.0,
            "voltage_bc": 390.0,
            "voltage_ca": 380.0,
            "power_apparent_total": 90.0,
        },
        {"power_apparent_total": 150.0},
    ]
    seen: set[str] = set()
    for values in scenarios:
        for advice in AdviceEvaluator(cfg).evaluate(T0, values):
            seen.add(advice.rule)
            assert set(advice.placeholders) == _fields(ADVICE_TEXTS["en"][advice.rule])
            for language in ("en", "zh-Hans"):
                assert "{" not in render(advice, language)
    assert seen == set(ADVICE_RULES)


def test_language_fallbacks() -> None:
    assert language_of("zh-Hans") == "zh-Hans"
    assert language_of("zh_CN") == "zh-Hans"
    assert language_of("zh-Hant") == "zh-Hans"
    assert language_of("de") == "en"
    assert language_of("en-GB") == "en"
