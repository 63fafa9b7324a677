"""Selectors and error mapping shared by the bus flow and the meter subentry flow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.helpers.selector import (
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
from .const import CONF_PROTOCOL

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
