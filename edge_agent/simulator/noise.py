"""Deterministic pseudo-random noise as a pure function of (key, time).

The value model must give the same answer for the same instant however often and in
whatever order it is asked, so noise is hashed from its coordinates instead of drawn
from a stateful generator. A key combines a seed and a channel name (:func:`key`).
"""

from __future__ import annotations

import math

_MASK = (1 << 64) - 1


def _mix(value: int) -> int:
    """SplitMix64 finaliser: a well-spread 64-bit hash of ``value``."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def key(seed: int, channel: str) -> int:
    """Return the noise key of a channel of a seed (stable across runs, unlike ``hash()``)."""
    result = _mix(seed & _MASK)
    for byte in channel.encode():
        result = _mix(result ^ byte)
    return result


def uniform(noise_key: int, index: int) -> float:
    """Return a number in [0, 1) fixed by the key and the index."""
    return _mix(noise_key ^ (index & _MASK)) / 2.0**64


def signed(noise_key: int, index: int) -> float:
    """Return a number in [-1, 1) fixed by the key and the index."""
    return 2.0 * uniform(noise_key, index) - 1.0


def smooth(noise_key: int, t: float, period: float) -> float:
    """Value noise in [-1, 1]: random knots every ``period`` seconds, cosine-interpolated."""
    position = t / period
    knot = math.floor(position)
    fraction = position - knot
    weight = (1.0 - math.cos(math.pi * fraction)) / 2.0
    first = signed(noise_key, knot)
    return first + (signed(noise_key, knot + 1) - first) * weight
