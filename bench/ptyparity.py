"""Let serial code set even parity on a pseudo-terminal where the kernel refuses it.

Some kernels (seen on 6.18 sandboxes) answer EINVAL when PARENB without PARODD is set on a
pty, although a pty carries bytes and ignores the character format. The benchmark's
simulator paces bytes at the configured format itself, so on a pty the parity flag changes
nothing but whether the port opens. :func:`install` makes pyserial retry such a refusal with
odd parity, and only for ptys.
"""

from __future__ import annotations

import errno
import os
import termios
from typing import Any

import serial
from serial import serialposix

_installed = False


def _is_pty(fd: int | None) -> bool:
    if fd is None:
        return False
    try:
        return os.ttyname(fd).startswith("/dev/pts/")
    except OSError:
        return False


def install() -> None:
    """Patch :class:`serial.Serial` once per process (idempotent)."""
    global _installed  # noqa: PLW0603 - one patch per process
    if _installed:
        return
    original = serialposix.Serial._reconfigure_port  # type: ignore[attr-defined]

    def reconfigure(self: Any, force_update: bool = False) -> None:
        try:
            original(self, force_update)
        except termios.error as err:
            refused = err.args and err.args[0] == errno.EINVAL
            if not (refused and self._parity == serial.PARITY_EVEN and _is_pty(self.fd)):
                raise
            self._parity = serial.PARITY_ODD
            try:
                original(self, force_update)
            finally:
                self._parity = serial.PARITY_EVEN

    serialposix.Serial._reconfigure_port = reconfigure  # type: ignore[attr-defined]
    _installed = True
