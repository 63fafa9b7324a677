"""The meter subentry flow: scan or enter by hand, probe, every error, and the meter appears."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.grid_meter.const import DOMAIN, SUBENTRY_METER
from custom_components.grid_meter.flow_common import meter_errors
from edge_agent.errors import (
    AbnormalReplyError,
    ChecksumError,
    ConnectionLostError,
    EdgeAgentError,
    MeterTimeoutError,
    ModbusExceptionError,
    PortBusyError,
    PortNotFoundError,
)
from edge_agent.model import SerialSettings
from edge_agent.simulator import BusSimulator, SimMeter, start_pty

from .conftest import BAUD, ENTRY_ID, SimBus, bus_entry, coordinator_of, relink

MISSING = "/dev/serial/by-id/usb-not-plugged-in-if00-port0"
SDM120_AT_3 = {"address": "3", "profile": "eastron-sdm120"}
SDM630_AT_1 = {"address": "001", "profile": "eastron-sdm630"}


async def _start(hass: HomeAssistant, entry: MockConfigEntry, step: str) -> dict[str, Any]:
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_METER), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["scan", "manual"]
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"next_step_id": step}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == step
    return dict(result)


async def _configure(hass: HomeAssistant, flow_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return dict(await hass.config_entries.subentries.async_configure(flow_id, data))


async def test_add_meter_by_hand_to_a_running_bus(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    """The meter is probed on the running bus; the bus reloads with it and its entities."""
    before = coordinator_of(loaded_entry)
    result = await _start(hass, loaded_entry, "manual")
    result = await _configure(
        hass, result["flow_id"], {"address": " 05 ", "profile": "acrel-adw300"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "ADW300 5"
    assert result["data"] == {"address": "5", "profile": "acrel-adw300"}
    await hass.async_block_till_done()

    assert loaded_entry.state is ConfigEntryState.LOADED
    assert "5" in coordinator_of(loaded_entry).data
    assert coordinator_of(loaded_entry) is not before
    entity_id = entity_registry.async_get_entity_id("sensor", DOMAIN, f"{ENTRY_ID}_5_voltage_a")
    assert entity_id is not None
    state = hass.states.get(entity_id)
    assert state is not None
    assert 200 < float(state.state) < 250


async def test_add_meter_to_a_bus_that_is_not_loaded(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """Without a running bus the flow opens the port itself, and releases it."""
    config_entry.add_to_hass(hass)
    result = await _start(hass, config_entry, "manual")
    result = await _configure(
        hass, result["flow_id"], {"address": "12", "profile": "dlt645-2007-1phase"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {"address": "000000000012", "profile": "dlt645-2007-1phase"}


@pytest.mark.parametrize(
    ("address", "profile", "errors"),
    [
        ("0", "eastron-sdm630", {"address": "invalid_address"}),
        ("248", "eastron-sdm630", {"address": "invalid_address"}),
        ("1a", "eastron-sdm630", {"address": "invalid_address"}),
        ("１", "eastron-sdm630", {"address": "invalid_address"}),
        ("1234567890123", "dlt645-2007-3phase", {"address": "invalid_address"}),
        ("7", "no-such-meter", {"profile": "unknown_profile"}),
        ("7", "/etc/passwd", {"profile": "unknown_profile"}),
        ("7", "eastron-sdm630.yaml", {"profile": "unknown_profile"}),
        ("99", "eastron-sdm630", {"base": "no_answer"}),
    ],
)
async def test_manual_errors(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    address: str,
    profile: str,
    errors: dict[str, str],
) -> None:
    """Wrong input is reported, then the corrected meter is added (bus not loaded: faster)."""
    config_entry.add_to_hass(hass)
    result = await _start(hass, config_entry, "manual")
    result = await _configure(hass, result["flow_id"], {"address": address, "profile": profile})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    # The user fixes the input and the meter is added.
    result = await _configure(hass, result["flow_id"], SDM120_AT_3)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_meter_refusing_the_profile(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """A meter that answers but refuses every read of the chosen profile."""
    result = await _start(hass, loaded_entry, "manual")
    result = await _configure(hass, result["flow_id"], {"address": "3", "profile": "im1253b"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "meter_refused"}


async def test_garbled_replies(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim_bus: SimBus
) -> None:
    sim_bus.sim.meter("3").faults.corrupt_rate = 1.0
    result = await _start(hass, loaded_entry, "manual")
    result = await _configure(hass, result["flow_id"], SDM120_AT_3)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "bad_reply"}


async def test_meter_already_on_the_bus(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    result = await _start(hass, loaded_entry, "manual")
    result = await _configure(hass, result["flow_id"], SDM630_AT_1)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_port_missing_while_not_loaded(hass: HomeAssistant) -> None:
    entry = bus_entry(MISSING)
    entry.add_to_hass(hass)
    result = await _start(hass, entry, "manual")
    result = await _configure(hass, result["flow_id"], SDM120_AT_3)
    assert result["errors"] == {"base": "port_not_found"}


async def _scan(hass: HomeAssistant, flow_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """Submit the scan form, let the scan run, return the step after it."""
    result = await _configure(hass, flow_id, data)
    assert result["type"] is FlowResultType.SHOW_PROGRESS
    assert result["progress_action"] == "scan"
    await hass.async_block_till_done()
    return dict(await hass.config_entries.subentries.async_configure(flow_id))


async def test_scan_modbus_then_pick(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    result = await _start(hass, loaded_entry, "scan")
    flow_id = result["flow_id"]
    result = await _scan(
        hass, flow_id, {"protocol": "modbus", "first_address": 1, "last_address": 8}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "pick"
    # Meters 1 and 2 are configured already; 3..6 answer; 7 and 8 do not exist.
    assert result["description_placeholders"] == {"count": "4"}
    result = await _configure(hass, flow_id, {"address": "4", "profile": "no-such-meter"})
    assert result["errors"] == {"profile": "unknown_profile"}
    result = await _configure(hass, flow_id, {"address": "4", "profile": "chint-ddsu666"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "DDSU666 4"


async def test_scan_finds_nothing(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    result = await _start(hass, loaded_entry, "scan")
    flow_id = result["flow_id"]
    result = await _configure(
        hass, flow_id, {"protocol": "modbus", "first_address": 9, "last_address": 3}
    )
    assert result["errors"] == {"last_address": "invalid_range"}
    result = await _scan(
        hass, flow_id, {"protocol": "modbus", "first_address": 100, "last_address": 102}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "scan"
    assert result["errors"] == {"base": "no_meters_found"}


async def test_scan_port_missing(hass: HomeAssistant) -> None:
    entry = bus_entry(MISSING)
    entry.add_to_hass(hass)
    result = await _start(hass, entry, "scan")
    result = await _scan(
        hass, result["flow_id"], {"protocol": "modbus", "first_address": 1, "last_address": 2}
    )
    assert result["step_id"] == "scan"
    assert result["errors"] == {"base": "port_not_found"}


@pytest.fixture
async def lone_dlt645_bus(sim_bus: SimBus) -> AsyncIterator[SimBus]:
    """Serve a single DL/T 645-2007 meter, which answers the wildcard address query."""
    sim = BusSimulator(
        [SimMeter("dlt645-2007-3phase", "000000000011"), SimMeter("eastron-sdm630", "1")],
        SerialSettings(BAUD),
        time_scale=0.0,
    )
    await sim_bus.server.close()
    sim_bus.sim, sim_bus.server = sim, await start_pty(sim)
    relink(sim_bus.path, sim_bus.server.path)
    yield sim_bus


async def test_scan_dlt645(hass: HomeAssistant, lone_dlt645_bus: SimBus) -> None:
    entry = bus_entry(lone_dlt645_bus.path, ())
    entry.add_to_hass(hass)
    result = await _start(hass, entry, "scan")
    flow_id = result["flow_id"]
    result = await _scan(
        hass, flow_id, {"protocol": "dlt645-2007", "first_address": 1, "last_address": 1}
    )
    assert result["step_id"] == "pick"
    assert result["description_placeholders"] == {"count": "1"}
    result = await _configure(
        hass, flow_id, {"address": "000000000011", "profile": "dlt645-2007-3phase"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {"address": "000000000011", "profile": "dlt645-2007-3phase"}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (PortNotFoundError("gone"), "port_not_found"),
        (PortBusyError("held"), "port_busy"),
        (ConnectionLostError("lost"), "cannot_open"),
        (MeterTimeoutError("silent"), "no_answer"),
        (ChecksumError("crc"), "bad_reply"),
        (ModbusExceptionError("illegal data address", 2), "meter_refused"),
        (AbnormalReplyError("no data", 0x02), "meter_refused"),
    ],
)
def test_error_mapping(error: EdgeAgentError, expected: str) -> None:
    """Every kind of edge agent failure has its own message in the form."""
    assert meter_errors(error) == {"base": expected}
