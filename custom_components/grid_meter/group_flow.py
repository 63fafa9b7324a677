"""Group subentry flow: a transformer or feeder made of meters of the bus."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigSubentryFlow, SubentryFlowResult
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)

from .const import CONF_ADDRESS, CONF_MEMBERS, CONF_NAME, SUBENTRY_METER
from .flow_common import indicator_data, indicator_fields, indicator_suggestions


class GroupSubentryFlow(ConfigSubentryFlow):
    """Add or change a group of meters whose load is judged together."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Name the group and choose its meters."""
        if not self._meters():
            return self.async_abort(reason="no_meters")
        errors: dict[str, str] = {}
        if user_input is not None and self._valid(user_input, errors):
            return self.async_create_entry(
                title=str(user_input[CONF_NAME]).strip(), data=self._data(user_input)
            )
        return self._form("user", user_input or indicator_suggestions({}), errors)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change the group's name, meters or settings."""
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None and self._valid(user_input, errors):
            return self.async_update_and_abort(
                self._get_entry(),
                subentry,
                title=str(user_input[CONF_NAME]).strip(),
                data=self._data(user_input),
            )
        suggested = user_input or {
            **indicator_suggestions(subentry.data),
            CONF_NAME: subentry.title,
            CONF_MEMBERS: list(subentry.data[CONF_MEMBERS]),
        }
        return self._form("reconfigure", suggested, errors)

    def _meters(self) -> dict[str, str]:
        """Address -> title of the bus's meters."""
        return {
            s.data[CONF_ADDRESS]: s.title
            for s in self._get_entry().subentries.values()
            if s.subentry_type == SUBENTRY_METER
        }

    def _valid(self, user_input: dict[str, Any], errors: dict[str, str]) -> bool:
        if not str(user_input.get(CONF_NAME, "")).strip():
            errors[CONF_NAME] = "no_name"
        elif not user_input.get(CONF_MEMBERS):
            errors[CONF_MEMBERS] = "no_members"
        return not errors

    def _data(self, user_input: dict[str, Any]) -> dict[str, Any]:
        meters = self._meters()
        members = [a for a in user_input[CONF_MEMBERS] if a in meters]
        return {CONF_MEMBERS: members, **indicator_data(user_input)}

    def _form(
        self, step_id: str, suggested: dict[str, Any], errors: dict[str, str]
    ) -> SubentryFlowResult:
        options = [SelectOptionDict(value=a, label=t) for a, t in self._meters().items()]
        schema = vol.Schema(
            {
                vol.Required(CONF_NAME): TextSelector(),
                vol.Required(CONF_MEMBERS): SelectSelector(
                    SelectSelectorConfig(
                        options=options, multiple=True, mode=SelectSelectorMode.LIST
                    )
                ),
                **indicator_fields(),
            }
        )
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )
