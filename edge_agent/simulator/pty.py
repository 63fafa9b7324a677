"""Serve a simulated bus on a pseudo-terminal: production serial code opens ``path``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tty

from ..errors import LinkError
from .engine import BusSimulator
from .stream import SessionPump

_READ_SIZE = 4096


class PtyServer:
    """A pty pair whose slave end (``path``) behaves like the serial port of the bus."""

    def __init__(self, sim: BusSimulator, master: int, slave: int) -> None:
        self.sim = sim
        self.path = os.ttyname(slave)
        self._master = master
        self._slave = slave
        self._loop = asyncio.get_running_loop()
        self._pump = SessionPump(sim.session(), self._write)
        self._closed = False
        #: Reply bytes the pty could not take (nobody reading: its buffer was full).
        self.dropped_bytes = 0
        self._loop.add_reader(master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._master, _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            # EIO: no process has the slave open; we keep ours, so this is the end.
            self._loop.remove_reader(self._master)
            return
        if data:
            self._pump.received(data)

    def _write(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            written = os.write(self._master, data)
        except (BlockingIOError, InterruptedError):
            written = 0
        except OSError:
            written = 0
        self.dropped_bytes += len(data) - written

    async def close(self) -> None:
        """Stop serving and release both file descriptors; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._master)
        await self._pump.close()
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    async def __aenter__(self) -> PtyServer:
        """Use as ``async with await start_pty(sim) as server``."""
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close on leaving the block."""
        await self.close()


async def start_pty(sim: BusSimulator) -> PtyServer:
    """Open a raw pty pair and serve ``sim`` on it; ``.path`` is the device to open."""
    try:
        master, slave = os.openpty()
    except OSError as err:
        raise LinkError(f"cannot open a pseudo-terminal: {err.strerror}") from err
    try:
        tty.setraw(master)
        tty.setraw(slave)
        os.set_blocking(master, False)
        return PtyServer(sim, master, slave)
    except BaseException:
        os.close(master)
        os.close(slave)
        raise
