"""Serial ports present on this machine, with stable by-id names where the OS has them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from serial.tools import list_ports

BY_ID = Path("/dev/serial/by-id")


@dataclass(frozen=True, slots=True)
class SerialPort:
    """One serial device; ``device`` is the stable path to store in configuration."""

    device: str
    description: str
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    manufacturer: str | None = None


def _by_id_names() -> dict[str, str]:
    """Map real device paths to their /dev/serial/by-id symlink."""
    if not BY_ID.is_dir():
        return {}
    return {os.path.realpath(link): str(link) for link in BY_ID.iterdir()}


def list_serial_ports() -> list[SerialPort]:
    """List the serial ports present now (blocking: run it in an executor from async code)."""
    stable = _by_id_names()
    ports = []
    for info in list_ports.comports():
        device = stable.get(os.path.realpath(info.device), info.device)
        ports.append(
            SerialPort(
                device=device,
                description=info.description or info.device,
                vid=info.vid,
                pid=info.pid,
                serial_number=info.serial_number,
                manufacturer=info.manufacturer,
            )
        )
    return sorted(ports, key=lambda p: p.device)
