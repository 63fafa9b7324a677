"""The repair issue of a bus that stays down: raised after a run of failed polls, then cleared."""

from __future__ import annotations

import asyncio

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.grid_meter.const import BUS_DOWN_AFTER, DOMAIN

from .conftest import DEFAULT_METERS, ENTRY_ID, SimBus, coordinator_of

ISSUE = f"bus_down_{ENTRY_ID}"


async def test_unplugged_adapter_raises_an_issue_until_it_is_back(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    sim_bus: SimBus,
    issue_registry: ir.IssueRegistry,
) -> None:
    coordinator = coordinator_of(loaded_entry)
    await sim_bus.server.close()
    await asyncio.sleep(0.05)
    for _ in range(BUS_DOWN_AFTER):
        assert issue_registry.async_get_issue(DOMAIN, ISSUE) is None
        await coordinator.async_refresh()
        assert not coordinator.last_update_success
    issue = issue_registry.async_get_issue(DOMAIN, ISSUE)
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_key == "bus_down"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["title"] == loaded_entry.title
    assert "does not exist" in issue.translation_placeholders["error"]

    await sim_bus.restart()
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    assert issue_registry.async_get_issue(DOMAIN, ISSUE) is None


async def test_no_meter_answering_raises_an_issue(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    sim_bus: SimBus,
    issue_registry: ir.IssueRegistry,
) -> None:
    """The port works but nothing answers (A/B swapped, wrong baud rate, meters unpowered)."""
    coordinator = coordinator_of(loaded_entry)
    # Quick timeouts, no retry, no backoff: five silent polls take a fraction of a second.
    coordinator.bus.timeout, coordinator.bus.retries, coordinator.bus.backoff_base = 0.05, 0, 0.0
    for address in DEFAULT_METERS:
        sim_bus.sim.meter(address).faults.silent = True
    for _ in range(BUS_DOWN_AFTER):
        await coordinator.async_refresh()
        assert coordinator.last_update_success
    issue = issue_registry.async_get_issue(DOMAIN, ISSUE)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["error"] == "no meter answers"

    sim_bus.sim.meter("1").faults.silent = False
    coordinator.bus.timeout = 0.5  # generous: the recovery poll must not time out under load
    await coordinator.async_refresh()
    assert issue_registry.async_get_issue(DOMAIN, ISSUE) is None


async def test_removing_the_bus_removes_its_issue(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    sim_bus: SimBus,
    issue_registry: ir.IssueRegistry,
) -> None:
    coordinator = coordinator_of(loaded_entry)
    await sim_bus.server.close()
    await asyncio.sleep(0.05)
    for _ in range(BUS_DOWN_AFTER):
        await coordinator.async_refresh()
    assert issue_registry.async_get_issue(DOMAIN, ISSUE) is not None
    await hass.config_entries.async_remove(loaded_entry.entry_id)
    assert issue_registry.async_get_issue(DOMAIN, ISSUE) is None
