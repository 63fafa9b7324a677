"""Fixtures for the Home Assistant tests: simulated meters on a real pty, bus config entries."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import PropertyMock, patch

import pytest
from homeassistant.config_entries import ConfigEntryState, ConfigSubentryDataWithId
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.grid_meter.const import (
    CONF_ADDRESS,
    CONF_BAUDRATE,
    CONF_DEVICE,
    CONF_LINK,
    CONF_PARITY,
    CONF_PROFILE,
    CONF_PROTOCOL,
    CONF_STOPBITS,
    DOMAIN,
    LINK_SERIAL,
    SUBENTRY_METER,
)
from custom_components.grid_meter.coordinator import GridMeterCoordinator
from edge_agent.model import SerialSettings
from edge_agent.profiles import load_profile
from edge_agent.simulator import BusSimulator, PtyServer, SimMeter, start_pty

#: Fast line so a poll of several meters takes milliseconds.
BAUD = 115200
#: Simulated instant the meters' clock is frozen at (2025-06-01 12:00 UTC): values are fixed.
FROZEN_AT = 1748779200.0
ENTRY_ID = "01JGRIDMETERTESTBUS0000000"

#: One meter of every shipped profile, at the address it has on the simulated bus.
METERS: dict[str, str] = {
    "1": "eastron-sdm630",
    "2": "chint-dtsu666",
    "3": "eastron-sdm120",
    "4": "chint-ddsu666",
    "5": "acrel-adw300",
    "6": "im1253b",
    "000000000011": "dlt645-2007-3phase",
    "000000000012": "dlt645-2007-1phase",
    "000000000013": "dlt645-1997-1phase",
}
#: The meters most tests configure: two Modbus, one DL/T 645.
DEFAULT_METERS = ("1", "2", "000000000011")


@dataclass
class SimBus:
    """A running simulated bus: the simulator and the stable path of its port."""

    sim: BusSimulator
    server: PtyServer
    #: A symlink to the pty, as /dev/serial/by-id names are; tests may repoint it.
    path: str

    async def restart(self) -> None:
        """Serve the same meters on a new pty and repoint the symlink (an adapter replugged)."""
        await self.server.close()
        self.server = await start_pty(self.sim)
        relink(self.path, self.server.path)


def relink(link: str, target: str) -> None:
    """Point ``link`` at ``target``, replacing what it pointed at."""
    tmp = f"{link}.new"
    os.symlink(target, tmp)
    os.replace(tmp, link)


def sim_meters(addresses: tuple[str, ...] = tuple(METERS)) -> list[SimMeter]:
    """Return simulated meters at the given addresses."""
    return [SimMeter(profile=METERS[a], address=a, seed=7, utc_offset=8.0) for a in addresses]


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load the integration from this repository."""


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots in Home Assistant's format, stored in tests/ha/snapshots/."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Create every entity enabled, those disabled by default included."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


@pytest.fixture
async def sim_bus(tmp_path: Path) -> AsyncIterator[SimBus]:
    """Every simulated meter on one pty, reached through a by-id style symlink."""
    sim = BusSimulator(sim_meters(), SerialSettings(baudrate=BAUD), time_scale=0.0, start=FROZEN_AT)
    server = await start_pty(sim)
    link = str(tmp_path / "usb-grid-meter-test-if00-port0")
    os.symlink(server.path, link)
    bus = SimBus(sim, server, link)
    try:
        yield bus
    finally:
        await bus.server.close()


def serial_data(device: str, **overrides: Any) -> dict[str, Any]:
    """Entry data of a serial bus at the test baud rate."""
    return {
        CONF_LINK: LINK_SERIAL,
        CONF_DEVICE: device,
        CONF_PROTOCOL: "modbus",
        CONF_BAUDRATE: BAUD,
        CONF_PARITY: "N",
        CONF_STOPBITS: 1,
        **overrides,
    }


def meter_subentry(address: str, profile: str | None = None) -> ConfigSubentryDataWithId:
    """Subentry data of a meter, with a fixed subentry id so snapshots are stable."""
    profile_id = profile or METERS[address]
    model = load_profile(profile_id).model
    return ConfigSubentryDataWithId(
        data={CONF_ADDRESS: address, CONF_PROFILE: profile_id},
        subentry_id=f"meter{address}",
        subentry_type=SUBENTRY_METER,
        title=f"{model} {address}",
        unique_id=address,
    )


def bus_entry(
    device: str, addresses: tuple[str, ...] = DEFAULT_METERS, **data: Any
) -> MockConfigEntry:
    """Return a serial bus config entry with the given meters."""
    return MockConfigEntry(
        domain=DOMAIN,
        entry_id=ENTRY_ID,
        title="usb-grid-meter-test-if00-port0",
        unique_id=device,
        data=serial_data(device, **data),
        subentries_data=[meter_subentry(a) for a in addresses],
    )


@pytest.fixture
def addresses() -> tuple[str, ...]:
    """Meters the bus entry configures (parametrize to change)."""
    return DEFAULT_METERS


@pytest.fixture
def config_entry(sim_bus: SimBus, addresses: tuple[str, ...]) -> MockConfigEntry:
    """Provide a bus entry on the simulated bus, not yet set up."""
    return bus_entry(sim_bus.path, addresses)


@pytest.fixture
async def loaded_entry(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> AsyncIterator[MockConfigEntry]:
    """Provide the bus entry set up; unload it before the simulator stops."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    yield config_entry
    await hass.async_block_till_done()
    if config_entry.state is ConfigEntryState.LOADED:
        await hass.config_entries.async_unload(config_entry.entry_id)


def coordinator_of(entry: MockConfigEntry) -> GridMeterCoordinator:
    """Return the running coordinator of a loaded entry."""
    coordinator: GridMeterCoordinator = entry.runtime_data.coordinator
    return coordinator
