"""Pacing: write each reply byte when it would have arrived over the serial line.

Byte ``i`` of a reply starting at ``s`` is complete on the wire (stop bit received) at
``s + (i + 1)·char_time``. The pacer writes every byte that is due, then sleeps until
the next one is; all times come from ``loop.time()`` against the ideal schedule, so
scheduling delays never accumulate. Replies leave in order and never overlap: a reply
starts no earlier than the end of the one before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterable

from .engine import PlannedReply


class Pacer:
    """Sends planned replies through ``write`` at wire speed (at once without a char time).

    ``sent(end)`` is called with the ``loop.time()`` at which each reply's last byte was
    written.
    """

    def __init__(
        self,
        write: Callable[[bytes], None],
        char_time: float | None,
        sent: Callable[[float], None],
    ) -> None:
        self._write = write
        self._char_time = char_time
        self._sent = sent
        self._queue: deque[PlannedReply] = deque()
        self._free_at = float("-inf")
        self._task: asyncio.Task[None] | None = None

    def submit(self, replies: Iterable[PlannedReply]) -> None:
        """Queue replies; starts the sending task if it is idle."""
        self._queue.extend(replies)
        if self._queue and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._run())

    def abort(self) -> None:
        """Drop queued replies and cancel the sending task."""
        self._queue.clear()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def close(self) -> None:
        """Drop queued replies, stop sending and wait for the task to end."""
        self.abort()
        if self._task is not None and not self._task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while self._queue:
            await self._send(self._queue.popleft())

    async def _send(self, reply: PlannedReply) -> None:
        loop = asyncio.get_running_loop()
        start = max(reply.not_before, self._free_at)
        data = reply.data
        char_time = self._char_time
        if not char_time:
            wait = start - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._write(data)
            self._free_at = end = loop.time()
            self._sent(end)
            return
        sent = 0
        while sent < len(data):
            due = min(len(data), int((loop.time() - start) / char_time + 1e-9))
            if due > sent:
                self._write(data[sent:due])
                sent = due
            if sent < len(data):
                await asyncio.sleep(max(0.0, start + (sent + 1) * char_time - loop.time()))
        end = loop.time()
        ideal = start + len(data) * char_time
        self._free_at = max(end, ideal)
        for stats in reply.stats:
            stats.max_lateness = max(stats.max_lateness, end - ideal)
        self._sent(end)
