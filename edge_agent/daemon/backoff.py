"""Capped exponential backoff with jitter, for reconnecting to the broker and reopening links."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delays ``initial, 2·initial, 4·initial, …`` up to ``cap``.

    Each is shortened by up to ``jitter`` (a share) so that many agents do not
    reconnect in lockstep.
    """

    initial: float = 1.0
    cap: float = 60.0
    jitter: float = 0.2
    attempts: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def next(self) -> float:
        """Return the delay before the next attempt and count the attempt."""
        delay = min(self.cap, self.initial * 2.0**self.attempts)
        self.attempts = min(self.attempts + 1, 64)
        return delay * (1.0 - self.jitter * self._rng.random())

    def reset(self) -> None:
        """Start again from ``initial`` (after a success)."""
        self.attempts = 0
