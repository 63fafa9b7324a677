"""Energy counters: the integral of a piecewise-linear power curve, split by tariff.

Power is known at knots every ``step`` seconds and linear in between, so each segment
integrates exactly with the trapezoid rule. Cumulative sums are cached per knot and
extended lazily in either direction from the origin, so a history read of last month
costs one pass and every later read is a lookup.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

#: Channels of :meth:`EnergyIntegrator.integral`: energy per phase (kWh), reactive (kvarh),
#: then import energy per tariff T1..T4 (kWh).
CHANNELS = ("a", "b", "c", "reactive", "t1", "t2", "t3", "t4")
_TARIFF_BASE = 4
#: How far from the origin history is computed; earlier instants read as this limit.
MAX_HISTORY_SECONDS = 100 * 86400.0

Vector = tuple[float, ...]


def _add(left: Vector, right: Vector) -> Vector:
    return tuple(a + b for a, b in zip(left, right, strict=True))


def _sub(left: Vector, right: Vector) -> Vector:
    return tuple(a - b for a, b in zip(left, right, strict=True))


class EnergyIntegrator:
    """Cumulative energy since ``origin`` (negative before it), per channel of :data:`CHANNELS`.

    ``knot(k)`` gives (P_a, P_b, P_c, Q_total) in kW / kvar at time ``k * step``;
    ``tariff(k)`` gives the tariff index 0..3 in force during segment ``k``.
    """

    def __init__(
        self,
        knot: Callable[[int], Sequence[float]],
        tariff: Callable[[int], int],
        step: float,
        origin: float,
    ) -> None:
        self._knot = knot
        self._tariff = tariff
        self._step = step
        self._origin = origin
        first = math.floor(origin / step)
        self._low = self._high = first
        self._cumulative: dict[int, Vector] = {first: (0.0,) * len(CHANNELS)}
        self._knots: dict[int, Vector] = {}
        self._origin_value = self._at(origin)

    def integral(self, t: float) -> Vector:
        """Energy from ``origin`` to ``t`` per channel (kWh, kvarh)."""
        limit = MAX_HISTORY_SECONDS
        t = min(max(t, self._origin - limit), self._origin + 100 * limit)
        return _sub(self._at(t), self._origin_value)

    def _power(self, k: int) -> Vector:
        cached = self._knots.get(k)
        if cached is None:
            cached = self._knots[k] = tuple(self._knot(k))
        return cached

    def _route(self, k: int, area: Vector) -> Vector:
        """Spread a segment's (P_a, P_b, P_c, Q) area over all channels, in kWh."""
        hours = tuple(value / 3600.0 for value in area)
        tariffs = [0.0] * (len(CHANNELS) - _TARIFF_BASE)
        tariffs[self._tariff(k)] = hours[0] + hours[1] + hours[2]
        return hours + tuple(tariffs)

    def _segment(self, k: int, fraction: float = 1.0) -> Vector:
        """Integral over the first ``fraction`` of segment ``k``."""
        start, end = self._power(k), self._power(k + 1)
        width = self._step * fraction
        area = tuple(
            width * (a + (a + fraction * (b - a))) / 2.0 for a, b in zip(start, end, strict=True)
        )
        return self._route(k, area)

    def _cumulative_at(self, k: int) -> Vector:
        while k > self._high:
            self._cumulative[self._high + 1] = _add(
                self._cumulative[self._high], self._segment(self._high)
            )
            self._high += 1
        while k < self._low:
            self._cumulative[self._low - 1] = _sub(
                self._cumulative[self._low], self._segment(self._low - 1)
            )
            self._low -= 1
        return self._cumulative[k]

    def _at(self, t: float) -> Vector:
        k = math.floor(t / self._step)
        fraction = t / self._step - k
        base = self._cumulative_at(k)
        return _add(base, self._segment(k, fraction)) if fraction > 0.0 else base
