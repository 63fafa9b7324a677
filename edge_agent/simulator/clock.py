"""The simulated clock: Unix seconds that may run faster (or stand still) for demos and tests."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SimClock:
    """Maps the monotonic clock (``loop.time()``) to simulated Unix seconds.

    ``time_scale`` 1 follows the wall clock, 60 runs a minute per second, 0 freezes
    time at ``start`` (values then stay exactly what :meth:`now` gives).
    """

    start: float = field(default_factory=time.time)
    time_scale: float = 1.0
    origin: float = field(default_factory=time.monotonic)

    def at(self, monotonic: float) -> float:
        """Return the simulated time at a monotonic instant."""
        return self.start + (monotonic - self.origin) * self.time_scale

    def now(self) -> float:
        """Return the simulated time now."""
        return self.at(time.monotonic())
