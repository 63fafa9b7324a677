"""Differences between the Home Assistant releases Grid Meter supports, in one place.

Each difference is a version gate: a constant that is True on the releases that have the
newer API, computed from ``homeassistant.const``. ``scripts/check-ha-compat`` reads
``VERSION_GATES`` and type-checks each branch with pyright against the releases that run it
(the gate is a pyright constant per release), so a wrong gate or a wrong branch fails the
check. The ``# type: ignore`` comments below are for mypy, which checks the newer branch
against the installed, older release; pyright ignores them. See docs/ha-compat.md.
"""

from __future__ import annotations

from typing import Final, NotRequired, TypedDict

from homeassistant.components.recorder.models import StatisticMeanType, StatisticMetaData
from homeassistant.components.recorder.statistics import STATISTIC_UNIT_TO_UNIT_CONVERTER
from homeassistant.const import MAJOR_VERSION, MINOR_VERSION
from homeassistant.core import HomeAssistant, callback, valid_entity_id
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo

#: First release (major, minor) with each newer API. Keep literal: the checker parses it.
VERSION_GATES: Final = {
    # Recorder StatisticMetaData has a required unit_class key.
    "STATISTICS_UNIT_CLASS": (2025, 11),
    # A device belongs to one config entry: DeviceInfo links its parent by device id
    # (via_device_id, via_device deprecated) and devices are looked up per config entry
    # (async_get_device_by_identifier; async_get_device is deprecated from 2026.9).
    "DEVICE_REGISTRY_SINGLE_ENTRY": (2026, 8),
}

#: (major, minor) of the running release.
RUNNING_RELEASE: Final[tuple[int, int]] = (MAJOR_VERSION, MINOR_VERSION)


def _since(gate: str) -> bool:
    """Whether the running release has the newer API of ``gate``."""
    return VERSION_GATES[gate] <= RUNNING_RELEASE


STATISTICS_UNIT_CLASS: Final = _since("STATISTICS_UNIT_CLASS")
DEVICE_REGISTRY_SINGLE_ENTRY: Final = _since("DEVICE_REGISTRY_SINGLE_ENTRY")


class _SharedStatisticMetaData(TypedDict):
    """The keys of StatisticMetaData that every supported release has."""

    has_mean: NotRequired[bool]
    mean_type: StatisticMeanType
    has_sum: bool
    name: str | None
    source: str
    statistic_id: str
    unit_of_measurement: str | None


def statistic_unit_class(unit: str | None) -> str | None:
    """Return the recorder's unit class of ``unit`` (None when it converts no unit)."""
    converter = STATISTIC_UNIT_TO_UNIT_CONVERTER.get(unit)
    return None if converter is None else converter.UNIT_CLASS


def statistic_metadata(
    statistic_id: str,
    *,
    name: str | None,
    unit: str | None,
    has_sum: bool,
    has_mean: bool = False,
) -> StatisticMetaData:
    """Build recorder metadata for imported statistics in the running release's shape.

    ``statistic_id`` is ``domain:object_id`` for ``async_add_external_statistics`` (the
    source is the domain) or an entity id for ``async_import_statistics`` (source
    ``recorder``).
    """
    shared = _SharedStatisticMetaData(
        mean_type=StatisticMeanType.ARITHMETIC if has_mean else StatisticMeanType.NONE,
        has_sum=has_sum,
        name=name,
        source="recorder" if valid_entity_id(statistic_id) else statistic_id.partition(":")[0],
        statistic_id=statistic_id,
        unit_of_measurement=unit,
    )
    if STATISTICS_UNIT_CLASS:
        return {**shared, "unit_class": statistic_unit_class(unit)}  # type: ignore[typeddict-unknown-key]
    return {**shared}


@callback
def find_device(
    hass: HomeAssistant, identifier: tuple[str, str], config_entry_id: str
) -> dr.DeviceEntry | None:
    """Return the device of ``config_entry_id`` that has ``identifier``, if registered."""
    registry = dr.async_get(hass)
    if DEVICE_REGISTRY_SINGLE_ENTRY:
        return registry.async_get_device_by_identifier(identifier, config_entry_id)  # type: ignore[attr-defined, no-any-return]
    device = registry.async_get_device(identifiers={identifier})
    return device if device is not None and config_entry_id in device.config_entries else None


@callback
def link_to_parent(
    hass: HomeAssistant, info: DeviceInfo, parent: tuple[str, str], config_entry_id: str
) -> DeviceInfo:
    """Link ``info`` to the parent device with identifier ``parent``; return ``info``.

    The parent must already be registered for ``config_entry_id`` (register it in
    async_setup_entry before forwarding the platforms). Without it the link is left out:
    releases before 2026.8 would log a deprecation for an unknown parent.
    """
    device = find_device(hass, parent, config_entry_id)
    if device is None:
        return info
    if DEVICE_REGISTRY_SINGLE_ENTRY:
        info.via_device_id = device.id  # type: ignore[attr-defined]
    else:
        info["via_device"] = parent
    return info
