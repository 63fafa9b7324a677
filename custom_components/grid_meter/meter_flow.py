"""Meter subentry flow: a meter found by a scan or entered by hand, probed before it is added."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState, ConfigSubentryFlow, SubentryFlowResult
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

from edge_agent.bus import Bus, ScanResult
from edge_agent.errors import EdgeAgentError
from edge_agent.profiles.model import Profile, ProfileProtocol

from .bus_config import (
    InvalidAddressError,
    find_profile,
    known_profiles,
    link_config,
    meter_config,
    normalize_address,
    wire_for,
)
from .const import (
    CONF_ADDRESS,
    CONF_FIRST,
    CONF_LAST,
    CONF_PROFILE,
    CONF_PROTOCOL,
    REPLY_TIMEOUT,
    RETRIES,
    SUBENTRY_METER,
)
from .coordinator import GridMeterConfigEntry
from .flow_common import (
    PROTOCOL_SELECTOR,
    indicator_data,
    indicator_fields,
    indicator_suggestions,
    meter_errors,
)

#: Modbus unit ids a scan covers unless the user narrows or widens it.
DEFAULT_SCAN_RANGE = (1, 16)


class MeterSubentryFlow(ConfigSubentryFlow):
    """Add a meter to a bus: found by a scan or entered by hand, probed before it is added."""

    def __init__(self) -> None:
        """Start with no scan."""
        self._scan_protocol = ProfileProtocol.MODBUS
        self._scan_range = DEFAULT_SCAN_RANGE
        self._scan_task: asyncio.Task[list[ScanResult]] | None = None
        self._scan_errors: dict[str, str] = {}
        self._found: list[str] = []

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Scan the bus or enter a meter by hand."""
        return self.async_show_menu(step_id="user", menu_options=["scan", "manual"])

    async def async_step_manual(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Enter the address and profile of a meter."""
        errors: dict[str, str] = {}
        if user_input is not None:
            result = await self._async_add(user_input, errors)
            if result is not None:
                return result
        schema = vol.Schema(
            {
                vol.Required(CONF_ADDRESS): TextSelector(),
                vol.Required(CONF_PROFILE): await self._async_profiles(None),
            }
        )
        return self.async_show_form(
            step_id="manual",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or {}),
            errors=errors,
        )

    async def async_step_scan(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Choose what to scan for; re-entered while the scan runs."""
        if user_input is None and self._scan_task is not None:
            return await self.async_step_scan_progress()
        errors, self._scan_errors = self._scan_errors, {}
        if user_input is not None:
            first, last = int(user_input[CONF_FIRST]), int(user_input[CONF_LAST])
            if first > last:
                errors = {CONF_LAST: "invalid_range"}
            else:
                self._scan_protocol = ProfileProtocol(user_input[CONF_PROTOCOL])
                self._scan_range = (first, last)
                return await self.async_step_scan_progress()
        unit = vol.All(
            NumberSelector(NumberSelectorConfig(min=1, max=247, mode=NumberSelectorMode.BOX)),
            vol.Coerce(int),
        )
        schema = vol.Schema(
            {
                vol.Required(CONF_PROTOCOL): PROTOCOL_SELECTOR,
                vol.Required(CONF_FIRST): unit,
                vol.Required(CONF_LAST): unit,
            }
        )
        suggested = user_input or {
            CONF_PROTOCOL: self._get_entry().data.get(CONF_PROTOCOL, str(self._scan_protocol)),
            CONF_FIRST: self._scan_range[0],
            CONF_LAST: self._scan_range[1],
        }
        return self.async_show_form(
            step_id="scan",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )

    async def async_step_scan_progress(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Scan while showing progress, then go on to pick a meter or back to the form."""
        if self._scan_task is None:
            self._scan_task = self.hass.async_create_task(self._async_scan())
        if not self._scan_task.done():
            return self.async_show_progress(progress_action="scan", progress_task=self._scan_task)
        task, self._scan_task = self._scan_task, None
        try:
            found = task.result()
        except EdgeAgentError as err:
            self._scan_errors = meter_errors(err)
            return self.async_show_progress_done(next_step_id="scan")
        configured = {s.unique_id for s in self._get_entry().subentries.values()}
        self._found = [r.address for r in found if r.address not in configured]
        if not self._found:
            self._scan_errors = {"base": "no_meters_found"}
            return self.async_show_progress_done(next_step_id="scan")
        return self.async_show_progress_done(next_step_id="pick")

    async def async_step_pick(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Choose a meter the scan found and its profile."""
        errors: dict[str, str] = {}
        if user_input is not None:
            result = await self._async_add(user_input, errors)
            if result is not None:
                return result
        schema = vol.Schema(
            {
                vol.Required(CONF_ADDRESS): SelectSelector(
                    SelectSelectorConfig(options=self._found, mode=SelectSelectorMode.LIST)
                ),
                vol.Required(CONF_PROFILE): await self._async_profiles(self._scan_protocol),
            }
        )
        return self.async_show_form(
            step_id="pick",
            data_schema=self.add_suggested_values_to_schema(
                schema, user_input or {CONF_ADDRESS: self._found[0]}
            ),
            description_placeholders={"count": str(len(self._found))},
            errors=errors,
        )

    async def _async_scan(self) -> list[ScanResult]:
        protocol = self._scan_protocol
        wire = wire_for(protocol, self._get_entry().data)
        if protocol is ProfileProtocol.MODBUS:
            first, last = self._scan_range
            addresses: list[str] | None = [str(u) for u in range(first, last + 1)]
        else:
            addresses = None
        return await self._async_with_bus(lambda bus: bus.scan(wire, addresses))

    async def _async_add(
        self, user_input: dict[str, Any], errors: dict[str, str]
    ) -> SubentryFlowResult | None:
        """Validate and probe a meter; return the result that adds it, or fill ``errors``."""
        profile_id = str(user_input[CONF_PROFILE]).strip()
        if (profile := await self.hass.async_add_executor_job(find_profile, profile_id)) is None:
            errors[CONF_PROFILE] = "unknown_profile"
            return None
        try:
            address = normalize_address(profile.protocol, str(user_input[CONF_ADDRESS]))
        except InvalidAddressError:
            errors[CONF_ADDRESS] = "invalid_address"
            return None
        entry = self._get_entry()
        if any(
            s.subentry_type == SUBENTRY_METER and s.unique_id == address
            for s in entry.subentries.values()
        ):
            return self.async_abort(reason="already_configured")
        meter = meter_config(address, profile, entry.data)
        try:
            reading = await self._async_with_bus(lambda bus: bus.probe(meter))
        except EdgeAgentError as err:
            errors.update(meter_errors(err))
            return None
        if not reading.values:
            errors["base"] = "meter_refused"
            return None
        return self.async_create_entry(
            title=f"{profile.model} {address}",
            data={CONF_ADDRESS: address, CONF_PROFILE: profile.id},
            unique_id=address,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change what the meter's indicators are judged against."""
        subentry = self._get_reconfigure_subentry()
        if user_input is not None:
            base = {k: v for k, v in subentry.data.items() if k in (CONF_ADDRESS, CONF_PROFILE)}
            return self.async_update_and_abort(
                self._get_entry(), subentry, data={**base, **indicator_data(user_input)}
            )
        schema = vol.Schema(indicator_fields())
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                schema, indicator_suggestions(subentry.data)
            ),
            description_placeholders={"meter": subentry.title},
        )

    async def _async_profiles(self, protocol: ProfileProtocol | None) -> SelectSelector:
        profiles = await self.hass.async_add_executor_job(known_profiles)
        return _profile_selector(profiles, protocol)

    async def _async_with_bus[T](self, action: Callable[[Bus], Awaitable[T]]) -> T:
        """Run ``action`` on the bus: the running one if the entry is loaded, else a fresh one."""
        entry: GridMeterConfigEntry = self._get_entry()
        if entry.state is ConfigEntryState.LOADED:
            return await action(entry.runtime_data.coordinator.bus)
        bus = Bus(link_config(entry.data), name=entry.title, timeout=REPLY_TIMEOUT, retries=RETRIES)
        try:
            await bus.open()
            return await action(bus)
        finally:
            await bus.close()


def _profile_selector(profiles: list[Profile], protocol: ProfileProtocol | None) -> SelectSelector:
    """Profile choice; a custom value allows profiles the list does not show."""
    options = [
        SelectOptionDict(value=p.id, label=f"{p.manufacturer} {p.model}")
        for p in profiles
        if protocol is None or p.protocol is protocol
    ]
    return SelectSelector(
        SelectSelectorConfig(
            options=options, custom_value=True, sort=True, mode=SelectSelectorMode.DROPDOWN
        )
    )
