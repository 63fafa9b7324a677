"""Daemon configuration: the shipped example, defaults, and errors that name the bad field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from edge_agent.daemon.config import (
    CommandPolicy,
    CommandRule,
    ConfigFieldError,
    SerialLink,
    TcpLink,
    TlsConfig,
    format_path,
    load_config,
    parse_config,
)
from edge_agent.errors import ConfigError
from edge_agent.model import Wire
from edge_agent.profiles import PACKAGE_DIR
from edge_agent.protocols.terminal import CommandKind, Encoding

EXAMPLE = Path(__file__).resolve().parent.parent / "deploy" / "edge-agent.example.yaml"
KEY_HEX = "00112233445566778899aabbccddeeff"


def test_example_config_is_valid() -> None:
    config = load_config(EXAMPLE, check_files=False)
    assert config.mqtt.host == "broker.example.net"
    assert config.mqtt.tls == TlsConfig(ca=Path("/etc/edge-agent/tls/ca.crt"))
    assert config.mqtt.discovery_prefix == "homeassistant"
    assert [b.name for b in config.buses] == ["rs485-a", "modbus-b", "gateway"]
    dlt, modbus, gateway = config.buses
    assert dlt.link == SerialLink("/dev/ttyUSB0", 2400, "E", 1, 8)
    assert dlt.wire is Wire.DLT645_2007
    assert dlt.meters[0].address == "000012345678"
    assert modbus.link == SerialLink("/dev/ttyUSB1", 9600, "N", 1, 8)
    assert (modbus.poll_interval, modbus.timeout) == (5.0, 0.5)
    assert gateway.link == TcpLink("192.168.1.50", 502)
    assert gateway.meters[0].name == "gateway 1"
    terminal = config.terminals[0]
    assert (terminal.encoding, terminal.mac_length) == (Encoding.BINARY, 8)
    assert terminal.hmac_key == bytes.fromhex(KEY_HEX)
    assert config.spool.max_entries == 100_000
    assert config.commands.allows("nb-0001", CommandKind.TIME_SYNC)
    assert not config.commands.allows("rs485-a/000012345678", CommandKind.TIME_SYNC)


def test_example_profiles_ship_with_the_package() -> None:
    shipped = {path.stem for path in PACKAGE_DIR.glob("*.yaml")}
    config = load_config(EXAMPLE, check_files=False)
    used = {m.profile for bus in config.buses for m in bus.meters}
    used |= {t.profile for t in config.terminals if t.profile}
    assert used <= shipped


def test_example_tls_files_are_checked_by_default() -> None:
    with pytest.raises(ConfigFieldError, match=r"^mqtt\.tls\.ca: file not found") as info:
        load_config(EXAMPLE)
    assert info.value.path == ("mqtt", "tls", "ca")


def _minimal() -> dict[str, Any]:
    return {"mqtt": {"host": "localhost"}, "terminals": [{"id": "nb-1"}]}


def test_defaults() -> None:
    config = parse_config(_minimal())
    mqtt = config.mqtt
    assert (mqtt.port, mqtt.tls, mqtt.username, mqtt.client_id) == (1883, None, None, "edge-agent")
    assert (mqtt.keepalive, mqtt.base_topic, mqtt.discovery_prefix) == (
        60,
        "gridmeter",
        "homeassistant",
    )
    assert config.poll_interval == 10.0
    assert config.spool.path == Path("/var/lib/edge-agent/spool.db")
    terminal = config.terminals[0]
    assert (terminal.name, terminal.encoding, terminal.hmac_key) == ("nb-1", Encoding.JSON, None)
    assert config.commands == CommandPolicy()


def test_tls_files_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    for name in ("ca.crt", "me.crt", "me.key"):
        (tmp_path / "tls" / name).write_text("x")
    (tmp_path / "config.yaml").write_text(
        "mqtt:\n  host: h\n  tls: {ca: tls/ca.crt, cert: tls/me.crt, key: tls/me.key}\n"
        "terminals: [{id: t1}]\nspool: {path: spool.db}\n"
    )
    config = load_config(tmp_path / "config.yaml")
    assert config.mqtt.port == 8883
    assert config.mqtt.tls == TlsConfig(
        tmp_path / "tls/ca.crt", tmp_path / "tls/me.crt", tmp_path / "tls/me.key"
    )
    assert config.spool.path == tmp_path / "spool.db"


def test_tls_true_uses_system_store() -> None:
    data = _minimal()
    data["mqtt"]["tls"] = True
    assert parse_config(data).mqtt.tls == TlsConfig()


def test_secrets_stay_out_of_repr() -> None:
    data = _minimal()
    data["mqtt"] |= {"username": "u", "password": "hunter2-password"}
    data["terminals"][0]["hmac_key"] = KEY_HEX
    data["commands"] = {"secret": "s3cr3t-shared-secret", "allow": []}
    text = repr(parse_config(data))
    for secret in ("hunter2-password", KEY_HEX, "s3cr3t-shared-secret", "\\x00\\x11"):
        assert secret not in text


def test_command_policy() -> None:
    policy = CommandPolicy((CommandRule("nb-1", frozenset({CommandKind.RELAY_TRIP})),))
    assert policy.allows("nb-1", CommandKind.RELAY_TRIP)
    assert not policy.allows("nb-1", CommandKind.RELAY_CLOSE)
    assert not policy.allows("nb-2", CommandKind.RELAY_TRIP)


def _bus(**changes: Any) -> dict[str, Any]:
    bus = {
        "name": "a",
        "link": {"serial": "/dev/ttyUSB0"},
        "protocol": "dlt645-2007",
        "meters": [{"address": "000000000001", "profile": "dlt645-2007-1phase"}],
    }
    return bus | changes


def _with(path: tuple[str | int, ...], value: Any, base: dict[str, Any] | None = None) -> Any:
    data = copy.deepcopy(base if base is not None else _minimal())
    target: Any = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return data


_WITH_BUS = {**_minimal(), "buses": [_bus()]}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], r"^expected a dictionary"),
        ({"terminals": []}, r"^mqtt: required key not provided"),
        (_with(("mqtt", "hots"), "x"), r"^mqtt\.hots: extra keys not allowed"),
        (_with(("mqtt", "port"), 70000), r"^mqtt\.port: value must be at most 65535"),
        (_with(("mqtt", "base_topic"), "a/#"), r"^mqtt\.base_topic: must be a non-empty topic"),
        (_with(("mqtt", "password"), "p"), r"^mqtt\.password: a password needs a username"),
        (_with(("mqtt", "tls"), {"cert": "c"}), r"^mqtt\.tls: cert and key go together"),
        (_with(("poll_interval",), 0), r"^poll_interval: value must be at least 0\.1"),
        ({"mqtt": {"host": "h"}}, r"^configure at least one bus or terminal"),
        (
            _with(("buses", 0, "link", "baudrate"), 2401, _WITH_BUS),
            r"^buses\[0\]\.link\.baudrate: must be one of 1200, 2400",
        ),
        (
            _with(("buses", 0, "protocol"), "iec62056", _WITH_BUS),
            r"^buses\[0\]\.protocol: must be one of modbus-rtu, modbus-tcp, dlt645-2007",
        ),
        (
            _with(("buses", 0, "meters", 0, "address"), 1, _WITH_BUS),
            r"^buses\[0\]\.meters\[0\]\.address: DL/T 645 address must be 12 decimal digits",
        ),
        (
            {
                **_minimal(),
                "buses": [_bus(protocol="modbus-rtu", meters=[{"address": 300, "profile": "x"}])],
            },
            r"^buses\[0\]\.meters\[0\]\.address: Modbus unit id must be 1\.\.247",
        ),
        (
            {**_minimal(), "buses": [_bus(meters=[_bus()["meters"][0]] * 2)]},
            r"^buses\[0\]\.meters\[1\]\.address: duplicate address '000000000001'",
        ),
        ({**_minimal(), "buses": [_bus(), _bus()]}, r"^buses\[1\]\.name: duplicate name 'a'"),
        (
            {
                **_minimal(),
                "buses": [_bus(protocol="modbus-tcp", meters=[{"address": 1, "profile": "x"}])],
            },
            r"^buses\[0\]\.link: modbus-tcp needs a tcp link",
        ),
        (
            _with(("buses", 0, "link"), {"tcp": "gw"}, _WITH_BUS),
            r"^buses\[0\]\.link\.tcp: expected <host>:<port>, got 'gw'",
        ),
        (
            _with(("buses", 0, "link"), {"tcp": "gw:1", "baudrate": 9600}, _WITH_BUS),
            r"^buses\[0\]\.link\.baudrate: only a serial link has this setting",
        ),
        (
            _with(("buses", 0, "link"), {"tcp": "gw:1", "serial": "/dev/x"}, _WITH_BUS),
            r"^buses\[0\]\.link: give either serial: <device> or tcp: <host>:<port>",
        ),
        (
            _with(("buses", 0, "link"), {}, _WITH_BUS),
            r"^buses\[0\]\.link: give either serial: <device> or tcp: <host>:<port>",
        ),
        (_with(("buses", 0, "meters"), [], _WITH_BUS), r"^buses\[0\]\.meters: length of value"),
        (_with(("terminals", 0, "id"), "bridge"), r"^terminals\[0\]\.id: must be 1\.\.64"),
        (_with(("terminals", 0, "id"), "a/b"), r"^terminals\[0\]\.id: must be"),
        (
            _with(
                ("terminals", 1), {"id": "nb-1"}, {**_minimal(), "terminals": [{"id": "nb-1"}, {}]}
            ),
            r"^terminals\[1\]\.id: duplicate id 'nb-1'",
        ),
        (
            _with(("terminals", 0, "hmac_key"), "00ff"),
            r"^terminals\[0\]\.hmac_key: must be at least 16 bytes",
        ),
        (_with(("terminals", 0, "hmac_key"), "xy" * 16), r"^terminals\[0\]\.hmac_key: must be hex"),
        (_with(("terminals", 0, "hmac_key"), 1234), r"^terminals\[0\]\.hmac_key: must be a quoted"),
        (
            _with(("terminals", 0, "encoding"), "cbor"),
            r"^terminals\[0\]\.encoding: must be one of json, binary",
        ),
        (
            _with(("terminals", 0), {"id": "t", "encoding": "binary", "mac_length": 32}),
            r"^terminals\[0\]\.mac_length: binary MACs are 8 or 16 bytes",
        ),
        (
            _with(
                ("commands",),
                {"secret": "x" * 16, "allow": [{"target": "nb-9", "kinds": ["relay_trip"]}]},
            ),
            r"^commands\.allow\[0\]\.target: 'nb-9' is neither a terminal id nor <bus>/<address>",
        ),
        (
            _with(("commands",), {"allow": [{"target": "nb-1", "kinds": ["relay_trip"]}]}),
            r"^commands: allowing commands needs a secret or allowed_clients",
        ),
        (
            _with(
                ("commands",),
                {"secret": "x" * 16, "allow": [{"target": "nb-1", "kinds": ["reboot"]}]},
            ),
            r"^commands\.allow\[0\]\.kinds\[0\]: must be one of relay_trip",
        ),
        (_with(("commands",), {"secret": "short"}), r"^commands\.secret: length of value"),
        (_with(("spool",), {"max_entries": 0}), r"^spool\.max_entries: value must be at least 1"),
    ],
)
def test_errors_name_the_field(data: Any, message: str) -> None:
    with pytest.raises(ConfigFieldError, match=message):
        parse_config(data)


def test_bus_meter_commands_and_targets() -> None:
    data = {
        **_minimal(),
        "buses": [_bus()],
        "commands": {
            "allowed_clients": ["homeassistant"],
            "allow": [{"target": "a/000000000001", "kinds": ["relay_trip", "relay_close"]}],
        },
    }
    commands = parse_config(data).commands
    assert commands.allowed_clients == ("homeassistant",)
    assert commands.allows("a/000000000001", CommandKind.RELAY_CLOSE)


def test_modbus_addresses_are_normalised() -> None:
    bus = _bus(protocol="modbus-tcp", link={"tcp": "[fd00::1]:502"})
    bus["meters"] = [{"address": "7", "profile": "x"}, {"address": 0, "profile": "x"}]
    config = parse_config({**_minimal(), "buses": [bus]})
    assert [m.address for m in config.buses[0].meters] == ["7", "0"]
    assert config.buses[0].link == TcpLink("fd00::1", 502)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("mqtt: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_format_path() -> None:
    assert format_path(("buses", 0, "meters", 2, "address")) == "buses[0].meters[2].address"
    assert format_path(()) == ""


def test_dlt645_command_credentials() -> None:
    bus = _bus()
    bus["meters"] = [
        {"address": "000000000001", "profile": "x"},
        {
            "address": "000000000002",
            "profile": "x",
            "password": "123456",
            "password_level": 4,
            "operator": "0000ABCD",
        },
    ]
    default, custom = parse_config({**_minimal(), "buses": [bus]}).buses[0].meters
    assert (default.password, default.operator) == (bytes.fromhex("02000000"), bytes(4))
    # PA P0 P1 P2 and C0..C3: the level first, then the digits low byte first.
    assert custom.password == bytes.fromhex("04563412")
    assert custom.operator == bytes.fromhex("CDAB0000")
    assert "563412" not in repr(custom)


@pytest.mark.parametrize(
    ("meter", "message"),
    [
        ({"password": "12345"}, r"meters\[0\]\.password: DL/T 645 password must be 6 digits"),
        ({"operator": "xyz"}, r"meters\[0\]\.operator: operator code must be 8 hex digits"),
        ({"password_level": 12}, r"meters\[0\]\.password_level: value must be at most 9"),
    ],
)
def test_bad_dlt645_credentials(meter: dict[str, Any], message: str) -> None:
    bus = _bus()
    bus["meters"] = [{"address": "000000000001", "profile": "x", **meter}]
    with pytest.raises(ConfigFieldError, match=message):
        parse_config({**_minimal(), "buses": [bus]})


def test_modbus_meters_take_no_password() -> None:
    bus = _bus(protocol="modbus-rtu")
    bus["meters"] = [{"address": 1, "profile": "x", "password": "123456"}]
    with pytest.raises(ConfigFieldError, match=r"meters\[0\]\.password: only DL/T 645"):
        parse_config({**_minimal(), "buses": [bus]})
