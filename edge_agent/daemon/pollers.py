"""One polling task per configured bus.

The core :class:`~edge_agent.bus.Bus` scheduler polls; readings become state messages
and each meter's availability is tracked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..bus import Bus
from ..bus import MeterConfig as BusMeter
from ..errors import EdgeAgentError, LinkError
from ..link import LinkConfig
from ..model import Reading, SerialSettings
from ..protocols.terminal import STATUS_OFFLINE, STATUS_ONLINE, Channel
from .backoff import Backoff
from .config import BusConfig, SerialLink
from .discovery import state_payload
from .message import Outgoing
from .stats import DaemonStats
from .topics import DaemonTopics

_LOG = logging.getLogger(__name__)


def link_config(bus: BusConfig) -> LinkConfig:
    """Return the core link configuration of a configured bus."""
    link = bus.link
    if isinstance(link, SerialLink):
        settings = SerialSettings(link.baudrate, link.bytesize, link.parity, link.stopbits)
        return LinkConfig(kind="serial", device=link.device, serial=settings)
    return LinkConfig(kind="tcp", host=link.host, port=link.port)


def make_bus(config: BusConfig) -> Bus:
    """Return a core Bus for a configured bus (not opened yet)."""
    meters = [BusMeter(m.address, m.profile, config.wire) for m in config.meters]
    return Bus(link_config(config), meters, name=config.name, timeout=config.timeout)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A meter's retained availability message."""

    topic: str
    online: bool

    @property
    def payload(self) -> bytes:
        """``online`` or ``offline``."""
        return (STATUS_ONLINE if self.online else STATUS_OFFLINE).encode()


class BusPoller:
    """Polls one bus forever and hands readings and availability changes on."""

    def __init__(
        self,
        config: BusConfig,
        topics: DaemonTopics,
        stats: DaemonStats,
        *,
        on_readings: Callable[[list[Outgoing]], None],
        on_status: Callable[[StatusChange], None],
        backoff: Backoff | None = None,
    ) -> None:
        """Poll ``config`` every ``config.poll_interval`` seconds."""
        self.config = config
        self.bus = make_bus(config)
        self.topics = topics
        self.stats = stats
        self._on_readings = on_readings
        self._on_status = on_status
        self._backoff = backoff or Backoff(1.0, 60.0)
        #: Last known availability of each meter (None: not polled yet).
        self.online: dict[str, bool] = {}

    def status_messages(self) -> list[StatusChange]:
        """Every meter's current availability (republished after a reconnect)."""
        return [StatusChange(self._status_topic(a), up) for a, up in self.online.items()]

    async def run(self) -> None:
        """Poll until cancelled; a broken link is reopened with backoff."""
        interval = self.config.poll_interval
        try:
            while True:
                started = time.monotonic()
                try:
                    results = await self.bus.poll()
                except LinkError as err:
                    self.stats.link_errors += 1
                    delay = self._backoff.next()
                    _LOG.warning("bus %s: %s; retrying in %.1f s", self.config.name, err, delay)
                    self._mark_all(online=False)
                    await asyncio.sleep(delay)
                    continue
                self._backoff.reset()
                self._handle(results)
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
        finally:
            await self.bus.close()

    def _handle(self, results: dict[str, Reading | EdgeAgentError]) -> None:
        self.stats.polls += 1
        out: list[Outgoing] = []
        for address, result in results.items():
            if isinstance(result, Reading):
                self.stats.meter_readings += 1
                out.append(self._state(result))
                self._set_online(address, online=True)
            else:
                self.stats.meter_errors += 1
                _LOG.debug("bus %s meter %s: %s", self.config.name, address, result)
                self._set_online(address, online=False)
        if out:
            self._on_readings(out)

    def _state(self, reading: Reading) -> Outgoing:
        payload = state_payload(reading.values, reading.missing, reading.timestamp)
        topic = self.topics.meter(self.config.name, reading.address, Channel.STATE)
        return Outgoing(topic, payload, 1, reading.timestamp)

    def _status_topic(self, address: str) -> str:
        return self.topics.meter(self.config.name, address, Channel.STATUS)

    def _set_online(self, address: str, *, online: bool) -> None:
        if self.online.get(address) != online:
            self.online[address] = online
            self._on_status(StatusChange(self._status_topic(address), online))

    def _mark_all(self, *, online: bool) -> None:
        for meter in self.config.meters:
            self._set_online(meter.address, online=online)
