"""Entities fed by the indicator trackers of a bus: one target per meter and per group."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity

from .analytics import GridAnalytics
from .entity import group_device_info, meter_device_info
from .group_values import group_values
from .tracker import Tracker


@dataclass(frozen=True, slots=True)
class Target:
    """A meter or group whose indicators get entities."""

    #: Tracker key (meter address or group key).
    key: str
    #: Start of the unique ids of its entities.
    unique_prefix: str
    subentry_id: str
    name: str
    device_info: DeviceInfo
    #: Quantity keys its readings can have.
    keys: frozenset[str]
    is_group: bool


def analytics_targets(analytics: GridAnalytics) -> list[Target]:
    """Return the meters of a bus, then its groups."""
    coordinator = analytics.coordinator
    entry_id = coordinator.config_entry.entry_id
    meters = {m.address: m for m in coordinator.meters.values()}
    targets = [
        Target(
            key=m.address,
            unique_prefix=f"{entry_id}_{m.address}",
            subentry_id=m.subentry_id,
            name=m.title,
            device_info=meter_device_info(coordinator, m),
            keys=frozenset(m.profile.keys),
            is_group=False,
        )
        for m in meters.values()
    ]
    for group in analytics.groups.values():
        # Which keys the combined reading has: combine readings that have every key.
        present = [dict.fromkeys(meters[a].profile.keys, 1.0) for a in group.members]
        targets.append(
            Target(
                key=group.key,
                unique_prefix=f"{entry_id}_{group.key}",
                subentry_id=group.subentry_id,
                name=group.title,
                device_info=group_device_info(coordinator, group.subentry_id, group.title),
                keys=frozenset(group_values(present)),
                is_group=True,
            )
        )
    return targets


class AnalyticsEntity(Entity):
    """An entity of a meter's or group's indicators, updated after each poll and each minute."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, analytics: GridAnalytics, target: Target, key: str) -> None:
        """Attach the entity to its target's device."""
        self.analytics = analytics
        self.target = target
        self._attr_device_info = target.device_info
        self._attr_unique_id = f"{target.unique_prefix}_{key}"

    @property
    def tracker(self) -> Tracker:
        """The target's tracker."""
        return self.analytics.trackers[self.target.key]

    async def async_added_to_hass(self) -> None:
        """Follow the trackers."""
        await super().async_added_to_hass()
        self.async_on_remove(self.analytics.async_add_listener(self.async_write_ha_state))
