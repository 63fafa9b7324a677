"""1-minute accumulator: qualification counts, extremes, local rollover and persistence."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.errors import ConfigError
from edge_agent.indicators import (
    Band,
    ChannelStats,
    Excursion,
    MinuteAccumulator,
    StateError,
    voltage_qualification,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(wall_clock: str) -> float:
    """Unix time of a wall-clock time in Shanghai ("2024-05-01 10:00")."""
    return datetime.fromisoformat(wall_clock).replace(tzinfo=SHANGHAI).timestamp()


def test_band_edges_are_qualified() -> None:
    band = Band(200.0, 240.0)
    assert band.excursion(240.0) is Excursion.WITHIN
    assert band.excursion(200.0) is Excursion.WITHIN
    assert band.excursion(240.01) is Excursion.ABOVE
    assert band.excursion(199.99) is Excursion.BELOW
    with pytest.raises(ConfigError):
        Band(240.0, 200.0)


def test_worked_example_day_with_17_minutes_above_and_3_below() -> None:
    """GB/T 12325 rate: 1 - (17 + 3) / 1440 = 98.61 %; total pools phase-minutes."""
    acc = voltage_qualification(220.0, tz=SHANGHAI)
    start = local("2024-05-01 00:00")
    for minute in range(1440):
        volts = 240.0 if minute < 17 else 200.0 if minute < 20 else 225.0
        acc.feed(
            start + minute * 60 + 5, {"voltage_a": volts, "voltage_b": 221.0, "voltage_c": 219.0}
        )
    acc.advance(local("2024-05-02 00:00:30"))

    day = acc.previous_day
    assert day is not None and day.key == "2024-05-01"
    a = day.channel("voltage_a")
    assert (a.monitored, a.above, a.below) == (1440, 17, 3)
    assert a.qualification_rate == pytest.approx(98.61, abs=0.005)
    assert a.above_rate == pytest.approx(17 / 14.40)
    assert day.channel("voltage_b").qualification_rate == 100.0
    total = day.total
    assert (total.monitored, total.above, total.below) == (4320, 17, 3)
    assert total.qualification_rate == pytest.approx(100 * (1 - 20 / 4320))
    # The new day has begun empty; the month keeps counting.
    assert acc.day.key == "2024-05-02"
    assert acc.day.total.monitored == 0
    assert acc.day.total.qualification_rate is None
    assert acc.month.channel("voltage_a").monitored == 1440


def test_minute_average_and_extremes_with_times() -> None:
    acc = voltage_qualification(220.0, tz=SHANGHAI)
    t0 = local("2024-05-01 10:00")
    for second, volts in ((0, 220.0), (20, 230.0), (40, 240.0)):  # average 230: within
        acc.feed(t0 + second, {"voltage_a": volts})
    acc.feed(t0 + 60, {"voltage_a": 190.0})  # next minute: below
    acc.feed(t0 + 125, {"voltage_a": 220.0})  # closes 10:01
    a = acc.day.channel("voltage_a")
    assert (a.monitored, a.above, a.below) == (2, 0, 1)
    assert a.maximum == 230.0 and a.maximum_at == t0
    assert a.minimum == 190.0 and a.minimum_at == t0 + 60
    assert a.mean == pytest.approx(210.0)
    assert acc.last_minute("voltage_a") == (t0 + 60, 190.0)


def test_non_numeric_missing_and_late_samples_are_ignored() -> None:
    acc = voltage_qualification(220.0, tz=SHANGHAI)
    t0 = local("2024-05-01 10:00")
    acc.feed(t0 + 30, {"voltage_a": 230.0, "voltage_b": "n/a", "frequency": 50.0})
    acc.feed(t0 + 10, {"voltage_a": 100.0})  # same minute, earlier: still this minute
    acc.feed(t0 + 70, {"voltage_a": float("nan")})
    acc.feed(t0 - 30, {"voltage_a": 100.0})  # older minute: dropped
    acc.advance(t0 + 600)
    a = acc.day.channel("voltage_a")
    assert a.monitored == 1
    assert a.mean == pytest.approx(165.0)
    assert acc.day.channel("voltage_b").monitored == 0


def test_rollover_follows_local_midnight_in_shanghai() -> None:
    """Local midnight 2024-05-01 in UTC+8 is 16:00 UTC on 30 April: day and month roll."""
    acc = voltage_qualification(220.0, tz=SHANGHAI)
    acc.feed(local("2024-04-30 23:59:30"), {"voltage_a": 250.0})
    acc.feed(local("2024-05-01 00:00:10"), {"voltage_a": 220.0})
    assert acc.day.key == "2024-05-01"
    assert acc.previous_day is not None and acc.previous_day.key == "2024-04-30"
    acc.feed(local("2024-05-01 07:59:10"), {"voltage_a": 220.0})  # 23:59 UTC on 30 April
    acc.advance(local("2024-05-01 08:30"))
    assert acc.previous_day is not None and acc.previous_day.key == "2024-04-30"
    assert acc.previous_day.channel("voltage_a").above == 1
    assert acc.previous_month is not None and acc.previous_month.key == "2024-04"
    assert acc.day.key == "2024-05-01" and acc.month.key == "2024-05"
    assert acc.day.channel("voltage_a").monitored == 2  # 00:00 and 07:59 local
    assert acc.month.channel("voltage_a").monitored == 2
    # The same instants in UTC would all still be 30 April.
    assert datetime.fromtimestamp(local("2024-05-01 07:59"), UTC).day == 30


def test_advance_alone_rolls_over_an_idle_day() -> None:
    acc = voltage_qualification(220.0, tz=SHANGHAI)
    acc.feed(local("2024-05-31 12:00"), {"voltage_a": 230.0})
    acc.advance(local("2024-06-01 00:00:01"))
    assert acc.day.key == "2024-06-01" and acc.day.total.monitored == 0
    assert acc.month.key == "2024-06"
    assert acc.previous_month is not None
    assert acc.previous_month.total.monitored == 1
    # Time going backwards does not undo the rollover.
    acc.advance(local("2024-05-31 23:00"))
    assert acc.day.key == "2024-06-01"


def test_state_round_trip_through_json_then_identical_continuation() -> None:
    acc = voltage_qualification(220.0, tz=SHANGHAI)
    t0 = local("2024-05-31 23:58")
    acc.feed(t0, {"voltage_a": 250.0, "voltage_b": 200.0})
    acc.feed(t0 + 60, {"voltage_a": 230.0})
    acc.feed(t0 + 130, {"voltage_a": 180.0})  # open minute at 00:00:10 local, next day
    stored = json.loads(json.dumps(acc.to_dict()))

    restored = voltage_qualification(220.0, tz=SHANGHAI)
    restored.restore(stored)
    assert restored.to_dict() == acc.to_dict()
    for each in (acc, restored):
        each.feed(t0 + 200, {"voltage_a": 226.0})
        each.advance(t0 + 600)
    assert restored.to_dict() == acc.to_dict()
    assert restored.day.channel("voltage_a").below == 1
    assert restored.previous_day is not None
    assert restored.previous_day.channel("voltage_a").above == 1


def test_restore_drops_unconfigured_channels_and_rejects_garbage() -> None:
    acc = voltage_qualification(220.0, tz=SHANGHAI)
    acc.feed(local("2024-05-01 09:00"), {"voltage_a": 230.0, "voltage_b": 231.0})
    acc.advance(local("2024-05-01 09:05"))
    single = MinuteAccumulator(("voltage_a",), tz=SHANGHAI, band=Band(200.0, 240.0))
    single.restore(acc.to_dict())
    assert set(single.day.channels) == {"voltage_a"}
    assert single.day.channel("voltage_a").monitored == 1

    before = single.to_dict()
    bad_states: list[object] = [
        None,
        {"version": 99},
        {**before, "day": {"key": 5, "channels": {}}},
        {**before, "open": {"voltage_a": [0.0, 1.0, 0]}},
        {**before, "month": {"key": "2024-05", "channels": {"voltage_a": {"monitored": -1}}}},
        {
            **before,
            "day": {
                "key": "2024-05-01",
                "channels": {"voltage_a": {**ChannelStats(monitored=1).to_dict(), "above": 2}},
            },
        },
    ]
    for bad in bad_states:
        with pytest.raises(StateError):
            single.restore(bad)
    assert single.to_dict() == before


def test_channels_must_be_unique() -> None:
    with pytest.raises(ConfigError):
        MinuteAccumulator((), tz=SHANGHAI)
    with pytest.raises(ConfigError):
        MinuteAccumulator(("voltage_a", "voltage_a"), tz=SHANGHAI)


samples = st.lists(
    st.tuples(st.floats(0.0, 400.0), st.floats(150.0, 260.0), st.booleans()),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(samples, st.integers(0, 59))
def test_property_counts_add_up_and_restore_at_any_point_continues_identically(
    steps: list[tuple[float, float, bool]], cut: int
) -> None:
    acc = voltage_qualification(220.0, tz=SHANGHAI)
    twin: MinuteAccumulator | None = None
    t = local("2024-01-31 23:00")
    for index, (gap, volts, both) in enumerate(steps):
        t += gap
        values = {"voltage_a": volts, **({"voltage_c": volts - 10.0} if both else {})}
        for each in (acc, twin):
            if each is not None:
                each.feed(t, values)
        if index == cut:
            twin = voltage_qualification(220.0, tz=SHANGHAI)
            twin.restore(json.loads(json.dumps(acc.to_dict())))
    acc.advance(t + 60)
    for period in (acc.day, acc.month):
        for stats in (*period.channels.values(), period.total):
            assert stats.above + stats.below <= stats.monitored
            rate = stats.qualification_rate
            assert rate is None or 0.0 <= rate <= 100.0
    if twin is not None:
        twin.advance(t + 60)
        assert twin.to_dict() == acc.to_dict()
