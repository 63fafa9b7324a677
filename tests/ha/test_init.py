"""Set-up, unload, reload, port release, meters added and removed, stale devices."""

from __future__ import annotations

import asyncio

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.grid_meter import async_remove_config_entry_device
from custom_components.grid_meter.const import (
    CONF_FRAMING,
    CONF_HOST,
    CONF_LINK,
    CONF_PORT,
    CONF_PROTOCOL,
    DOMAIN,
    LINK_TCP,
)
from edge_agent.bus import Bus
from edge_agent.errors import PortBusyError
from edge_agent.link import LinkConfig
from edge_agent.model import Reading, Wire
from edge_agent.simulator import BusSimulator, start_tcp

from .conftest import (
    ENTRY_ID,
    SimBus,
    bus_entry,
    coordinator_of,
    meter_subentry,
    sim_meters,
)


def _state(entry: MockConfigEntry) -> ConfigEntryState:
    state: ConfigEntryState = entry.state
    return state


async def _assert_port_free(path: str) -> None:
    """Assert the port can be opened exclusively (nothing else holds it)."""
    bus = Bus(LinkConfig(kind="serial", device=path))
    await bus.open()
    await bus.close()


async def test_setup_reads_every_meter_and_unload_releases_the_port(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim_bus: SimBus
) -> None:
    assert loaded_entry.state is ConfigEntryState.LOADED
    data = coordinator_of(loaded_entry).data
    assert set(data) == {"1", "2", "000000000011"}
    assert all(isinstance(r, Reading) for r in data.values())
    # While loaded the integration holds the port exclusively.
    with pytest.raises(PortBusyError):
        await _assert_port_free(sim_bus.path)

    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert _state(loaded_entry) is ConfigEntryState.NOT_LOADED
    await _assert_port_free(sim_bus.path)


async def test_reload_reopens_the_port(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim_bus: SimBus
) -> None:
    assert await hass.config_entries.async_reload(loaded_entry.entry_id)
    await hass.async_block_till_done()
    assert loaded_entry.state is ConfigEntryState.LOADED
    assert all(isinstance(r, Reading) for r in coordinator_of(loaded_entry).data.values())
    assert await hass.config_entries.async_unload(loaded_entry.entry_id)
    await _assert_port_free(sim_bus.path)


async def test_missing_port_retries_setup(hass: HomeAssistant) -> None:
    entry = bus_entry("/dev/serial/by-id/usb-not-plugged-in")
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason is not None and "usb-not-plugged-in" in entry.reason


async def test_busy_port_retries_setup(hass: HomeAssistant, sim_bus: SimBus) -> None:
    holder = Bus(LinkConfig(kind="serial", device=sim_bus.path))
    await holder.open()
    try:
        entry = bus_entry(sim_bus.path)
        entry.add_to_hass(hass)
        assert not await hass.config_entries.async_setup(entry.entry_id)
        assert entry.state is ConfigEntryState.SETUP_RETRY
    finally:
        await holder.close()


@pytest.mark.usefixtures("socket_enabled")
async def test_gateway_hanging_up_during_first_poll_retries_setup(hass: HomeAssistant) -> None:
    """The gateway accepts the connection, then hangs up: retry later, hold nothing."""
    connections: list[asyncio.StreamWriter] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        entry = MockConfigEntry(
            domain=DOMAIN,
            unique_id=f"127.0.0.1:{port}",
            data={
                CONF_LINK: LINK_TCP,
                CONF_HOST: "127.0.0.1",
                CONF_PORT: port,
                CONF_FRAMING: "raw",
                CONF_PROTOCOL: "modbus",
            },
            subentries_data=[meter_subentry("1")],
        )
        entry.add_to_hass(hass)
        assert not await hass.config_entries.async_setup(entry.entry_id)
        assert entry.state is ConfigEntryState.SETUP_RETRY
        assert connections
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.usefixtures("socket_enabled")
async def test_modbus_tcp_gateway(hass: HomeAssistant, device_registry: dr.DeviceRegistry) -> None:
    """A Modbus TCP gateway: Modbus meters behind it speak MBAP frames."""
    sim = BusSimulator(sim_meters(("1", "2")))
    server = await start_tcp(sim, mbap=True)
    try:
        entry = MockConfigEntry(
            domain=DOMAIN,
            unique_id=f"127.0.0.1:{server.port}",
            data={
                CONF_LINK: LINK_TCP,
                CONF_HOST: "127.0.0.1",
                CONF_PORT: server.port,
                CONF_FRAMING: "modbus_tcp",
                CONF_PROTOCOL: "modbus",
            },
            subentries_data=[meter_subentry("1"), meter_subentry("2")],
        )
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        coordinator = coordinator_of(entry)
        assert {m.config.wire for m in coordinator.meters.values()} == {Wire.MODBUS_TCP}
        assert all(isinstance(r, Reading) for r in coordinator.data.values())
        bus = device_registry.async_get_device(identifiers={(DOMAIN, entry.entry_id)})
        assert bus is not None and bus.model == "Modbus TCP gateway"
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await server.close()


async def test_devices_and_their_links(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    bus = device_registry.async_get_device(identifiers={(DOMAIN, ENTRY_ID)})
    assert bus is not None
    assert (bus.manufacturer, bus.model) == ("Grid Meter", "RS485 serial bus")
    meter = device_registry.async_get_device(identifiers={(DOMAIN, f"{ENTRY_ID}_1")})
    assert meter is not None
    assert meter.via_device_id == bus.id
    assert (meter.manufacturer, meter.model, meter.serial_number) == ("Eastron", "SDM630", "1")
    assert meter.config_entries_subentries == {ENTRY_ID: {"meter1"}}


async def test_unknown_profile_skips_the_meter(
    hass: HomeAssistant, sim_bus: SimBus, caplog: pytest.LogCaptureFixture
) -> None:
    entry = bus_entry(sim_bus.path, ("1",))
    entry.add_to_hass(hass)
    subentry = next(iter(entry.subentries.values()))
    hass.config_entries.async_update_subentry(
        entry, subentry, data={"address": "1", "profile": "no-such-meter"}
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert coordinator_of(entry).meters == {}
    assert "unknown profile no-such-meter" in caplog.text
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_stale_meter_device_is_removed_at_setup(
    hass: HomeAssistant, sim_bus: SimBus, device_registry: dr.DeviceRegistry
) -> None:
    entry = bus_entry(sim_bus.path, ("1",))
    entry.add_to_hass(hass)
    stale = device_registry.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, f"{ENTRY_ID}_99")}
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert device_registry.async_get(stale.id) is None
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_remove_device_only_when_no_longer_configured(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    meter = device_registry.async_get_device(identifiers={(DOMAIN, f"{ENTRY_ID}_1")})
    bus = device_registry.async_get_device(identifiers={(DOMAIN, ENTRY_ID)})
    assert meter is not None and bus is not None
    assert not await async_remove_config_entry_device(hass, loaded_entry, meter)
    assert not await async_remove_config_entry_device(hass, loaded_entry, bus)
    gone = device_registry.async_get_or_create(
        config_entry_id=ENTRY_ID, identifiers={(DOMAIN, f"{ENTRY_ID}_77")}
    )
    assert await async_remove_config_entry_device(hass, loaded_entry, gone)


async def test_removing_a_meter_subentry_removes_its_device_and_entities(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    assert hass.config_entries.async_remove_subentry(loaded_entry, "meter2")
    await hass.async_block_till_done()
    assert device_registry.async_get_device(identifiers={(DOMAIN, f"{ENTRY_ID}_2")}) is None
    assert not [
        e
        for e in er.async_entries_for_config_entry(entity_registry, ENTRY_ID)
        if e.unique_id.startswith(f"{ENTRY_ID}_2_")
    ]
    assert set(coordinator_of(loaded_entry).data) == {"1", "000000000011"}
    assert loaded_entry.state is ConfigEntryState.LOADED


async def test_update_without_meter_change_does_not_reload(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    coordinator = coordinator_of(loaded_entry)
    hass.config_entries.async_update_entry(loaded_entry, title="Renamed bus")
    await hass.async_block_till_done()
    assert coordinator_of(loaded_entry) is coordinator
