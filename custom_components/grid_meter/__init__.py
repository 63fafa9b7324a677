"""Grid Meter: electricity meters on RS485 buses and TCP gateways, read by the edge agent."""

from __future__ import annotations

from functools import partial
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.storage import Store
from homeassistant.helpers.typing import ConfigType

from edge_agent import __version__ as EDGE_AGENT_VERSION
from edge_agent.bus import Bus
from edge_agent.errors import LinkError

from .analytics import GridAnalytics, configured_groups, storage_key
from .bus_config import link_config, link_target
from .const import (
    CONF_FRAMING,
    CONF_LINK,
    DOMAIN,
    FRAMING_MODBUS_TCP,
    LINK_SERIAL,
    REPLY_TIMEOUT,
    RETRIES,
    STATE_STORAGE_VERSION,
)
from .coordinator import (
    GridMeterConfigEntry,
    GridMeterCoordinator,
    GridMeterData,
    bus_down_issue_id,
    configured_meters,
    subentries_fingerprint,
)
from .entity import bus_identifier, group_identifier, meter_identifier
from .services import async_setup_services

PLATFORMS: list[Platform] = [Platform.EVENT, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the integration's actions."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: GridMeterConfigEntry) -> bool:
    """Open the bus, read every meter once, then add the sensors."""
    meters = await hass.async_add_executor_job(configured_meters, entry)
    # The bus loads each meter's profile from disk: build it off the event loop.
    bus = await hass.async_add_executor_job(
        partial(
            Bus,
            link_config(entry.data),
            [meter.config for meter in meters.values()],
            name=entry.title,
            timeout=REPLY_TIMEOUT,
            retries=RETRIES,
        )
    )
    try:
        await bus.open()
    except LinkError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="cannot_open",
            translation_placeholders={"target": link_target(entry.data), "error": str(err)},
        ) from err

    coordinator = GridMeterCoordinator(hass, entry, bus, meters)
    try:
        await coordinator.async_config_entry_first_refresh()
    except Exception:
        await bus.close()  # release the port before Home Assistant retries
        raise
    analytics = GridAnalytics(hass, coordinator, configured_groups(entry))
    await analytics.async_start()
    entry.runtime_data = GridMeterData(coordinator, analytics, subentries_fingerprint(entry))
    entry.async_on_unload(bus.close)
    entry.async_on_unload(analytics.async_stop)
    entry.async_on_unload(coordinator.async_start_polling())

    _register_bus_device(hass, entry)
    _remove_stale_devices(hass, entry)
    entry.async_on_unload(entry.add_update_listener(_async_update_listener))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: GridMeterConfigEntry) -> bool:
    """Unload the sensors; the bus closes through the entry's unload callbacks."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Drop the repair issue and the stored indicator state of a removed bus."""
    ir.async_delete_issue(hass, DOMAIN, bus_down_issue_id(entry.entry_id))
    await Store[dict[str, Any]](
        hass, STATE_STORAGE_VERSION, storage_key(entry.entry_id)
    ).async_remove()


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: GridMeterConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Allow removing a meter device only when no meter subentry configures it any more."""
    return not device.identifiers & _configured_identifiers(entry)


async def _async_update_listener(hass: HomeAssistant, entry: GridMeterConfigEntry) -> None:
    """Reload the bus when subentries were added, removed or changed."""
    if subentries_fingerprint(entry) != entry.runtime_data.subentries:
        hass.config_entries.async_schedule_reload(entry.entry_id)


def _configured_identifiers(entry: GridMeterConfigEntry) -> set[tuple[str, str]]:
    return (
        {bus_identifier(entry.entry_id)}
        | {
            meter_identifier(entry.entry_id, meter.address)
            for meter in entry.runtime_data.coordinator.meters.values()
        }
        | {
            group_identifier(entry.entry_id, subentry_id)
            for subentry_id in entry.runtime_data.analytics.groups
        }
    )


@callback
def _register_bus_device(hass: HomeAssistant, entry: GridMeterConfigEntry) -> None:
    if entry.data[CONF_LINK] == LINK_SERIAL:
        model = "RS485 serial bus"
    elif entry.data.get(CONF_FRAMING) == FRAMING_MODBUS_TCP:
        model = "Modbus TCP gateway"
    else:
        model = "RS485 TCP gateway"
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={bus_identifier(entry.entry_id)},
        manufacturer="Grid Meter",
        model=model,
        name=entry.title,
        sw_version=EDGE_AGENT_VERSION,
    )


@callback
def _remove_stale_devices(hass: HomeAssistant, entry: GridMeterConfigEntry) -> None:
    """Detach devices of meters that are no longer configured."""
    registry = dr.async_get(hass)
    keep = _configured_identifiers(entry)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        if not device.identifiers & keep:
            registry.async_update_device(device.id, remove_config_entry_id=entry.entry_id)
