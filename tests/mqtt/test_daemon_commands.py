"""Commands: only authorised requests reach a meter or a terminal; the rest are refused."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.daemon.app import Daemon
from edge_agent.daemon.commands import (
    FRESHNESS,
    CommandIds,
    CommandRejected,
    ReplayGuard,
    parse_request,
    sign_request,
)
from edge_agent.daemon.config import CommandPolicy, CommandRule
from edge_agent.daemon.topics import CommandRoute
from edge_agent.protocols.terminal import AckStatus, CommandKind, Encoding, TerminalCodec
from edge_agent.simulator import BusSimulator, TcpServer
from edge_agent.terminal_sim import BrokerOptions, FleetOptions, TerminalFleet, run_fleet

from .conftest import (
    COMMAND_SECRET,
    DLT_ADDRESS,
    TERMINAL_KEY,
    USERS,
    Broker,
    Observer,
    daemon_config,
    running,
    wait_until,
)

METER = f"bus1/{DLT_ADDRESS}"
RESULT = "gridmeter/bridge/result"
POLICY = {
    "secret": COMMAND_SECRET,
    "allowed_clients": ["homeassistant"],
    "allow": [
        {"target": METER, "kinds": ["relay_trip", "relay_close"]},
        {"target": "term-0001", "kinds": ["relay_trip", "time_sync"]},
    ],
}


def _signed(
    request_id: str, target: str, cmd: str, secret: str = COMMAND_SECRET, **extra: Any
) -> bytes:
    fields = {"id": request_id, "target": target, "cmd": cmd, "ts": int(time.time()), **extra}
    return sign_request(fields, secret)


def _results(observer: Observer) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in map(json.loads, observer.on(RESULT)) if "id" in r}


@pytest.fixture
async def daemon(
    broker: Broker, sim_bus: tuple[BusSimulator, TcpServer], tmp_path: Path
) -> AsyncIterator[Daemon]:
    _, server = sim_bus
    config = daemon_config(
        broker,
        tmp_path / "spool.db",
        bus_port=server.port,
        poll_interval=5,
        terminals=[
            {"id": "term-0001", "hmac_key": TERMINAL_KEY, "encoding": "binary", "mac_length": 8}
        ],
        commands=POLICY,
    )
    daemon = Daemon(config)
    async with running(daemon):
        yield daemon


async def test_only_an_authorised_relay_command_reaches_the_meter(
    broker: Broker, daemon: Daemon, sim_bus: tuple[BusSimulator, TcpServer]
) -> None:
    sim, _ = sim_bus
    meter = sim.meter(DLT_ADDRESS)
    assert meter.values_at()["relay_state"] == 1
    async with Observer(broker, [RESULT]) as observer:
        async with broker.client("operator") as operator:
            command = "gridmeter/bridge/command"
            await operator.publish(
                command, _signed("forged", METER, "relay_trip", "guessed-secret"), qos=1
            )
            unsigned = json.dumps({"id": "unsigned", "target": METER, "cmd": "relay_trip"})
            await operator.publish(command, unsigned, qos=1)
            await operator.publish(command, _signed("kind", METER, "time_sync"), qos=1)
            await operator.publish(
                command,
                _signed("old", METER, "relay_trip", ts=int(time.time() - 2 * FRESHNESS)),
                qos=1,
            )
            await operator.publish(command, b"{not json", qos=1)
        async with broker.client("term-0001") as terminal:  # not in allowed_clients
            await terminal.publish(
                "gridmeter/bridge/command/term-0001",
                json.dumps({"id": "terminal", "target": METER, "cmd": "relay_trip"}),
                qos=1,
            )
        await wait_until(lambda: len(observer.on(RESULT)) == 6, what="six refusals")
        results = _results(observer)
        assert {
            k: results[k]["status"] for k in ("forged", "unsigned", "kind", "old", "terminal")
        } == {k: "rejected" for k in ("forged", "unsigned", "kind", "old", "terminal")}
        assert "MAC mismatch" in results["forged"]["detail"]
        assert daemon.stats.commands_rejected == 5
        assert daemon.stats.commands_invalid == 1
        assert meter.values_at()["relay_state"] == 1  # nothing reached the meter

        async with broker.client("operator") as operator:
            await operator.publish(
                "gridmeter/bridge/command", _signed("trip", METER, "relay_trip"), qos=1
            )
            await wait_until(lambda: "trip" in _results(observer), what="the trip result")
            assert _results(observer)["trip"]["status"] == "ok"
            assert meter.values_at()["relay_state"] == 0
            # The same signed request again is a replay.
            await operator.publish(
                "gridmeter/bridge/command", _signed("trip", METER, "relay_close"), qos=1
            )
            await wait_until(lambda: len(observer.on(RESULT)) == 8, what="the replay refusal")
            assert json.loads(observer.on(RESULT)[-1])["status"] == "rejected"
            assert meter.values_at()["relay_state"] == 0

        # Home Assistant's user is listed: its own topic needs no signature (the ACL pins it).
        async with broker.client("homeassistant") as ha:
            request = json.dumps({"id": "close", "target": METER, "cmd": "relay_close"})
            await ha.publish("gridmeter/bridge/command/homeassistant", request, qos=1)
            await wait_until(lambda: "close" in _results(observer), what="the close result")
        assert _results(observer)["close"]["status"] == "ok"
        assert meter.values_at()["relay_state"] == 1
    assert daemon.stats.commands_ok == 2


async def test_a_terminal_command_goes_down_signed_and_its_ack_comes_back(
    broker: Broker, daemon: Daemon
) -> None:
    fleet = TerminalFleet(
        FleetOptions(
            count=1,
            encoding="binary",
            prefix="term",
            hmac_key=bytes.fromhex(TERMINAL_KEY),
            mac_len=8,
        )
    )
    terminal = fleet.terminals[0]
    options = BrokerOptions(port=broker.port, password=USERS["term-0001"], per_terminal_login=True)
    async with Observer(broker, [RESULT]) as observer:
        sim = asyncio.create_task(run_fleet(fleet, options, rate=20, messages=40))
        await wait_until(lambda: daemon.stats.accepted >= 1, what="the terminal's first reading")
        async with broker.client("homeassistant") as ha:
            request = json.dumps({"id": "t1", "target": "term-0001", "cmd": "relay_trip"})
            await ha.publish("gridmeter/bridge/command/homeassistant", request, qos=1)
            await wait_until(lambda: "t1" in _results(observer), what="the terminal's ack")
        await sim
        await wait_until(lambda: daemon.stats.accepted == 40, what="every reading")
    assert _results(observer)["t1"]["status"] == "ok"
    assert terminal.meter.relay is False
    assert fleet.stats.commands == 1
    assert daemon.stats.terminal_acks == 1


async def test_a_terminal_without_a_clock_gets_a_time_sync(broker: Broker, daemon: Daemon) -> None:
    codec = TerminalCodec("term-0001", Encoding.BINARY, bytes.fromhex(TERMINAL_KEY), mac_len=8)
    async with Observer(broker, ["gridmeter/term-0001/down"]) as observer:
        async with broker.client("term-0001") as terminal:
            for seq in range(3):  # ts 0: the terminal's clock is not set
                payload = codec.encode_reading(seq, 0, {"voltage_a": 230.0})
                await terminal.publish("gridmeter/term-0001/up", payload, qos=1)
        await wait_until(lambda: bool(observer.on("gridmeter/term-0001/down")), what="a command")
        await wait_until(lambda: daemon.stats.accepted == 3, what="three readings")
        await asyncio.sleep(0.2)
    commands = [codec.decode_command(p) for p in observer.on("gridmeter/term-0001/down")]
    assert [c.kind for c in commands] == [CommandKind.TIME_SYNC]  # once, not per reading
    assert abs(commands[0].issued_at - time.time()) < 5


# --- parsing and authorisation, without a broker ------------------------------------------------


def _policy(**kwargs: Any) -> CommandPolicy:
    rules = (CommandRule("nb-1", frozenset({CommandKind.RELAY_TRIP})),)
    return CommandPolicy(rules, **kwargs)


def test_a_signed_request_is_accepted_once() -> None:
    policy, guard, now = _policy(secret=COMMAND_SECRET), ReplayGuard(), time.time()
    payload = sign_request(
        {"id": "a", "target": "nb-1", "cmd": "relay_trip", "ts": int(now)}, COMMAND_SECRET
    )
    request = parse_request(CommandRoute(None), payload, policy, now, guard)
    assert (request.id, request.target, request.kind, request.sender) == (
        "a",
        "nb-1",
        "relay_trip",
        "signed",
    )
    with pytest.raises(CommandRejected, match="already used"):
        parse_request(CommandRoute(None), payload, policy, now, guard)


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        (lambda p: p.replace(b'"nb-1"', b'"nb-2"'), AckStatus.REJECTED, "MAC mismatch"),
        (lambda p: p.replace(b',"mac"', b',"mac2"'), AckStatus.REJECTED, "not signed"),
        (
            lambda p: p[:-3] + (b"1" if p[-3:-2] == b"0" else b"0") + b'"}',
            AckStatus.REJECTED,
            "MAC mismatch",
        ),
        (lambda p: b"[]", AckStatus.INVALID, "JSON object"),
        (lambda p: p.replace(b"relay_trip", b"explode"), AckStatus.INVALID, "'cmd'"),
    ],
)
def test_a_tampered_request_is_refused(change: Any, status: AckStatus, reason: str) -> None:
    now = time.time()
    payload = sign_request(
        {"id": "a", "target": "nb-1", "cmd": "relay_trip", "ts": int(now)}, COMMAND_SECRET
    )
    with pytest.raises(CommandRejected, match=reason) as err:
        parse_request(
            CommandRoute(None), change(payload), _policy(secret=COMMAND_SECRET), now, ReplayGuard()
        )
    assert err.value.status is status


def test_listed_users_need_no_signature_and_rules_still_apply() -> None:
    policy, now = _policy(allowed_clients=("homeassistant",)), time.time()
    trip = json.dumps({"id": 1, "target": "nb-1", "cmd": "relay_trip"}).encode()
    assert (
        parse_request(CommandRoute("homeassistant"), trip, policy, now, ReplayGuard()).sender
        == "homeassistant"
    )
    for route, payload, reason in [
        (CommandRoute("intruder"), trip, "unsigned request"),
        (CommandRoute(None), trip, "unsigned request"),
        (CommandRoute("homeassistant"), trip.replace(b"relay_trip", b"relay_close"), "not allowed"),
    ]:
        with pytest.raises(CommandRejected, match=reason):
            parse_request(route, payload, policy, now, ReplayGuard())


def test_command_ids_only_grow() -> None:
    ids = CommandIds()
    first = ids.next("nb-1", 1_700_000_000.5)
    assert first == 1_700_000_000
    assert ids.next("nb-1", 1_700_000_000.9) == first + 1
    assert ids.next("nb-1", 1_600_000_000) == first + 2
    assert ids.next("nb-2", 1_700_000_001) == 1_700_000_001
