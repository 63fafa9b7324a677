"""Glue between a byte stream, a :class:`~.engine.BusSession` and a :class:`~.pacing.Pacer`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .engine import BusSession
from .pacing import Pacer


class SessionPump:
    """Feeds received bytes to a session, paces its replies, and expires cut frames."""

    def __init__(self, session: BusSession, write: Callable[[bytes], None]) -> None:
        self.session = session
        self.pacer = Pacer(write, session.char_time, session.reply_sent)
        self._loop = asyncio.get_running_loop()
        self._expiry: asyncio.TimerHandle | None = None

    def received(self, data: bytes) -> None:
        """Bytes arrived now."""
        self.pacer.submit(self.session.feed(data, self._loop.time()))
        self._arm()

    def _arm(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if self.session.pending:
            self._expiry = self._loop.call_later(self.session.stale_after, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        self.pacer.submit(self.session.expire(self._loop.time()))
        self._arm()

    def abort(self) -> None:
        """Stop the expiry timer and drop unsent replies (the stream is gone)."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self.pacer.abort()

    async def close(self) -> None:
        """Stop the expiry timer and the pacer, and wait for the pacer to end."""
        self.abort()
        await self.pacer.close()
