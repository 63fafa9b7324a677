"""The terminal bridge: simulated terminals in, verified state and discovery out."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge_agent.daemon.app import Daemon, DaemonError
from edge_agent.daemon.backoff import Backoff
from edge_agent.daemon.bridge import Rejected, TerminalBridge, Verdict
from edge_agent.daemon.config import parse_config
from edge_agent.daemon.stats import DaemonStats
from edge_agent.daemon.topics import DaemonTopics, meter_device
from edge_agent.profiles import load_profile
from edge_agent.protocols.terminal import Encoding, TerminalCodec
from edge_agent.simulator import BusSimulator, TcpServer
from edge_agent.terminal_sim import BrokerOptions, FleetOptions, TerminalFleet, run_fleet

from .conftest import (
    DLT_ADDRESS,
    TERMINAL_KEY,
    USERS,
    Broker,
    Observer,
    daemon_config,
    running,
    wait_until,
)

KEY = bytes.fromhex(TERMINAL_KEY)
REPO = Path(__file__).resolve().parents[2]
TERMINALS = [
    {"id": "term-0001", "hmac_key": TERMINAL_KEY, "profile": "dlt645-2007-1phase"},
    {"id": "term-0002", "hmac_key": TERMINAL_KEY, "encoding": "binary"},
]


@pytest.fixture
async def daemon(broker: Broker, tmp_path: Path) -> AsyncIterator[Daemon]:
    config = daemon_config(broker, tmp_path / "spool.db", terminals=TERMINALS)
    daemon = Daemon(config, stats_interval=0.2)
    async with running(daemon):
        yield daemon


async def test_faulty_fleet_is_checked_counted_and_republished(
    broker: Broker, daemon: Daemon
) -> None:
    fleet = TerminalFleet(
        FleetOptions(
            count=2,
            encoding="both",
            prefix="term",
            hmac_key=KEY,
            duplicates=0.2,
            out_of_order=0.2,
            malformed=0.2,
            seed=7,
        )
    )
    options = BrokerOptions(port=broker.port, password=USERS["term-0001"], per_terminal_login=True)
    topics = [f"gridmeter/term-000{i}/state" for i in (1, 2)]
    async with Observer(broker, topics) as observer:
        await run_fleet(fleet, options, rate=200, messages=30, answer_commands=False)
        sent = fleet.stats
        assert sent.duplicates and sent.reordered and sent.malformed  # the seed gives each fault
        await wait_until(
            lambda: daemon.stats.received == sent.published, what="every payload at the daemon"
        )
        stats = daemon.stats
        assert stats.accepted == sent.readings == 60
        assert stats.duplicates == sent.duplicates
        assert stats.out_of_order == sent.reordered == stats.missing
        # A truncated signed binary payload fails its MAC check before anything else.
        assert stats.malformed + stats.auth_failed == sent.malformed
        assert stats.malformed > 0
        await wait_until(lambda: daemon.spool.count() == 0 and stats.published == 60)
        await wait_until(lambda: sum(len(observer.on(t)) for t in topics) >= 60)
    for topic in topics:
        states = [json.loads(p) for p in observer.on(topic)]
        assert len(states) == 30
        assert all(230 * 0.85 < s["voltage_a"] < 230 * 1.15 for s in states)
        assert all(s["timestamp"] > 1.7e9 for s in states)


async def test_spoofed_and_unsigned_readings_are_rejected(broker: Broker, daemon: Daemon) -> None:
    genuine = TerminalCodec("term-0001", key=KEY).encode_reading(
        0, 1_700_000_000, {"voltage_a": 230.0}
    )
    spoofed = TerminalCodec("term-0001", key=bytes(16)).encode_reading(
        1, 1_700_000_001, {"voltage_a": 1.0}
    )
    unsigned = TerminalCodec("term-0001").encode_reading(2, 1_700_000_002, {"voltage_a": 2.0})
    other = TerminalCodec("term-0002", Encoding.BINARY, KEY).encode_reading(
        3, 1_700_000_003, {"voltage_a": 3.0}
    )
    async with broker.client("term-0001") as terminal:
        for payload in (spoofed, unsigned, other, genuine):
            await terminal.publish("gridmeter/term-0001/up", payload, qos=1)
    await wait_until(lambda: daemon.stats.received == 4, what="four payloads")
    assert (daemon.stats.auth_failed, daemon.stats.accepted) == (3, 1)


async def test_malformed_payloads_are_rejected_and_counted(broker: Broker, daemon: Daemon) -> None:
    bad = [
        b"",
        b"{",
        b"[1,2]",
        b'{"seq":1,"ts":2,"values":{"voltage_a":"high"}}',
        b"\xb1\x00\x01",
        b"\xff" * 40,
    ]
    async with broker.client("edge-agent") as client:
        for payload in bad:
            await client.publish("gridmeter/term-0002/up", payload, qos=1)
        await client.publish("gridmeter/stranger/up", b"{}", qos=1)
    await wait_until(lambda: daemon.stats.received == len(bad) + 1, what="every payload")
    # term-0002 has a key: unsigned garbage that still parses as far as the MAC fails it.
    assert daemon.stats.malformed + daemon.stats.auth_failed == len(bad)
    assert daemon.stats.malformed >= 4
    assert daemon.stats.unknown_terminal == 1
    assert daemon.stats.accepted == 0
    # The counters are also published, retained, for anyone to watch.
    async with Observer(broker, ["gridmeter/bridge/stats"], "stats-watcher") as observer:
        await wait_until(
            lambda: any(
                json.loads(p)["received"] == len(bad) + 1
                for p in observer.on("gridmeter/bridge/stats")
            ),
            what="the counters on the stats topic",
        )
    counters = json.loads(observer.on("gridmeter/bridge/stats")[-1])
    assert counters["malformed"] == daemon.stats.malformed
    assert counters["unknown_terminal"] == 1


async def test_discovery_is_retained_for_meters_and_terminals(
    broker: Broker, sim_bus: tuple[BusSimulator, TcpServer], tmp_path: Path
) -> None:
    _, server = sim_bus
    config = daemon_config(broker, tmp_path / "spool.db", bus_port=server.port, terminals=TERMINALS)
    async with running(Daemon(config)) as daemon:
        async with broker.client("term-0002") as terminal:
            payload = TerminalCodec("term-0002", Encoding.BINARY, KEY).encode_reading(
                0, 0, {"voltage_a": 231.5, "energy_import_total": 12.5}
            )
            await terminal.publish("gridmeter/term-0002/up", payload, qos=1)
        await wait_until(lambda: daemon.stats.accepted == 1)
        await asyncio.sleep(0.2)
    # A subscriber that comes later (Home Assistant starting) still gets every device.
    async with Observer(broker, ["homeassistant/device/+/config"], "late-ha") as observer:
        node = meter_device("bus1", DLT_ADDRESS)
        names = [f"homeassistant/device/{n}/config" for n in (node, "term-0001", "term-0002")]
        await wait_until(lambda: all(observer.on(n) for n in names), what="three devices")
    assert all(m.retain for m in observer.messages)
    meter, term1, term2 = (json.loads(observer.on(n)[-1]) for n in names)
    profile = load_profile("dlt645-2007-1phase")
    assert list(meter["components"]) == list(profile.keys)
    assert meter["state_topic"] == f"gridmeter/{node}/state"
    assert [a["topic"] for a in meter["availability"]] == [
        "gridmeter/bridge/status",
        f"gridmeter/{node}/status",
    ]
    assert meter["device"]["model"] == profile.model
    assert list(term1["components"]) == list(profile.keys)  # from its configured profile
    assert sorted(term2["components"]) == ["energy_import_total", "voltage_a"]  # as seen
    assert term2["state_topic"] == "gridmeter/term-0002/state"
    assert term2["availability"][1] == {"topic": "gridmeter/term-0002/status"}


async def test_simulate_terminals_command_line(broker: Broker, daemon: Daemon) -> None:
    command = [
        sys.executable, "-m", "edge_agent.cli_daemon", "simulate-terminals",
        "--broker", f"127.0.0.1:{broker.port}", "--count", "2", "--encoding", "both",
        "--prefix", "term", "--rate", "100", "--messages", "5", "--hmac-key", TERMINAL_KEY,
        "--per-terminal-login", "--password", USERS["term-0001"], "--json",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=30, env=env
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["readings"] == 10
    await wait_until(lambda: daemon.stats.accepted == 10, what="ten readings")


# --- the bridge alone -----------------------------------------------------------------------


def _bridge() -> TerminalBridge:
    config = parse_config({"mqtt": {"host": "x"}, "terminals": TERMINALS})
    return TerminalBridge(config.terminals, DaemonTopics(), DaemonStats())


def test_bridge_keeps_the_reading_time_and_fills_in_a_missing_clock() -> None:
    bridge = _bridge()
    codec = TerminalCodec("term-0001", key=KEY)
    out = bridge.reading(
        "term-0001", codec.encode_reading(5, 1_700_000_000, {"frequency": 50.01}), 9.0
    )
    assert not isinstance(out, Rejected)
    assert out.topic == "gridmeter/term-0001/state"
    assert (out.qos, out.timestamp) == (1, 1_700_000_000.0)
    assert json.loads(out.payload) == {"frequency": 50.01, "timestamp": 1_700_000_000.0}
    assert bridge.take_clock_unset() == []
    out = bridge.reading("term-0001", codec.encode_reading(0, 0, {"frequency": 50.0}), 9.5)
    assert not isinstance(out, Rejected)
    assert out.timestamp == 9.5
    assert bridge.take_clock_unset() == ["term-0001"]
    assert bridge.stats.restarts == 1


def test_bridge_verdicts() -> None:
    bridge = _bridge()
    codec = TerminalCodec("term-0002", Encoding.BINARY, KEY, mac_len=8)
    first = codec.encode_reading(10, 1_700_000_010, {"voltage_a": 230.0})
    verdicts = [
        bridge.reading("term-0002", payload, 0.0)
        for payload in (
            first,
            first,
            codec.encode_reading(13, 1_700_000_013, {"voltage_a": 230.0}),
            codec.encode_reading(11, 1_700_000_011, {"voltage_a": 230.0}),
            b"\xb1\x01" + bytes(11) + b"forged-mac",
            b"\xc1\x00",
        )
    ]
    kinds = [v.verdict if isinstance(v, Rejected) else "ok" for v in verdicts]
    assert kinds == ["ok", Verdict.DUPLICATE, "ok", "ok", Verdict.AUTH_FAILED, Verdict.MALFORMED]
    stats = bridge.stats
    assert (stats.accepted, stats.duplicates, stats.missing, stats.out_of_order) == (3, 1, 2, 1)
    assert isinstance(bridge.reading("nobody", first, 0.0), Rejected)
    assert stats.unknown_terminal == 1
    assert bridge.take_grown() == ["term-0001", "term-0002"]
    assert bridge.keys("term-0002") == ["voltage_a"]


def test_devices_that_would_share_a_discovery_node_are_refused(tmp_path: Path) -> None:
    bus = {
        "name": "bus",
        "link": {"tcp": "127.0.0.1:1"},
        "protocol": "modbus-tcp",
        "meters": [{"address": 1, "profile": "eastron-sdm630"}],
    }
    for terminals in ([{"id": "bus_1"}], [{"id": "NB-1"}, {"id": "nb-1"}]):
        config = parse_config(
            {
                "mqtt": {"host": "x"},
                "buses": [bus],
                "terminals": terminals,
                "spool": {"path": str(tmp_path / "spool.db")},
            }
        )
        with pytest.raises(DaemonError, match="would both be device"):
            Daemon(config)
    assert not (tmp_path / "spool.db").exists()  # refused before opening anything


def test_backoff_doubles_up_to_its_cap_and_restarts() -> None:
    backoff = Backoff(0.5, 4.0, jitter=0.0)
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    backoff.reset()
    assert backoff.next() == 0.5
    jittery = Backoff(1.0, 8.0, jitter=0.2)
    assert all(0.8 * 2**i <= jittery.next() <= 2**i for i in range(3))
