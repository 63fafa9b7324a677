"""Config flow: add or reconfigure a bus, a serial port or a TCP gateway; meters are subentries."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
)
from homeassistant.core import callback
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)
from homeassistant.helpers.service_info.usb import UsbServiceInfo

from edge_agent.link import list_serial_ports
from edge_agent.profiles.model import ProfileProtocol

from .bus_config import DEFAULT_SERIAL, link_target
from .const import (
    BAUDRATES,
    CONF_BAUDRATE,
    CONF_DEVICE,
    CONF_FRAMING,
    CONF_HOST,
    CONF_LINK,
    CONF_PARITY,
    CONF_PORT,
    CONF_PROTOCOL,
    CONF_STOPBITS,
    DEFAULT_TCP_PORT,
    DOMAIN,
    FRAMING_MODBUS_TCP,
    FRAMING_RAW,
    LINK_SERIAL,
    LINK_TCP,
    PARITIES,
    STOPBITS,
    SUBENTRY_GROUP,
    SUBENTRY_METER,
)
from .flow_common import PROTOCOL_SELECTOR, async_test_link
from .group_flow import GroupSubentryFlow
from .meter_flow import MeterSubentryFlow

_LINE_SETTINGS: dict[vol.Marker, Any] = {
    vol.Optional(CONF_BAUDRATE): SelectSelector(
        SelectSelectorConfig(options=[str(b) for b in BAUDRATES], mode=SelectSelectorMode.DROPDOWN)
    ),
    vol.Optional(CONF_PARITY): SelectSelector(
        SelectSelectorConfig(
            options=list(PARITIES), translation_key=CONF_PARITY, mode=SelectSelectorMode.DROPDOWN
        )
    ),
    vol.Optional(CONF_STOPBITS): SelectSelector(
        SelectSelectorConfig(options=[str(s) for s in STOPBITS], mode=SelectSelectorMode.LIST)
    ),
}
_TCP_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_HOST): TextSelector(),
        vol.Required(CONF_PORT, default=DEFAULT_TCP_PORT): vol.All(
            NumberSelector(NumberSelectorConfig(min=1, max=65535, mode=NumberSelectorMode.BOX)),
            vol.Coerce(int),
        ),
        vol.Required(CONF_FRAMING, default=FRAMING_RAW): SelectSelector(
            SelectSelectorConfig(
                options=[FRAMING_RAW, FRAMING_MODBUS_TCP],
                translation_key=CONF_FRAMING,
                mode=SelectSelectorMode.LIST,
            )
        ),
        vol.Required(CONF_PROTOCOL, default=str(ProfileProtocol.MODBUS)): PROTOCOL_SELECTOR,
    }
)


def _serial_schema(devices: list[SelectOptionDict]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(CONF_DEVICE): SelectSelector(
                SelectSelectorConfig(
                    options=devices, custom_value=True, mode=SelectSelectorMode.DROPDOWN
                )
            ),
            vol.Required(CONF_PROTOCOL, default=str(ProfileProtocol.MODBUS)): PROTOCOL_SELECTOR,
            **_LINE_SETTINGS,
        }
    )


def _usb_schema() -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(CONF_PROTOCOL, default=str(ProfileProtocol.MODBUS)): PROTOCOL_SELECTOR,
            **_LINE_SETTINGS,
        }
    )


def _serial_data(user_input: Mapping[str, Any], device: str) -> dict[str, Any]:
    """Entry data of a serial bus; line settings left empty take the protocol's defaults."""
    protocol = ProfileProtocol(user_input[CONF_PROTOCOL])
    default = DEFAULT_SERIAL[protocol]
    return {
        CONF_LINK: LINK_SERIAL,
        CONF_DEVICE: device,
        CONF_PROTOCOL: str(protocol),
        CONF_BAUDRATE: int(user_input.get(CONF_BAUDRATE) or default.baudrate),
        CONF_PARITY: str(user_input.get(CONF_PARITY) or default.parity),
        CONF_STOPBITS: int(user_input.get(CONF_STOPBITS) or default.stopbits),
    }


def _tcp_data(user_input: Mapping[str, Any]) -> dict[str, Any]:
    return {
        CONF_LINK: LINK_TCP,
        CONF_HOST: str(user_input[CONF_HOST]).strip(),
        CONF_PORT: int(user_input[CONF_PORT]),
        CONF_FRAMING: user_input[CONF_FRAMING],
        CONF_PROTOCOL: str(ProfileProtocol(user_input[CONF_PROTOCOL])),
    }


def _suggested(data: Mapping[str, Any]) -> dict[str, Any]:
    """Form values from entry data (selectors hold strings)."""
    return {key: str(value) for key, value in data.items() if key != CONF_LINK}


def _stable_device(device: str) -> str:
    """Return the /dev/serial/by-id name of a device where there is one (blocking)."""
    real = os.path.realpath(device)
    ports = list_serial_ports()
    return next((p.device for p in ports if os.path.realpath(p.device) == real), device)


def _title(data: Mapping[str, Any]) -> str:
    if data[CONF_LINK] == LINK_SERIAL:
        return os.path.basename(str(data[CONF_DEVICE]))
    return link_target(data)


class GridMeterConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add or reconfigure a bus."""

    VERSION = 1
    MINOR_VERSION = 1

    _usb_device: str = ""

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Meters, and groups of them, are subentries of their bus."""
        return {SUBENTRY_METER: MeterSubentryFlow, SUBENTRY_GROUP: GroupSubentryFlow}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Choose the kind of bus."""
        return self.async_show_menu(step_id="user", menu_options=[LINK_SERIAL, LINK_TCP])

    async def async_step_serial(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Set up a bus on a serial port with an RS485 adapter."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = _serial_data(user_input, str(user_input[CONF_DEVICE]).strip())
            if not (errors := await self._async_validate(data)):
                return self._async_finish(data)
        return self.async_show_form(
            step_id=LINK_SERIAL,
            data_schema=self.add_suggested_values_to_schema(
                await self._async_serial_schema(), user_input or {}
            ),
            errors=errors,
        )

    async def async_step_tcp(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Set up a bus behind a TCP gateway: transparent RS485 bytes or Modbus TCP."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = _tcp_data(user_input)
            if not (errors := await self._async_validate(data)):
                return self._async_finish(data)
        return self.async_show_form(
            step_id=LINK_TCP,
            data_schema=self.add_suggested_values_to_schema(_TCP_SCHEMA, user_input or {}),
            errors=errors,
        )

    async def async_step_usb(self, discovery_info: UsbServiceInfo) -> ConfigFlowResult:
        """Handle a USB-RS485 adapter that was plugged in."""
        device = await self.hass.async_add_executor_job(_stable_device, discovery_info.device)
        await self.async_set_unique_id(device)
        self._abort_if_unique_id_configured()
        self._usb_device = device
        self.context["title_placeholders"] = {"name": os.path.basename(device)}
        return await self.async_step_usb_confirm()

    async def async_step_usb_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm a discovered adapter and choose its line settings."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data = _serial_data(user_input, self._usb_device)
            if not (errors := await async_test_link(data)):
                return self._async_finish(data)
        return self.async_show_form(
            step_id="usb_confirm",
            data_schema=self.add_suggested_values_to_schema(_usb_schema(), user_input or {}),
            description_placeholders={"device": self._usb_device},
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the port, gateway or line settings of a bus."""
        entry = self._get_reconfigure_entry()
        serial = entry.data[CONF_LINK] == LINK_SERIAL
        errors: dict[str, str] = {}
        if user_input is not None:
            if serial:
                data = _serial_data(user_input, str(user_input[CONF_DEVICE]).strip())
            else:
                data = _tcp_data(user_input)
            if not (errors := await self._async_validate(data)):
                return self._async_finish(data)
        schema = await self._async_serial_schema() if serial else _TCP_SCHEMA
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                schema, user_input or _suggested(entry.data)
            ),
            errors=errors,
        )

    async def _async_serial_schema(self) -> vol.Schema:
        ports = await self.hass.async_add_executor_job(list_serial_ports)
        return _serial_schema(
            [SelectOptionDict(value=p.device, label=f"{p.device} ({p.description})") for p in ports]
        )

    async def _async_validate(self, data: dict[str, Any]) -> dict[str, str]:
        """Abort for a bus that is already configured, else test the link."""
        unique_id = link_target(data)
        await self.async_set_unique_id(unique_id)
        if self.source == SOURCE_RECONFIGURE:
            entry = self._get_reconfigure_entry()
            if unique_id == entry.unique_id and entry.state is ConfigEntryState.LOADED:
                # The running bus holds the port: the reload after saving tests it.
                return {}
        self._abort_if_unique_id_configured()
        return await async_test_link(data)

    @callback
    def _async_finish(self, data: dict[str, Any]) -> ConfigFlowResult:
        if self.source == SOURCE_RECONFIGURE:
            return self.async_update_reload_and_abort(
                self._get_reconfigure_entry(), unique_id=link_target(data), data=data
            )
        return self.async_create_entry(title=_title(data), data=data)
