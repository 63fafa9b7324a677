"""A bare client for a simulated bus: raw frames over a pty or TCP, with arrival times.

Tests and benchmarks use it to talk to the simulator without the agent's link layer,
so what they measure is the simulator alone. Each received chunk is kept with the
``loop.time()`` it arrived at.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tty
from collections.abc import Callable

from ..errors import LinkError, MeterTimeoutError

#: A decoder: bytes used by one complete frame at the start of the buffer, 0 if incomplete.
Decoder = Callable[[bytes], int]


class Probe:
    """One end of a byte stream onto a simulated bus."""

    def __init__(self, fd: int, sock: socket.socket | None = None) -> None:
        self._fd = fd
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self.buffer = bytearray()
        #: (loop.time(), bytes) of every chunk received.
        self.arrivals: list[tuple[float, int]] = []
        self._event = asyncio.Event()
        self._loop.add_reader(fd, self._readable)

    @classmethod
    async def open_pty(cls, path: str) -> Probe:
        """Open a pty slave (a simulator's ``PtyServer.path``) in raw mode."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as err:
            raise LinkError(f"cannot open {path}: {err.strerror}") from err
        tty.setraw(fd)
        return cls(fd)

    @classmethod
    async def open_tcp(cls, host: str, port: int) -> Probe:
        """Connect to a simulator's TCP port."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except OSError as err:
            sock.close()
            raise LinkError(f"cannot connect to {host}:{port}: {err.strerror}") from err
        return cls(sock.fileno(), sock)

    def _readable(self) -> None:
        try:
            data = self._sock.recv(4096) if self._sock else os.read(self._fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._loop.remove_reader(self._fd)
            self._event.set()
            return
        self.arrivals.append((self._loop.time(), len(data)))
        self.buffer += data
        self._event.set()

    def send(self, data: bytes) -> float:
        """Write ``data`` at once; return the ``loop.time()`` right after the write."""
        if self._sock:
            self._sock.sendall(data)
        else:
            os.write(self._fd, data)
        return self._loop.time()

    def clear(self) -> None:
        """Forget what was received so far."""
        self.buffer.clear()
        self.arrivals.clear()

    async def receive(self, decode: Decoder, wait: float = 1.0) -> bytes:
        """Wait for one complete frame (as ``decode`` sees it); return and consume it.

        Raises :class:`MeterTimeoutError` when none is complete within ``wait`` seconds.
        """
        try:
            async with asyncio.timeout(wait):
                while True:
                    used = decode(bytes(self.buffer)) if self.buffer else 0
                    if used:
                        frame = bytes(self.buffer[:used])
                        del self.buffer[:used]
                        return frame
                    self._event.clear()
                    await self._event.wait()
        except TimeoutError:
            got = bytes(self.buffer).hex(" ") or "nothing"
            raise MeterTimeoutError(f"no complete frame within {wait} s (got: {got})") from None

    async def exchange(self, request: bytes, decode: Decoder, wait: float = 1.0) -> bytes:
        """Send a request and wait for the frame that answers it."""
        self.clear()
        self.send(request)
        return await self.receive(decode, wait)

    async def quiet(self, duration: float) -> bytes:
        """Collect whatever arrives within ``duration`` seconds."""
        await asyncio.sleep(duration)
        return bytes(self.buffer)

    async def close(self) -> None:
        """Close the stream."""
        self._loop.remove_reader(self._fd)
        if self._sock:
            self._sock.close()
        else:
            with contextlib.suppress(OSError):
                os.close(self._fd)
