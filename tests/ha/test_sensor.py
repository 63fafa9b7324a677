"""Sensors: entities of every profile, units and classes, unavailability and recovery."""

from __future__ import annotations

import asyncio
import logging

import pytest
from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import STATE_UNAVAILABLE, EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.grid_meter.const import DOMAIN
from custom_components.grid_meter.sensor import METER_SENSORS, describe_quantity
from edge_agent.profiles import load_profile
from edge_agent.quantities import QUANTITIES

from .conftest import ENTRY_ID, METERS, SimBus, coordinator_of


def _entity_id(entity_registry: er.EntityRegistry, address: str, key: str) -> str:
    entity_id = entity_registry.async_get_entity_id("sensor", DOMAIN, f"{ENTRY_ID}_{address}_{key}")
    assert entity_id is not None, f"no entity for {address} {key}"
    return entity_id


def _state(hass: HomeAssistant, entity_registry: er.EntityRegistry, address: str, key: str) -> str:
    state = hass.states.get(_entity_id(entity_registry, address, key))
    assert state is not None
    return state.state


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize("addresses", [(a,) for a in METERS], ids=list(METERS.values()))
async def test_entities_of_every_profile(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Registry entries and states of one meter of each profile (the meters' clock is frozen)."""
    (address,) = coordinator_of(loaded_entry).data
    profile = load_profile(METERS[address])
    device = device_registry.async_get_device(identifiers={(DOMAIN, f"{ENTRY_ID}_{address}")})
    assert device is not None
    assert device == snapshot(name="device")
    # The meter's quantities (its indicators are tested in test_indicators.py).
    entries = sorted(
        (
            e
            for e in er.async_entries_for_device(entity_registry, device.id)
            if e.unique_id.removeprefix(f"{ENTRY_ID}_{address}_") in QUANTITIES
        ),
        key=lambda e: e.unique_id,
    )
    assert [e.unique_id.removeprefix(f"{ENTRY_ID}_{address}_") for e in entries] == sorted(
        set(profile.keys)
    )
    reading = coordinator_of(loaded_entry).data[address]
    for entry in entries:
        state = hass.states.get(entry.entity_id)
        assert state is not None
        key = entry.unique_id.removeprefix(f"{ENTRY_ID}_{address}_")
        if key in reading.missing:  # type: ignore[union-attr]
            assert state.state == STATE_UNAVAILABLE
        elif QUANTITIES[key].unit is not None:
            float(state.state)  # a number
        assert entry == snapshot(name=f"{entry.entity_id}-entry")
        assert state == snapshot(name=f"{entry.entity_id}-state")


async def test_uncommon_quantities_start_disabled(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    thd = entity_registry.async_get(_entity_id(entity_registry, "1", "thd_voltage_a"))
    assert thd is not None
    assert thd.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    power = entity_registry.async_get(_entity_id(entity_registry, "1", "power_active_total"))
    assert power is not None and power.disabled_by is None


def test_descriptions_follow_the_quantity_table() -> None:
    energy = METER_SENSORS["energy_import_total"]
    assert energy.device_class is SensorDeviceClass.ENERGY
    assert energy.state_class is SensorStateClass.TOTAL_INCREASING
    assert energy.native_unit_of_measurement == "kWh"
    reactive = METER_SENSORS["power_reactive_total"]
    assert reactive.native_unit_of_measurement == "var"
    assert reactive.value_fn(1.5) == 1500.0
    assert reactive.value_fn("n/a") is None
    assert reactive.value_fn(True) is None
    apparent = METER_SENSORS["power_apparent_total"]
    assert (apparent.native_unit_of_measurement, apparent.value_fn(2)) == ("VA", 2000.0)
    assert METER_SENSORS["voltage_a"].value_fn(230.1) == 230.1
    status = METER_SENSORS["status_word_1"]
    assert status.state_class is None
    assert status.entity_category is EntityCategory.DIAGNOSTIC
    assert status.value_fn(0x0040) == 0x0040
    reactive_energy = describe_quantity(QUANTITIES["energy_reactive_import_total"])
    assert reactive_energy.device_class is None
    assert reactive_energy.state_class is SensorStateClass.TOTAL_INCREASING
    for key, quantity in QUANTITIES.items():
        assert METER_SENSORS[key].entity_registry_enabled_default is quantity.common


async def test_bus_diagnostic_sensors(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    def bus_state(key: str) -> str:
        entity_id = entity_registry.async_get_entity_id("sensor", DOMAIN, f"{ENTRY_ID}_{key}")
        assert entity_id is not None
        entry = entity_registry.async_get(entity_id)
        assert entry is not None and entry.entity_category is EntityCategory.DIAGNOSTIC
        state = hass.states.get(entity_id)
        assert state is not None
        return state.state

    assert bus_state("meters_answering") == "3"
    assert int(bus_state("transactions")) >= 3
    assert bus_state("errors") == "0"
    assert bus_state("timeouts") == "0"
    assert 0.0 <= float(bus_state("busy")) <= 100.0
    assert float(bus_state("cycle_time")) > 0.0


async def test_silent_meter_is_unavailable_alone_and_comes_back(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    sim_bus: SimBus,
    entity_registry: er.EntityRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    coordinator = coordinator_of(loaded_entry)
    coordinator.bus.backoff_base = 0.0  # retry the silent meter at every poll
    coordinator.bus.timeout = 0.1
    caplog.set_level(logging.INFO, logger="custom_components.grid_meter")
    dlt = "000000000011"
    assert float(_state(hass, entity_registry, dlt, "voltage_a")) > 200

    sim_bus.sim.meter(dlt).faults.silent = True
    for _ in range(2):
        await coordinator.async_refresh()
        await hass.async_block_till_done()
        assert coordinator.last_update_success
        assert _state(hass, entity_registry, dlt, "voltage_a") == STATE_UNAVAILABLE
        assert _state(hass, entity_registry, dlt, "energy_import_total") == STATE_UNAVAILABLE
        assert float(_state(hass, entity_registry, "1", "voltage_a")) > 200
        assert float(_state(hass, entity_registry, "2", "voltage_a")) > 200
    assert caplog.text.count(f"Meter {dlt} on") == 1
    assert "is not answering" in caplog.text

    sim_bus.sim.meter(dlt).faults.silent = False
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert float(_state(hass, entity_registry, dlt, "voltage_a")) > 200
    assert caplog.text.count(f"Meter {dlt} on") == 2
    assert f"Meter {dlt} on usb-grid-meter-test-if00-port0 answers again" in caplog.text


async def test_bus_lost_makes_everything_unavailable_until_it_is_back(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    sim_bus: SimBus,
    entity_registry: er.EntityRegistry,
) -> None:
    coordinator = coordinator_of(loaded_entry)
    await sim_bus.server.close()  # the adapter is unplugged ...
    await asyncio.sleep(0.05)  # ... some time before the next poll
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert not coordinator.last_update_success
    assert _state(hass, entity_registry, "1", "voltage_a") == STATE_UNAVAILABLE

    await sim_bus.restart()  # plugged in again: same by-id name, new device node
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert coordinator.last_update_success
    assert float(_state(hass, entity_registry, "1", "voltage_a")) > 200
