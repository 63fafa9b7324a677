"""Home Assistant discovery payloads: shape, HA's own schemas, and a real HA picking them up."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from edge_agent.daemon.discovery import (
    HA_DEVICE_CLASS,
    HA_DEVICE_CLASS_UNITS,
    DiscoveryDevice,
    device_class,
    device_discovery,
    device_removal,
    node_id,
    state_class,
    state_payload,
)
from edge_agent.quantities import QUANTITIES, Kind

DEVICE = DiscoveryDevice(
    node_id="rs485-a_000012345678",
    name="Main incomer",
    manufacturer="CHINT",
    model="DTSU666",
    serial_number="000012345678",
    via_device="bridge",
)
KEYS = [
    "voltage_a",
    "current_a",
    "power_active_total",
    "power_reactive_total",
    "power_factor_total",
    "energy_import_total",
    "thd_voltage_a",
    "relay_state",
    "status_word_1",
]
STATE = "gridmeter/rs485-a_000012345678/state"
AVAILABILITY = ["gridmeter/bridge/status", "gridmeter/nb-0001/status"]


def _message() -> Any:
    return device_discovery(
        DEVICE,
        KEYS,
        prefix="homeassistant",
        state_topic=STATE,
        availability_topics=AVAILABILITY,
    )


def test_device_message_shape() -> None:
    message = _message()
    assert message.topic == "homeassistant/device/rs485-a_000012345678/config"
    assert message.retain
    config = json.loads(message.payload)
    assert config["device"] == {
        "identifiers": ["gridmeter_rs485-a_000012345678"],
        "name": "Main incomer",
        "manufacturer": "CHINT",
        "model": "DTSU666",
        "serial_number": "000012345678",
        "via_device": "gridmeter_bridge",
    }
    assert config["origin"]["name"] == "Grid Meter edge-agent"
    assert config["state_topic"] == STATE
    assert config["availability"] == [{"topic": t} for t in AVAILABILITY]
    assert config["availability_mode"] == "all"
    assert list(config["components"]) == KEYS


def test_sensor_configs() -> None:
    components = json.loads(_message().payload)["components"]
    assert components["voltage_a"] == {
        "platform": "sensor",
        "name": "Voltage A",
        "unique_id": "gridmeter_rs485-a_000012345678_voltage_a",
        "value_template": "{{ value_json.get('voltage_a', '') }}",
        "unit_of_measurement": "V",
        "device_class": "voltage",
        "state_class": "measurement",
        "suggested_display_precision": 1,
        "enabled_by_default": True,
        "qos": 1,
    }
    energy = components["energy_import_total"]
    assert (energy["device_class"], energy["state_class"]) == ("energy", "total_increasing")
    reactive = components["power_reactive_total"]
    assert "device_class" not in reactive  # HA 2025.4 knows var, not kvar
    assert (reactive["unit_of_measurement"], reactive["state_class"]) == ("kvar", "measurement")
    pf = components["power_factor_total"]
    assert pf["device_class"] == "power_factor" and "unit_of_measurement" not in pf
    assert components["thd_voltage_a"]["enabled_by_default"] is False
    status = components["status_word_1"]
    assert status["entity_category"] == "diagnostic" and "state_class" not in status
    assert "entity_category" not in components["relay_state"]


def test_removal_and_node_ids() -> None:
    removal = device_removal("homeassistant", "nb-0001")
    assert (removal.topic, removal.payload, removal.retain) == (
        "homeassistant/device/nb-0001/config",
        b"",
        True,
    )
    assert node_id("RS485 A", "000012345678") == "rs485_a_000012345678"
    assert node_id("Bus/1", "modbus:3") == "bus_1_modbus_3"


def test_unknown_key_is_refused() -> None:
    with pytest.raises(KeyError, match="volts"):
        device_discovery(DEVICE, ["volts"], prefix="ha", state_topic="s", availability_topics=[])


def test_state_payload() -> None:
    payload = state_payload({"voltage_a": 229.9, "relay_state": 1}, {"current_a"}, 1735689600.0)
    assert json.loads(payload) == {
        "current_a": None,
        "voltage_a": 229.9,
        "relay_state": 1,
        "timestamp": 1735689600.0,
    }


# --- agreement with Home Assistant 2025.4 ---------------------------------------------------

sensor_const = pytest.importorskip("homeassistant.components.sensor.const")
mqtt_sensor = pytest.importorskip("homeassistant.components.mqtt.sensor")
mqtt_schemas = pytest.importorskip("homeassistant.components.mqtt.schemas")
dr = pytest.importorskip("homeassistant.helpers.device_registry")
er = pytest.importorskip("homeassistant.helpers.entity_registry")
phcc = pytest.importorskip("pytest_homeassistant_custom_component.common")


@pytest.mark.parametrize("key", sorted(QUANTITIES))
def test_device_and_state_classes_are_what_home_assistant_accepts(key: str) -> None:
    q = QUANTITIES[key]
    cls = HA_DEVICE_CLASS[q.kind]
    accepted = cls is not None and q.unit in sensor_const.DEVICE_CLASS_UNITS.get(
        sensor_const.SensorDeviceClass(cls), {q.unit}
    )
    assert (device_class(q) is not None) == accepted
    if device_class(q) is not None:
        allowed = sensor_const.DEVICE_CLASS_STATE_CLASSES[sensor_const.SensorDeviceClass(cls)]
        assert state_class(q) in allowed


def test_unit_table_is_a_subset_of_home_assistant() -> None:
    for cls, units in HA_DEVICE_CLASS_UNITS.items():
        assert units <= sensor_const.DEVICE_CLASS_UNITS[sensor_const.SensorDeviceClass(cls)]
    assert {c for c in HA_DEVICE_CLASS.values() if c} == set(HA_DEVICE_CLASS_UNITS)
    assert set(HA_DEVICE_CLASS) == set(Kind)


async def test_home_assistant_schemas_accept_every_quantity(hass: Any) -> None:
    """Validate with HA's own schemas (they need a running hass for deprecation helpers)."""
    message = device_discovery(
        DEVICE,
        sorted(QUANTITIES),
        prefix="homeassistant",
        state_topic=STATE,
        availability_topics=AVAILABILITY,
    )
    config = json.loads(message.payload)
    mqtt_schemas.DEVICE_DISCOVERY_SCHEMA(config)
    shared = {k: config[k] for k in ("state_topic", "availability", "availability_mode")}
    for component in config["components"].values():
        sensor = {k: v for k, v in component.items() if k != "platform"}
        mqtt_sensor.DISCOVERY_SCHEMA({**shared, **sensor, "device": config["device"]})


# HA's MQTT client stops its 1 s housekeeping timer only when the socket closes, which the
# mocked client never does; the harness cancels it instead of failing.
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_home_assistant_creates_the_sensors(
    hass: Any, mqtt_mock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    message = _message()
    phcc.async_fire_mqtt_message(hass, message.topic, message.payload, retain=True)
    await hass.async_block_till_done()
    for topic in AVAILABILITY:
        phcc.async_fire_mqtt_message(hass, topic, "online")
    payload = state_payload({"voltage_a": 229.9, "energy_import_total": 12345.67}, ["current_a"])
    phcc.async_fire_mqtt_message(hass, STATE, payload)
    await hass.async_block_till_done()

    voltage = hass.states.get("sensor.main_incomer_voltage_a")
    assert voltage is not None
    assert voltage.state == "229.9"
    assert voltage.attributes["unit_of_measurement"] == "V"
    assert voltage.attributes["device_class"] == "voltage"
    energy = hass.states.get("sensor.main_incomer_import_energy")
    assert energy is not None
    assert energy.state == "12345.67"
    assert energy.attributes["state_class"] == "total_increasing"
    current = hass.states.get("sensor.main_incomer_current_a")
    assert current is not None
    assert current.state == "unknown"
    assert hass.states.get("sensor.main_incomer_voltage_thd_a") is None  # disabled by default

    registry = er.async_get(hass)
    entry = registry.async_get("sensor.main_incomer_status_word_1")
    assert entry is not None
    assert entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    device = dr.async_get(hass).async_get_device({("mqtt", "gridmeter_rs485-a_000012345678")})
    assert device is not None
    assert (device.manufacturer, device.model, device.serial_number) == (
        "CHINT",
        "DTSU666",
        "000012345678",
    )

    # A later state without a key leaves that sensor as it was.
    phcc.async_fire_mqtt_message(hass, STATE, state_payload({"energy_import_total": 12346.0}))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.main_incomer_voltage_a").state == "229.9"
    # The terminal going offline makes the device unavailable.
    phcc.async_fire_mqtt_message(hass, AVAILABILITY[1], "offline")
    await hass.async_block_till_done()
    assert hass.states.get("sensor.main_incomer_voltage_a").state == "unavailable"
    # No complaint about units, classes or templates.
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [r.getMessage() for r in warnings if r.name.startswith("homeassistant")]
