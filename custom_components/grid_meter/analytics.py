"""Indicators and advice of a bus's meters and groups, fed by the bus coordinator.

One :class:`GridAnalytics` per bus entry keeps a :class:`~.tracker.Tracker` per meter and per
group. Their state (1-minute accumulators, advice timers) is kept in one
``helpers.storage.Store`` per entry rather than in each entity's restore data: many entities
(rates per phase, today and this month, the advice sensor and the event) read the same
accumulator, which must be restored once, before any entity exists, and must keep counting
for entities that are disabled. The store is written a minute after a change and at shutdown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_time_change
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from edge_agent.advice import Advice, Severity, render
from edge_agent.model import Reading, Value

from .const import (
    ADVICE_ISSUE_AFTER,
    CONF_MEMBERS,
    DOMAIN,
    LOGGER,
    STATE_SAVE_DELAY,
    STATE_STORAGE_VERSION,
    SUBENTRY_GROUP,
)
from .coordinator import GridMeterCoordinator, MeterInfo
from .group_values import group_values
from .slices import SlicedUpdates
from .tracker import Tracker, settings_from

type AdviceListener = Callable[[Advice], None]


@dataclass(frozen=True, slots=True)
class GroupInfo:
    """A configured group: meters of the bus whose load is judged together."""

    subentry_id: str
    title: str
    #: Addresses of the member meters on the bus.
    members: tuple[str, ...]
    data: Mapping[str, Any]

    @property
    def key(self) -> str:
        """Tracker key of the group."""
        return group_key(self.subentry_id)


def group_key(subentry_id: str) -> str:
    """Tracker key of a group (meters use their address)."""
    return f"group_{subentry_id}"


def configured_groups(entry: ConfigEntry) -> dict[str, GroupInfo]:
    """Return the group subentries of a bus entry by subentry id."""
    return {
        s.subentry_id: GroupInfo(s.subentry_id, s.title, tuple(s.data[CONF_MEMBERS]), s.data)
        for s in entry.subentries.values()
        if s.subentry_type == SUBENTRY_GROUP
    }


def advice_issue_id(entry_id: str, key: str, rule: str) -> str:
    """Repair issue id of one advice of one meter or group."""
    return f"advice_{entry_id}_{key}_{rule}"


def storage_key(entry_id: str) -> str:
    """Key of the store that keeps a bus's indicator and advice state."""
    return f"{DOMAIN}.{entry_id}"


class GridAnalytics:
    """Trackers of every meter and group of one bus, their persistence, timer and repairs."""

    def __init__(
        self,
        hass: HomeAssistant,
        coordinator: GridMeterCoordinator,
        groups: Mapping[str, GroupInfo],
    ) -> None:
        """Create a tracker per meter and group; call :meth:`async_start` next."""
        self.hass = hass
        self.coordinator = coordinator
        entry = coordinator.config_entry
        self.entry_id = entry.entry_id
        tz = dt_util.get_default_time_zone()
        self.trackers: dict[str, Tracker] = {}
        self.names: dict[str, str] = {}
        for meter in coordinator.meters.values():
            data = entry.subentries[meter.subentry_id].data
            self.trackers[meter.address] = Tracker(settings_from(data, meter.profile.keys), tz)
            self.names[meter.address] = meter.title
        self.groups = {
            g.subentry_id: g for g in groups.values() if set(g.members) <= self._addresses
        }
        for group in self.groups.values():
            keys = {k for a in group.members for k in self._meter(a).profile.keys}
            self.trackers[group.key] = Tracker(settings_from(group.data, keys), tz)
            self.names[group.key] = group.title
        self._store: Store[dict[str, Any]] = Store(
            hass, STATE_STORAGE_VERSION, storage_key(self.entry_id)
        )
        self._listeners: dict[int, CALLBACK_TYPE] = {}
        self._updates = SlicedUpdates[int, CALLBACK_TYPE](
            hass, f"{DOMAIN} {entry.title} indicator updates", lambda listener: listener()
        )
        self._next_token = 0
        self._advice_listeners: dict[str, AdviceListener] = {}
        self._issues: set[str] = set()
        self._unsubscribe: list[CALLBACK_TYPE] = []
        self._fed: object = None

    @property
    def _addresses(self) -> set[str]:
        return {m.address for m in self.coordinator.meters.values()}

    def _meter(self, address: str) -> MeterInfo:
        return next(m for m in self.coordinator.meters.values() if m.address == address)

    async def async_start(self) -> None:
        """Restore the stored state, take in the first poll, then follow polls and the clock."""
        stored = await self._store.async_load() or {}
        for key, tracker in self.trackers.items():
            if key in stored:
                for problem in tracker.restore(stored[key]):
                    LOGGER.warning("Indicator state of %s not restored: %s", key, problem)
        self._update()
        self._unsubscribe = [
            self.coordinator.async_add_listener(self._update),
            async_track_time_change(self.hass, self._tick, second=0),
        ]

    async def async_stop(self) -> None:
        """Stop following, write the state now and withdraw the repair issues."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        self._updates.cancel()
        await self._store.async_save(self._state())
        for issue_id in self._issues:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
        self._issues.clear()

    async def async_remove(self) -> None:
        """Delete the stored state (the entry is removed)."""
        await self._store.async_remove()

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call ``listener`` after every change; return what removes it."""
        self._next_token += 1
        token = self._next_token
        self._listeners[token] = listener

        def remove() -> None:
            self._listeners.pop(token, None)

        return remove

    @callback
    def async_add_advice_listener(self, key: str, listener: AdviceListener) -> CALLBACK_TYPE:
        """Call ``listener`` with each advice of ``key`` that becomes active."""
        self._advice_listeners[key] = listener

        def remove() -> None:
            self._advice_listeners.pop(key, None)

        return remove

    def render(self, advice: Advice) -> str:
        """Render the advice as a sentence in Home Assistant's language."""
        return render(advice, self.hass.config.language)

    # --- feeding -------------------------------------------------------------------------

    @callback
    def _update(self) -> None:
        """Feed the readings of the latest poll (once per poll)."""
        data = self.coordinator.data
        if data is self._fed and self.coordinator.last_update_success:
            return
        self._fed = data
        results = data if self.coordinator.last_update_success and data else {}
        raised: list[tuple[str, Advice]] = []
        for meter in self.coordinator.meters.values():
            result = results.get(meter.address)
            if isinstance(result, Reading):
                raised += self._feed(meter.address, result.timestamp, result.values)
            else:
                self.trackers[meter.address].lost()
        for group in self.groups.values():
            readings = [results.get(a) for a in group.members]
            members = [r for r in readings if isinstance(r, Reading)]
            if len(members) == len(readings):  # a partial sum would understate the load
                timestamp = max(r.timestamp for r in members)
                values = group_values([r.values for r in members])
                raised += self._feed(group.key, timestamp, values)
            else:
                self.trackers[group.key].lost()
        self._changed(dt_util.utcnow().timestamp())
        for key, advice in raised:
            if (listener := self._advice_listeners.get(key)) is not None:
                listener(advice)

    def _feed(
        self, key: str, timestamp: float, values: Mapping[str, Value]
    ) -> list[tuple[str, Advice]]:
        return [(key, a) for a in self.trackers[key].feed(timestamp, values)]

    @callback
    def _tick(self, now: datetime) -> None:
        """Close the minutes that are over and roll days over, even without readings."""
        timestamp = now.timestamp()
        for tracker in self.trackers.values():
            tracker.advance(timestamp)
        self._changed(timestamp)

    def _changed(self, now: float) -> None:
        self._sync_issues(now)
        self._updates.run(self._listeners)
        self._store.async_delay_save(self._state, STATE_SAVE_DELAY)

    def _state(self) -> dict[str, Any]:
        return {key: tracker.to_dict() for key, tracker in self.trackers.items()}

    # --- repairs -------------------------------------------------------------------------

    def _sync_issues(self, now: float) -> None:
        """Raise an issue for advice that has lasted long enough, withdraw cleared ones."""
        wanted: dict[str, tuple[str, Advice]] = {}
        for key, tracker in self.trackers.items():
            for advice in tracker.advice:
                if now - advice.since >= ADVICE_ISSUE_AFTER.total_seconds():
                    wanted[advice_issue_id(self.entry_id, key, advice.rule)] = (key, advice)
        for issue_id, (key, advice) in wanted.items():
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                is_persistent=False,
                severity=ir.IssueSeverity.ERROR
                if advice.severity is Severity.CRITICAL
                else ir.IssueSeverity.WARNING,
                translation_key=f"advice_{advice.rule}",
                translation_placeholders=issue_placeholders(self.names[key], advice),
            )
        for issue_id in self._issues - wanted.keys():
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
        self._issues = set(wanted)


def issue_placeholders(name: str, advice: Advice) -> dict[str, str]:
    """Return the placeholders of an advice issue: the meter's name and the advice's values."""
    return {"meter": name, **{k: str(v) for k, v in advice.placeholders.items()}}
