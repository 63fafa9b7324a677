"""Diagnostics: bus settings, counters and the last reading of every meter, redacted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.components.diagnostics import REDACTED
from homeassistant.core import HomeAssistant

from edge_agent.model import Reading

from .bus_config import link_target
from .const import CONF_DEVICE, CONF_HOST
from .coordinator import GridMeterConfigEntry

#: Characters of a meter address left readable (the rest may be a serial number).
ADDRESS_VISIBLE = 4


def redact_address(address: str) -> str:
    """Keep the last characters of a long meter address, mask the rest."""
    if len(address) <= ADDRESS_VISIBLE:
        return address
    return "*" * (len(address) - ADDRESS_VISIBLE) + address[-ADDRESS_VISIBLE:]


def redact_link(data: Mapping[str, Any]) -> dict[str, Any]:
    """Bus entry data without the host or the adapter's by-id name (it holds a serial number)."""
    redacted = dict(data)
    if CONF_HOST in redacted:
        redacted[CONF_HOST] = REDACTED
    if CONF_DEVICE in redacted:
        # Keep /dev/serial/by-id/ or /dev/: it tells a stable name from a ttyUSB number.
        folder, _, _ = str(redacted[CONF_DEVICE]).rpartition("/")
        redacted[CONF_DEVICE] = f"{folder}/{REDACTED}" if folder.startswith("/dev") else REDACTED
    return redacted


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: GridMeterConfigEntry
) -> dict[str, Any]:
    """Return diagnostics for a bus config entry."""
    coordinator = entry.runtime_data.coordinator
    target = link_target(entry.data)
    states = coordinator.bus.meter_states()
    results = coordinator.data or {}

    def scrub(text: str | None) -> str | None:
        return None if text is None else text.replace(target, REDACTED)

    meters = []
    for meter in coordinator.meters.values():
        state = states.get(meter.address)
        result = results.get(meter.address)
        meters.append(
            {
                "address": redact_address(meter.address),
                "profile": meter.profile.id,
                "wire": str(meter.config.wire),
                "online": state.online if state else None,
                "failures": state.failures if state else None,
                "last_error": scrub(state.last_error) if state else None,
                "reading": _reading(result) if isinstance(result, Reading) else None,
                "error": None
                if result is None or isinstance(result, Reading)
                else f"{type(result).__name__}: {scrub(str(result))}",
            }
        )
    return {
        "entry": {"data": redact_link(entry.data), "version": entry.version},
        "bus": {
            "last_update_success": coordinator.last_update_success,
            "busy_percent": coordinator.busy_percent,
            "stats": coordinator.bus.stats.as_dict(),
        },
        "meters": meters,
    }


def _reading(reading: Reading) -> dict[str, Any]:
    return {
        "timestamp": reading.timestamp,
        "values": dict(reading.values),
        "missing": sorted(reading.missing),
    }
