"""Broker security as the daemon meets it: TLS with client certificates, passwords, ACL."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiomqtt
import pytest

from edge_agent.daemon.app import Daemon
from edge_agent.daemon.backoff import Backoff
from edge_agent.protocols.terminal import STATUS_OFFLINE, STATUS_ONLINE, TerminalCodec

from .conftest import (
    HOST,
    USERS,
    Broker,
    Observer,
    TlsFiles,
    daemon_config,
    running,
    wait_until,
)


def _context(tls: TlsFiles, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls.ca))
    # TLS 1.2 reports a refused client certificate in the handshake; TLS 1.3 only when
    # the client waits for CONNACK (aiomqtt then waits for its timeout).
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    if cert and key:
        context.load_cert_chain(str(cert), str(key))
    return context


async def _connects(broker: Broker, port: int, user: str, password: str, **kwargs: object) -> bool:
    try:
        async with aiomqtt.Client(
            HOST,
            port,
            username=user,
            password=password,
            timeout=5,
            **kwargs,  # type: ignore[arg-type]
        ) as client:
            await client.publish("gridmeter/bridge/probe", b"x", qos=1)
    except aiomqtt.MqttError:
        return False
    return True


async def test_wrong_password_is_refused(broker: Broker) -> None:
    assert await _connects(broker, broker.port, "edge-agent", USERS["edge-agent"])
    assert not await _connects(broker, broker.port, "edge-agent", "wrong-password")
    assert not await _connects(broker, broker.port, "nobody", "whatever")


async def test_tls_listener_requires_a_trusted_client_certificate(
    broker: Broker, tls_files: TlsFiles
) -> None:
    user, password = "edge-agent", USERS["edge-agent"]
    good = _context(tls_files, tls_files.client_cert, tls_files.client_key)
    no_cert = _context(tls_files, None, None)
    rogue = _context(tls_files, tls_files.rogue_cert, tls_files.rogue_key)
    assert await _connects(broker, broker.tls_port, user, password, tls_context=good)
    assert not await _connects(broker, broker.tls_port, user, password, tls_context=no_cert)
    assert not await _connects(broker, broker.tls_port, user, password, tls_context=rogue)
    assert not await _connects(broker, broker.tls_port, user, "wrong", tls_context=good)


async def test_daemon_over_tls_announces_itself_and_leaves_a_will(
    broker: Broker, tls_files: TlsFiles, tmp_path: Path
) -> None:
    config = daemon_config(
        broker,
        tmp_path / "spool.db",
        port=broker.tls_port,
        tls={
            "ca": str(tls_files.ca),
            "cert": str(tls_files.client_cert),
            "key": str(tls_files.client_key),
        },
        terminals=[{"id": "term-0001"}],
    )
    async with Observer(broker, ["gridmeter/bridge/status"]) as observer:
        daemon = Daemon(config, reconnect=Backoff(0.1, 0.5))
        task = asyncio.create_task(daemon.run())
        await asyncio.wait_for(daemon.connected.wait(), 10)
        await wait_until(lambda: observer.on("gridmeter/bridge/status") == [STATUS_ONLINE.encode()])
        daemon.stop()
        await task
        await wait_until(
            lambda: observer.on("gridmeter/bridge/status")[-1:] == [STATUS_OFFLINE.encode()]
        )
    assert daemon.stats.connects == 1


async def test_daemon_with_a_wrong_password_keeps_retrying(broker: Broker, tmp_path: Path) -> None:
    config = daemon_config(
        broker, tmp_path / "spool.db", password="wrong", terminals=[{"id": "term-0001"}]
    )
    daemon = Daemon(config, reconnect=Backoff(0.05, 0.1))
    task = asyncio.create_task(daemon.run())
    await wait_until(lambda: daemon.stats.connect_failures >= 3, what="three refused attempts")
    assert not daemon.connected.is_set()
    daemon.stop()
    await task
    assert daemon.stats.connects == 0


async def test_acl_stops_a_terminal_publishing_as_another(broker: Broker, tmp_path: Path) -> None:
    config = daemon_config(
        broker, tmp_path / "spool.db", terminals=[{"id": "term-0001"}, {"id": "term-0002"}]
    )
    forged = TerminalCodec("term-0002").encode_reading(0, 1_700_000_000, {"voltage_a": 1.0})
    genuine = TerminalCodec("term-0001").encode_reading(0, 1_700_000_000, {"voltage_a": 230.0})
    async with running(Daemon(config)) as daemon:
        async with broker.client("term-0001") as terminal:
            # Denied by the ACL: mosquitto acknowledges and drops it.
            await terminal.publish("gridmeter/term-0002/up", forged, qos=1)
            await terminal.publish("gridmeter/term-0001/up", genuine, qos=1)
        await wait_until(lambda: daemon.stats.accepted == 1, what="the genuine reading")
        await asyncio.sleep(0.2)
        assert daemon.stats.received == 1
        assert daemon.bridge.keys("term-0002") == []


@pytest.mark.parametrize(
    "topic", ["gridmeter/term-0001/state", "gridmeter/bridge/command/homeassistant"]
)
async def test_acl_stops_a_terminal_writing_other_topics(broker: Broker, topic: str) -> None:
    async with Observer(broker, ["gridmeter/#"]) as observer:
        async with broker.client("term-0001") as terminal:
            await terminal.publish(topic, b'{"voltage_a":1}', qos=1)
            await terminal.publish("gridmeter/term-0001/up", b"marker", qos=1)
        await wait_until(lambda: observer.on("gridmeter/term-0001/up") == [b"marker"])
        assert observer.on(topic) == []
