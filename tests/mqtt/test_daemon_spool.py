"""Store-and-forward: nothing appended to the spool is lost.

Whatever happens to the broker or to the daemon, readings arrive in order with their
original time stamps.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from edge_agent.daemon.app import Daemon
from edge_agent.daemon.backoff import Backoff
from edge_agent.daemon.spool import Row
from edge_agent.daemon.topics import DaemonTopics, meter_device
from edge_agent.protocols.terminal import STATUS_OFFLINE, Channel, TerminalCodec
from edge_agent.simulator import BusSimulator, TcpServer

from .conftest import (
    DLT_ADDRESS,
    Broker,
    Observer,
    daemon_config,
    daemon_settings,
    spool_rows,
    wait_until,
)

STATE = DaemonTopics().meter("bus1", DLT_ADDRESS, Channel.STATE)
REPO = Path(__file__).resolve().parents[2]


def _first_timestamps(payloads: Iterable[bytes]) -> list[float]:
    """Time stamps in arrival order, QoS 1 redeliveries dropped."""
    seen: list[float] = []
    for payload in payloads:
        ts = json.loads(payload)["timestamp"]
        if ts not in seen:
            seen.append(ts)
    return seen


async def test_broker_restart_loses_nothing(
    broker: Broker, sim_bus: tuple[BusSimulator, TcpServer], tmp_path: Path
) -> None:
    _, server = sim_bus
    config = daemon_config(broker, tmp_path / "spool.db", bus_port=server.port)
    daemon = Daemon(config, reconnect=Backoff(0.2, 0.5))
    appended: list[tuple[str, float]] = []
    append_many = daemon.spool.append_many

    def recording(rows: Iterable[Row]) -> list[int]:
        rows = list(rows)
        appended.extend((row[0], row[3]) for row in rows)
        return append_many(rows)

    daemon.spool.append_many = recording  # type: ignore[method-assign]
    async with Observer(broker, [STATE]) as observer:
        task = asyncio.create_task(daemon.run())
        await wait_until(lambda: len(observer.on(STATE)) >= 2, what="readings before the outage")

        broker.stop()
        down_at = time.time()
        await wait_until(
            lambda: daemon.spool.count() >= 4, what="readings spooled during the outage"
        )
        assert not daemon.connected.is_set()
        broker.start()
        up_at = time.time()

        await wait_until(daemon.connected.is_set, what="the reconnection")
        await wait_until(lambda: daemon.spool.count() == 0, what="the spool to drain")
        daemon.stop()
        await task
        # A poll may have landed after the drain: it waits in the spool for the next start.
        left = [ts for _, _, _, ts in spool_rows(tmp_path / "spool.db")]
        everything = [ts for topic, ts in appended if topic == STATE]
        expected = everything[: len(everything) - len(left)]
        assert everything[len(expected) :] == left
        await wait_until(
            lambda: len(_first_timestamps(observer.on(STATE))) >= len(expected),
            what="every reading",
        )
    received = _first_timestamps(observer.on(STATE))
    assert received == expected  # every reading, in order, with its own time stamp
    during_outage = [ts for ts in expected if down_at < ts < up_at]
    assert len(during_outage) >= 3
    assert daemon.stats.connects == 2
    assert daemon.stats.published >= len(expected)
    assert len(left) <= 2


def _start_daemon(config_path: Path, log: Path) -> Any:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "edge_agent.cli_daemon", "run", str(config_path)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
    )


async def test_kill_9_loses_no_spooled_reading(
    broker: Broker, sim_bus: tuple[BusSimulator, TcpServer], tmp_path: Path
) -> None:
    _, server = sim_bus
    spool = tmp_path / "spool.db"
    config_path = tmp_path / "edge-agent.yaml"
    config_path.write_text(
        yaml.safe_dump(daemon_settings(broker, spool, bus_port=server.port, poll_interval=0.1))
    )
    log = tmp_path / "daemon.log"
    broker.stop()  # the daemon polls into its spool while the broker is away

    daemon = _start_daemon(config_path, log)
    try:
        await wait_until(
            lambda: spool.exists() and len(spool_rows(spool)) >= 5, 20, "readings in the spool"
        )
        daemon.send_signal(signal.SIGKILL)
        await asyncio.to_thread(daemon.wait, 10)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    spooled = spool_rows(spool)
    assert all(topic == STATE for _, topic, _, _ in spooled)
    expected = [ts for _, _, _, ts in spooled]
    assert expected == sorted(expected)
    assert [json.loads(payload)["timestamp"] for _, _, payload, _ in spooled] == expected

    broker.start()
    status = f"gridmeter/{meter_device('bus1', DLT_ADDRESS)}/status"
    async with Observer(broker, [STATE, "gridmeter/bridge/status", status]) as observer:
        daemon = _start_daemon(config_path, log)
        try:
            await wait_until(
                lambda: _first_timestamps(observer.on(STATE))[: len(expected)] == expected,
                20,
                "the readings spooled before kill -9",
            )
            await wait_until(
                lambda: len(_first_timestamps(observer.on(STATE))) > len(expected),
                20,
                "a reading of the restarted daemon",
            )
            daemon.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(daemon.wait, 10) == 0, log.read_text()
        finally:
            if daemon.poll() is None:
                daemon.kill()
        await wait_until(
            lambda: observer.on("gridmeter/bridge/status")[-1:] == [STATUS_OFFLINE.encode()],
            what="offline after SIGTERM",
        )
    received = _first_timestamps(observer.on(STATE))
    assert received[: len(expected)] == expected
    assert received == sorted(received)
    assert observer.on(status)[:1] == [b"online"]


async def test_kill_9_loses_no_terminal_reading_the_broker_handed_over(
    broker: Broker, tmp_path: Path
) -> None:
    """Readings the broker handed to a daemon that died are delivered again.

    The daemon PUBACKs a terminal reading only once it is in the spool, and its session
    is persistent, so the broker redelivers what was in flight and keeps what follows.
    """
    config_path = tmp_path / "edge-agent.yaml"
    settings = daemon_settings(broker, tmp_path / "spool.db", terminals=[{"id": "term-0001"}])
    config_path.write_text(yaml.safe_dump(settings))
    log = tmp_path / "daemon.log"
    state = "gridmeter/term-0001/state"
    codec = TerminalCodec("term-0001")
    total, first_ts = 300, 1_700_000_000
    async with Observer(broker, [state, "gridmeter/bridge/status"]) as observer:
        daemon = _start_daemon(config_path, log)
        try:
            await wait_until(
                lambda: observer.on("gridmeter/bridge/status") == [b"online"], 20, "the daemon"
            )
            async with broker.client("term-0001") as terminal:
                for seq in range(total):
                    reading = codec.encode_reading(seq, first_ts + seq, {"voltage_a": 230.0})
                    await terminal.publish("gridmeter/term-0001/up", reading, qos=1)
                    if seq == total // 3:
                        daemon.send_signal(signal.SIGKILL)
                        await asyncio.to_thread(daemon.wait, 10)
                        daemon = _start_daemon(config_path, log)
            await wait_until(
                lambda: len(_first_timestamps(observer.on(state))) == total, 30, "every reading"
            )
            daemon.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(daemon.wait, 10) == 0, log.read_text()
        finally:
            if daemon.poll() is None:
                daemon.kill()
    assert _first_timestamps(observer.on(state)) == [first_ts + s for s in range(total)]
