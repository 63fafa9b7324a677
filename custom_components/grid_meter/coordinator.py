"""One coordinator per bus: polls every meter on it through the edge agent."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_at
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from edge_agent.bus import Bus, MeterConfig
from edge_agent.errors import EdgeAgentError, LinkError
from edge_agent.model import Reading
from edge_agent.profiles.model import Profile

from .bus_config import find_profile, meter_config
from .const import (
    BUS_DOWN_AFTER,
    CONF_ADDRESS,
    CONF_PROFILE,
    DOMAIN,
    LOGGER,
    SUBENTRY_METER,
    UPDATE_INTERVAL,
)
from .slices import SlicedUpdates

if TYPE_CHECKING:
    from .analytics import GridAnalytics

type MeterResults = dict[str, Reading | EdgeAgentError]


@dataclass(frozen=True, slots=True)
class MeterInfo:
    """A configured meter: its subentry, edge agent settings and profile."""

    subentry_id: str
    title: str
    config: MeterConfig
    profile: Profile

    @property
    def address(self) -> str:
        """Address of the meter on its bus."""
        return self.config.address


@dataclass(frozen=True, slots=True)
class GridMeterData:
    """What a loaded bus entry keeps at runtime."""

    coordinator: GridMeterCoordinator
    analytics: GridAnalytics
    #: The subentries the bus was set up with (see subentries_fingerprint); a change reloads it.
    subentries: frozenset[tuple[str, str]]


def subentries_fingerprint(entry: ConfigEntry) -> frozenset[tuple[str, str]]:
    """Identify the subentries of an entry and their settings, to tell when they change."""
    return frozenset(
        (s.subentry_id, repr((s.title, sorted(s.data.items())))) for s in entry.subentries.values()
    )


type GridMeterConfigEntry = ConfigEntry[GridMeterData]


def bus_down_issue_id(entry_id: str) -> str:
    """Repair issue id for a bus that stays down."""
    return f"bus_down_{entry_id}"


class GridMeterCoordinator(DataUpdateCoordinator[MeterResults]):
    """Polls one bus; data maps each meter address to its reading or its error.

    Polls start on a clock shared by every bus: at each multiple of ``poll_interval`` on the
    event loop's clock (see :meth:`async_start_polling`), rather than an interval after this
    bus's last poll ended, so the buses of a site poll in step and their rounds do not
    drift apart. A tick that finds the previous poll still running is skipped and counted.
    Entities are updated a few milliseconds at a time (:class:`~.slices.SlicedUpdates`).
    """

    config_entry: GridMeterConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        config_entry: GridMeterConfigEntry,
        bus: Bus,
        meters: Mapping[str, MeterInfo],
    ) -> None:
        """Initialize the coordinator for an open bus."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=config_entry,
            name=f"{DOMAIN} {config_entry.title}",
            update_interval=None,  # polls follow the shared clock, see async_start_polling
        )
        self.poll_interval = UPDATE_INTERVAL
        #: Clock ticks skipped because the previous poll was still running.
        self.skipped_polls = 0
        #: Held while the bus is polled: a refresh asked for meanwhile waits its turn.
        self._poll_lock = asyncio.Lock()
        self._unsub_clock: CALLBACK_TYPE | None = None
        self._tick_index = 0
        self._updates = SlicedUpdates[int, tuple[CALLBACK_TYPE, object | None]](
            hass, f"{DOMAIN} {config_entry.title} entity updates", lambda listener: listener[0]()
        )
        self.bus = bus
        self.meters: Mapping[str, MeterInfo] = meters
        #: Share of wall time the bus carried transactions during the last update, in %.
        self.busy_percent: float | None = None
        self._busy_sample = (time.monotonic(), bus.stats.busy_time)
        self._failed_updates = 0
        self._silent: set[str] = set()

    @callback
    def async_start_polling(self) -> CALLBACK_TYPE:
        """Poll at every multiple of the poll interval from now on; return what stops it."""
        self._schedule_tick()
        return self._stop_polling

    @callback
    def _schedule_tick(self) -> None:
        """Schedule the next multiple of the interval after now.

        Never the tick that just ran (a timer may fire a little early), and not the ticks
        a blocked loop swallowed.
        """
        period = self.poll_interval.total_seconds()
        now_index = math.floor(self.hass.loop.time() / period)
        self._tick_index = max(self._tick_index + 1, now_index + 1)
        self._unsub_clock = async_call_at(self.hass, self._tick, self._tick_index * period)

    @callback
    def _tick(self, _now: datetime) -> None:
        self._schedule_tick()
        if self.config_entry.pref_disable_polling:
            return
        if self._poll_lock.locked():
            self.skipped_polls += 1
            LOGGER.debug("%s: poll still running at the next tick; skipped", self.name)
            return
        self.config_entry.async_create_background_task(
            self.hass, self.async_refresh(), name=f"{self.name} poll", eager_start=True
        )

    @callback
    def _stop_polling(self) -> None:
        if self._unsub_clock is not None:
            self._unsub_clock()
            self._unsub_clock = None
        self._updates.cancel()

    @callback
    def async_update_listeners(self) -> None:
        """Update the listeners (entities, analytics) a slice at a time."""
        self._updates.run(self._listeners)

    async def _async_update_data(self) -> MeterResults:
        """Poll every meter once; only a bus that cannot be used fails the update."""
        async with self._poll_lock:
            return await self._poll()

    async def _poll(self) -> MeterResults:
        try:
            results = await self.bus.poll()
        except LinkError as err:
            self._count_bus_failure(str(err))
            raise UpdateFailed(
                str(err),
                translation_domain=DOMAIN,
                translation_key="bus_error",
                translation_placeholders={"error": str(err)},
            ) from err
        self._log_meter_changes(results)
        if results and not any(isinstance(r, Reading) for r in results.values()):
            self._count_bus_failure("no meter answers")
        else:
            self._bus_recovered()
        self._sample_busy()
        return results

    def _log_meter_changes(self, results: MeterResults) -> None:
        """Log once when a meter stops answering and once when it is back."""
        for address, result in results.items():
            if isinstance(result, Reading):
                if address in self._silent:
                    self._silent.discard(address)
                    LOGGER.info("Meter %s on %s answers again", address, self.config_entry.title)
            elif address not in self._silent:
                self._silent.add(address)
                LOGGER.info(
                    "Meter %s on %s is not answering: %s", address, self.config_entry.title, result
                )

    def _count_bus_failure(self, reason: str) -> None:
        self._failed_updates += 1
        if self._failed_updates == BUS_DOWN_AFTER:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                bus_down_issue_id(self.config_entry.entry_id),
                is_fixable=False,
                is_persistent=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key="bus_down",
                translation_placeholders={
                    "title": self.config_entry.title,
                    "updates": str(BUS_DOWN_AFTER),
                    "error": reason,
                },
            )

    def _bus_recovered(self) -> None:
        if self._failed_updates >= BUS_DOWN_AFTER:
            ir.async_delete_issue(self.hass, DOMAIN, bus_down_issue_id(self.config_entry.entry_id))
        self._failed_updates = 0

    def _sample_busy(self) -> None:
        now, busy = time.monotonic(), self.bus.stats.busy_time
        last_now, last_busy = self._busy_sample
        if now > last_now:
            self.busy_percent = round(min(100.0, 100.0 * (busy - last_busy) / (now - last_now)), 1)
        self._busy_sample = (now, busy)


def configured_meters(entry: ConfigEntry) -> dict[str, MeterInfo]:
    """Return the meters of a bus entry's subentries by subentry id, skipping unknown profiles."""
    meters: dict[str, MeterInfo] = {}
    for subentry in entry.subentries.values():
        if subentry.subentry_type != SUBENTRY_METER:
            continue
        address, profile_id = subentry.data[CONF_ADDRESS], subentry.data[CONF_PROFILE]
        if (profile := find_profile(profile_id)) is None:
            LOGGER.error("Meter %s on %s has unknown profile %s", address, entry.title, profile_id)
            continue
        meters[subentry.subentry_id] = MeterInfo(
            subentry_id=subentry.subentry_id,
            title=subentry.title,
            config=meter_config(address, profile, entry.data),
            profile=profile,
        )
    return meters
