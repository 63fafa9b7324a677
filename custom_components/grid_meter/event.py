"""Event entities: a meter's or group's advice as it becomes active, for automations."""

from __future__ import annotations

from homeassistant.components.event import EventEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from edge_agent.advice import ADVICE_RULES, Advice

from .analytics import GridAnalytics
from .analytics_entity import AnalyticsEntity, Target, analytics_targets
from .coordinator import GridMeterConfigEntry

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: GridMeterConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a grid excursion event entity per meter and group."""
    analytics = entry.runtime_data.analytics
    for target in analytics_targets(analytics):
        async_add_entities(
            [GridExcursionEvent(analytics, target)], config_subentry_id=target.subentry_id
        )


class GridExcursionEvent(AnalyticsEntity, EventEntity):
    """Fires with the advice rule as event type when an advice becomes active."""

    _attr_translation_key = "grid_excursion"

    def __init__(self, analytics: GridAnalytics, target: Target) -> None:
        """Initialize the event entity."""
        super().__init__(analytics, target, "grid_excursion")
        self._attr_event_types = list(ADVICE_RULES)

    async def async_added_to_hass(self) -> None:
        """Listen for new advice of this meter or group."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.analytics.async_add_advice_listener(self.target.key, self._on_advice)
        )

    @callback
    def _on_advice(self, advice: Advice) -> None:
        self._trigger_event(
            advice.rule,
            {
                **advice.placeholders,
                "severity": str(advice.severity),
                "indicator": advice.indicator,
                "text": self.analytics.render(advice),
                "since": dt_util.utc_from_timestamp(advice.since).isoformat(),
            },
        )
        self.async_write_ha_state()
