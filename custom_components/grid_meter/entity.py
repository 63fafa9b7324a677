"""Base entities: the bus device and one device per meter behind it."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from edge_agent.model import Reading

from .compat import link_to_parent
from .const import DOMAIN
from .coordinator import GridMeterCoordinator, MeterInfo


def bus_identifier(entry_id: str) -> tuple[str, str]:
    """Device registry identifier of a bus."""
    return (DOMAIN, entry_id)


def meter_identifier(entry_id: str, address: str) -> tuple[str, str]:
    """Device registry identifier of a meter (addresses are unique per bus only)."""
    return (DOMAIN, f"{entry_id}_{address}")


def group_identifier(entry_id: str, subentry_id: str) -> tuple[str, str]:
    """Device registry identifier of a group of meters."""
    return (DOMAIN, f"{entry_id}_group_{subentry_id}")


def meter_device_info(coordinator: GridMeterCoordinator, meter: MeterInfo) -> DeviceInfo:
    """Device of a meter, hanging off its bus device."""
    entry_id = coordinator.config_entry.entry_id
    profile = meter.profile
    info = DeviceInfo(
        identifiers={meter_identifier(entry_id, meter.address)},
        manufacturer=profile.manufacturer,
        model=profile.model,
        model_id=profile.id,
        name=meter.title,
        serial_number=meter.address,
    )
    # The bus device is registered before the platforms are set up.
    return link_to_parent(coordinator.hass, info, bus_identifier(entry_id), entry_id)


def group_device_info(
    coordinator: GridMeterCoordinator, subentry_id: str, title: str
) -> DeviceInfo:
    """Device of a group of meters, hanging off its bus device."""
    entry_id = coordinator.config_entry.entry_id
    info = DeviceInfo(
        identifiers={group_identifier(entry_id, subentry_id)},
        manufacturer="Grid Meter",
        model="Meter group",
        name=title,
    )
    return link_to_parent(coordinator.hass, info, bus_identifier(entry_id), entry_id)


class GridMeterEntity(CoordinatorEntity[GridMeterCoordinator]):
    """An entity fed by a bus coordinator."""

    _attr_has_entity_name = True


class BusEntity(GridMeterEntity):
    """An entity of the bus device itself."""

    def __init__(self, coordinator: GridMeterCoordinator) -> None:
        """Attach the entity to the bus device."""
        super().__init__(coordinator)
        self._attr_device_info = DeviceInfo(identifiers={bus_identifier(self._entry_id)})

    @property
    def _entry_id(self) -> str:
        return self.coordinator.config_entry.entry_id


class MeterEntity(GridMeterEntity):
    """An entity of one meter; unavailable while that meter does not answer."""

    def __init__(self, coordinator: GridMeterCoordinator, meter: MeterInfo) -> None:
        """Attach the entity to the meter's device."""
        super().__init__(coordinator)
        self.meter = meter
        self._attr_device_info = meter_device_info(coordinator, meter)

    @property
    def reading(self) -> Reading | None:
        """The meter's latest reading, None while it does not answer."""
        result = (self.coordinator.data or {}).get(self.meter.address)
        return result if isinstance(result, Reading) else None

    @property
    def available(self) -> bool:
        """Available while the bus works and this meter answered the last poll."""
        return super().available and self.reading is not None
