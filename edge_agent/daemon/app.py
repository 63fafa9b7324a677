"""The ``edge-agent run`` daemon: buses and terminals in, MQTT out, commands back.

Tasks: one poller per bus, the spool writer, and the broker connection. The connection
task connects (TLS, username and password, retained last will ``offline`` on
``<base>/bridge/status``), announces itself ``online``, publishes Home Assistant
discovery and meter availability, subscribes to terminal and command topics, and runs
the spool sender, the batched receiver and the housekeeping loop until the connection
drops; then it reconnects with capped exponential backoff. Polling never waits for the
broker: readings go to the spool first.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import signal
import ssl
import time
from collections.abc import Coroutine, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiomqtt
import paho.mqtt.client as paho

from ..errors import EdgeAgentError
from ..profiles import load_profile
from ..protocols.terminal import (
    STATUS_OFFLINE,
    STATUS_ONLINE,
    AckStatus,
    Channel,
    Command,
    CommandKind,
    PayloadError,
)
from . import fast_puback
from .backoff import Backoff
from .bridge import Rejected, TerminalBridge, Verdict
from .commands import (
    CommandIds,
    CommandRejected,
    CommandRequest,
    CommandUnsupported,
    ReplayGuard,
    meter_exchange,
    parse_request,
    result_payload,
)
from .config import BusConfig, DaemonConfig, MeterConfig, MqttConfig
from .discovery import DiscoveryDevice, DiscoveryMessage, device_discovery, node_id
from .inbox import Inbox
from .message import Outgoing
from .pollers import BusPoller, StatusChange
from .publisher import PUBACK_TIMEOUT, SEND_WINDOW, Outbox
from .spool import Spool
from .stats import DaemonStats
from .topics import STATS, CommandRoute, DaemonTopics, meter_device

_LOG = logging.getLogger("edge_agent.daemon")

#: Seconds between stats messages and log lines.
STATS_INTERVAL = 60.0
#: Seconds a terminal has to acknowledge a command before it is reported failed.
TERMINAL_ACK_TIMEOUT = 300.0
#: Seconds between two log lines about rejected payloads of the same kind.
REJECT_LOG_INTERVAL = 10.0
#: Seconds between two automatic ``time_sync`` commands to a terminal without a clock.
TIME_SYNC_INTERVAL = 600.0


class DaemonError(EdgeAgentError):
    """The daemon cannot start or had to stop."""


def tls_context(config: MqttConfig) -> ssl.SSLContext | None:
    """Return the TLS context for the broker: its CA (or the system store), our certificate."""
    if config.tls is None:
        return None
    try:
        context = ssl.create_default_context(cafile=str(config.tls.ca) if config.tls.ca else None)
        if config.tls.cert and config.tls.key:
            context.load_cert_chain(str(config.tls.cert), str(config.tls.key))
    except (OSError, ssl.SSLError) as err:
        raise DaemonError(f"cannot load TLS files: {err}") from None
    return context


class Daemon:
    """Everything ``edge-agent run`` does, for one configuration."""

    def __init__(
        self,
        config: DaemonConfig,
        *,
        stats_interval: float = STATS_INTERVAL,
        reconnect: Backoff | None = None,
        terminal_ack_timeout: float = TERMINAL_ACK_TIMEOUT,
        window: int = SEND_WINDOW,
    ) -> None:
        """Open the spool and prepare buses, bridge and connection (nothing runs yet)."""
        _check_devices(config)
        self.config = config
        self.topics = DaemonTopics(config.mqtt.base_topic)
        self.stats = DaemonStats()
        self.stats_interval = stats_interval
        self.terminal_ack_timeout = terminal_ack_timeout
        self._reconnect = reconnect or Backoff(1.0, 60.0)
        self._tls = tls_context(config.mqtt)
        self.spool = _open_spool(config.spool.path, config.spool.max_entries)
        self.outbox = Outbox(self.spool, self.stats, window=window)
        self.bridge = TerminalBridge(config.terminals, self.topics, self.stats)
        self.pollers = {
            bus.name: BusPoller(
                bus, self.topics, self.stats, on_readings=self.outbox.put, on_status=self._status
            )
            for bus in config.buses
        }
        #: Set while connected and subscribed.
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self._dirty_status: dict[str, StatusChange] = {}
        self._status_event = asyncio.Event()
        self._guard = ReplayGuard()
        self._ids = CommandIds()
        self._awaiting_ack: dict[tuple[str, int], tuple[CommandRequest, float]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._last_reject_log: dict[Verdict, float] = {}
        self._time_synced: dict[str, float] = {}

    # --- life cycle ---------------------------------------------------------------------

    async def run(self) -> None:
        """Run until :meth:`stop` is called (or the task is cancelled)."""
        writer = self.outbox.start()
        tasks = [asyncio.create_task(p.run(), name=f"bus-{n}") for n, p in self.pollers.items()]
        tasks.append(asyncio.create_task(self._mqtt_forever(), name="mqtt"))
        stop = asyncio.create_task(self._stop.wait(), name="stop")
        failed: BaseException | None = None
        try:
            watched = [stop, writer, *tasks]
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            failed = next((t.exception() for t in done if t is not stop and t.exception()), None)
        finally:
            for task in [stop, *tasks, *self._background]:
                task.cancel()
            await asyncio.gather(stop, *tasks, *self._background, return_exceptions=True)
            try:
                await self.outbox.close()  # writes what is still queued
            except EdgeAgentError as err:
                failed = failed or err
            self.spool.close()
            _LOG.info("stopped: %s", self.stats.summary())
        if failed is not None:
            raise DaemonError(f"{type(failed).__name__}: {failed}") from failed

    def stop(self) -> None:
        """Ask :meth:`run` to finish: pending readings are written, ``offline`` published."""
        self._stop.set()

    # --- broker connection --------------------------------------------------------------

    def _make_client(self, inbox: Inbox) -> aiomqtt.Client:
        mqtt = self.config.mqtt
        client = aiomqtt.Client(
            mqtt.host,
            mqtt.port,
            username=mqtt.username,
            password=mqtt.password,
            identifier=mqtt.client_id,
            will=aiomqtt.Will(self.topics.bridge_status, STATUS_OFFLINE, qos=1, retain=True),
            clean_session=False,
            keepalive=mqtt.keepalive,
            # PUBACKs of our own publishes queue behind whatever the broker has for us
            # (a flood of terminal readings): allow them as long as spooled messages.
            timeout=PUBACK_TIMEOUT,
            max_inflight_messages=0,  # no paho limit: the outbox window is the limit
            tls_context=self._tls,
        )
        # Discovery of many devices goes out at once; that is not a warning sign.
        client.pending_calls_threshold = 1 << 16
        # PUBACK terminal messages only once they are in the spool (see _receive).
        _paho(client).manual_ack_set(True)
        fast_puback.install(_paho(client))
        inbox.attach(_paho(client), self._filters)
        return client

    async def _mqtt_forever(self) -> None:
        mqtt = self.config.mqtt
        while True:
            inbox = Inbox()
            client = self._make_client(inbox)
            connected = False
            try:
                async with client:
                    connected = True
                    self.stats.connects += 1
                    self._reconnect.reset()
                    _LOG.info("connected to %s:%d", mqtt.host, mqtt.port)
                    try:
                        await self._session(client, inbox)
                    except asyncio.CancelledError:
                        await self._say_offline(client)
                        raise
            except* aiomqtt.MqttError as group:
                reason = "; ".join(str(e) for e in group.exceptions)
                if connected:
                    _LOG.warning("connection to %s:%d lost: %s", mqtt.host, mqtt.port, reason)
                else:
                    self.stats.connect_failures += 1
                    _LOG.warning("cannot connect to %s:%d: %s", mqtt.host, mqtt.port, reason)
            finally:
                self._client = None
                self.connected.clear()
            delay = self._reconnect.next()
            _LOG.info("reconnecting in %.1f s", delay)
            await asyncio.sleep(delay)

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(
                self.topics.bridge_status, STATUS_OFFLINE, qos=1, retain=True, timeout=2
            )

    async def _session(self, client: aiomqtt.Client, inbox: Inbox) -> None:
        topics = self.topics
        await client.publish(topics.bridge_status, STATUS_ONLINE, qos=1, retain=True)
        await self._announce(client)
        await client.subscribe([(f, 1) for f in self._filters])
        self._client = client
        self.connected.set()
        async with asyncio.TaskGroup() as group:
            group.create_task(Inbox.watch(client))
            group.create_task(self.outbox.send(client))
            group.create_task(self._receive(client, inbox))
            group.create_task(self._publish_statuses(client))
            group.create_task(self._housekeeping(client))

    # --- discovery and availability -----------------------------------------------------

    @property
    def _filters(self) -> list[str]:
        """What the daemon subscribes to."""
        topics = self.topics
        return [
            topics.terminals.subscription(Channel.UP),
            topics.terminals.subscription(Channel.ACK),
            *topics.command_filters,
            self._ha_status,
        ]

    @property
    def _ha_status(self) -> str:
        """Home Assistant's birth and will topic: ``online`` asks for discovery again."""
        return f"{self.config.mqtt.discovery_prefix}/status"

    async def _announce(self, client: aiomqtt.Client) -> None:
        """Publish discovery of every meter and every terminal with known keys."""
        messages = [self._meter_discovery(bus, m) for bus in self.config.buses for m in bus.meters]
        self.bridge.take_grown()
        messages += [self._terminal_discovery(t) for t in self.bridge.terminal_ids]
        await asyncio.gather(
            *(
                client.publish(m.topic, m.payload, qos=1, retain=True)
                for m in messages
                if m.config is not None and m.config["components"]
            )
        )
        for poller in self.pollers.values():
            for change in poller.status_messages():
                self._dirty_status[change.topic] = change
        self._status_event.set()

    def _meter_discovery(self, bus: BusConfig, meter: MeterConfig) -> DiscoveryMessage:
        profile = load_profile(meter.profile)
        device = DiscoveryDevice(
            node_id=meter_device(bus.name, meter.address),
            name=meter.name,
            manufacturer=profile.manufacturer,
            model=profile.model,
            serial_number=meter.address,
        )
        return device_discovery(
            device,
            profile.keys,
            prefix=self.config.mqtt.discovery_prefix,
            state_topic=self.topics.meter(bus.name, meter.address, Channel.STATE),
            availability_topics=[
                self.topics.bridge_status,
                self.topics.meter(bus.name, meter.address, Channel.STATUS),
            ],
        )

    def _terminal_discovery(self, terminal_id: str) -> DiscoveryMessage:
        config = self.bridge.config(terminal_id)
        terminals = self.topics.terminals
        device = DiscoveryDevice(
            node_id=node_id(terminal_id),
            name=config.name if config else terminal_id,
            model="NB-IoT terminal",
            serial_number=terminal_id,
        )
        return device_discovery(
            device,
            self.bridge.keys(terminal_id),
            prefix=self.config.mqtt.discovery_prefix,
            state_topic=terminals.topic(terminal_id, Channel.STATE),
            availability_topics=[
                self.topics.bridge_status,
                terminals.topic(terminal_id, Channel.STATUS),
            ],
        )

    def _status(self, change: StatusChange) -> None:
        self._dirty_status[change.topic] = change
        self._status_event.set()

    async def _publish_statuses(self, client: aiomqtt.Client) -> None:
        while True:
            await self._status_event.wait()
            self._status_event.clear()
            changes, self._dirty_status = self._dirty_status, {}
            for change in changes.values():
                await client.publish(change.topic, change.payload, qos=1, retain=True)

    # --- receiving ------------------------------------------------------------------------

    async def _receive(self, client: aiomqtt.Client, inbox: Inbox) -> None:
        """Handle everything received, one batch at a time."""
        paho_client = _paho(client)
        parse = functools.lru_cache(maxsize=4096)(self.topics.terminals.parse)
        while True:
            batch = await inbox.get_batch()
            now = time.time()
            readings: list[Outgoing] = []
            acks: list[tuple[int, int]] = []
            for message in batch:
                if message.qos:
                    acks.append((message.mid, message.qos))
                topic = message.topic
                payload = message.payload
                match = parse(topic)
                if match is None:
                    self._other(client, topic, payload, now)
                elif match.channel is Channel.UP:
                    result = self.bridge.reading(match.terminal_id, payload, now)
                    if isinstance(result, Rejected):
                        self._log_rejected(result, now)
                    else:
                        readings.append(result)
                elif match.channel is Channel.ACK:
                    self._terminal_ack(match.terminal_id, payload, now)
            # MQTT wants PUBACKs in arrival order: all of them wait for this batch's write.
            stored = functools.partial(_ack_all, paho_client, acks) if acks else None
            self.outbox.put(readings, stored)
            for terminal_id in self.bridge.take_clock_unset():
                self._sync_clock(terminal_id, now)
            for terminal_id in self.bridge.take_grown():
                # Not awaited here: under a flood its PUBACK queues behind the backlog.
                self._spawn(self._publish_discovery(client, terminal_id))

    async def _publish_discovery(self, client: aiomqtt.Client, terminal_id: str) -> None:
        discovery = self._terminal_discovery(terminal_id)
        await client.publish(discovery.topic, discovery.payload, qos=1, retain=True)

    def _other(self, client: aiomqtt.Client, topic: str, payload: bytes, now: float) -> None:
        """Handle a message that is not a terminal's: a command request, HA's birth."""
        route = self.topics.command_route(topic)
        if route is not None:
            self._command(route, payload, now)
        elif topic == self._ha_status and payload == STATUS_ONLINE.encode():
            self._spawn(self._announce(client))

    def _log_rejected(self, rejected: Rejected, now: float) -> None:
        last = self._last_reject_log.get(rejected.verdict, 0.0)
        if now - last >= REJECT_LOG_INTERVAL:
            self._last_reject_log[rejected.verdict] = now
            _LOG.warning(
                "rejected payload from terminal %s: %s %s (counters: %s)",
                rejected.terminal_id,
                rejected.verdict,
                rejected.detail,
                self.stats.summary(),
            )

    # --- commands -----------------------------------------------------------------------

    def _command(self, route: CommandRoute, payload: bytes, now: float) -> None:
        self.stats.commands_received += 1
        try:
            request = parse_request(route, payload, self.config.commands, now, self._guard)
        except CommandRejected as err:
            if err.status is AckStatus.INVALID:
                self.stats.commands_invalid += 1
            else:
                self.stats.commands_rejected += 1
            sender = route.client or "signed topic"
            _LOG.warning("command from %s %s: %s", sender, err.status, err)
            self._spawn(self._result(err.request, err.status, str(err)))
            return
        _LOG.info(
            "command %s %s on %s from %s", request.id, request.kind, request.target, request.sender
        )
        self._spawn(self._execute(request, now))

    async def _execute(self, request: CommandRequest, now: float) -> None:
        target = request.target
        if self.bridge.config(target) is not None:
            await self._send_to_terminal(request, now)
            return
        bus_name, _, address = target.partition("/")
        poller = self.pollers.get(bus_name)
        meter = (
            next((m for m in poller.config.meters if m.address == address), None)
            if poller
            else None
        )
        if poller is None or meter is None:
            await self._result(request, AckStatus.INVALID, f"unknown target {target!r}")
            return
        try:
            exchange = meter_exchange(
                request.kind,
                address,
                poller.config.wire,
                datetime.now(),
                password=meter.password,
                operator=meter.operator,
            )
            await poller.bus.execute(exchange)
        except CommandUnsupported as err:
            await self._result(request, AckStatus.UNSUPPORTED, str(err))
        except EdgeAgentError as err:
            await self._result(request, AckStatus.FAILED, f"{type(err).__name__}: {err}")
        else:
            await self._result(request, AckStatus.OK, "")

    def _sync_clock(self, terminal_id: str, now: float) -> None:
        """Send ``time_sync`` to a terminal whose clock is not set, if the policy allows.

        At most once per :data:`TIME_SYNC_INTERVAL` for each terminal.
        """
        if not self.config.commands.allows(terminal_id, CommandKind.TIME_SYNC):
            return
        if now - self._time_synced.get(terminal_id, -TIME_SYNC_INTERVAL) < TIME_SYNC_INTERVAL:
            return
        self._time_synced[terminal_id] = now
        request = CommandRequest("time-sync", terminal_id, CommandKind.TIME_SYNC, "edge-agent")
        self._spawn(self._send_to_terminal(request, now))

    async def _send_to_terminal(self, request: CommandRequest, now: float) -> None:
        client = self._client
        if client is None:
            return
        command_id = self._ids.next(request.target, now)
        topic, payload = self.bridge.encode_command(
            request.target, Command(command_id, request.kind, int(now))
        )
        self._awaiting_ack[(request.target, command_id)] = (request, now)
        await client.publish(topic, payload, qos=1)

    def _terminal_ack(self, terminal_id: str, payload: bytes, now: float) -> None:
        if self.bridge.config(terminal_id) is None:
            self.stats.unknown_terminal += 1
            return
        try:
            ack = self.bridge.decode_ack(terminal_id, payload)
        except PayloadError as err:
            self.stats.malformed += 1
            _LOG.warning("bad ack from terminal %s: %s", terminal_id, err)
            return
        self.stats.terminal_acks += 1
        pending = self._awaiting_ack.pop((terminal_id, ack.command_id), None)
        if pending is None:
            _LOG.info("ack from %s for unknown command %d", terminal_id, ack.command_id)
            return
        self._spawn(self._result(pending[0], ack.status, ack.detail))

    async def _result(
        self, request: dict[str, Any] | CommandRequest, status: AckStatus, detail: str
    ) -> None:
        if isinstance(request, CommandRequest):
            if status is AckStatus.OK:
                self.stats.commands_ok += 1
            elif status is not AckStatus.REJECTED:
                self.stats.commands_failed += 1
        client = self._client
        if client is None:
            _LOG.warning("command result %s lost: not connected", status)
            return
        payload = result_payload(request, status, detail, time.time())
        await client.publish(self.topics.bridge("result"), payload, qos=1)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (err := task.exception()) is not None:
            _LOG.warning("background task failed: %s: %s", type(err).__name__, err)

    # --- housekeeping -------------------------------------------------------------------

    async def _housekeeping(self, client: aiomqtt.Client) -> None:
        """Publish counters, log them, and fail commands whose terminal never answered."""
        while True:
            await asyncio.sleep(self.stats_interval)
            now = time.time()
            for key, (request, sent) in list(self._awaiting_ack.items()):
                if now - sent > self.terminal_ack_timeout:
                    del self._awaiting_ack[key]
                    self._spawn(self._result(request, AckStatus.FAILED, "no ack from terminal"))
            spool = await asyncio.to_thread(self.spool.stats)
            self.stats.spool_dropped = spool.dropped
            await self.publish_stats(client)

    async def publish_stats(self, client: aiomqtt.Client) -> None:
        """Publish the counters (retained) and log them."""
        _LOG.info("stats: %s spool=%d", self.stats.summary(), self.spool.count())
        stats = {**self.stats.as_dict(), "spool": self.spool.count(), "ts": round(time.time(), 3)}
        await client.publish(
            self.topics.bridge(STATS), json.dumps(stats, separators=(",", ":")), qos=1, retain=True
        )


def _paho(client: aiomqtt.Client) -> paho.Client:
    """Return the paho client under an aiomqtt client (manual PUBACKs have no aiomqtt API)."""
    return client._client


def _ack_all(client: paho.Client, acks: Iterable[tuple[int, int]]) -> None:
    for mid, qos in acks:
        client.ack(mid, qos)


def _check_devices(config: DaemonConfig) -> None:
    """Refuse two devices (terminals, bus meters) that would share a discovery node id."""
    seen: dict[str, str] = {}
    devices = [
        (f"bus meter {b.name}/{m.address}", meter_device(b.name, m.address))
        for b in config.buses
        for m in b.meters
    ]
    devices += [(f"terminal {t.id}", node_id(t.id)) for t in config.terminals]
    for name, node in devices:
        if node in seen:
            raise DaemonError(f"{name} and {seen[node]} would both be device {node!r}")
        seen[node] = name


def _open_spool(path: Path, max_entries: int) -> Spool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DaemonError(f"cannot create the spool directory {path.parent}: {err}") from None
    return Spool(path, max_entries)


async def run_daemon(config: DaemonConfig, *, install_signals: bool = True) -> None:
    """Run a daemon for ``config`` until SIGTERM or SIGINT."""
    daemon = Daemon(config)
    if install_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, daemon.stop)
    await daemon.run()
