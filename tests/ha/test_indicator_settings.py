"""Indicator settings of meters, groups of meters, and the create_dashboard action."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.components.lovelace.const import LOVELACE_DATA
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.grid_meter.const import (
    CONF_FREQUENCY_LIMIT,
    CONF_MEMBERS,
    CONF_NAME,
    CONF_NOMINAL_VOLTAGE,
    CONF_PF_TARGET,
    CONF_RATED_POWER,
    DOMAIN,
    SERVICE_CREATE_DASHBOARD,
    SUBENTRY_GROUP,
    SUBENTRY_METER,
)
from custom_components.grid_meter.dashboard import DASHBOARD_URL_PATH

from .conftest import ENTRY_ID

SETTINGS = {
    CONF_NOMINAL_VOLTAGE: 230,
    CONF_RATED_POWER: 20,
    CONF_PF_TARGET: "general",
    CONF_FREQUENCY_LIMIT: "small_system",
}


def _entity_id(hass: HomeAssistant, unique_id: str, platform: str = "sensor") -> str | None:
    return er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{ENTRY_ID}_{unique_id}")


async def _reloaded(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def test_meter_settings_give_a_load_rate(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    assert _entity_id(hass, "1_load_rate") is None
    result = await loaded_entry.start_subentry_reconfigure_flow(hass, SUBENTRY_METER, "meter1")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], SETTINGS)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert dict(loaded_entry.subentries["meter1"].data) == {
        "address": "1",
        "profile": "eastron-sdm630",
        CONF_NOMINAL_VOLTAGE: 230.0,
        CONF_RATED_POWER: 20.0,
        CONF_PF_TARGET: 0.85,
        CONF_FREQUENCY_LIMIT: 0.5,
    }
    await _reloaded(hass, loaded_entry)
    settings = loaded_entry.runtime_data.analytics.trackers["1"].settings
    assert (settings.nominal_voltage, settings.rated_power) == (230.0, 20.0)
    assert (settings.power_factor_target, settings.frequency_limit) == (0.85, 0.5)
    load_rate = _entity_id(hass, "1_load_rate")
    assert load_rate is not None
    state = hass.states.get(load_rate)
    assert state is not None and float(state.state) > 0.0

    # The form shows the stored settings again.
    result = await loaded_entry.start_subentry_reconfigure_flow(hass, SUBENTRY_METER, "meter1")
    schema = result["data_schema"].schema
    suggested = {str(k): k.description["suggested_value"] for k in schema}
    assert suggested[CONF_PF_TARGET] == "general"
    assert suggested[CONF_RATED_POWER] == 20.0


async def test_add_and_change_a_group(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    result = await hass.config_entries.subentries.async_init(
        (loaded_entry.entry_id, SUBENTRY_GROUP), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: "T1", CONF_MEMBERS: [], **SETTINGS}
    )
    assert result["errors"] == {CONF_MEMBERS: "no_members"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: " T1 ", CONF_MEMBERS: ["1", "2"], **SETTINGS}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (group,) = (s for s in loaded_entry.subentries.values() if s.subentry_type == SUBENTRY_GROUP)
    assert group.title == "T1"
    assert group.data[CONF_MEMBERS] == ["1", "2"]
    await _reloaded(hass, loaded_entry)
    load_rate = _entity_id(hass, f"group_{group.subentry_id}_load_rate")
    assert load_rate is not None

    result = await loaded_entry.start_subentry_reconfigure_flow(
        hass, SUBENTRY_GROUP, group.subentry_id
    )
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.subentries.async_configure(
        # The rated power field emptied.
        result["flow_id"],
        {CONF_NAME: "T2", CONF_MEMBERS: ["1"]}
        | {k: v for k, v in SETTINGS.items() if k != CONF_RATED_POWER},
    )
    assert result["reason"] == "reconfigure_successful"
    assert loaded_entry.subentries[group.subentry_id].title == "T2"
    assert CONF_RATED_POWER not in loaded_entry.subentries[group.subentry_id].data
    await _reloaded(hass, loaded_entry)
    assert loaded_entry.runtime_data.analytics.groups[group.subentry_id].members == ("1",)


async def test_create_dashboard_action(hass: HomeAssistant, loaded_entry: MockConfigEntry) -> None:
    assert await async_setup_component(hass, "lovelace", {})
    response = await hass.services.async_call(
        DOMAIN, SERVICE_CREATE_DASHBOARD, blocking=True, return_response=True
    )
    assert response is not None
    assert response["url_path"] == DASHBOARD_URL_PATH
    names = [s.title for s in loaded_entry.subentries.values()]
    assert response["meters"] == names
    store = hass.data[LOVELACE_DATA].dashboards[DASHBOARD_URL_PATH]
    config: Any = await store.async_load(False)
    text = repr(config)
    for unique_id, platform in (
        ("1_voltage_unbalance", "sensor"),
        ("1_advice", "sensor"),
        ("1_voltage_qualification_rate_today", "sensor"),
        ("2_power_factor", "sensor"),
        ("1_voltage_a", "sensor"),
    ):
        entity_id = _entity_id(hass, unique_id, platform)
        assert entity_id is not None and entity_id in text, unique_id
    assert len(config["views"]) == 1 + len(names)  # an overview and a view per meter


async def test_create_dashboard_without_lovelace_fails_clearly(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(DOMAIN, SERVICE_CREATE_DASHBOARD, blocking=True)
    assert err.value.translation_key == "dashboard_failed"
