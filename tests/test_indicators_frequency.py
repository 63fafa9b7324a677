"""Frequency deviation and the GB/T 15945-2008 qualification rate."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from edge_agent.errors import ConfigError
from edge_agent.indicators import (
    FREQUENCY_LIMIT_SMALL_SYSTEM,
    Excursion,
    MinuteAccumulator,
    frequency_band,
    frequency_deviation,
    frequency_qualification,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_deviation_and_band() -> None:
    assert frequency_deviation(49.8) == pytest.approx(-0.2)
    assert frequency_deviation(60.1, 60.0) == pytest.approx(0.1)
    band = frequency_band()
    assert band.excursion(49.8) is Excursion.WITHIN
    assert band.excursion(50.2) is Excursion.WITHIN
    assert band.excursion(49.79) is Excursion.BELOW
    assert band.excursion(50.21) is Excursion.ABOVE
    with pytest.raises(ConfigError):
        frequency_band(50.0, 0.0)
    with pytest.raises(ConfigError):
        frequency_deviation(50.0, 0.0)


def _hour(acc: MinuteAccumulator) -> None:
    t0 = 1_714_492_800.0  # 2024-05-01 00:00 Asia/Shanghai
    for minute in range(60):
        f = 50.25 if minute in (3, 4) else 49.4 if minute == 10 else 50.01
        acc.feed(t0 + minute * 60 + 1, {"frequency": f})
    acc.advance(t0 + 3600)


def test_rate_uses_the_shared_minute_accumulator() -> None:
    normal = frequency_qualification(tz=SHANGHAI)
    assert isinstance(normal, MinuteAccumulator)
    _hour(normal)
    stats = normal.day.channel("frequency")
    assert (stats.monitored, stats.above, stats.below) == (60, 2, 1)
    assert stats.qualification_rate == pytest.approx(95.0)
    assert stats.minimum == pytest.approx(49.4)

    small_system = frequency_qualification(tz=SHANGHAI, limit=FREQUENCY_LIMIT_SMALL_SYSTEM)
    _hour(small_system)
    assert small_system.day.channel("frequency").qualification_rate == pytest.approx(100 * 59 / 60)
