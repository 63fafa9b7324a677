"""Links: the only place that opens serial ports and sockets.

A link carries the bytes of one bus. It runs one :class:`~edge_agent.model.Exchange` at a
time, keeps the silences a protocol asks for between frames, and turns OS errors into the
typed errors of :mod:`edge_agent.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..model import SerialSettings
from .ports import SerialPort, list_serial_ports
from .stream import Link, TransactionResult, open_link

__all__ = [
    "Link",
    "LinkConfig",
    "SerialPort",
    "TransactionResult",
    "list_serial_ports",
    "open_link",
]


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """Where a bus is: a serial device, or a TCP host and port."""

    kind: Literal["serial", "tcp"]
    device: str | None = None
    host: str | None = None
    port: int | None = None
    #: Character format; for a TCP gateway it paces nothing but sets inter-frame silences.
    serial: SerialSettings = field(default_factory=SerialSettings)

    @property
    def char_time(self) -> float:
        """Seconds per character on the wire (0 for a plain TCP endpoint)."""
        return self.serial.char_time if self.kind == "serial" else 0.0

    def describe(self) -> str:
        """Describe the link briefly, e.g. ``/dev/ttyUSB0 9600 8N1`` or ``10.0.0.5:502``."""
        if self.kind == "serial":
            s = self.serial
            return f"{self.device} {s.baudrate} {s.bytesize}{s.parity}{s.stopbits}"
        return f"{self.host}:{self.port}"
