"""Receive MQTT messages in batches instead of one await per message.

The daemon registers :meth:`Inbox.collect` with paho (``message_callback_add``) for each
of its subscriptions, so every message lands in a list without aiomqtt wrapping it
(a ``Message`` and a validated ``Topic`` per message) or queueing it (a task and a wait
per message on the reading side). The daemon takes everything that arrived since its
last look in one step. aiomqtt's own ``messages`` iterator then never yields; it still
raises MqttError when the connection drops, which is what :meth:`Inbox.watch` waits for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import aiomqtt
import paho.mqtt.client as paho


class Inbox:
    """Messages received by one client, taken in batches."""

    def __init__(self) -> None:
        """Start empty."""
        self._batch: list[paho.MQTTMessage] = []
        self._ready = asyncio.Event()

    def attach(self, client: paho.Client, filters: Iterable[str]) -> None:
        """Deliver messages matching ``filters`` to this inbox (before subscribing)."""
        for topic_filter in filters:
            client.message_callback_add(topic_filter, self.collect)

    def collect(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        """Paho callback: keep the message for the next batch."""
        self._batch.append(message)
        self._ready.set()

    async def get_batch(self) -> list[paho.MQTTMessage]:
        """Wait for messages; return all that arrived, oldest first."""
        while not self._batch:
            self._ready.clear()
            await self._ready.wait()
        batch, self._batch = self._batch, []
        return batch

    @staticmethod
    async def watch(client: aiomqtt.Client) -> None:
        """Return never; raise MqttError when the client's connection drops."""
        async for _ in client.messages:
            pass  # only messages outside the inbox's filters get here: none are expected
        raise aiomqtt.MqttError("message iterator ended")
