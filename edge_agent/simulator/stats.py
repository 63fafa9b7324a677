"""Counters of a simulated bus, per meter and in total."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SimStats:
    """What crossed the simulated wire.

    On the bus total, ``requests`` counts every request frame decoded (including those
    for addresses nobody has and for silent meters); on a meter, the requests addressed
    to it. ``transactions`` counts replies sent.
    """

    requests: int = 0
    transactions: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    #: Replies sent with a deliberately flipped byte.
    corrupted: int = 0
    #: Noise bursts sent before replies.
    noise_bursts: int = 0
    #: Modbus requests that began less than 3.5 characters after the line went quiet.
    gap_violations: int = 0
    #: Received bytes that were not part of any request (noise, cut frames).
    discarded_bytes: int = 0
    #: Replies lost because another meter was still transmitting when they were due.
    collisions: int = 0
    #: Latest completion of a paced reply against its ideal wire time, in seconds.
    max_lateness: float = 0.0
