"""Write-ahead store-and-forward: readings go to the SQLite spool first, then to the broker.

:class:`Outbox` has two halves. The writer takes whatever readings arrived since its last
write and appends them to the spool in one transaction (one fsync for the batch), then
runs the callbacks of the producers (the bridge PUBACKs terminal messages only then).
The sender, one per broker connection, takes the spooled messages in id order, keeps
many of them in flight at QoS 1 without waiting for each, and deletes them from the
spool only after the broker's PUBACK. Whatever is not acknowledged when the connection drops, or
when the process dies, is published again, in order, with its original time stamp.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, cast

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.client import CallbackOnPublish, CallbackOnPublish_v2
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .message import Outgoing
from .spool import Entry, Spool
from .stats import DaemonStats

#: Spooled messages published per round.
SEND_WINDOW = 1000
#: Messages published and not yet acknowledged, at most.
MAX_IN_FLIGHT = 20_000
#: Seconds to wait for a round's PUBACKs before treating the connection as broken.
PUBACK_TIMEOUT = 60.0
#: Unacknowledged messages kept in memory at most; beyond, the sender reads the file.
MEMORY_LIMIT = 50_000


class Outbox:
    """The write-ahead spool writer and the per-connection spool sender."""

    def __init__(
        self, spool: Spool, stats: DaemonStats, *, window: int = SEND_WINDOW, retain: bool = True
    ) -> None:
        """Use ``spool``; publish at most ``window`` messages per round, retained or not.

        State messages are retained so a subscriber that connects later (Home Assistant
        after a restart) gets each device's latest reading at once.
        """
        self.spool = spool
        self.stats = stats
        self.window = window
        self.retain = retain
        self._pending: list[Outgoing] = []
        self._callbacks: list[Callable[[], None]] = []
        self._wake_writer = asyncio.Event()
        self._stored = asyncio.Event()
        self._closing = False
        self._writer: asyncio.Task[None] | None = None
        #: Every unacknowledged spooled message, in id order, while the spool holds no
        #: others (then the sender need not read back what was just written); None when
        #: the spool file holds messages this process has not written or no longer keeps.
        self._memory: deque[Entry] | None = deque() if spool.count() == 0 else None
        self._memory_limit = min(MEMORY_LIMIT, spool.stats().max_entries)
        self._writing = False
        self._last_id = 0

    # --- writer -------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Start the writer task and return it (it only ends with an error, or on close)."""
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_forever(), name="spool-writer")
        return self._writer

    def put(self, items: Sequence[Outgoing], stored: Callable[[], None] | None = None) -> None:
        """Queue readings for the spool without blocking.

        ``stored`` runs once they, and all queued before them, are on disk.
        """
        if items:
            self._pending.extend(items)
        if stored is not None:
            self._callbacks.append(stored)
        if items or stored is not None:
            self._wake_writer.set()

    async def close(self) -> None:
        """Write what is queued, then stop the writer."""
        self._closing = True
        self._wake_writer.set()
        if self._writer is not None:
            await self._writer
            self._writer = None

    async def _write_forever(self) -> None:
        while True:
            await self._wake_writer.wait()
            self._wake_writer.clear()
            await self._write_pending()
            if self._closing and not self._pending and not self._callbacks:
                return

    async def _write_pending(self) -> None:
        items, self._pending = self._pending, []
        callbacks, self._callbacks = self._callbacks, []
        if items:
            self._writing = True
            try:
                # Shielded: once handed to the thread the rows will be committed; a
                # cancelled writer must not run ahead of them.
                ids = await asyncio.shield(asyncio.to_thread(self.spool.append_many, items))
            finally:
                self._writing = False
            self._last_id = ids[-1]
            self.stats.spooled += len(items)
            memory = self._memory
            if memory is not None:
                memory.extend(Entry(i, *item) for i, item in zip(ids, items, strict=True))
                if len(memory) > self._memory_limit:
                    self._memory = None  # read the spool file until it is drained again
            self._stored.set()
        for callback in callbacks:
            callback()

    # --- sender -------------------------------------------------------------------------

    async def send(self, client: aiomqtt.Client) -> None:
        """Publish the spool over ``client`` until the connection fails (raises MqttError).

        Rounds of up to ``window`` messages go out as soon as they are stored, with up to
        :data:`MAX_IN_FLIGHT` messages awaiting their PUBACK: under a flood the PUBACKs
        queue behind incoming messages on the same connection, so waiting for each round
        would stall publishing for as long as the backlog takes to read.
        """
        flight = _InFlight(client, self.retain)
        rounds: deque[tuple[list[Entry], asyncio.Future[None], float]] = deque()
        forgetting: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        after = 0  # id of the last message published on this connection
        try:
            while True:
                while rounds and rounds[0][1].done():
                    entries, _, _ = rounds.popleft()
                    # Deleting costs an fsync: let it run while more messages go out.
                    task = asyncio.create_task(self._forget(entries))
                    forgetting.add(task)
                    task.add_done_callback(forgetting.discard)
                if flight.count < MAX_IN_FLIGHT:
                    self._stored.clear()
                    entries = await self._next_round(after)
                    if entries:
                        rounds.append((entries, flight.publish(entries), loop.time()))
                        after = entries[-1].id
                        continue
                await self._wait(rounds, loop.time())
        finally:
            flight.close()
            if rounds:
                # Published but not acknowledged: the next connection starts from the file.
                self._memory = None
            if forgetting:
                await asyncio.shield(asyncio.gather(*forgetting, return_exceptions=True))

    async def _wait(
        self, rounds: deque[tuple[list[Entry], asyncio.Future[None], float]], now: float
    ) -> None:
        """Wait for new messages or for the oldest round's PUBACKs (MqttError if late)."""
        stored = asyncio.ensure_future(self._stored.wait())
        waiters: list[asyncio.Future[Any]] = [stored]
        timeout = None
        if rounds:
            waiters.append(rounds[0][1])
            timeout = max(0.0, rounds[0][2] + PUBACK_TIMEOUT - now)
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stored.cancel()
        late = rounds and asyncio.get_running_loop().time() >= rounds[0][2] + PUBACK_TIMEOUT
        if late and not rounds[0][1].done():
            raise aiomqtt.MqttError(f"no PUBACK within {PUBACK_TIMEOUT:.0f} s")

    async def _forget(self, entries: Sequence[Entry]) -> None:
        """Delete acknowledged messages from the spool."""
        await asyncio.to_thread(self.spool.ack, [e.id for e in entries])
        self.stats.published += len(entries)

    async def _next_round(self, after: int) -> list[Entry]:
        """Take the oldest messages not published yet, from memory or from the file."""
        memory = self._memory
        if memory is not None:
            return [memory.popleft() for _ in range(min(self.window, len(memory)))]
        last_id = self._last_id
        entries = await asyncio.to_thread(self.spool.pending, self.window, after)
        if not entries and not self._writing and self._last_id == last_id and self._memory is None:
            # The file is drained and nothing was written meanwhile: from now on every
            # message the writer stores is also kept in memory.
            self._memory = deque()
        return entries


class _InFlight:
    """Publishes rounds of spooled messages straight through paho and tracks their PUBACKs.

    aiomqtt's ``publish`` costs an event, a timeout and a scan of every pending call per
    message (quadratic in the number in flight); here a round costs one future. paho's
    ``on_publish`` is chained: PUBACKs of other messages still reach aiomqtt.
    """

    def __init__(self, client: aiomqtt.Client, retain: bool) -> None:
        self._paho: paho.Client = client._client
        self._retain = retain
        #: aiomqtt's callback, called for every PUBACK that is not ours.
        self._chained: CallbackOnPublish | None = self._paho.on_publish
        self._paho.on_publish = self._on_publish
        #: Round (a future and its count of missing PUBACKs) of each message id in flight.
        self._rounds: dict[int, _Round] = {}

    @property
    def count(self) -> int:
        """Messages awaiting their PUBACK."""
        return len(self._rounds)

    def close(self) -> None:
        """Give ``on_publish`` back to aiomqtt."""
        self._paho.on_publish = self._chained
        self._rounds.clear()

    def publish(self, entries: Sequence[Entry]) -> asyncio.Future[None]:
        """Publish every entry now; the future resolves when all are acknowledged."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        group = _Round(done)
        publish = self._paho.publish
        retain = self._retain
        for entry in entries:
            info = publish(entry.topic, entry.payload, entry.qos, retain)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                raise aiomqtt.MqttCodeError(info.rc, "Could not publish message")
            if entry.qos:
                self._rounds[info.mid] = group
                group.missing += 1
        if not group.missing:
            done.set_result(None)
        return done

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        group = self._rounds.pop(mid, None)
        if group is None:
            if self._chained is not None:
                chained = cast(CallbackOnPublish_v2, self._chained)  # aiomqtt uses API v2
                chained(client, userdata, mid, reason_code, properties)
            return
        group.missing -= 1
        if not group.missing and not group.done.done():
            group.done.set_result(None)


class _Round:
    """PUBACKs still missing for one round."""

    __slots__ = ("done", "missing")

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.missing = 0
