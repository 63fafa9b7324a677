"""Benchmark baseline: sensors whose states are all written at once, on a fixed interval.

``bench_bare: {entities: N, interval: SECONDS}``. No I/O at all: what this costs Home
Assistant is the cost of writing (and recording) N sensor states per interval, which is
the floor any integration with N sensors pays.
"""

from __future__ import annotations

from typing import Any

import homeassistant.helpers.config_validation as cv
import voluptuous as vol
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.discovery import async_load_platform

DOMAIN = "bench_bare"
CONF_ENTITIES = "entities"
CONF_INTERVAL = "interval"

CONFIG_SCHEMA = vol.Schema(
    {
        DOMAIN: vol.Schema(
            {
                vol.Required(CONF_ENTITIES): cv.positive_int,
                vol.Optional(CONF_INTERVAL, default=60.0): cv.positive_float,
            }
        )
    },
    extra=vol.ALLOW_EXTRA,
)


async def async_setup(hass: HomeAssistant, config: dict[str, Any]) -> bool:
    """Load the sensor platform with the configured count."""
    hass.async_create_task(
        async_load_platform(hass, Platform.SENSOR, DOMAIN, dict(config[DOMAIN]), config)
    )
    return True
