"""Pacing: write each reply byte when it would have arrived over the serial line.

Byte ``i`` of a reply starting at ``s`` is complete on the wire (stop bit received) at
``s + (i + 1)·char_time``. The pacer writes every byte that is due, then sleeps until
the next one is; all times come from ``loop.time()`` against the ideal schedule, so
scheduling delays never accumulate.

Each reply is its own transmission, as each meter has its own transmitter: it starts when
it is due, whatever was submitted before it. A reply due while another is still on the
wire collides and is lost (counted in ``collisions``), as on an RS485 line where a late
meter talks over the next one; nothing queues up behind a slow meter. Replies due while
the line is busy by less than one character still go out right after it (several
follow-up frames planned back to back).
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
        self._free_at = float("-inf")
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, replies: Iterable[PlannedReply]) -> None:
        """Start sending replies (one request's frames, in order) when they are due."""
        chain = deque(replies)
        if chain:
            task = asyncio.get_running_loop().create_task(self._run(chain))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def abort(self) -> None:
        """Cancel every transmission."""
        for task in self._tasks:
            task.cancel()

    async def close(self) -> None:
        """Cancel every transmission and wait for them to end."""
        tasks = list(self._tasks)
        self.abort()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, chain: deque[PlannedReply]) -> None:
        first = True
        while chain:
            if not await self._send(chain.popleft(), check=first):
                return
            first = False

    async def _send(self, reply: PlannedReply, *, check: bool) -> bool:
        """Send one reply; False when it collided with another meter's and was lost."""
        loop = asyncio.get_running_loop()
        wait = reply.not_before - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        # Pacing runs up to a few ms late; within that, the line counts as free.
        tolerance = max(self._char_time or 0.0, 0.005)
        if check and self._free_at - max(reply.not_before, loop.time()) > tolerance:
            for stats in reply.stats:
                stats.collisions += 1
            return False
        start = max(reply.not_before, self._free_at)
        data = reply.data
        char_time = self._char_time
        # The line is taken from now on, until this reply's last byte is out.
        self._free_at = start + len(data) * (char_time or 0.0)
        if not char_time:
            wait = start - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self._write(data)
            self._free_at = end = loop.time()
            self._sent(end)
            return True
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
        return True
