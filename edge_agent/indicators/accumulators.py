"""1-minute averages and their daily and monthly statistics.

Every qualification rate (voltage, frequency) and the daily load factor rest on the
same machinery: samples are averaged per clock minute, each closed minute is compared
with a qualified :class:`Band` and counted into the statistics of its local day and
local month. The state is a JSON-able dict so a host can keep it across restarts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Any

from ..errors import ConfigError
from ..model import Value
from ._numbers import number
from .errors import StateError

#: Length of one averaging interval, seconds (GB/T 12325 and GB/T 15945 use 1-minute values).
MINUTE = 60.0
#: Version of the dict written by :meth:`MinuteAccumulator.to_dict`.
STATE_VERSION = 1

#: Relative tolerance at the band edges, so 220 V x 1.07 is qualified despite float rounding.
_EDGE = 1e-9


class Excursion(StrEnum):
    """Where a 1-minute average lies relative to the qualified band."""

    WITHIN = "within"
    ABOVE = "above"
    BELOW = "below"


@dataclass(frozen=True, slots=True)
class Band:
    """The qualified range ``[low, high]`` of 1-minute averages, in the measured unit."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low <= self.high):
            raise ConfigError(f"band [{self.low}, {self.high}] is not a finite range")

    def excursion(self, value: float) -> Excursion:
        """Classify one value; the edges themselves are qualified."""
        if value > self.high + _EDGE * abs(self.high):
            return Excursion.ABOVE
        if value < self.low - _EDGE * abs(self.low):
            return Excursion.BELOW
        return Excursion.WITHIN


def _percent(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


@dataclass(frozen=True, slots=True)
class ChannelStats:
    """Counts and extremes of the 1-minute averages of one channel in one period.

    Times are the Unix timestamps of the start of the minute concerned.
    """

    monitored: int = 0
    above: int = 0
    below: int = 0
    #: Sum of the 1-minute averages (for :attr:`mean`).
    total: float = 0.0
    maximum: float | None = None
    maximum_at: float | None = None
    minimum: float | None = None
    minimum_at: float | None = None

    @property
    def qualification_rate(self) -> float | None:
        """``(1 - (above + below) / monitored) x 100`` in %, None before the first minute."""
        if not self.monitored:
            return None
        return 100.0 * (1.0 - (self.above + self.below) / self.monitored)

    @property
    def above_rate(self) -> float | None:
        """Share of monitored minutes above the band, %."""
        return _percent(self.above, self.monitored)

    @property
    def below_rate(self) -> float | None:
        """Share of monitored minutes below the band, %."""
        return _percent(self.below, self.monitored)

    @property
    def mean(self) -> float | None:
        """Mean of the 1-minute averages."""
        return self.total / self.monitored if self.monitored else None

    def add(self, at: float, value: float, excursion: Excursion) -> ChannelStats:
        """Return the statistics with one more minute."""
        higher = self.maximum is None or value > self.maximum
        lower = self.minimum is None or value < self.minimum
        return ChannelStats(
            monitored=self.monitored + 1,
            above=self.above + (excursion is Excursion.ABOVE),
            below=self.below + (excursion is Excursion.BELOW),
            total=self.total + value,
            maximum=value if higher else self.maximum,
            maximum_at=at if higher else self.maximum_at,
            minimum=value if lower else self.minimum,
            minimum_at=at if lower else self.minimum_at,
        )

    def merge(self, other: ChannelStats) -> ChannelStats:
        """Pool two channels: counts add up, extremes are the more extreme (earlier on a tie)."""
        maximum, maximum_at = _extreme(
            (self.maximum, self.maximum_at), (other.maximum, other.maximum_at), larger=True
        )
        minimum, minimum_at = _extreme(
            (self.minimum, self.minimum_at), (other.minimum, other.minimum_at), larger=False
        )
        return ChannelStats(
            monitored=self.monitored + other.monitored,
            above=self.above + other.above,
            below=self.below + other.below,
            total=self.total + other.total,
            maximum=maximum,
            maximum_at=maximum_at,
            minimum=minimum,
            minimum_at=minimum_at,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "monitored": self.monitored,
            "above": self.above,
            "below": self.below,
            "total": self.total,
            "max": self.maximum,
            "max_at": self.maximum_at,
            "min": self.minimum,
            "min_at": self.minimum_at,
        }

    @classmethod
    def from_dict(cls, data: object) -> ChannelStats:
        """Inverse of :meth:`to_dict`; raise :class:`StateError` on anything malformed."""
        d = _mapping(data, "channel statistics")
        stats = cls(
            monitored=_count(d, "monitored"),
            above=_count(d, "above"),
            below=_count(d, "below"),
            total=_real(d, "total"),
            maximum=_optional_real(d, "max"),
            maximum_at=_optional_real(d, "max_at"),
            minimum=_optional_real(d, "min"),
            minimum_at=_optional_real(d, "min_at"),
        )
        if stats.above + stats.below > stats.monitored:
            raise StateError("stored statistics count more excursions than monitored minutes")
        return stats


type _Extreme = tuple[float | None, float | None]


def _extreme(a: _Extreme, b: _Extreme, *, larger: bool) -> _Extreme:
    """Pick the more extreme of two (value, time) pairs; the earlier one on a tie."""
    (va, ta), (vb, tb) = a, b
    if vb is None:
        return a
    if va is None:
        return b
    if va == vb:
        return a if (ta or 0.0) <= (tb or 0.0) else b
    return a if (va > vb) == larger else b


@dataclass(frozen=True, slots=True)
class PeriodStats:
    """Statistics of every channel over one local day (``key`` "2024-05-01") or month ("2024-05").

    ``key`` is None before the accumulator has seen any time.
    """

    key: str | None
    channels: Mapping[str, ChannelStats] = field(default_factory=dict)

    def channel(self, name: str) -> ChannelStats:
        """Statistics of one channel (empty when it has not been seen)."""
        return self.channels.get(name, ChannelStats())

    @property
    def total(self) -> ChannelStats:
        """All channels pooled: every channel-minute counts once (see docs/indicators.md)."""
        pooled = ChannelStats()
        for stats in self.channels.values():
            pooled = pooled.merge(stats)
        return pooled

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"key": self.key, "channels": {k: v.to_dict() for k, v in self.channels.items()}}


@dataclass(frozen=True, slots=True)
class _OpenMinute:
    """Samples so far of the minute that is still being averaged."""

    start: float
    total: float
    count: int

    @property
    def average(self) -> float:
        return self.total / self.count


def minute_start(timestamp: float) -> float:
    """Start of the clock minute holding ``timestamp``."""
    return math.floor(timestamp / MINUTE) * MINUTE


def period_keys(timestamp: float, tz: tzinfo) -> tuple[str, str]:
    """Local day and month keys of ``timestamp``: ("2024-05-01", "2024-05")."""
    local = datetime.fromtimestamp(timestamp, tz)
    return local.date().isoformat(), f"{local.year:04d}-{local.month:02d}"


class MinuteAccumulator:
    """Forms 1-minute averages per channel and counts them per local day and month.

    ``channels`` are the keys read from the value mappings fed in (canonical quantity
    keys such as ``voltage_a``). With ``band`` None nothing is an excursion and only
    means and extremes are of interest (load statistics).

    A minute closes when a later sample or :meth:`advance` shows that it is over; it
    counts towards the day and month of its start. Minutes without samples are not
    monitored. Samples from a minute before the latest time seen are ignored.
    """

    def __init__(self, channels: Sequence[str], *, tz: tzinfo, band: Band | None = None) -> None:
        if not channels or len(set(channels)) != len(channels):
            raise ConfigError(f"accumulator channels {list(channels)!r} must be unique, not none")
        self._channels = tuple(channels)
        self._tz = tz
        self._band = band
        self._open: dict[str, _OpenMinute] = {}
        #: Latest time seen; samples of minutes before its minute come too late.
        self._clock: float | None = None
        self._last: dict[str, tuple[float, float]] = {}
        self._day = PeriodStats(None)
        self._month = PeriodStats(None)
        self._previous_day: PeriodStats | None = None
        self._previous_month: PeriodStats | None = None

    @property
    def channels(self) -> tuple[str, ...]:
        """The channel keys, in the order given."""
        return self._channels

    @property
    def band(self) -> Band | None:
        """The qualified band, if any."""
        return self._band

    @property
    def day(self) -> PeriodStats:
        """The current local day."""
        return self._day

    @property
    def month(self) -> PeriodStats:
        """The current local month."""
        return self._month

    @property
    def previous_day(self) -> PeriodStats | None:
        """The day before the current one, as last seen (None before the first rollover)."""
        return self._previous_day

    @property
    def previous_month(self) -> PeriodStats | None:
        """The month before the current one, as last seen."""
        return self._previous_month

    def last_minute(self, channel: str) -> tuple[float, float] | None:
        """``(start, average)`` of the latest closed minute of ``channel``."""
        return self._last.get(channel)

    def feed(self, timestamp: float, values: Mapping[str, Value]) -> None:
        """Add one sample per channel present in ``values``; other keys are ignored."""
        self.advance(timestamp)
        start = minute_start(timestamp)
        if self._clock is not None and start < minute_start(self._clock):
            return
        for channel in self._channels:
            value = number(values.get(channel))
            if value is None:
                continue
            current = self._open.get(channel)
            if current is None:
                self._open[channel] = _OpenMinute(start, value, 1)
            else:  # older minutes were closed by advance(): this is the same minute
                self._open[channel] = _OpenMinute(start, current.total + value, current.count + 1)

    def advance(self, now: float) -> None:
        """Close the minutes that are over at ``now`` and roll the day and month over."""
        if self._clock is None or now > self._clock:
            self._clock = now
        ended = sorted(
            ((m.start, ch) for ch, m in self._open.items() if m.start + MINUTE <= now),
        )
        for start, channel in ended:
            minute = self._open.pop(channel)
            self._record(channel, start, minute.average)
        self._roll(*period_keys(now, self._tz))

    def _record(self, channel: str, start: float, average: float) -> None:
        if not self._roll(*period_keys(start, self._tz)):
            return
        excursion = self._band.excursion(average) if self._band else Excursion.WITHIN
        self._day = _with_minute(self._day, channel, start, average, excursion)
        self._month = _with_minute(self._month, channel, start, average, excursion)
        self._last[channel] = (start, average)

    def _roll(self, day_key: str, month_key: str) -> bool:
        """Move to the given period keys if they are newer; False if they are older."""
        if self._day.key is not None and day_key < self._day.key:
            return False
        if self._day.key != day_key:
            if self._day.key is not None:
                self._previous_day = self._day
            self._day = self._empty(day_key)
        if self._month.key != month_key:
            if self._month.key is not None:
                self._previous_month = self._month
            self._month = self._empty(month_key)
        return True

    def _empty(self, key: str) -> PeriodStats:
        return PeriodStats(key, {ch: ChannelStats() for ch in self._channels})

    # --- persistence ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the whole state as a JSON-able dict (configuration excluded)."""
        return {
            "version": STATE_VERSION,
            "clock": self._clock,
            "open": {ch: [m.start, m.total, m.count] for ch, m in self._open.items()},
            "last": {ch: list(v) for ch, v in self._last.items()},
            "day": self._day.to_dict(),
            "month": self._month.to_dict(),
            "previous_day": self._previous_day.to_dict() if self._previous_day else None,
            "previous_month": self._previous_month.to_dict() if self._previous_month else None,
        }

    def restore(self, data: object) -> None:
        """Load a state written by :meth:`to_dict`.

        Channels that are no longer configured are dropped. On a :class:`StateError`
        the accumulator is left unchanged.
        """
        d = _mapping(data, "accumulator state")
        if d.get("version") != STATE_VERSION:
            raise StateError(f"accumulator state version {d.get('version')!r} is not supported")
        open_minutes = {
            ch: _open_minute(v)
            for ch, v in _mapping(d.get("open"), "open minutes").items()
            if ch in self._channels
        }
        last = {
            ch: _pair(v)
            for ch, v in _mapping(d.get("last", {}), "last minutes").items()
            if ch in self._channels
        }
        day = self._period(d.get("day"))
        month = self._period(d.get("month"))
        previous_day = None if d.get("previous_day") is None else self._period(d["previous_day"])
        previous_month = (
            None if d.get("previous_month") is None else self._period(d["previous_month"])
        )
        clock = None if d.get("clock") is None else _real(d, "clock")
        self._clock, self._open, self._last = clock, open_minutes, last
        self._day, self._month = day, month
        self._previous_day, self._previous_month = previous_day, previous_month

    def _period(self, data: object) -> PeriodStats:
        d = _mapping(data, "period statistics")
        key = d.get("key")
        if key is not None and not isinstance(key, str):
            raise StateError(f"period key {key!r} is not a string")
        stored = _mapping(d.get("channels"), "period channels")
        return PeriodStats(
            key,
            {
                ch: ChannelStats.from_dict(stored[ch]) if ch in stored else ChannelStats()
                for ch in self._channels
            },
        )


def _with_minute(
    period: PeriodStats, channel: str, at: float, value: float, excursion: Excursion
) -> PeriodStats:
    channels = dict(period.channels)
    channels[channel] = period.channel(channel).add(at, value, excursion)
    return replace(period, channels=channels)


# --- validation of stored state --------------------------------------------------------


def _mapping(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise StateError(f"{what} is {type(data).__name__}, not a mapping")
    return data


def _real(d: Mapping[str, Any], key: str) -> float:
    value = number(d.get(key))
    if value is None:
        raise StateError(f"stored {key!r} is {d.get(key)!r}, not a number")
    return value


def _optional_real(d: Mapping[str, Any], key: str) -> float | None:
    return None if d.get(key) is None else _real(d, key)


def _count(d: Mapping[str, Any], key: str) -> int:
    value = d.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StateError(f"stored {key!r} is {value!r}, not a count")
    return value


def _pair(data: object) -> tuple[float, float]:
    if not isinstance(data, list | tuple) or len(data) != 2:
        raise StateError(f"stored minute {data!r} is not [start, average]")
    start, average = number(data[0]), number(data[1])
    if start is None or average is None:
        raise StateError(f"stored minute {data!r} is not numeric")
    return start, average


def _open_minute(data: object) -> _OpenMinute:
    if not isinstance(data, list | tuple) or len(data) != 3:
        raise StateError(f"stored open minute {data!r} is not [start, total, count]")
    start, total, count = number(data[0]), number(data[1]), data[2]
    if start is None or total is None or isinstance(count, bool) or not isinstance(count, int):
        raise StateError(f"stored open minute {data!r} is not numeric")
    if count < 1:
        raise StateError(f"stored open minute {data!r} has no samples")
    return _OpenMinute(start, total, count)
