"""Serve a simulated bus on a TCP port: a transparent serial gateway, or Modbus TCP (MBAP)."""

from __future__ import annotations

import asyncio
import socket

from ..errors import LinkError
from .engine import BusSimulator
from .stream import SessionPump


class _Connection(asyncio.Protocol):
    """One client connection with its own session onto the bus."""

    def __init__(self, server: TcpServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._pump: SessionPump | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        session = self._server.sim.session(mbap=self._server.mbap, paced=not self._server.mbap)
        self._pump = SessionPump(session, self._write)
        self._server.connections.add(self)

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def data_received(self, data: bytes) -> None:
        if self._pump is not None:
            self._pump.received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        if self._pump is not None:
            self._pump.abort()

    def close(self) -> None:
        """Drop the connection."""
        if self._transport is not None:
            self._transport.close()


class TcpServer:
    """A listening socket serving one simulated bus; every connection sees all meters."""

    def __init__(self, sim: BusSimulator, mbap: bool) -> None:
        self.sim = sim
        self.mbap = mbap
        self.host = ""
        self.port = 0
        self.connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None

    async def _listen(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(lambda: _Connection(self), host, port)
        except OSError as err:
            raise LinkError(f"cannot listen on {host}:{port}: {err.strerror or err}") from err
        self.host, self.port = self._server.sockets[0].getsockname()[:2]

    async def close(self) -> None:
        """Stop listening and drop every connection; safe to call twice."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        for connection in list(self.connections):
            connection.close()
        await server.wait_closed()

    async def __aenter__(self) -> TcpServer:
        """Use as ``async with await start_tcp(sim) as server``."""
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close on leaving the block."""
        await self.close()


async def start_tcp(
    sim: BusSimulator, host: str = "127.0.0.1", port: int = 0, *, mbap: bool = False
) -> TcpServer:
    """Listen on ``host:port`` (0 = a free port, see ``.port``).

    Raw mode forwards frames like a serial-to-Ethernet gateway, paced when ``sim`` has
    serial settings; ``mbap`` speaks Modbus TCP and answers at once.
    """
    server = TcpServer(sim, mbap)
    await server._listen(host, port)
    return server
