"""The baseline's sensors: a realistic mix of electrical quantities, written in one burst."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorStateClass,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.typing import ConfigType, DiscoveryInfoType

from . import CONF_ENTITIES, CONF_INTERVAL

#: Written by the benchmark into the config directory.
TARGET_FILE = "bench_bare_target.json"

#: (device class, unit, state class, typical value) cycled over the entities.
KINDS = (
    (SensorDeviceClass.VOLTAGE, "V", SensorStateClass.MEASUREMENT, 230.0),
    (SensorDeviceClass.CURRENT, "A", SensorStateClass.MEASUREMENT, 12.0),
    (SensorDeviceClass.POWER, "kW", SensorStateClass.MEASUREMENT, 2.5),
    (SensorDeviceClass.POWER_FACTOR, None, SensorStateClass.MEASUREMENT, 0.95),
    (SensorDeviceClass.FREQUENCY, "Hz", SensorStateClass.MEASUREMENT, 50.0),
    (SensorDeviceClass.ENERGY, "kWh", SensorStateClass.TOTAL_INCREASING, 1000.0),
)


class BareSensor(SensorEntity):
    """A sensor whose value the platform sets."""

    _attr_should_poll = False

    def __init__(self, index: int) -> None:
        """Pick this sensor's kind from its index."""
        device_class, unit, state_class, typical = KINDS[index % len(KINDS)]
        self._attr_unique_id = f"bench_bare_{index}"
        self._attr_name = f"Bare {index}"
        self._attr_device_class = device_class
        self._attr_native_unit_of_measurement = unit
        self._attr_state_class = state_class
        self._attr_native_value = typical
        self._typical = typical

    def next_value(self, rng: random.Random) -> None:
        """Move the value the way a meter reading moves (energy only ever grows)."""
        if self._attr_state_class is SensorStateClass.TOTAL_INCREASING:
            self._typical += rng.uniform(0.001, 0.05)
            self._attr_native_value = round(self._typical, 3)
        else:
            self._attr_native_value = round(self._typical * (1 + rng.uniform(-0.02, 0.02)), 3)


class Writer:
    """Owns the sensors and the timer; follows ``bench_bare_target.json`` when it appears.

    The file (``{"entities": N, "interval": SECONDS}``) lets the benchmark match the bare
    writer to what Grid Meter was measured to write, while both run.
    """

    def __init__(
        self, hass: HomeAssistant, add: AddEntitiesCallback, entities: int, interval: float
    ) -> None:
        self.hass = hass
        self.add = add
        self.sensors: list[BareSensor] = []
        self.rng = random.Random(1)
        self.target = Path(hass.config.path(TARGET_FILE))
        self._seen_target: dict[str, float] | None = None
        self._cancel_timer: Callable[[], None] | None = None
        self.resize(entities)
        self.reschedule(interval)

    def resize(self, entities: int) -> None:
        """Add sensors up to ``entities`` (never removes any)."""
        new = [BareSensor(i) for i in range(len(self.sensors), entities)]
        if new:
            self.sensors.extend(new)
            self.add(new)

    def reschedule(self, interval: float) -> None:
        """Write every ``interval`` seconds from now on."""
        if self._cancel_timer is not None:
            self._cancel_timer()
        self._cancel_timer = async_track_time_interval(
            self.hass, self.write_all, timedelta(seconds=interval)
        )

    @callback
    def write_all(self, _now: Any) -> None:
        """Write every sensor's state, all in one go."""
        for sensor in self.sensors:
            sensor.next_value(self.rng)
            sensor.async_write_ha_state()

    async def follow_target(self, _now: Any) -> None:
        """Apply the target file when it changed."""
        target = await self.hass.async_add_executor_job(self._read_target)
        if target is None or target == self._seen_target:
            return
        self._seen_target = target
        self.resize(int(target["entities"]))
        self.reschedule(float(target["interval"]))

    def _read_target(self) -> dict[str, float] | None:
        try:
            data: dict[str, float] = json.loads(self.target.read_text())
        except (OSError, ValueError):
            return None
        return data


async def async_setup_platform(
    hass: HomeAssistant,
    config: ConfigType,
    async_add_entities: AddEntitiesCallback,
    discovery_info: DiscoveryInfoType | None = None,
) -> None:
    """Add the sensors and write all of them at once every interval."""
    assert discovery_info is not None
    writer = Writer(
        hass, async_add_entities, discovery_info[CONF_ENTITIES], discovery_info[CONF_INTERVAL]
    )
    async_track_time_interval(hass, writer.follow_target, timedelta(seconds=2))
