"""Home Assistant MQTT discovery messages for meters and terminals, as pure data.

Device-based discovery: one retained message per device on
``<prefix>/device/<node_id>/config`` lists every sensor of the device under
``components``. One message instead of one per quantity (a three-phase meter has 40+)
means fewer retained topics, and adding or removing a quantity is one update that
Home Assistant (2024.11 and later) applies atomically.

Every sensor reads the device's one JSON state topic (see :func:`state_payload`): a key
with ``null`` makes the sensor unknown, an absent key leaves it unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..model import Value
from ..protocols.terminal import STATUS_OFFLINE, STATUS_ONLINE
from ..quantities import Kind, Quantity, quantity

#: Home Assistant sensor device class of each kind; None where HA has none.
HA_DEVICE_CLASS: dict[Kind, str | None] = {
    Kind.VOLTAGE: "voltage",
    Kind.CURRENT: "current",
    Kind.POWER: "power",
    Kind.REACTIVE_POWER: "reactive_power",
    Kind.APPARENT_POWER: "apparent_power",
    Kind.POWER_FACTOR: "power_factor",
    Kind.FREQUENCY: "frequency",
    Kind.ENERGY: "energy",
    Kind.REACTIVE_ENERGY: None,
    Kind.HARMONIC: None,
    Kind.ANGLE: None,
    Kind.TEMPERATURE: "temperature",
    Kind.STATUS: None,
}
#: Units Home Assistant 2025.4 accepts with each device class we use. A quantity whose
#: unit is not listed (kvar, kVA: HA 2025.4 only knows var and VA) gets no device class.
HA_DEVICE_CLASS_UNITS: dict[str, frozenset[str | None]] = {
    "voltage": frozenset({"V", "kV"}),
    "current": frozenset({"A", "mA"}),
    "power": frozenset({"W", "kW"}),
    "reactive_power": frozenset({"var"}),
    "apparent_power": frozenset({"VA"}),
    "power_factor": frozenset({None, "%"}),
    "frequency": frozenset({"Hz"}),
    "energy": frozenset({"Wh", "kWh"}),
    "temperature": frozenset({"°C"}),
}
#: Decimals Home Assistant shows by default.
DISPLAY_PRECISION: dict[Kind, int] = {
    Kind.VOLTAGE: 1,
    Kind.CURRENT: 2,
    Kind.POWER: 3,
    Kind.REACTIVE_POWER: 3,
    Kind.APPARENT_POWER: 3,
    Kind.POWER_FACTOR: 2,
    Kind.FREQUENCY: 2,
    Kind.ENERGY: 2,
    Kind.REACTIVE_ENERGY: 2,
    Kind.HARMONIC: 1,
    Kind.ANGLE: 1,
    Kind.TEMPERATURE: 1,
    Kind.STATUS: 0,
}
ORIGIN = {"name": "Grid Meter edge-agent", "sw_version": __version__}

_NOT_ID = re.compile(r"[^a-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class DiscoveryDevice:
    """The device a discovery message announces."""

    #: Topic-safe unique id, see :func:`node_id`.
    node_id: str
    name: str
    manufacturer: str | None = None
    model: str | None = None
    #: Meter address or terminal id.
    serial_number: str | None = None
    #: node_id of the device this one is reached through (a terminal or the daemon).
    via_device: str | None = None


@dataclass(frozen=True, slots=True)
class DiscoveryMessage:
    """One retained MQTT message; ``config`` None removes the device."""

    topic: str
    config: Mapping[str, Any] | None
    retain: bool = True

    @property
    def payload(self) -> bytes:
        """Compact JSON, or empty for a removal."""
        if self.config is None:
            return b""
        return json.dumps(self.config, separators=(",", ":"), ensure_ascii=False).encode()


def node_id(*parts: str) -> str:
    """Join parts into an id Home Assistant accepts in a discovery topic (``[a-z0-9_-]+``)."""
    return "_".join(_NOT_ID.sub("_", part.lower()).strip("_") for part in parts) or "_"


def discovery_topic(prefix: str, node: str) -> str:
    """Return the device discovery topic of ``node``."""
    return f"{prefix}/device/{node}/config"


def device_discovery(
    device: DiscoveryDevice,
    keys: Iterable[str],
    *,
    prefix: str,
    state_topic: str,
    availability_topics: Sequence[str],
    qos: int = 1,
) -> DiscoveryMessage:
    """Announce ``device`` with one sensor per canonical quantity key.

    The device is available only while every topic in ``availability_topics`` says
    ``online`` (typically the daemon's and, for a terminal, the terminal's status).
    """
    components = {key: _sensor(device.node_id, quantity(key), qos) for key in keys}
    config: dict[str, Any] = {
        "device": _device_info(device),
        "origin": ORIGIN,
        "components": components,
        "state_topic": state_topic,
        "availability": [{"topic": topic} for topic in availability_topics],
        "availability_mode": "all",
        "payload_available": STATUS_ONLINE,
        "payload_not_available": STATUS_OFFLINE,
    }
    return DiscoveryMessage(discovery_topic(prefix, device.node_id), config)


def device_removal(prefix: str, node: str) -> DiscoveryMessage:
    """Remove a device and its sensors (an empty retained message)."""
    return DiscoveryMessage(discovery_topic(prefix, node), None)


def state_payload(
    values: Mapping[str, Value], missing: Iterable[str] = (), timestamp: float | None = None
) -> bytes:
    """Return the JSON the sensors' value templates read: values, ``null`` for ``missing``."""
    state: dict[str, Value | None] = {key: None for key in missing}
    state.update(values)
    if timestamp is not None:
        state["timestamp"] = timestamp
    return json.dumps(state, separators=(",", ":")).encode()


def device_class(q: Quantity) -> str | None:
    """Return the HA device class of a quantity, None if HA has none for its kind and unit."""
    cls = HA_DEVICE_CLASS[q.kind]
    if cls is None or q.unit not in HA_DEVICE_CLASS_UNITS[cls]:
        return None
    return cls


def state_class(q: Quantity) -> str | None:
    """Return the HA state class: counters only grow, status words are not statistics."""
    if q.cumulative:
        return "total_increasing"
    return None if q.kind is Kind.STATUS else "measurement"


def _sensor(node: str, q: Quantity, qos: int) -> dict[str, Any]:
    config: dict[str, Any] = {
        "platform": "sensor",
        "name": q.name,
        "unique_id": f"gridmeter_{node}_{q.key}",
        "value_template": f"{{{{ value_json.get('{q.key}', '') }}}}",
        "suggested_display_precision": DISPLAY_PRECISION[q.kind],
        "enabled_by_default": q.common,
        "qos": qos,
    }
    optional = {
        "unit_of_measurement": q.unit,
        "device_class": device_class(q),
        "state_class": state_class(q),
        "entity_category": "diagnostic" if q.kind is Kind.STATUS and not q.common else None,
    }
    config.update({name: value for name, value in optional.items() if value is not None})
    return config


def _device_info(device: DiscoveryDevice) -> dict[str, Any]:
    info: dict[str, Any] = {"identifiers": [f"gridmeter_{device.node_id}"], "name": device.name}
    optional = {
        "manufacturer": device.manufacturer,
        "model": device.model,
        "serial_number": device.serial_number,
        "via_device": None if device.via_device is None else f"gridmeter_{device.via_device}",
    }
    info.update({name: value for name, value in optional.items() if value is not None})
    return info
