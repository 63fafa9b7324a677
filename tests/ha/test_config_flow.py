"""The bus config flow: serial port, TCP gateway, USB discovery, reconfigure, every error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from homeassistant.config_entries import (
    SOURCE_USB,
    SOURCE_USER,
    ConfigEntryState,
    ConfigFlowResult,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.usb import UsbServiceInfo
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.grid_meter.const import DOMAIN
from edge_agent.bus import Bus
from edge_agent.link import LinkConfig
from edge_agent.model import SerialSettings
from edge_agent.simulator import BusSimulator, TcpServer, start_pty, start_tcp

from .conftest import BAUD, SimBus, bus_entry, relink, serial_data, sim_meters

MISSING = "/dev/serial/by-id/usb-not-plugged-in-if00-port0"


@pytest.fixture
async def held(sim_bus: SimBus) -> AsyncIterator[str]:
    """Provide the simulated port, held open by another program."""
    holder = Bus(LinkConfig(kind="serial", device=sim_bus.path))
    await holder.open()
    try:
        yield sim_bus.path
    finally:
        await holder.close()


@pytest.fixture
async def gateway(socket_enabled: None) -> AsyncIterator[TcpServer]:
    """Provide a transparent TCP gateway with a Modbus meter behind it."""
    sim = BusSimulator(sim_meters(("1",)), SerialSettings(baudrate=BAUD))
    server = await start_tcp(sim)
    try:
        yield server
    finally:
        await server.close()


async def _start(hass: HomeAssistant, step: str) -> ConfigFlowResult:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["serial", "tcp"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": step}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == step
    assert result["errors"] == {}
    return result


async def _unload_all(hass: HomeAssistant) -> None:
    for entry in hass.config_entries.async_entries(DOMAIN):
        await hass.config_entries.async_unload(entry.entry_id)


async def test_serial_bus(hass: HomeAssistant, sim_bus: SimBus) -> None:
    result = await _start(hass, "serial")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": sim_bus.path, "protocol": "modbus", "baudrate": str(BAUD)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "usb-grid-meter-test-if00-port0"
    assert result["data"] == serial_data(sim_bus.path)
    assert result["result"].unique_id == sim_bus.path
    assert result["result"].state is ConfigEntryState.LOADED
    await _unload_all(hass)


async def test_serial_defaults_follow_the_protocol(hass: HomeAssistant, sim_bus: SimBus) -> None:
    """Line settings left empty take the protocol's defaults (DL/T 645-2007: 2400 baud)."""
    result = await _start(hass, "serial")
    # Parity given: a pty refuses to be opened a second time with parity set.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": sim_bus.path, "protocol": "dlt645-2007", "parity": "N"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == serial_data(sim_bus.path, protocol="dlt645-2007", baudrate=2400)
    await _unload_all(hass)


@pytest.mark.parametrize(
    ("device", "error"),
    [
        (MISSING, "port_not_found"),
        ("file", "cannot_open"),
    ],
)
async def test_serial_errors_then_recover(
    hass: HomeAssistant,
    sim_bus: SimBus,
    tmp_path: Path,
    device: str,
    error: str,
) -> None:
    if device == "file":  # not a tty: the serial driver cannot configure it
        not_a_tty = tmp_path / "not-a-tty"
        not_a_tty.touch()
        device = str(not_a_tty)
    result = await _start(hass, "serial")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": device, "protocol": "modbus"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": sim_bus.path, "protocol": "modbus", "baudrate": str(BAUD)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await _unload_all(hass)


async def test_serial_port_busy(hass: HomeAssistant, held: str) -> None:
    result = await _start(hass, "serial")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": held, "protocol": "modbus"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "port_busy"}


async def test_serial_already_configured(hass: HomeAssistant, sim_bus: SimBus) -> None:
    bus_entry(sim_bus.path).add_to_hass(hass)
    result = await _start(hass, "serial")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": sim_bus.path, "protocol": "modbus"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_tcp_gateway(hass: HomeAssistant, gateway: TcpServer) -> None:
    result = await _start(hass, "tcp")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"host": " 127.0.0.1 ", "port": gateway.port, "framing": "raw", "protocol": "modbus"},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"127.0.0.1:{gateway.port}"
    assert result["data"] == {
        "link": "tcp",
        "host": "127.0.0.1",
        "port": gateway.port,
        "framing": "raw",
        "protocol": "modbus",
    }
    await _unload_all(hass)


@pytest.mark.parametrize(
    ("host", "error"),
    [("127.0.0.1", "cannot_open"), ("gateway.invalid", "port_not_found")],
)
async def test_tcp_errors(
    hass: HomeAssistant, socket_enabled: None, unused_tcp_port: int, host: str, error: str
) -> None:
    result = await _start(hass, "tcp")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"host": host, "port": unused_tcp_port, "framing": "modbus_tcp", "protocol": "modbus"},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}


def _usb(device: str) -> UsbServiceInfo:
    return UsbServiceInfo(
        device=device,
        vid="1A86",
        pid="7523",
        serial_number="5735012345",
        manufacturer="QinHeng Electronics",
        description="USB Single Serial",
    )


async def test_usb_discovery(hass: HomeAssistant, sim_bus: SimBus) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USB}, data=_usb(sim_bus.path)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "usb_confirm"
    assert result["description_placeholders"] == {"device": sim_bus.path}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"protocol": "modbus", "baudrate": str(BAUD)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == serial_data(sim_bus.path)
    await _unload_all(hass)


async def test_usb_discovery_busy_port(hass: HomeAssistant, held: str) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USB}, data=_usb(held)
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"protocol": "modbus"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "port_busy"}


async def test_usb_discovery_already_configured(hass: HomeAssistant, sim_bus: SimBus) -> None:
    bus_entry(sim_bus.path).add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USB}, data=_usb(sim_bus.path)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_reconfigure_line_settings_of_a_running_bus(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim_bus: SimBus
) -> None:
    """The running bus holds the port, so the reload tests the new settings."""
    result = await loaded_entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"device": sim_bus.path, "protocol": "modbus", "baudrate": "57600", "stopbits": "2"},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert loaded_entry.data == serial_data(sim_bus.path, baudrate=57600, stopbits=2)
    assert loaded_entry.state is ConfigEntryState.LOADED
    await _unload_all(hass)


async def test_reconfigure_to_another_port(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim_bus: SimBus, tmp_path: Path
) -> None:
    other = await start_pty(BusSimulator(sim_meters(("1",)), SerialSettings(BAUD)))
    link = str(tmp_path / "usb-other-adapter")
    relink(link, other.path)
    try:
        result = await loaded_entry.start_reconfigure_flow(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"device": MISSING, "protocol": "modbus"}
        )
        assert result["errors"] == {"base": "port_not_found"}
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"device": link, "protocol": "modbus", "baudrate": str(BAUD)}
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "reconfigure_successful"
        await hass.async_block_till_done()
        assert loaded_entry.unique_id == link
        assert loaded_entry.state is ConfigEntryState.LOADED
        await _unload_all(hass)
    finally:
        await other.close()


async def test_reconfigure_onto_another_bus_aborts(
    hass: HomeAssistant, loaded_entry: MockConfigEntry, sim_bus: SimBus
) -> None:
    other = MockConfigEntry(domain=DOMAIN, unique_id=MISSING, data=serial_data(MISSING))
    other.add_to_hass(hass)
    result = await loaded_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"device": MISSING, "protocol": "modbus"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    await _unload_all(hass)


async def test_reconfigure_tcp_gateway(hass: HomeAssistant, gateway: TcpServer) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="192.0.2.1:502",
        data={
            "link": "tcp",
            "host": "192.0.2.1",
            "port": 502,
            "framing": "raw",
            "protocol": "modbus",
        },
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"host": "127.0.0.1", "port": gateway.port, "framing": "raw", "protocol": "modbus"},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.unique_id == f"127.0.0.1:{gateway.port}"
    assert entry.data["host"] == "127.0.0.1"
    await _unload_all(hass)
