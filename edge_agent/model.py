"""Types that cross module boundaries: readings, the sans-I/O exchange contract, bus framing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from .quantities import QUANTITIES

#: A decoded value: a number for measurements, an int for status words, a string for dates.
Value = float | int | str


class Wire(StrEnum):
    """The framing protocol a meter speaks on its bus."""

    MODBUS_RTU = "modbus-rtu"
    MODBUS_TCP = "modbus-tcp"
    DLT645_2007 = "dlt645-2007"
    DLT645_1997 = "dlt645-1997"


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """Character format of a serial line."""

    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1

    @property
    def bits_per_char(self) -> int:
        """Bits on the wire per character: start, data, parity, stop."""
        return 1 + self.bytesize + (0 if self.parity == "N" else 1) + self.stopbits

    @property
    def char_time(self) -> float:
        """Seconds one character occupies on the wire."""
        return self.bits_per_char / self.baudrate


@dataclass(frozen=True, slots=True)
class Reading:
    """Every value read from one meter in one poll, keyed by canonical quantity key."""

    address: str
    profile: str
    timestamp: float
    values: Mapping[str, Value]
    #: Keys the profile has that this poll could not read (refused, timed out).
    missing: frozenset[str] = field(default_factory=frozenset)

    @property
    def units(self) -> dict[str, str | None]:
        """Unit of each value, from the canonical quantity table."""
        return {key: QUANTITIES[key].unit for key in self.values}


class Exchange(Protocol):
    """One conversation with one meter, sans-I/O.

    The bus sends ``request()``, then feeds everything received to ``receive()`` until it
    returns a positive count (bytes consumed by one complete frame). If ``done`` is still
    False afterwards (a DL/T 645 follow-up), the bus sends ``request()`` again and repeats.
    ``receive`` raises a :class:`~edge_agent.errors.FrameError` for bytes that cannot be a
    valid reply and a :class:`~edge_agent.errors.MeterError` for a refusal.
    """

    #: Characters of line silence the protocol requires before each frame (Modbus RTU: 3.5).
    silence_chars: float

    def request(self) -> bytes:
        """Bytes to send now."""

    def receive(self, data: bytes) -> int:
        """Consume received bytes; return bytes used by one complete frame, 0 if more are needed."""

    def needed(self, data: bytes) -> int:
        """Length the receive buffer must reach before :meth:`receive` can complete or fail.

        A lower bound from what has arrived (``data``): the link calls :meth:`receive` only
        once the buffer is this long, so a reply of N bytes costs one wake-up and one decode
        rather than N. Return ``len(data)`` or less when unsure.
        """

    @property
    def done(self) -> bool:
        """True once the conversation is complete."""

    def values(self) -> dict[str, Value]:
        """Return the decoded values by canonical quantity key (empty for commands)."""
