"""Faults a simulated meter can show, settable while the simulator runs."""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Bytes that would look like a frame start and are never used as noise.
_FRAME_STARTS = frozenset({0x68, 0xFE})


@dataclass(slots=True)
class Faults:
    """Misbehaviour of one meter; mutable so tests can change it while the bus runs.

    ``sim.meter("3").faults.silent = True`` makes meter 3 vanish; setting it back to
    False brings it back.
    """

    #: The meter never answers (powered off, cable cut).
    silent: bool = False
    #: Probability that a reply has one byte flipped, so its CRC or checksum is wrong.
    corrupt_rate: float = 0.0
    #: Extra seconds before each reply (a slow meter).
    delay: float = 0.0
    #: Probability that line noise precedes a reply.
    noise_rate: float = 0.0
    #: Most noise bytes in one burst (at least 1 is sent).
    noise_bytes: int = 4


def corrupt(frame: bytes, first: int, end: int, rng: random.Random) -> bytes:
    """Flip one byte of ``frame[first:end]`` (the payload); the last byte if that is empty.

    Callers pass the payload span so the length fields stay intact and the receiver
    sees a whole frame with a wrong CRC or checksum.
    """
    index = rng.randrange(first, end) if end > first else len(frame) - 1
    flipped = bytearray(frame)
    flipped[index] ^= rng.randrange(1, 256)
    return bytes(flipped)


def noise(rng: random.Random, most: int, avoid: int) -> bytes:
    """Return 1..``most`` random bytes that contain no frame start nor ``avoid``."""
    count = rng.randint(1, max(1, most))
    burst = bytearray()
    while len(burst) < count:
        byte = rng.randrange(256)
        if byte not in _FRAME_STARTS and byte != avoid:
            burst.append(byte)
    return bytes(burst)
