"""Simulated NB-IoT terminals publishing readings over MQTT (``edge-agent simulate-terminals``).

:class:`TerminalFleet` is the sans-I/O part: it decides what each terminal sends, in
JSON or binary, signed or not, with optional faults (duplicates, out-of-order
deliveries, malformed payloads), from a seeded meter model. :func:`run_fleet` connects
to a broker (one shared connection, or one per terminal logged in with its id as the
ACL expects), publishes at a given total rate and answers commands on ``down``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import aiomqtt

from .errors import EdgeAgentError
from .model import Value
from .protocols.terminal import (
    BY_KEY,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    Ack,
    AckStatus,
    AuthenticationError,
    Channel,
    CommandKind,
    Encoding,
    PayloadError,
    TerminalCodec,
    TerminalTopics,
)
from .simulator import SimClock, SimMeter
from .simulator.meter import SimMeterState

#: Seconds a terminal's values are reused before the meter model is asked again.
VALUE_REFRESH = 1.0
ENCODINGS = ("json", "binary", "both")


class FleetError(EdgeAgentError):
    """The simulated fleet cannot run (bad options, broker refused us)."""


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """What the simulated terminals send."""

    count: int = 1
    #: ``json``, ``binary``, or ``both`` (even-numbered terminals JSON, odd binary).
    encoding: str = "json"
    prefix: str = "sim"
    profile: str = "dlt645-2007-1phase"
    hmac_key: bytes | None = field(default=None, repr=False)
    mac_len: int = 16
    #: Probabilities per reading: sent twice; held back and sent after the next one;
    #: followed by a malformed payload.
    duplicates: float = 0.0
    out_of_order: float = 0.0
    malformed: float = 0.0
    seed: int = 0
    base_topic: str = "gridmeter"

    def check(self) -> None:
        """Raise FleetError for options that make no sense."""
        if self.count < 1:
            raise FleetError("count must be at least 1")
        if self.encoding not in ENCODINGS:
            raise FleetError(f"encoding must be one of {', '.join(ENCODINGS)}")
        for name in ("duplicates", "out_of_order", "malformed"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise FleetError(f"{name} must be a probability 0..1")


@dataclass(slots=True)
class FleetStats:
    """What the fleet published and answered."""

    readings: int = 0
    duplicates: int = 0
    reordered: int = 0
    malformed: int = 0
    published: int = 0
    commands: int = 0
    acks: int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain dict for JSON."""
        return asdict(self)


class SimTerminal:
    """One simulated terminal: its codec, sequence counter, meter model and faults."""

    def __init__(self, terminal_id: str, codec: TerminalCodec, meter: SimMeterState) -> None:
        """Start at sequence number 0."""
        self.id = terminal_id
        self.codec = codec
        self.meter = meter
        self.seq = 0
        #: Id of the last command carried out (lower ids are refused as stale).
        self.last_command = 0
        #: A reading held back to be sent after the next one.
        self.held: bytes | None = None
        self._values: dict[str, Value] = {}
        self._values_at = float("-inf")

    def values(self, now: float) -> dict[str, Value]:
        """Return the meter's values, rounded to the binary code steps (new every second)."""
        if now - self._values_at >= VALUE_REFRESH:
            every = self.meter.values_at(now)
            self._values = {
                key: _rounded(key, every[key]) for key in self.meter.profile.keys if key in BY_KEY
            }
            self._values_at = now
        return self._values


def _rounded(key: str, value: Value) -> Value:
    exponent = BY_KEY[key].exponent
    if exponent == 0 or not isinstance(value, float):
        return value
    return round(value, -exponent)


class TerminalFleet:
    """Decides what every simulated terminal publishes (no I/O)."""

    def __init__(self, options: FleetOptions) -> None:
        """Create ``options.count`` terminals named ``<prefix>-0001`` …."""
        options.check()
        self.options = options
        self.topics = TerminalTopics(options.base_topic)
        self.stats = FleetStats()
        self._rng = random.Random(options.seed)
        clock = SimClock()
        self.terminals: list[SimTerminal] = []
        for i in range(options.count):
            terminal_id = f"{options.prefix}-{i + 1:04d}"
            meter = SimMeterState(
                SimMeter(options.profile, _meter_address(options.profile, i), seed=options.seed),
                clock,
            )
            codec = TerminalCodec(terminal_id, self._encoding(i), options.hmac_key, options.mac_len)
            self.terminals.append(SimTerminal(terminal_id, codec, meter))
        self.by_id = {t.id: t for t in self.terminals}

    def _encoding(self, index: int) -> Encoding:
        if self.options.encoding == "both":
            return Encoding.JSON if index % 2 == 0 else Encoding.BINARY
        return Encoding(self.options.encoding)

    def up_topic(self, terminal: SimTerminal) -> str:
        """Return the terminal's reading topic."""
        return self.topics.topic(terminal.id, Channel.UP)

    def emit(self, terminal: SimTerminal, now: float) -> list[bytes]:
        """Return the payloads ``terminal`` publishes for one reading taken at ``now``."""
        options, rng, stats = self.options, self._rng, self.stats
        payload = terminal.codec.encode_reading(terminal.seq, int(now), terminal.values(now))
        terminal.seq += 1
        stats.readings += 1
        # A late first reading would look like a reboot to the agent: never hold seq 0.
        can_hold = options.out_of_order and terminal.seq > 1 and terminal.held is None
        if can_hold and rng.random() < options.out_of_order:
            terminal.held = payload  # goes out after the next reading
            return []
        out = [payload]
        if options.duplicates and rng.random() < options.duplicates:
            out.append(payload)
            stats.duplicates += 1
        if terminal.held is not None:
            out.append(terminal.held)
            terminal.held = None
            stats.reordered += 1
        if options.malformed and rng.random() < options.malformed:
            out.append(self._malformed(payload))
            stats.malformed += 1
        return out

    def flush(self, terminal: SimTerminal) -> list[bytes]:
        """Return a reading still held back for reordering (at the end of a run)."""
        held, terminal.held = terminal.held, None
        return [held] if held is not None else []

    def _malformed(self, payload: bytes) -> bytes:
        """Return a payload the agent must refuse: truncated, bad type byte, or not JSON."""
        choice = self._rng.randrange(3)
        if choice == 0:
            return payload[: max(1, len(payload) // 2)]
        if choice == 1:
            return (b"\xb7" if payload[:1] >= b"\x80" else b"[") + payload[1:]
        return b"not a reading"

    def answer(self, terminal_id: str, payload: bytes) -> tuple[str, bytes] | None:
        """Execute a command from ``down`` and return the ack's topic and payload."""
        terminal = self.by_id.get(terminal_id)
        if terminal is None:
            return None
        self.stats.commands += 1
        try:
            command = terminal.codec.decode_command(payload)
        except AuthenticationError as err:
            ack = Ack(0, AckStatus.REJECTED, str(err))
        except PayloadError as err:
            ack = Ack(0, AckStatus.INVALID, str(err))
        else:
            if command.id <= terminal.last_command:
                ack = Ack(command.id, AckStatus.REJECTED, "stale command id")
            else:
                terminal.last_command = command.id
                if command.kind is not CommandKind.TIME_SYNC:
                    terminal.meter.set_relay(command.kind is CommandKind.RELAY_CLOSE)
                ack = Ack(command.id, AckStatus.OK)
        self.stats.acks += 1
        return self.topics.topic(terminal_id, Channel.ACK), terminal.codec.encode_ack(ack)


def _meter_address(profile: str, index: int) -> str:
    return str(index % 247 + 1) if not profile.startswith("dlt645") else f"{index + 1:012d}"


# --- over MQTT ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrokerOptions:
    """Where and how the simulated terminals connect."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    #: One connection per terminal, logged in as the terminal id (with ``password``).
    per_terminal_login: bool = False
    qos: int = 1

    def tls_context(self) -> ssl.SSLContext | None:
        """TLS settings, None for a plain connection."""
        if not (self.tls_ca or self.tls_cert):
            return None
        context = ssl.create_default_context(cafile=self.tls_ca)
        if self.tls_cert:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        return context


async def run_fleet(
    fleet: TerminalFleet,
    broker: BrokerOptions,
    *,
    rate: float,
    messages: int | None = None,
    answer_commands: bool = True,
) -> FleetStats:
    """Publish readings and answer commands meanwhile.

    ``rate`` readings per second in total, ``messages`` per terminal (None: until
    cancelled).
    """
    if rate <= 0:
        raise FleetError("rate must be positive")
    groups = [[t] for t in fleet.terminals] if broker.per_terminal_login else [fleet.terminals]
    async with contextlib.AsyncExitStack() as stack:
        clients: dict[str, aiomqtt.Client] = {}
        for group in groups:
            client = await _connect(stack, fleet, broker, group)
            clients.update({t.id: client for t in group})
        listeners = (
            [
                asyncio.create_task(_answer(fleet, client, broker.qos))
                for client in {id(c): c for c in clients.values()}.values()
            ]
            if answer_commands
            else []
        )
        try:
            await _publish_readings(fleet, clients, broker.qos, rate, messages)
        finally:
            for task in listeners:
                task.cancel()
            await asyncio.gather(*listeners, return_exceptions=True)
            for terminal in fleet.terminals:
                with contextlib.suppress(aiomqtt.MqttError):
                    await clients[terminal.id].publish(
                        fleet.topics.topic(terminal.id, Channel.STATUS),
                        STATUS_OFFLINE,
                        qos=1,
                        retain=True,
                        timeout=2,
                    )
    return fleet.stats


async def _connect(
    stack: contextlib.AsyncExitStack,
    fleet: TerminalFleet,
    broker: BrokerOptions,
    group: Sequence[SimTerminal],
) -> aiomqtt.Client:
    """Connect one client for ``group``, say ``online`` for it and listen to its commands."""
    lone = broker.per_terminal_login
    topics = fleet.topics
    client = aiomqtt.Client(
        broker.host,
        broker.port,
        username=group[0].id if lone else broker.username,
        password=broker.password,
        identifier=group[0].id if lone else None,
        will=aiomqtt.Will(topics.topic(group[0].id, Channel.STATUS), STATUS_OFFLINE, 1, True)
        if lone
        else None,
        tls_context=broker.tls_context(),
        max_inflight_messages=1000,
    )
    client.pending_calls_threshold = 1 << 30
    try:
        await stack.enter_async_context(client)
    except aiomqtt.MqttError as err:
        raise FleetError(f"cannot connect to {broker.host}:{broker.port}: {err}") from None
    for terminal in group:
        await client.publish(
            topics.topic(terminal.id, Channel.STATUS), STATUS_ONLINE, qos=1, retain=True
        )
    down = topics.topic(group[0].id, Channel.DOWN) if lone else topics.subscription(Channel.DOWN)
    await client.subscribe(down, qos=1)
    return client


async def _publish_readings(
    fleet: TerminalFleet,
    clients: dict[str, aiomqtt.Client],
    qos: int,
    rate: float,
    messages: int | None,
) -> None:
    """Round-robin over the terminals, ``rate`` readings per second in total."""
    terminals = fleet.terminals
    total = None if messages is None else messages * len(terminals)
    started = time.monotonic()
    done = 0
    while total is None or done < total:
        due = int((time.monotonic() - started) * rate) + 1 - done
        if total is not None:
            due = min(due, total - done)
        if due <= 0:
            await asyncio.sleep(min(0.05, 1.0 / rate))
            continue
        now = time.time()
        sends = []
        for _ in range(due):
            terminal = terminals[done % len(terminals)]
            done += 1
            payloads = fleet.emit(terminal, now)
            if total is not None and done > total - len(terminals):
                payloads += fleet.flush(terminal)  # the last round sends what it held back
            topic = fleet.up_topic(terminal)
            sends += [clients[terminal.id].publish(topic, p, qos=qos) for p in payloads]
        await asyncio.gather(*sends)
        fleet.stats.published += len(sends)


async def _answer(fleet: TerminalFleet, client: aiomqtt.Client, qos: int) -> None:
    """Ack every command that arrives on ``down``."""
    async for message in client.messages:
        match = fleet.topics.parse(message.topic.value)
        if match is None or match.channel is not Channel.DOWN:
            continue
        payload = message.payload
        if not isinstance(payload, bytes):
            continue
        answer = fleet.answer(match.terminal_id, payload)
        if answer is not None:
            await client.publish(answer[0], answer[1], qos=qos)
