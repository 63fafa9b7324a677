"""One byte stream (serial port or TCP socket) that runs exchanges one at a time."""

from __future__ import annotations

import asyncio
import errno
import socket
import termios
from dataclasses import dataclass
from typing import TYPE_CHECKING

import serial
from serial_asyncio_fast import create_serial_connection

from ..errors import (
    ConnectionLostError,
    FrameError,
    LinkError,
    MeterTimeoutError,
    PortBusyError,
    PortNotFoundError,
)
from ..model import Exchange

if TYPE_CHECKING:
    from . import LinkConfig

#: The longest frame any supported protocol sends, in characters (DL/T 645 with FE preamble).
_MAX_FRAME_CHARS = 270
#: How long a TCP gateway may stay quiet mid-frame before the frame is given up.
_TCP_INTER_BYTE = 0.05


@dataclass(slots=True)
class TransactionResult:
    """What one exchange put on and took off the wire."""

    frames: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


class _Receiver(asyncio.Protocol):
    """Collects received bytes; wakes the waiting transaction once ``want`` bytes are in."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.want = 1
        self.event = asyncio.Event()
        self.lost: Exception | None = None
        self.closed = asyncio.Event()
        self.last_rx = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.last_rx = asyncio.get_running_loop().time()
        if len(self.buffer) >= self.want:
            self.event.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ConnectionResetError("closed by peer")
        self.event.set()
        self.closed.set()


class Link:
    """An open serial port or TCP connection carrying one bus."""

    def __init__(self, config: LinkConfig, transport: asyncio.Transport, rx: _Receiver) -> None:
        self.config = config
        self.char_time = config.char_time
        self._transport = transport
        self._rx = rx
        self._loop = asyncio.get_running_loop()
        #: When the line last went quiet (end of the last frame, sent or received).
        self._quiet_since = 0.0

    @property
    def is_open(self) -> bool:
        """False once closed or lost."""
        return self._rx.lost is None and not self._transport.is_closing()

    async def close(self) -> None:
        """Close the port; safe to call twice."""
        if not self._transport.is_closing():
            self._transport.close()
        # The fd (and a serial port's exclusive lock) is released in connection_lost.
        try:
            async with asyncio.timeout(2):
                await self._rx.closed.wait()
        except TimeoutError:
            self._transport.abort()

    async def transact(self, exchange: Exchange, timeout: float) -> TransactionResult:
        """Run one exchange to completion.

        ``timeout`` bounds the wait for the first byte of each reply; once bytes flow, the
        frame may take as long as its length needs on the wire.
        """
        result = TransactionResult()
        while True:
            await self._keep_silence(exchange.silence_chars)
            self._check_lost()
            self._rx.buffer.clear()
            request = exchange.request()
            if request:
                self._transport.write(request)
                result.bytes_sent += len(request)
            sent_at = self._loop.time()
            # A UART returns from write before the bytes are out; the line is busy until then.
            self._quiet_since = sent_at + len(request) * self.char_time
            if exchange.done:  # broadcast: nothing comes back
                return result
            try:
                result.bytes_received += await self._receive_frame(exchange, timeout)
            finally:
                self._quiet_since = max(self._quiet_since, self._rx.last_rx)
            result.frames += 1
            if exchange.done:
                return result

    async def _receive_frame(self, exchange: Exchange, timeout: float) -> int:
        """Feed received bytes to the exchange until it has one complete frame.

        The exchange says how many bytes it needs; the receiver wakes this task only then.
        """
        rx = self._rx
        rx.want = exchange.needed(b"")
        first_deadline = self._quiet_since + timeout
        inter_byte = max(_MAX_FRAME_CHARS * self.char_time, _TCP_INTER_BYTE)
        deadline = first_deadline
        while True:
            if rx.buffer:
                data = bytes(rx.buffer)
                rx.want = exchange.needed(data)
                if len(data) >= rx.want:
                    try:
                        used = exchange.receive(data)
                    except FrameError:
                        await self.settle()
                        raise
                    if used:
                        return len(data)
                    rx.want = len(data) + 1
                deadline = max(first_deadline, rx.last_rx + inter_byte)
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                got = f" ({len(rx.buffer)} bytes of an incomplete frame)" if rx.buffer else ""
                raise MeterTimeoutError(f"no complete reply within {timeout:.3g} s{got}")
            rx.event.clear()
            try:
                async with asyncio.timeout(remaining):
                    await rx.event.wait()
            except TimeoutError:
                continue
            self._check_lost()

    async def settle(self) -> None:
        """Wait until the line is quiet, then drop what arrived (after garbage or a timeout)."""
        quiet = max(3.5 * self.char_time, 0.005)
        limit = self._loop.time() + max(_MAX_FRAME_CHARS * self.char_time, 0.1)
        while self._loop.time() < limit:
            idle = self._loop.time() - self._rx.last_rx
            if idle >= quiet:
                break
            await asyncio.sleep(quiet - idle)
        self._rx.buffer.clear()
        self._quiet_since = max(self._quiet_since, self._rx.last_rx)

    async def _keep_silence(self, chars: float) -> None:
        """Wait until the line has been quiet for ``chars`` character times."""
        wait = self._quiet_since + chars * self.char_time - self._loop.time()
        if wait > 0:
            await asyncio.sleep(wait)

    def _check_lost(self) -> None:
        if self._rx.lost is not None:
            raise ConnectionLostError(f"{self.config.describe()}: {self._rx.lost}")


async def open_link(config: LinkConfig) -> Link:
    """Open the port or connection a config names, mapping OS errors to typed errors."""
    loop = asyncio.get_running_loop()
    rx = _Receiver()
    if config.kind == "serial":
        transport = await _open_serial(loop, config, rx)
    else:
        transport = await _open_tcp(loop, config, rx)
    return Link(config, transport, rx)


async def _open_serial(
    loop: asyncio.AbstractEventLoop, config: LinkConfig, rx: _Receiver
) -> asyncio.Transport:
    if not config.device:
        raise PortNotFoundError("no serial device given")
    s = config.serial
    try:
        transport, _ = await create_serial_connection(
            loop,
            lambda: rx,
            config.device,
            baudrate=s.baudrate,
            bytesize=s.bytesize,
            parity=s.parity,
            stopbits=s.stopbits,
            exclusive=True,
        )
    except serial.SerialException as err:
        raise _serial_error(config.device, err) from err
    except (OSError, termios.error, ValueError) as err:
        # termios.error: the device refuses the line settings (e.g. parity on a pty).
        raise LinkError(f"cannot configure {config.device} as {config.describe()}: {err}") from err
    return transport


def _serial_error(device: str, err: serial.SerialException) -> LinkError:
    code = err.errno if isinstance(err.errno, int) else None
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return PortNotFoundError(f"serial port {device} does not exist")
    if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK):
        return PortBusyError(f"serial port {device} is in use by another program")
    if code == errno.EACCES:
        return LinkError(f"no permission to open {device} (add the user to the dialout group)")
    return LinkError(f"cannot open {device}: {err}")


async def _open_tcp(
    loop: asyncio.AbstractEventLoop, config: LinkConfig, rx: _Receiver
) -> asyncio.Transport:
    where = config.describe()
    if not config.host or not config.port:
        raise PortNotFoundError("no TCP host and port given")
    try:
        async with asyncio.timeout(10):
            transport, _ = await loop.create_connection(lambda: rx, config.host, config.port)
    except socket.gaierror as err:
        raise PortNotFoundError(f"{where}: host not found ({err.strerror})") from err
    except TimeoutError as err:
        raise LinkError(f"{where}: connection timed out") from err
    except OSError as err:
        raise LinkError(f"{where}: {err.strerror or err}") from err
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return transport
