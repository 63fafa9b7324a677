"""The daemon's YAML configuration: schema, cross-checks and frozen result.

``load_config(path)`` returns a :class:`DaemonConfig` or raises :class:`ConfigFieldError`
whose message starts with the path of the bad field, e.g.
``buses[0].meters[2].address: DL/T 645 address must be 12 decimal digits in quotes``.
Relative file paths are taken relative to the configuration file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import voluptuous as vol
import yaml

from ..errors import ConfigError
from ..model import Wire
from ..protocols.terminal import CommandKind, Encoding, is_valid_terminal_id

#: A path inside the configuration: mapping keys and list indices.
FieldPath = tuple[str | int, ...]

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DLT645_ADDRESS = re.compile(r"\d{12}")
_PASSWORD = re.compile(r"\d{6}")
_OPERATOR = re.compile(r"[0-9A-Fa-f]{8}")
#: DL/T 645 password level 02 with password 000000, and operator code 00000000: the
#: factory settings of most meters.
DEFAULT_PASSWORD = bytes.fromhex("02000000")
DEFAULT_OPERATOR = bytes(4)
_MODBUS_UNITS = {Wire.MODBUS_RTU: (1, 247), Wire.MODBUS_TCP: (0, 255)}
#: Serial settings each wire uses unless the link says otherwise: baud, parity, stop bits.
_SERIAL_DEFAULTS = {
    Wire.MODBUS_RTU: (9600, "N", 1),
    Wire.MODBUS_TCP: (9600, "N", 1),
    Wire.DLT645_2007: (2400, "E", 1),
    Wire.DLT645_1997: (1200, "E", 1),
}


class ConfigFieldError(ConfigError):
    """A configuration error located at ``path``."""

    def __init__(self, path: FieldPath, message: str) -> None:
        """Build the message ``<path>: <message>``."""
        super().__init__(f"{format_path(path)}: {message}" if path else message)
        self.path = path


def format_path(path: FieldPath) -> str:
    """Render ``("buses", 0, "link")`` as ``buses[0].link``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


# --- result ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS towards the broker; no CA means the system's trust store."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """Broker connection and topic roots."""

    host: str
    port: int
    tls: TlsConfig | None
    username: str | None
    password: str | None = field(repr=False)
    client_id: str
    keepalive: int
    base_topic: str
    discovery_prefix: str


@dataclass(frozen=True, slots=True)
class SerialLink:
    """An RS485 adapter."""

    device: str
    baudrate: int
    parity: str
    stopbits: int
    bytesize: int


@dataclass(frozen=True, slots=True)
class TcpLink:
    """A Modbus TCP device or a transparent serial-to-TCP gateway."""

    host: str
    port: int


Link = SerialLink | TcpLink


@dataclass(frozen=True, slots=True)
class MeterConfig:
    """One meter on a bus."""

    #: DL/T 645: 12 digits; Modbus: the unit id as a decimal string.
    address: str
    profile: str
    name: str
    #: DL/T 645 commands: PA P0 P1 P2 (level, then the 6-digit password, low byte first).
    password: bytes = field(default=DEFAULT_PASSWORD, repr=False)
    #: DL/T 645 commands: operator code C0..C3, low byte first.
    operator: bytes = DEFAULT_OPERATOR


@dataclass(frozen=True, slots=True)
class BusConfig:
    """One bus: a link, the wire protocol spoken on it and its meters."""

    name: str
    link: Link
    wire: Wire
    meters: tuple[MeterConfig, ...]
    poll_interval: float
    timeout: float


@dataclass(frozen=True, slots=True)
class TerminalConfig:
    """One NB-IoT terminal publishing over MQTT."""

    id: str
    name: str
    encoding: Encoding
    hmac_key: bytes | None = field(repr=False)
    mac_length: int
    profile: str | None


@dataclass(frozen=True, slots=True)
class SpoolConfig:
    """Where unsent messages wait and how many may wait."""

    path: Path
    max_entries: int


@dataclass(frozen=True, slots=True)
class CommandRule:
    """Command kinds allowed for one target (a terminal id or ``<bus>/<address>``)."""

    target: str
    kinds: frozenset[CommandKind]


@dataclass(frozen=True, slots=True)
class CommandPolicy:
    """Who may send which command to what; nothing is allowed by default."""

    rules: tuple[CommandRule, ...] = ()
    #: Shared secret a command request must prove knowledge of.
    secret: str | None = field(default=None, repr=False)
    #: MQTT client ids whose command requests are accepted (enforced by the broker's ACL).
    allowed_clients: tuple[str, ...] = ()

    def allows(self, target: str, kind: CommandKind) -> bool:
        """Return True if some rule allows ``kind`` on ``target``."""
        return any(rule.target == target and kind in rule.kinds for rule in self.rules)


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """Everything ``edge-agent run`` needs."""

    mqtt: MqttConfig
    buses: tuple[BusConfig, ...]
    terminals: tuple[TerminalConfig, ...]
    poll_interval: float
    spool: SpoolConfig
    commands: CommandPolicy


# --- schema ---------------------------------------------------------------------------------


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise vol.Invalid("must be 1..64 letters, digits, '_' or '-'")
    return value


def _terminal_id(value: Any) -> str:
    if not isinstance(value, str) or not is_valid_terminal_id(value):
        raise vol.Invalid("must be 1..64 letters, digits, '_' or '-' (quoted), and not 'bridge'")
    return value


def _topic_root(value: Any) -> str:
    if not isinstance(value, str) or not value or any(c in value for c in "+#\0"):
        raise vol.Invalid("must be a non-empty topic without wildcards")
    return value.strip("/")


def _hex_key(value: Any) -> bytes:
    if not isinstance(value, str):
        raise vol.Invalid("must be a quoted hex string")
    try:
        key = bytes.fromhex(value)
    except ValueError:
        raise vol.Invalid("must be hex digits") from None
    if len(key) < 16:
        raise vol.Invalid(f"must be at least 16 bytes (32 hex digits), got {len(key)}")
    return key


def _tls(value: Any) -> dict[str, Any] | None:
    if value is True:
        return {}
    if value is False or value is None:
        return None
    schema = vol.Schema({vol.Optional(k): vol.All(str, vol.Length(min=1)) for k in TLS_KEYS})
    result: dict[str, Any] = schema(value)
    return result


def _choice(*choices: int | str) -> Callable[[Any], Any]:
    """Return a validator accepting exactly ``choices`` and naming them when it fails."""

    def check(value: Any) -> Any:
        if isinstance(value, bool) or value not in choices:
            raise vol.Invalid(f"must be one of {', '.join(map(str, choices))}")
        return value

    return check


def _member[E: (Wire, Encoding, CommandKind)](enum: type[E]) -> Callable[[Any], E]:
    """Return a validator converting a value of ``enum`` to its member."""
    check = _choice(*(member.value for member in enum))
    return lambda value: enum(check(value))


TLS_KEYS = ("ca", "cert", "key")
_POSITIVE = vol.All(vol.Coerce(float), vol.Range(min=0.1))
_PORT = vol.All(int, vol.Range(min=1, max=65535))
_TEXT = vol.All(str, vol.Length(min=1))

_MQTT = vol.Schema(
    {
        vol.Required("host"): _TEXT,
        vol.Optional("port"): _PORT,
        vol.Optional("tls", default=None): _tls,
        vol.Optional("username"): _TEXT,
        vol.Optional("password"): str,
        vol.Optional("client_id", default="edge-agent"): _TEXT,
        vol.Optional("keepalive", default=60): vol.All(int, vol.Range(min=5, max=65535)),
        vol.Optional("base_topic", default="gridmeter"): _topic_root,
        vol.Optional("discovery_prefix", default="homeassistant"): _topic_root,
    }
)
_LINK = vol.Schema(
    {
        vol.Optional("serial"): _TEXT,
        vol.Optional("tcp"): _TEXT,
        vol.Optional("baudrate"): _choice(1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200),
        vol.Optional("parity"): _choice("N", "E", "O"),
        vol.Optional("stopbits"): _choice(1, 2),
        vol.Optional("bytesize", default=8): _choice(7, 8),
    }
)
_METER = vol.Schema(
    {
        vol.Required("address"): vol.Any(str, int),
        vol.Required("profile"): _TEXT,
        vol.Optional("name"): _TEXT,
        vol.Optional("password"): vol.Any(str, int),
        vol.Optional("password_level", default=2): vol.All(int, vol.Range(min=0, max=9)),
        vol.Optional("operator"): vol.Any(str, int),
    }
)
_BUS = vol.Schema(
    {
        vol.Required("name"): _name,
        vol.Required("link"): _LINK,
        vol.Required("protocol"): _member(Wire),
        vol.Required("meters"): vol.All([_METER], vol.Length(min=1)),
        vol.Optional("poll_interval"): _POSITIVE,
        vol.Optional("timeout", default=1.0): _POSITIVE,
    }
)
_TERMINAL = vol.Schema(
    {
        vol.Required("id"): _terminal_id,
        vol.Optional("name"): _TEXT,
        vol.Optional("encoding", default="json"): _member(Encoding),
        vol.Optional("hmac_key"): _hex_key,
        vol.Optional("mac_length", default=16): _choice(8, 16, 32),
        vol.Optional("profile"): _TEXT,
    }
)
_COMMANDS = vol.Schema(
    {
        vol.Optional("secret"): vol.All(str, vol.Length(min=16)),
        vol.Optional("allowed_clients", default=[]): [_TEXT],
        vol.Optional("allow", default=[]): [
            {
                vol.Required("target"): _TEXT,
                vol.Required("kinds"): vol.All([_member(CommandKind)], vol.Length(min=1)),
            }
        ],
    }
)
SCHEMA = vol.Schema(
    {
        vol.Required("mqtt"): _MQTT,
        vol.Optional("poll_interval", default=10.0): _POSITIVE,
        vol.Optional("buses", default=[]): [_BUS],
        vol.Optional("terminals", default=[]): [_TERMINAL],
        vol.Optional("spool", default={}): {
            vol.Optional("path", default="/var/lib/edge-agent/spool.db"): _TEXT,
            vol.Optional("max_entries", default=100_000): vol.All(int, vol.Range(min=1)),
        },
        vol.Optional("commands", default={}): _COMMANDS,
    }
)


# --- loading --------------------------------------------------------------------------------


def load_config(path: str | Path, *, check_files: bool = True) -> DaemonConfig:
    """Read, validate and convert a YAML configuration file.

    With ``check_files``, the TLS files it names must exist.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    return parse_config(data, base_dir=path.parent, check_files=check_files)


def parse_config(
    data: object, *, base_dir: Path = Path(), check_files: bool = False
) -> DaemonConfig:
    """Validate and convert an already parsed configuration mapping."""
    try:
        checked: dict[str, Any] = SCHEMA(data)
    except vol.Invalid as err:  # MultipleInvalid reports its first error
        raise ConfigFieldError(_field_path(err.path), err.msg) from None

    interval: float = checked["poll_interval"]
    buses = tuple(_bus(bus, i, interval) for i, bus in enumerate(checked["buses"]))
    terminals = tuple(_terminal(t, i) for i, t in enumerate(checked["terminals"]))
    if not buses and not terminals:
        raise ConfigFieldError((), "configure at least one bus or terminal")
    _unique([b.name for b in buses], "buses", "name")
    _unique([t.id for t in terminals], "terminals", "id")
    return DaemonConfig(
        mqtt=_mqtt(checked["mqtt"], base_dir, check_files),
        buses=buses,
        terminals=terminals,
        poll_interval=interval,
        spool=SpoolConfig(
            _resolve(base_dir, checked["spool"]["path"]), checked["spool"]["max_entries"]
        ),
        commands=_commands(checked["commands"], buses, terminals),
    )


def _mqtt(data: dict[str, Any], base_dir: Path, check_files: bool) -> MqttConfig:
    tls = None
    if data["tls"] is not None:
        files = {k: _resolve(base_dir, v) for k, v in data["tls"].items()}
        if ("cert" in files) != ("key" in files):
            raise ConfigFieldError(("mqtt", "tls"), "cert and key go together")
        for name, file in files.items():
            if check_files and not file.is_file():
                raise ConfigFieldError(("mqtt", "tls", name), f"file not found: {file}")
        tls = TlsConfig(**files)
    if "password" in data and "username" not in data:
        raise ConfigFieldError(("mqtt", "password"), "a password needs a username")
    return MqttConfig(
        host=data["host"],
        port=data.get("port", 8883 if tls else 1883),
        tls=tls,
        username=data.get("username"),
        password=data.get("password"),
        client_id=data["client_id"],
        keepalive=data["keepalive"],
        base_topic=data["base_topic"],
        discovery_prefix=data["discovery_prefix"],
    )


def _bus(data: dict[str, Any], index: int, default_interval: float) -> BusConfig:
    wire: Wire = data["protocol"]
    path: FieldPath = ("buses", index)
    meters = tuple(
        _meter(meter, wire, data["name"], (*path, "meters", j))
        for j, meter in enumerate(data["meters"])
    )
    _unique([m.address for m in meters], (*path, "meters"), "address")
    return BusConfig(
        name=data["name"],
        link=_link(data["link"], wire, (*path, "link")),
        wire=wire,
        meters=meters,
        poll_interval=data.get("poll_interval", default_interval),
        timeout=data["timeout"],
    )


def _link(data: dict[str, Any], wire: Wire, path: FieldPath) -> Link:
    if ("tcp" in data) == ("serial" in data):
        raise ConfigFieldError(path, "give either serial: <device> or tcp: <host>:<port>")
    if "tcp" in data:
        serial_keys = sorted({"baudrate", "parity", "stopbits"} & data.keys())
        if serial_keys:
            raise ConfigFieldError((*path, serial_keys[0]), "only a serial link has this setting")
        return _tcp(data["tcp"], (*path, "tcp"))
    if wire is Wire.MODBUS_TCP:
        raise ConfigFieldError(path, "modbus-tcp needs a tcp link; use modbus-rtu on serial")
    baudrate, parity, stopbits = _SERIAL_DEFAULTS[wire]
    return SerialLink(
        device=data["serial"],
        baudrate=data.get("baudrate", baudrate),
        parity=data.get("parity", parity),
        stopbits=data.get("stopbits", stopbits),
        bytesize=data["bytesize"],
    )


def _tcp(text: str, path: FieldPath) -> TcpLink:
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigFieldError(path, f"expected <host>:<port>, got {text!r}")
    return TcpLink(host, int(port))


def _meter(data: dict[str, Any], wire: Wire, bus: str, path: FieldPath) -> MeterConfig:
    raw = data["address"]
    if wire in _MODBUS_UNITS:
        low, high = _MODBUS_UNITS[wire]
        if isinstance(raw, str) and raw.isdigit():
            raw = int(raw)
        if not isinstance(raw, int) or not low <= raw <= high:
            raise ConfigFieldError((*path, "address"), f"Modbus unit id must be {low}..{high}")
        address = str(raw)
    else:
        if not isinstance(raw, str) or not _DLT645_ADDRESS.fullmatch(raw):
            raise ConfigFieldError(
                (*path, "address"), "DL/T 645 address must be 12 decimal digits in quotes"
            )
        address = raw
    return MeterConfig(
        address,
        data["profile"],
        data.get("name", f"{bus} {address}"),
        *_credentials(data, wire, path),
    )


def _credentials(data: dict[str, Any], wire: Wire, path: FieldPath) -> tuple[bytes, bytes]:
    """DL/T 645 command password (level + 6 digits) and operator code, as sent."""
    if wire in _MODBUS_UNITS:
        if given := {"password", "operator"} & data.keys():
            key = sorted(given)[0]
            raise ConfigFieldError((*path, key), "only DL/T 645 meters take a password")
        return DEFAULT_PASSWORD, DEFAULT_OPERATOR
    password = str(data.get("password", "000000"))
    if not _PASSWORD.fullmatch(password):
        raise ConfigFieldError((*path, "password"), "DL/T 645 password must be 6 digits in quotes")
    operator = str(data.get("operator", "00000000"))
    if not _OPERATOR.fullmatch(operator):
        raise ConfigFieldError((*path, "operator"), "operator code must be 8 hex digits in quotes")
    return (
        bytes([data["password_level"]]) + bytes.fromhex(password)[::-1],
        bytes.fromhex(operator)[::-1],
    )


def _terminal(data: dict[str, Any], index: int) -> TerminalConfig:
    encoding: Encoding = data["encoding"]
    mac_length: int = data["mac_length"]
    if encoding is Encoding.BINARY and mac_length == 32:
        raise ConfigFieldError(("terminals", index, "mac_length"), "binary MACs are 8 or 16 bytes")
    return TerminalConfig(
        id=data["id"],
        name=data.get("name", data["id"]),
        encoding=encoding,
        hmac_key=data.get("hmac_key"),
        mac_length=mac_length,
        profile=data.get("profile"),
    )


def _commands(
    data: dict[str, Any], buses: tuple[BusConfig, ...], terminals: tuple[TerminalConfig, ...]
) -> CommandPolicy:
    targets = {t.id for t in terminals} | {f"{b.name}/{m.address}" for b in buses for m in b.meters}
    rules = []
    for i, rule in enumerate(data["allow"]):
        if rule["target"] not in targets:
            raise ConfigFieldError(
                ("commands", "allow", i, "target"),
                f"{rule['target']!r} is neither a terminal id nor <bus>/<address>",
            )
        rules.append(CommandRule(rule["target"], frozenset(rule["kinds"])))
    secret = data.get("secret")
    clients = tuple(data["allowed_clients"])
    if rules and secret is None and not clients:
        raise ConfigFieldError(("commands",), "allowing commands needs a secret or allowed_clients")
    return CommandPolicy(tuple(rules), secret, clients)


def _unique(values: list[str], path: FieldPath | str, key: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            prefix = (path,) if isinstance(path, str) else path
            raise ConfigFieldError((*prefix, i, key), f"duplicate {key} {value!r}")
        seen.add(value)


def _field_path(path: list[Any]) -> FieldPath:
    return tuple(p if isinstance(p, int) else str(p) for p in path)


def _resolve(base_dir: Path, name: str) -> Path:
    return (base_dir / Path(name).expanduser()).absolute()
