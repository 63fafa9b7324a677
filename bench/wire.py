"""The wire-time limit: how long a bus poll must take on the wire, whatever the software.

Pure arithmetic. A poll that exchanged ``bytes`` characters in ``frames`` frames (requests
and replies both count) needs at least ``bytes`` character times, plus the silence the
protocol demands before each frame: 3.5 characters for Modbus RTU, none for DL/T 645 or
Modbus TCP.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.model import SerialSettings, Wire

#: Characters of line silence each protocol requires before every frame.
SILENCE_CHARS: dict[Wire, float] = {
    Wire.MODBUS_RTU: 3.5,
    Wire.MODBUS_TCP: 0.0,
    Wire.DLT645_2007: 0.0,
    Wire.DLT645_1997: 0.0,
}


@dataclass(frozen=True, slots=True)
class Traffic:
    """What one poll put on a wire."""

    bytes_sent: int
    bytes_received: int
    #: Request frames plus reply frames.
    frames: int

    @property
    def bytes_total(self) -> int:
        """Characters in both directions (a half-duplex bus carries them one after another)."""
        return self.bytes_sent + self.bytes_received


def wire_time_limit(traffic: Traffic, settings: SerialSettings, wire: Wire) -> float:
    """Seconds the traffic needs on the wire: characters plus required silences."""
    chars = traffic.bytes_total + SILENCE_CHARS[wire] * traffic.frames
    return chars * settings.char_time


def efficiency(limit: float, measured: float) -> float:
    """Wire-time limit over measured time (1.0 = the software adds nothing)."""
    if measured <= 0:
        raise ValueError("measured time must be positive")
    return limit / measured
