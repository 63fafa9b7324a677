"""The automation and template blueprints: loaded by Home Assistant, driven across their limits."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.automation.config import AUTOMATION_BLUEPRINT_SCHEMA
from homeassistant.components.template.const import TEMPLATE_BLUEPRINT_SCHEMA
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict
from pytest_homeassistant_custom_component.common import (
    async_fire_time_changed,
    async_mock_service,
)

REPO = Path(__file__).resolve().parents[2]
BLUEPRINTS = REPO / "blueprints"
AUTOMATIONS = sorted((BLUEPRINTS / "automation" / "grid_meter").glob("*.yaml"))
TEMPLATES = sorted((BLUEPRINTS / "template" / "grid_meter").glob("*.yaml"))

#: The notification part every automation blueprint shares.
NOTIFY_INPUTS = {"notify_entities", "notify_action", "title"}
PANEL = "notify.control_room"


@pytest.fixture
async def notified(hass: HomeAssistant, tmp_path: Path) -> dict[str, list[ServiceCall]]:
    """Blueprints installed in a fresh config dir; calls to notify.send_message and notify.sms."""
    hass.config.config_dir = str(tmp_path)
    shutil.copytree(BLUEPRINTS, tmp_path / "blueprints")
    return {
        "entity": async_mock_service(hass, "notify", "send_message"),
        "action": async_mock_service(hass, "notify", "sms"),
    }


async def _sensor(
    hass: HomeAssistant, entity_id: str, value: float | str, unit: str, **attrs: Any
) -> None:
    """Set a sensor's state and let every listener see it (timers start now, not later)."""
    name = entity_id.split(".")[1].replace("_", " ").title()
    hass.states.async_set(
        entity_id, str(value), {"unit_of_measurement": unit, "friendly_name": name, **attrs}
    )
    await hass.async_block_till_done()


def _state(hass: HomeAssistant, entity_id: str) -> str:
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state


async def _automation(hass: HomeAssistant, blueprint: str, **inputs: Any) -> None:
    """Create one automation from ``blueprint``; it notifies both ways unless inputs say not."""
    notify = {
        "notify_entities": [PANEL],
        "notify_action": [
            {"action": "notify.sms", "data": {"title": "{{ title }}", "message": "{{ message }}"}}
        ],
    }
    config = {
        "automation": {
            "id": blueprint,
            "use_blueprint": {
                "path": f"grid_meter/{blueprint}.yaml",
                "input": {**notify, **inputs},
            },
        }
    }
    assert await async_setup_component(hass, "automation", config)
    await hass.async_block_till_done()
    assert len(hass.states.async_entity_ids("automation")) == 1


async def _advance(hass: HomeAssistant, freezer: FrozenDateTimeFactory, minutes: float) -> None:
    freezer.tick(timedelta(minutes=minutes))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


def _messages(notified: dict[str, list[ServiceCall]]) -> list[str]:
    """Return the messages sent, checking each went both ways."""
    entity, action = notified["entity"], notified["action"]
    assert len(entity) == len(action)
    for call in entity:
        assert call.data["entity_id"] == [PANEL]
        assert call.data["title"] == "Grid Meter"
    assert [c.data["message"] for c in entity] == [c.data["message"] for c in action]
    return [c.data["message"] for c in entity]


# --- structure ----------------------------------------------------------------------------


def test_every_blueprint_is_valid_for_home_assistant() -> None:
    assert len(AUTOMATIONS) == 5
    assert len(TEMPLATES) == 2
    for path in AUTOMATIONS:
        AUTOMATION_BLUEPRINT_SCHEMA(load_yaml_dict(str(path)))
    for path in TEMPLATES:
        TEMPLATE_BLUEPRINT_SCHEMA(load_yaml_dict(str(path)))


def test_automation_blueprints_share_the_notification_part() -> None:
    docs = {p.name: load_yaml_dict(str(p)) for p in AUTOMATIONS}
    notification = {n: d["blueprint"]["input"]["notification"] for n, d in docs.items()}
    actions = {n: d["actions"] for n, d in docs.items()}
    first = next(iter(docs))
    for name in docs:
        assert set(notification[name]["input"]) == NOTIFY_INPUTS
        assert notification[name] == notification[first], name
        assert actions[name] == actions[first], name
        source = docs[name]["blueprint"]["source_url"]
        assert source.endswith(f"blueprints/automation/grid_meter/{name}")


# --- automations --------------------------------------------------------------------------


async def test_voltage_excursion(
    hass: HomeAssistant, notified: dict[str, list[ServiceCall]], freezer: FrozenDateTimeFactory
) -> None:
    for phase in "abc":
        await _sensor(hass, f"sensor.voltage_{phase}", 220, "V", device_class="voltage")
    await _automation(
        hass,
        "voltage_excursion",
        voltage_sensors=["sensor.voltage_a", "sensor.voltage_b", "sensor.voltage_c"],
    )
    # Inside +7 % (235.4 V) for long: nothing.
    await _sensor(hass, "sensor.voltage_b", 234, "V")
    await _advance(hass, freezer, 30)
    assert _messages(notified) == []

    # Above the limit, but back before the 10 minutes are up: nothing.
    await _sensor(hass, "sensor.voltage_a", 240, "V")
    await _advance(hass, freezer, 9)
    await _sensor(hass, "sensor.voltage_a", 221, "V")
    await _advance(hass, freezer, 5)
    assert _messages(notified) == []

    # 240 V for 10 minutes: one notification naming the sensor, value and deviation.
    await _sensor(hass, "sensor.voltage_a", 240, "V")
    await _advance(hass, freezer, 9)
    assert _messages(notified) == []
    await _advance(hass, freezer, 1.5)
    assert _messages(notified) == [
        "Voltage A: 240.0 V is 9.1 % above the nominal 220 V (limit 7 %) for 10 min."
    ]
    # It stays high: no repeat.
    await _advance(hass, freezer, 30)
    assert len(_messages(notified)) == 1

    # Below −7 % (204.6 V).
    await _sensor(hass, "sensor.voltage_c", 198, "V")
    await _advance(hass, freezer, 11)
    assert _messages(notified)[1:] == [
        "Voltage C: 198.0 V is 10.0 % below the nominal 220 V (limit 7 %) for 10 min."
    ]

    # Unavailable is not "below".
    await _sensor(hass, "sensor.voltage_b", "unavailable", "V")
    await _advance(hass, freezer, 30)
    assert len(_messages(notified)) == 2


async def test_voltage_excursion_line_voltages(
    hass: HomeAssistant, notified: dict[str, list[ServiceCall]], freezer: FrozenDateTimeFactory
) -> None:
    await _sensor(hass, "sensor.voltage_ab", 380, "V")
    await _automation(
        hass,
        "voltage_excursion",
        voltage_sensors=["sensor.voltage_ab"],
        voltage_kind="line",
        upper_limit=5,
        duration={"minutes": 1},
    )
    await _sensor(hass, "sensor.voltage_ab", 398, "V")  # +4.6 % of 381.1 V
    await _advance(hass, freezer, 5)
    assert _messages(notified) == []
    await _sensor(hass, "sensor.voltage_ab", 402, "V")  # +5.5 %
    await _advance(hass, freezer, 1.5)
    assert _messages(notified) == [
        "Voltage Ab: 402.0 V is 5.5 % above the nominal 381.1 V (limit 5 %) for 1 min."
    ]


async def test_unbalance(
    hass: HomeAssistant, notified: dict[str, list[ServiceCall]], freezer: FrozenDateTimeFactory
) -> None:
    await _sensor(hass, "sensor.voltage_unbalance", 1.2, "%")
    await _automation(hass, "unbalance", unbalance_sensors=["sensor.voltage_unbalance"])
    await _sensor(hass, "sensor.voltage_unbalance", 2.0, "%")  # at the limit is within it
    await _advance(hass, freezer, 30)
    await _sensor(hass, "sensor.voltage_unbalance", 2.888, "%")
    await _advance(hass, freezer, 9)
    assert _messages(notified) == []
    await _advance(hass, freezer, 1.5)
    assert _messages(notified) == [
        "Voltage Unbalance: unbalance 2.89 % above the limit of 2 % for 10 min."
    ]


async def test_frequency_deviation(
    hass: HomeAssistant, notified: dict[str, list[ServiceCall]], freezer: FrozenDateTimeFactory
) -> None:
    await _sensor(hass, "sensor.frequency", 50.0, "Hz", device_class="frequency")
    await _automation(hass, "frequency_deviation", frequency_sensors=["sensor.frequency"])
    await _sensor(hass, "sensor.frequency", 50.15, "Hz")
    await _advance(hass, freezer, 10)
    await _sensor(hass, "sensor.frequency", 49.7, "Hz")
    await _advance(hass, freezer, 0.5)
    assert _messages(notified) == []
    await _advance(hass, freezer, 1)
    assert _messages(notified) == [
        "Frequency: 49.7 Hz deviates -0.30 Hz from the nominal 50 Hz (limit ±0.2 Hz) for 1 min."
    ]


async def test_overload_from_load_rate(
    hass: HomeAssistant, notified: dict[str, list[ServiceCall]], freezer: FrozenDateTimeFactory
) -> None:
    await _sensor(hass, "sensor.load_rate", 60, "%")
    await _automation(hass, "overload", load_sensors=["sensor.load_rate"])
    await _sensor(hass, "sensor.load_rate", 99, "%")
    await _advance(hass, freezer, 30)
    await _sensor(hass, "sensor.load_rate", 112, "%")
    await _advance(hass, freezer, 4)
    assert _messages(notified) == []
    await _advance(hass, freezer, 1.5)
    assert _messages(notified) == ["Load Rate: load 112 % above the limit of 100 % for 5 min."]


async def test_overload_from_apparent_power(
    hass: HomeAssistant, notified: dict[str, list[ServiceCall]], freezer: FrozenDateTimeFactory
) -> None:
    await _sensor(hass, "sensor.apparent_power", 500, "kVA")
    await _automation(
        hass, "overload", load_sensors=["sensor.apparent_power"], rated_capacity=630, limit=80
    )
    await _sensor(hass, "sensor.apparent_power", 510, "kVA")  # 81 %
    await _advance(hass, freezer, 6)
    assert _messages(notified) == [
        "Apparent Power: load 81 % (510.0 kVA of 630 kVA) above the limit of 80 % for 5 min."
    ]


async def test_low_power_factor(
    hass: HomeAssistant, notified: dict[str, list[ServiceCall]], freezer: FrozenDateTimeFactory
) -> None:
    await _sensor(hass, "sensor.power_factor", 0.95, "", device_class="power_factor")
    await _automation(hass, "low_power_factor", power_factor_sensors=["sensor.power_factor"])
    # Lagging or leading, the magnitude counts: -0.92 is above the 0.90 target.
    await _sensor(hass, "sensor.power_factor", -0.92, "")
    await _advance(hass, freezer, 60)
    await _sensor(hass, "sensor.power_factor", 0.82, "")
    await _advance(hass, freezer, 29)
    assert _messages(notified) == []
    await _advance(hass, freezer, 1.5)
    assert _messages(notified) == [
        "Power Factor: power factor 0.82 below the target 0.9 for 30 min."
    ]


async def test_low_power_factor_in_percent_and_light_load(
    hass: HomeAssistant, notified: dict[str, list[ServiceCall]], freezer: FrozenDateTimeFactory
) -> None:
    await _sensor(hass, "sensor.power_factor", 95, "%", device_class="power_factor")
    await _sensor(hass, "sensor.active_power", 0.2, "kW", device_class="power")
    await _automation(
        hass,
        "low_power_factor",
        power_factor_sensors=["sensor.power_factor"],
        power_sensor="sensor.active_power",
        minimum_power=1,
    )
    # 40 % at 0.2 kW: too light a load to notify.
    await _sensor(hass, "sensor.power_factor", 40, "%")
    await _advance(hass, freezer, 31)
    assert _messages(notified) == []
    # 85 % at 12 kW.
    await _sensor(hass, "sensor.power_factor", 95, "%")
    await _sensor(hass, "sensor.active_power", 12, "kW")
    await _advance(hass, freezer, 1)
    await _sensor(hass, "sensor.power_factor", 85, "%")
    await _advance(hass, freezer, 31)
    assert _messages(notified) == [
        "Power Factor: power factor 0.85 below the target 0.9 for 30 min at 12 kW."
    ]


@pytest.mark.parametrize(
    ("notify", "sent_to"),
    [
        ({"notify_entities": []}, "action"),  # the default: no notify entity
        ({"notify_action": []}, "entity"),  # the default: no action
    ],
)
async def test_either_way_of_notifying_is_optional(
    hass: HomeAssistant,
    notified: dict[str, list[ServiceCall]],
    freezer: FrozenDateTimeFactory,
    notify: dict[str, Any],
    sent_to: str,
) -> None:
    await _sensor(hass, "sensor.current_unbalance", 5, "%")
    await _automation(
        hass,
        "unbalance",
        unbalance_sensors=["sensor.current_unbalance"],
        limit=15,
        duration={"seconds": 30},
        **notify,
    )
    await _sensor(hass, "sensor.current_unbalance", 31.5, "%")
    await _advance(hass, freezer, 1)
    assert [c.data["message"] for c in notified[sent_to]] == [
        "Current Unbalance: unbalance 31.5 % above the limit of 15 % for 30 s."
    ]
    other = "entity" if sent_to == "action" else "action"
    assert notified[other] == []


# --- templates ----------------------------------------------------------------------------


async def _template(hass: HomeAssistant, blueprint: str, name: str, **inputs: Any) -> None:
    config = {
        "template": [
            {
                "use_blueprint": {"path": f"grid_meter/{blueprint}.yaml", "input": inputs},
                "name": name,
                "unique_id": blueprint,
            }
        ]
    }
    assert await async_setup_component(hass, "template", config)
    await hass.async_block_till_done()


async def test_voltage_unbalance_from_line_voltages(
    hass: HomeAssistant, notified: dict[str, list[ServiceCall]]
) -> None:
    for key, value in {"ab": 400, "bc": 390, "ca": 410}.items():
        await _sensor(hass, f"sensor.voltage_{key}", value, "V", device_class="voltage")
    await _template(
        hass,
        "voltage_unbalance",
        "Voltage unbalance",
        voltage_1="sensor.voltage_ab",
        voltage_2="sensor.voltage_bc",
        voltage_3="sensor.voltage_ca",
    )
    state = hass.states.get("sensor.voltage_unbalance")
    assert state is not None
    # The worked example of GB/T 15543 (docs/indicators.md): 400 / 390 / 410 V -> 2.888 %.
    assert float(state.state) == pytest.approx(2.888, abs=0.0005)
    assert state.attributes["unit_of_measurement"] == "%"
    assert state.attributes["exact"] is True
    assert "GB/T 15543" in state.attributes["method"]

    for key in ("ab", "bc", "ca"):
        await _sensor(hass, f"sensor.voltage_{key}", 400, "V")
    await hass.async_block_till_done()
    assert _state(hass, "sensor.voltage_unbalance") == "0.0"

    # No triangle (one side longer than the two others): no value rather than a wrong one.
    await _sensor(hass, "sensor.voltage_ab", 900, "V")
    await hass.async_block_till_done()
    assert _state(hass, "sensor.voltage_unbalance") == "unavailable"
    await _sensor(hass, "sensor.voltage_ab", "unavailable", "V")
    await hass.async_block_till_done()
    assert _state(hass, "sensor.voltage_unbalance") == "unavailable"


async def test_voltage_unbalance_approximation_from_phase_voltages(
    hass: HomeAssistant, notified: dict[str, list[ServiceCall]]
) -> None:
    for key, value in {"a": 230, "b": 220, "c": 210}.items():
        await _sensor(hass, f"sensor.voltage_{key}", value, "V", device_class="voltage")
    await _template(
        hass,
        "voltage_unbalance",
        "Voltage unbalance approx",
        voltage_1="sensor.voltage_a",
        voltage_2="sensor.voltage_b",
        voltage_3="sensor.voltage_c",
        voltage_kind="phase",
    )
    state = hass.states.get("sensor.voltage_unbalance_approx")
    assert state is not None
    # max |U − mean| / mean = 10 / 220.
    assert float(state.state) == pytest.approx(100 * 10 / 220, abs=0.0005)
    assert state.attributes["exact"] is False
    assert state.attributes["method"].startswith("approximation")


async def test_voltage_within_limits(
    hass: HomeAssistant, notified: dict[str, list[ServiceCall]]
) -> None:
    for phase in "abc":
        await _sensor(hass, f"sensor.voltage_{phase}", 220, "V", device_class="voltage")
    await _template(
        hass,
        "voltage_within_limits",
        "Voltage within limits",
        voltage_sensors=["sensor.voltage_a", "sensor.voltage_b", "sensor.voltage_c"],
        lower_limit=10,
    )

    def state() -> Any:
        current = hass.states.get("binary_sensor.voltage_within_limits")
        assert current is not None
        return current

    assert state().state == "on"
    await _sensor(hass, "sensor.voltage_b", 235.4, "V")  # +7 %: on the edge is within
    await _sensor(hass, "sensor.voltage_c", 198.5, "V")  # −9.8 %
    await hass.async_block_till_done()
    assert state().state == "on"
    await _sensor(hass, "sensor.voltage_b", 236, "V")
    await hass.async_block_till_done()
    assert state().state == "off"
    assert state().attributes["worst_sensor"] == "sensor.voltage_c"
    assert state().attributes["worst_deviation"] == pytest.approx(-9.77, abs=0.01)
    await _sensor(hass, "sensor.voltage_b", 220, "V")
    await _sensor(hass, "sensor.voltage_c", 197, "V")  # −10.5 %
    await hass.async_block_till_done()
    assert state().state == "off"
    await _sensor(hass, "sensor.voltage_c", "unknown", "V")
    await hass.async_block_till_done()
    assert state().state == "unavailable"
