"""Load rate, load bands and the daily load factor."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from edge_agent.errors import ConfigError
from edge_agent.indicators import (
    DEFAULT_LOAD_BANDS,
    LoadBand,
    LoadBands,
    apparent_power,
    load_factor,
    load_rate,
    load_statistics,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_load_rate_and_bands() -> None:
    assert load_rate(400.0, 500.0) == pytest.approx(80.0)
    assert load_rate(-50.0, 500.0) == pytest.approx(10.0)
    with pytest.raises(ConfigError):
        load_rate(10.0, 0.0)
    bands = DEFAULT_LOAD_BANDS
    assert bands.classify(19.9) is LoadBand.LIGHT
    assert bands.classify(20.0) is LoadBand.NORMAL
    assert bands.classify(80.0) is LoadBand.NORMAL
    assert bands.classify(80.1) is LoadBand.HEAVY
    assert bands.classify(100.0) is LoadBand.HEAVY
    assert bands.classify(100.1) is LoadBand.OVERLOAD
    with pytest.raises(ConfigError):
        LoadBands(light=50.0, heavy=40.0)


def test_apparent_power_sources() -> None:
    assert apparent_power({"power_apparent_total": 12.0, "power_active_total": 1.0}) == 12.0
    assert apparent_power({"power_active_total": 3.0, "power_reactive_total": -4.0}) == 5.0
    assert apparent_power({"power_active_total": 80.0, "power_factor_total": -0.8}) == 100.0
    assert apparent_power({"power_active_total": 80.0, "power_factor_total": 0.0}) is None
    assert apparent_power({"power_reactive_total": 4.0}) is None


def test_daily_load_factor_is_mean_over_max_of_minute_power() -> None:
    acc = load_statistics(tz=SHANGHAI)
    assert load_factor(acc.day) is None
    t0 = 1_714_492_800.0  # 2024-05-01 00:00 Asia/Shanghai
    for minute in range(60):
        p = 10.0 if minute < 30 else 30.0
        acc.feed(t0 + minute * 60, {"power_active_total": p - 1.0})
        acc.feed(t0 + minute * 60 + 30, {"power_active_total": p + 1.0})
    acc.advance(t0 + 3600)
    assert acc.day.channel("power_active_total").maximum == pytest.approx(30.0)
    assert load_factor(acc.day) == pytest.approx(100 * 20 / 30)


def test_load_factor_is_none_when_only_exporting() -> None:
    acc = load_statistics(tz=SHANGHAI)
    acc.feed(0.0, {"power_active_total": -3.0})
    acc.advance(60.0)
    assert load_factor(acc.day) is None
