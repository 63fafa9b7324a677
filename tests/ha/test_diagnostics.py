"""Diagnostics: settings, counters and readings, with the port, host and addresses redacted."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.grid_meter.diagnostics import redact_address, redact_link

from .conftest import SimBus


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    loaded_entry: MockConfigEntry,
    sim_bus: SimBus,
    snapshot: SnapshotAssertion,
) -> None:
    coordinator = loaded_entry.runtime_data.coordinator
    coordinator.bus.timeout, coordinator.bus.retries = 0.2, 0
    sim_bus.sim.meter("2").faults.silent = True
    await coordinator.async_refresh()
    result = await get_diagnostics_for_config_entry(hass, hass_client, loaded_entry)
    assert sim_bus.path not in str(result)
    assert "000000000011" not in str(result)
    assert result == snapshot(exclude=props("stats", "busy_percent", "timestamp"))
    assert result["bus"]["stats"]["transactions"] > 0


def test_redaction() -> None:
    assert redact_address("000000000011") == "********0011"
    assert redact_address("17") == "17"
    serial = redact_link({"link": "serial", "device": "/dev/serial/by-id/usb-1a86_USB-if00"})
    assert serial["device"] == "/dev/serial/by-id/**REDACTED**"
    assert redact_link({"device": "/home/me/adapter"})["device"] == "**REDACTED**"
    tcp = redact_link({"link": "tcp", "host": "192.0.2.7", "port": 502})
    assert tcp == {"link": "tcp", "host": "**REDACTED**", "port": 502}
