"""Actions of the integration: grid_meter.create_dashboard."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er

from edge_agent.errors import ConfigError
from edge_agent.quantities import QUANTITIES

from .analytics_entity import Target, analytics_targets
from .const import DOMAIN, SERVICE_CREATE_DASHBOARD
from .coordinator import GridMeterConfigEntry
from .dashboard import (
    INDICATOR_KEYS,
    DashboardError,
    MeterEntities,
    async_create_dashboard,
    build_big_screen,
)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions (once, in async_setup)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_CREATE_DASHBOARD,
        _async_create_dashboard,
        supports_response=SupportsResponse.OPTIONAL,
    )


async def _async_create_dashboard(call: ServiceCall) -> ServiceResponse:
    """Build the big-screen dashboard of every loaded bus's meters and groups and store it."""
    hass = call.hass
    meters = dashboard_meters(hass)
    try:
        url_path = await async_create_dashboard(hass, build_big_screen(meters))
    except (DashboardError, ConfigError) as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="dashboard_failed",
            translation_placeholders={"error": str(err)},
        ) from err
    return {"url_path": url_path, "meters": [m.name for m in meters]}


def dashboard_meters(hass: HomeAssistant) -> list[MeterEntities]:
    """Return the enabled entities of every meter and group of the loaded buses, by key."""
    registry = er.async_get(hass)
    entries: list[GridMeterConfigEntry] = hass.config_entries.async_entries(DOMAIN)
    meters = []
    for entry in entries:
        if entry.state is not ConfigEntryState.LOADED:
            continue
        analytics = entry.runtime_data.analytics
        for target in analytics_targets(analytics):
            settings = analytics.trackers[target.key].settings
            entity_ids = _entity_ids(registry, target)
            meters.append(
                MeterEntities(
                    name=target.name,
                    quantities={k: e for k, e in entity_ids.items() if k in QUANTITIES},
                    indicators={k: e for k, e in entity_ids.items() if k in INDICATOR_KEYS},
                    nominal_voltage=settings.nominal_voltage,
                    voltage_limits=settings.voltage_limits,
                    frequency_limit=settings.frequency_limit,
                    power_factor_target=settings.power_factor_target,
                )
            )
    return meters


def _entity_ids(registry: er.EntityRegistry, target: Target) -> dict[str, str]:
    """Key -> entity id of the target's enabled entities (looked up by unique id)."""
    out: dict[str, str] = {}
    for key in (*QUANTITIES, *sorted(INDICATOR_KEYS)):
        platform = "event" if key == "grid_excursion" else "sensor"
        entity_id = registry.async_get_entity_id(platform, DOMAIN, f"{target.unique_prefix}_{key}")
        if entity_id is None:
            continue
        entry = registry.async_get(entity_id)
        if entry is not None and entry.disabled_by is None:
            out[key] = entity_id
    return out
