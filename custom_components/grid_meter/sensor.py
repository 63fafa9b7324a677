"""Sensors: one per quantity of every meter, and diagnostics of each bus."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, EntityCategory, UnitOfInformation, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from edge_agent.model import Reading, Value
from edge_agent.quantities import QUANTITIES, Kind, Quantity

from .analytics_entity import analytics_targets
from .coordinator import GridMeterConfigEntry, GridMeterCoordinator, MeterInfo
from .entity import BusEntity, MeterEntity
from .indicator_sensor import AdviceSensor, IndicatorSensor, descriptions_for

# Coordinator-based: the coordinator serialises all bus traffic.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class MeterSensorEntityDescription(SensorEntityDescription):
    """A canonical quantity of a meter as a sensor."""

    value_fn: Callable[[Value], StateType]


@dataclass(frozen=True, kw_only=True)
class BusSensorEntityDescription(SensorEntityDescription):
    """A health figure of a bus as a sensor."""

    value_fn: Callable[[GridMeterCoordinator], StateType]


#: Home Assistant device class and display precision of each kind of quantity.
_KIND_CLASSES: Final[dict[Kind, tuple[SensorDeviceClass | None, int | None]]] = {
    Kind.VOLTAGE: (SensorDeviceClass.VOLTAGE, 1),
    Kind.CURRENT: (SensorDeviceClass.CURRENT, 2),
    Kind.POWER: (SensorDeviceClass.POWER, 3),
    Kind.REACTIVE_POWER: (SensorDeviceClass.REACTIVE_POWER, 0),
    Kind.APPARENT_POWER: (SensorDeviceClass.APPARENT_POWER, 0),
    Kind.POWER_FACTOR: (SensorDeviceClass.POWER_FACTOR, 3),
    Kind.FREQUENCY: (SensorDeviceClass.FREQUENCY, 2),
    Kind.ENERGY: (SensorDeviceClass.ENERGY, 2),
    # No reactive energy device class exists in every supported release: plain kvarh.
    Kind.REACTIVE_ENERGY: (None, 2),
    Kind.HARMONIC: (None, 1),
    Kind.ANGLE: (None, 1),
    Kind.TEMPERATURE: (SensorDeviceClass.TEMPERATURE, 1),
    Kind.STATUS: (None, None),
}

#: Canonical units the reactive and apparent power device classes do not accept everywhere:
#: they are converted to the base unit (var, VA) that every supported release accepts.
_NATIVE_UNITS: Final[dict[str, tuple[str, float]]] = {
    "kvar": ("var", 1000.0),
    "kVA": ("VA", 1000.0),
}


def _raw(value: Value) -> StateType:
    return value


def _numeric(scale: float) -> Callable[[Value], StateType]:
    """Make a value function that passes numbers (scaled) and drops anything else."""

    def convert(value: Value) -> StateType:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return value * scale if scale != 1.0 else value

    return convert


def describe_quantity(quantity: Quantity) -> MeterSensorEntityDescription:
    """Derive the sensor description of a canonical quantity from its kind and unit."""
    device_class, precision = _KIND_CLASSES[quantity.kind]
    unit, scale = _NATIVE_UNITS.get(quantity.unit or "", (quantity.unit, 1.0))
    status = quantity.kind is Kind.STATUS
    if quantity.cumulative:
        state_class: SensorStateClass | None = SensorStateClass.TOTAL_INCREASING
    else:
        state_class = None if status else SensorStateClass.MEASUREMENT
    return MeterSensorEntityDescription(
        key=quantity.key,
        translation_key=quantity.key,
        device_class=device_class,
        native_unit_of_measurement=unit,
        state_class=state_class,
        suggested_display_precision=precision,
        entity_category=EntityCategory.DIAGNOSTIC if status and not quantity.common else None,
        entity_registry_enabled_default=quantity.common,
        value_fn=_raw if status else _numeric(scale),
    )


METER_SENSORS: Final[dict[str, MeterSensorEntityDescription]] = {
    key: describe_quantity(quantity) for key, quantity in QUANTITIES.items()
}


def _meters_answering(coordinator: GridMeterCoordinator) -> int:
    return sum(isinstance(r, Reading) for r in (coordinator.data or {}).values())


BUS_SENSORS: Final[tuple[BusSensorEntityDescription, ...]] = (
    BusSensorEntityDescription(
        key="meters_answering",
        translation_key="meters_answering",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_meters_answering,
    ),
    BusSensorEntityDescription(
        key="transactions",
        translation_key="transactions",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda c: c.bus.stats.transactions,
    ),
    BusSensorEntityDescription(
        key="errors",
        translation_key="errors",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda c: c.bus.stats.errors,
    ),
    BusSensorEntityDescription(
        key="timeouts",
        translation_key="timeouts",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda c: c.bus.stats.timeouts,
    ),
    BusSensorEntityDescription(
        key="refusals",
        translation_key="refusals",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_registry_enabled_default=False,
        value_fn=lambda c: c.bus.stats.refusals,
    ),
    BusSensorEntityDescription(
        key="busy",
        translation_key="busy",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=PERCENTAGE,
        suggested_display_precision=1,
        value_fn=lambda c: c.busy_percent,
    ),
    BusSensorEntityDescription(
        key="cycle_time",
        translation_key="cycle_time",
        entity_category=EntityCategory.DIAGNOSTIC,
        device_class=SensorDeviceClass.DURATION,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        suggested_display_precision=2,
        value_fn=lambda c: round(c.bus.stats.last_cycle_time, 3),
    ),
    BusSensorEntityDescription(
        key="bytes_sent",
        translation_key="bytes_sent",
        entity_category=EntityCategory.DIAGNOSTIC,
        device_class=SensorDeviceClass.DATA_SIZE,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        entity_registry_enabled_default=False,
        value_fn=lambda c: c.bus.stats.bytes_sent,
    ),
    BusSensorEntityDescription(
        key="bytes_received",
        translation_key="bytes_received",
        entity_category=EntityCategory.DIAGNOSTIC,
        device_class=SensorDeviceClass.DATA_SIZE,
        state_class=SensorStateClass.TOTAL_INCREASING,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        entity_registry_enabled_default=False,
        value_fn=lambda c: c.bus.stats.bytes_received,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: GridMeterConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the bus diagnostics, every meter's sensors and the indicators of meters and groups."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(BusSensor(coordinator, description) for description in BUS_SENSORS)
    for meter in coordinator.meters.values():
        keys = dict.fromkeys(meter.profile.keys)  # in profile order, each once
        async_add_entities(
            (MeterSensor(coordinator, meter, METER_SENSORS[key]) for key in keys),
            config_subentry_id=meter.subentry_id,
        )
    analytics = entry.runtime_data.analytics
    for target in analytics_targets(analytics):
        settings = analytics.trackers[target.key].settings
        async_add_entities(
            [
                *(
                    IndicatorSensor(analytics, target, d)
                    for d in descriptions_for(target, settings)
                ),
                AdviceSensor(analytics, target),
            ],
            config_subentry_id=target.subentry_id,
        )


class MeterSensor(MeterEntity, SensorEntity):
    """One quantity of one meter."""

    entity_description: MeterSensorEntityDescription

    def __init__(
        self,
        coordinator: GridMeterCoordinator,
        meter: MeterInfo,
        description: MeterSensorEntityDescription,
    ) -> None:
        """Initialize the sensor."""
        super().__init__(coordinator, meter)
        self.entity_description = description
        entry_id = coordinator.config_entry.entry_id
        self._attr_unique_id = f"{entry_id}_{meter.address}_{description.key}"

    @property
    def available(self) -> bool:
        """Available while the meter answers and this quantity was read."""
        reading = self.reading
        return super().available and reading is not None and self._key in reading.values

    @property
    def native_value(self) -> StateType:
        """The value of the last reading."""
        reading = self.reading
        value = reading.values.get(self._key) if reading is not None else None
        return None if value is None else self.entity_description.value_fn(value)

    @property
    def _key(self) -> str:
        return self.entity_description.key


class BusSensor(BusEntity, SensorEntity):
    """A diagnostic figure of the bus."""

    entity_description: BusSensorEntityDescription

    def __init__(
        self, coordinator: GridMeterCoordinator, description: BusSensorEntityDescription
    ) -> None:
        """Initialize the sensor."""
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{coordinator.config_entry.entry_id}_{description.key}"

    @property
    def native_value(self) -> StateType:
        """The current figure."""
        return self.entity_description.value_fn(self.coordinator)
