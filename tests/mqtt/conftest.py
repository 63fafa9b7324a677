"""A real Mosquitto for the daemon tests: plain and TLS listeners, passwords, ACL.

Every test gets its own broker on free 127.0.0.1 ports, with a configuration written to
its tmp_path. Certificates (a CA, the broker's, a client's, and a client certificate
from a CA the broker does not trust) are made once per session with ``cryptography``;
the password file once with ``mosquitto_passwd -b``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import os
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge_agent.daemon.app import Daemon
from edge_agent.daemon.config import DaemonConfig, parse_config
from edge_agent.model import SerialSettings
from edge_agent.simulator import BusSimulator, SimMeter, TcpServer, start_tcp

MOSQUITTO = Path("/usr/sbin/mosquitto")
PASSWD_TOOL = shutil.which("mosquitto_passwd")
HOST = "127.0.0.1"

#: Test users and passwords. Terminals share one password to keep the fleet simple.
USERS = {
    "edge-agent": "agent-secret",
    "homeassistant": "ha-secret",
    "observer": "observer-secret",
    "operator": "operator-secret",
    "term-0001": "terminal-secret",
    "term-0002": "terminal-secret",
}
ACL = """\
user edge-agent
topic readwrite gridmeter/#
topic readwrite homeassistant/#

user homeassistant
topic read gridmeter/+/state
topic read gridmeter/+/status
topic read gridmeter/bridge/result
topic readwrite homeassistant/#

user observer
topic read #

user operator
topic write gridmeter/bridge/command
topic read gridmeter/bridge/result

pattern write gridmeter/%u/up
pattern write gridmeter/%u/ack
pattern write gridmeter/%u/status
pattern read gridmeter/%u/down
pattern write gridmeter/bridge/command/%u
"""
DLT_ADDRESS = "000000000042"
#: 32 hex digits: the HMAC key of the test terminals.
TERMINAL_KEY = "000102030405060708090a0b0c0d0e0f"
COMMAND_SECRET = "a-long-shared-command-secret"


@pytest.fixture(autouse=True)
def _sockets(socket_enabled: None) -> None:
    """Let these tests talk TCP to 127.0.0.1 (Home Assistant's test plugin blocks sockets)."""


# --- certificates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for the TLS listener and its clients."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    #: A client certificate signed by a CA the broker does not trust.
    rogue_cert: Path
    rogue_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        purpose = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """Make a CA, a broker certificate for 127.0.0.1, a client certificate, a rogue one."""
    d = tmp_path_factory.mktemp("tls")
    ca_key, rogue_ca_key = _key(), _key()
    ca = _certificate("Grid Meter test CA", ca_key, None, ca=True)
    rogue_ca = _certificate("Rogue CA", rogue_ca_key, None, ca=True)
    server_key, client_key, rogue_key = _key(), _key(), _key()
    return TlsFiles(
        ca=_write_cert(d / "ca.crt", ca),
        server_cert=_write_cert(
            d / "server.crt",
            _certificate("broker", server_key, (ca.subject, ca_key), server=True),
        ),
        server_key=_write_key(d / "server.key", server_key),
        client_cert=_write_cert(
            d / "client.crt", _certificate("edge-agent", client_key, (ca.subject, ca_key))
        ),
        client_key=_write_key(d / "client.key", client_key),
        rogue_cert=_write_cert(
            d / "rogue.crt", _certificate("rogue", rogue_key, (rogue_ca.subject, rogue_ca_key))
        ),
        rogue_key=_write_key(d / "rogue.key", rogue_key),
    )


@pytest.fixture(scope="session")
def password_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write a Mosquitto password file for :data:`USERS`."""
    if PASSWD_TOOL is None or not MOSQUITTO.exists():
        pytest.skip("Mosquitto is not installed (/usr/sbin/mosquitto; scripts/setup installs it)")
    path = tmp_path_factory.mktemp("passwd") / "passwd"
    path.touch()
    for user, password in USERS.items():
        subprocess.run([PASSWD_TOOL, "-b", str(path), user, password], check=True)
    return path


# --- the broker -----------------------------------------------------------------------------


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _accepting(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) == 0


@dataclass
class Broker:
    """A Mosquitto process with a plain and a TLS (client certificate required) listener."""

    workdir: Path
    tls: TlsFiles
    passwd: Path
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> Path:
        (self.workdir / "data").mkdir(exist_ok=True)
        (self.workdir / "acl").write_text(ACL)
        lines = [
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {self.passwd}",
            f"acl_file {self.workdir / 'acl'}",
            "persistence true",
            f"persistence_location {self.workdir / 'data'}/",
            "max_queued_messages 100000",
            f"listener {self.port} {HOST}",
            f"listener {self.tls_port} {HOST}",
            f"cafile {self.tls.ca}",
            f"certfile {self.tls.server_cert}",
            f"keyfile {self.tls.server_key}",
            "require_certificate true",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # else mosquitto drops to user mosquitto
        path = self.workdir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> None:
        """Start (or restart) on the same ports; return once both listeners accept."""
        config = self.write_config()
        log = (self.workdir / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([str(MOSQUITTO), "-c", str(config)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 10
        while not (_accepting(self.port) and _accepting(self.tls_port)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start: {self.log()[-2000:]}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop gracefully (SIGTERM: sessions and retained messages are saved)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self, user: str, *, password: str | None = None, **kwargs: Any) -> aiomqtt.Client:
        """Return an aiomqtt client for the plain listener, logged in as ``user``."""
        return aiomqtt.Client(
            HOST, self.port, username=user, password=password or USERS[user], **kwargs
        )


@pytest.fixture
def broker(tmp_path: Path, tls_files: TlsFiles, password_file: Path) -> Iterator[Broker]:
    """Run a broker for one test."""
    workdir = tmp_path / "broker"
    workdir.mkdir()
    broker = Broker(workdir, tls_files, password_file)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


# --- observing what the daemon publishes ----------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One received message."""

    topic: str
    payload: bytes
    retain: bool


class Observer:
    """A persistent-session subscriber that survives broker restarts and keeps everything."""

    def __init__(self, broker: Broker, filters: list[str], client_id: str = "observer") -> None:
        self.broker = broker
        self.filters = filters
        self.client_id = client_id
        self.messages: list[Seen] = []
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Observer:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.subscribed.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with self.broker.client(
                    "observer", identifier=self.client_id, clean_session=False
                ) as client:
                    await client.subscribe([(f, 1) for f in self.filters])
                    self.subscribed.set()
                    async for message in client.messages:
                        payload = message.payload
                        assert isinstance(payload, bytes)
                        self.messages.append(Seen(message.topic.value, payload, message.retain))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)

    def on(self, topic: str) -> list[bytes]:
        """Payloads received on one topic, in arrival order."""
        return [m.payload for m in self.messages if m.topic == topic]


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``condition`` every 20 ms; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.02)


# --- simulated bus and daemon configuration -------------------------------------------------


@pytest.fixture
async def sim_bus() -> AsyncIterator[tuple[BusSimulator, TcpServer]]:
    """One simulated DL/T 645-2007 meter behind a TCP "gateway" that answers at once."""
    sim = BusSimulator([SimMeter("dlt645-2007-1phase", DLT_ADDRESS)], SerialSettings(115200))
    server = await start_tcp(sim, HOST, 0)
    try:
        yield sim, server
    finally:
        await server.close()


def daemon_settings(
    broker: Broker,
    spool: Path,
    *,
    bus_port: int | None = None,
    terminals: list[dict[str, Any]] | None = None,
    commands: dict[str, Any] | None = None,
    poll_interval: float = 0.2,
    **mqtt: Any,
) -> dict[str, Any]:
    """Return a daemon configuration mapping (as the YAML file would hold it)."""
    settings: dict[str, Any] = {
        "mqtt": {
            "host": HOST,
            "port": broker.port,
            "username": "edge-agent",
            "password": USERS["edge-agent"],
            "client_id": "edge-agent-test",
            "keepalive": 10,
            **mqtt,
        },
        "poll_interval": poll_interval,
        "spool": {"path": str(spool)},
    }
    if bus_port is not None:
        settings["buses"] = [
            {
                "name": "bus1",
                "link": {"tcp": f"{HOST}:{bus_port}"},
                "protocol": "dlt645-2007",
                "timeout": 0.5,
                "meters": [{"address": DLT_ADDRESS, "profile": "dlt645-2007-1phase"}],
            }
        ]
    if terminals:
        settings["terminals"] = terminals
    if commands:
        settings["commands"] = commands
    return settings


def daemon_config(broker: Broker, spool: Path, **kwargs: Any) -> DaemonConfig:
    """Return a validated daemon configuration, see :func:`daemon_settings`."""
    return parse_config(daemon_settings(broker, spool, **kwargs))


@contextlib.asynccontextmanager
async def running(daemon: Daemon) -> AsyncIterator[Daemon]:
    """Run ``daemon`` until the block ends, once it has connected to the broker."""
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.connected.wait(), 10)
        yield daemon
    finally:
        daemon.stop()
        await task


def spool_rows(path: Path) -> list[tuple[int, str, bytes, float]]:
    """Return what a spool file holds, read without writing to it."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        try:
            return list(db.execute("SELECT id, topic, payload, timestamp FROM spool ORDER BY id"))
        except sqlite3.OperationalError:  # the daemon is still creating the file
            return []
