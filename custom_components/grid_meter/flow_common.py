"""Selectors, form fields and error mapping shared by the bus, meter and group flows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)

from edge_agent.bus import Bus
from edge_agent.errors import (
    EdgeAgentError,
    FrameError,
    LinkError,
    MeterTimeoutError,
    PortBusyError,
    PortNotFoundError,
)
from edge_agent.profiles.model import ProfileProtocol

from .bus_config import link_config
from .const import (
    CONF_FREQUENCY_LIMIT,
    CONF_NOMINAL_VOLTAGE,
    CONF_PF_TARGET,
    CONF_PROTOCOL,
    CONF_RATED_POWER,
    DEFAULT_NOMINAL_VOLTAGE,
    FREQUENCY_LIMITS,
    PF_TARGETS,
)

PROTOCOL_SELECTOR = SelectSelector(
    SelectSelectorConfig(
        options=[str(p) for p in ProfileProtocol],
        translation_key=CONF_PROTOCOL,
        mode=SelectSelectorMode.DROPDOWN,
    )
)


def link_errors(err: LinkError) -> dict[str, str]:
    """Form errors for a port or gateway that cannot be used."""
    if isinstance(err, PortNotFoundError):
        return {"base": "port_not_found"}
    if isinstance(err, PortBusyError):
        return {"base": "port_busy"}
    return {"base": "cannot_open"}


def meter_errors(err: EdgeAgentError) -> dict[str, str]:
    """Form errors for a meter that could not be read."""
    if isinstance(err, LinkError):
        return link_errors(err)
    if isinstance(err, MeterTimeoutError):
        return {"base": "no_answer"}
    if isinstance(err, FrameError):
        return {"base": "bad_reply"}
    # A refusal (MeterError) or anything else the meter did not accept.
    return {"base": "meter_refused"}


async def async_test_link(data: Mapping[str, Any]) -> dict[str, str]:
    """Open and close a bus link; return form errors (empty when it works)."""
    bus = Bus(link_config(data), name="test")
    try:
        await bus.open()
    except LinkError as err:
        return link_errors(err)
    finally:
        await bus.close()
    return {}


def _decimal_box(low: float, high: float, unit: str) -> vol.All:
    """Return a number box in steps of 0.1, validated as a float."""
    return vol.All(
        NumberSelector(
            NumberSelectorConfig(
                min=low, max=high, step=0.1, unit_of_measurement=unit, mode=NumberSelectorMode.BOX
            )
        ),
        vol.Coerce(float),
    )


def indicator_fields() -> dict[Any, Any]:
    """Form fields of what a meter's or group's indicators are judged against."""
    fields: dict[Any, Any] = {
        vol.Required(CONF_NOMINAL_VOLTAGE): _decimal_box(50, 100000, "V"),
        vol.Optional(CONF_RATED_POWER): _decimal_box(0.1, 1000000, "kVA"),
    }
    fields[vol.Required(CONF_PF_TARGET)] = SelectSelector(
        SelectSelectorConfig(
            options=list(PF_TARGETS),
            translation_key=CONF_PF_TARGET,
            mode=SelectSelectorMode.DROPDOWN,
        )
    )
    fields[vol.Required(CONF_FREQUENCY_LIMIT)] = SelectSelector(
        SelectSelectorConfig(
            options=list(FREQUENCY_LIMITS),
            translation_key=CONF_FREQUENCY_LIMIT,
            mode=SelectSelectorMode.DROPDOWN,
        )
    )
    return fields


def indicator_data(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Return the indicator settings of a submitted form (an empty rated power is left out)."""
    data: dict[str, Any] = {
        CONF_NOMINAL_VOLTAGE: float(user_input[CONF_NOMINAL_VOLTAGE]),
        CONF_PF_TARGET: PF_TARGETS[user_input[CONF_PF_TARGET]],
        CONF_FREQUENCY_LIMIT: FREQUENCY_LIMITS[user_input[CONF_FREQUENCY_LIMIT]],
    }
    if user_input.get(CONF_RATED_POWER):
        data[CONF_RATED_POWER] = float(user_input[CONF_RATED_POWER])
    return data


def indicator_suggestions(data: Mapping[str, Any]) -> dict[str, Any]:
    """Form values of stored indicator settings (defaults where none are stored)."""

    def option(choices: Mapping[str, float], value: Any) -> str:
        return next((k for k, v in choices.items() if v == value), next(iter(choices)))

    suggested = {CONF_NOMINAL_VOLTAGE: data.get(CONF_NOMINAL_VOLTAGE, DEFAULT_NOMINAL_VOLTAGE)}
    if data.get(CONF_RATED_POWER):
        suggested[CONF_RATED_POWER] = data[CONF_RATED_POWER]
    suggested[CONF_PF_TARGET] = option(PF_TARGETS, data.get(CONF_PF_TARGET))
    suggested[CONF_FREQUENCY_LIMIT] = option(FREQUENCY_LIMITS, data.get(CONF_FREQUENCY_LIMIT))
    return suggested
