"""Indicator and advice entities on a simulated bus: values, events, repairs, persistence."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory, StepTickTimeFactory, TickingDateTimeFactory
from homeassistant.config_entries import ConfigEntryState, ConfigSubentryDataWithId
from homeassistant.const import PERCENTAGE, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.grid_meter.analytics import advice_issue_id, storage_key
from custom_components.grid_meter.const import (
    CONF_MEMBERS,
    CONF_RATED_POWER,
    DOMAIN,
    SUBENTRY_GROUP,
)
from edge_agent.model import Reading, SerialSettings
from edge_agent.simulator import (
    MILD_UNBALANCE,
    STRONG_UNBALANCE,
    BusSimulator,
    SimMeter,
    ValueModel,
    start_pty,
)

from .conftest import (
    BAUD,
    ENTRY_ID,
    FROZEN_AT,
    bus_entry,
    coordinator_of,
    meter_subentry,
    serial_data,
)

FEEDER = "1"  # an SDM630 on a strongly unbalanced feeder
OTHER = "2"  # a DTSU666 on a healthy one
START = datetime.fromtimestamp(FROZEN_AT, dt_util.UTC)


type Clock = FrozenDateTimeFactory | TickingDateTimeFactory | StepTickTimeFactory


@pytest.fixture
def clock() -> Iterator[Clock]:
    """Run a clock from START (the bus needs the event loop's time to pass).

    ``clock.tick`` and ``clock.move_to`` jump it, like the ``freezer`` fixture does.
    """
    with freeze_time(START, tick=True) as factory:
        yield factory


@pytest.fixture
async def feeder_bus(tmp_path: Path) -> AsyncIterator[tuple[BusSimulator, str]]:
    """Serve a strongly unbalanced SDM630 and a healthy DTSU666 on one bus."""
    meters = [
        SimMeter("eastron-sdm630", FEEDER, seed=7, utc_offset=8.0, unbalance=STRONG_UNBALANCE),
        SimMeter("chint-dtsu666", OTHER, seed=7, utc_offset=8.0),
    ]
    sim = BusSimulator(meters, SerialSettings(baudrate=BAUD), time_scale=0.0, start=FROZEN_AT)
    server = await start_pty(sim)
    link = str(tmp_path / "usb-grid-meter-feeder-if00-port0")
    os.symlink(server.path, link)
    try:
        yield sim, link
    finally:
        await server.close()


def _entity_id(
    hass: HomeAssistant, key: str, platform: str = "sensor", tracker: str = FEEDER
) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        platform, DOMAIN, f"{ENTRY_ID}_{tracker}_{key}"
    )
    assert entity_id is not None, f"no {platform} for {tracker} {key}"
    return entity_id


def _state(hass: HomeAssistant, key: str, platform: str = "sensor", tracker: str = FEEDER) -> Any:
    state = hass.states.get(_entity_id(hass, key, platform, tracker))
    assert state is not None
    return state


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def _later(hass: HomeAssistant, clock: Clock, delta: timedelta) -> None:
    """Let time pass: the minute timer and the next poll run."""
    clock.tick(delta)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    await coordinator_of_loaded(hass).async_refresh()
    await hass.async_block_till_done()


def coordinator_of_loaded(hass: HomeAssistant) -> Any:
    entry = hass.config_entries.async_get_entry(ENTRY_ID)
    assert entry is not None
    return coordinator_of(entry)


async def test_indicator_sensors_of_a_meter(
    hass: HomeAssistant, loaded_entry: MockConfigEntry
) -> None:
    """SDM630 has line voltages (exact unbalance); DL/T 645 3-phase only the approximation."""
    unbalance = _state(hass, "voltage_unbalance")
    assert unbalance.attributes["unit_of_measurement"] == PERCENTAGE
    assert 0.0 <= float(unbalance.state) < 2.0
    dlt = "000000000011"
    assert float(_state(hass, "voltage_unbalance_approx", tracker=dlt).state) >= 0.0
    assert (
        er.async_get(hass).async_get_entity_id(
            "sensor", DOMAIN, f"{ENTRY_ID}_{dlt}_voltage_unbalance"
        )
        is None
    )
    assert 0.0 <= float(_state(hass, "current_unbalance").state) <= 100.0
    assert abs(float(_state(hass, "frequency_deviation").state)) < 0.5
    assert _state(hass, "frequency_deviation").attributes["unit_of_measurement"] == "Hz"
    assert 0.0 < float(_state(hass, "power_factor").state) <= 1.0
    assert abs(float(_state(hass, "voltage_deviation_a").state)) < 10.0
    # No rated capacity: no load rate.
    assert (
        er.async_get(hass).async_get_entity_id("sensor", DOMAIN, f"{ENTRY_ID}_{FEEDER}_load_rate")
        is None
    )
    # No minute has closed yet.
    rate = _state(hass, "voltage_qualification_rate_today")
    assert rate.state == STATE_UNKNOWN
    assert rate.attributes["monitored_minutes"] == 0
    advice = _state(hass, "advice")
    assert (advice.state, advice.attributes["advice"]) == ("0", [])
    assert _state(hass, "grid_excursion", "event").attributes["event_types"][0] == "overload"
    # Per-phase rates exist but start disabled.
    phase_rate = er.async_get(hass).async_get(
        _entity_id(hass, "voltage_qualification_rate_a_today")
    )
    assert phase_rate is not None and phase_rate.disabled_by is er.RegistryEntryDisabler.INTEGRATION


async def test_unbalanced_feeder_raises_advice_event_and_repair(
    hass: HomeAssistant, feeder_bus: tuple[BusSimulator, str], clock: Clock
) -> None:
    sim, link = feeder_bus
    await _setup(hass, bus_entry(link, (FEEDER, OTHER)))
    assert float(_state(hass, "voltage_unbalance").state) > 2.0
    assert _state(hass, "advice").state == "0"
    event_id = _entity_id(hass, "grid_excursion", "event")
    fired: list[Any] = []
    hass.bus.async_listen(
        "state_changed",
        lambda e: fired.append(e.data["new_state"]) if e.data["entity_id"] == event_id else None,
    )

    await _later(hass, clock, timedelta(minutes=11))  # past the 10 min on-delay
    advice = _state(hass, "advice")
    rules = [a["rule"] for a in advice.attributes["advice"]]
    assert "voltage_unbalance_high" in rules
    assert int(advice.state) == len(rules) >= 1
    item = advice.attributes["advice"][rules.index("voltage_unbalance_high")]
    assert item["severity"] == "warning"
    assert item["text"].startswith("Voltage unbalance is ")
    since = dt_util.parse_datetime(item["since"])
    assert since is not None and abs((since - START).total_seconds()) < 30
    # One event per advice, in the order they became active (a poll or the minute tick).
    types = [s.attributes["event_type"] for s in fired]
    assert sorted(types) == sorted(rules)
    unbalance_event = fired[types.index("voltage_unbalance_high")]
    assert unbalance_event.attributes["limit"] == 2
    assert float(unbalance_event.attributes["value"]) > 2.0
    issues = ir.async_get(hass)
    issue_id = advice_issue_id(ENTRY_ID, FEEDER, "voltage_unbalance_high")
    assert issues.async_get_issue(DOMAIN, issue_id) is None  # not yet persistent
    assert _state(hass, "advice", tracker=OTHER).state == "0"

    await _later(hass, clock, timedelta(hours=1))
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "advice_voltage_unbalance_high"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["meter"] == f"SDM630 {FEEDER}"
    assert issue.translation_placeholders["limit"] == "2"

    # The feeder is rebalanced: the advice clears after its off-delay, and so does the issue.
    meter = sim.meter(FEEDER)
    meter.model = ValueModel(replace(meter.model.options, unbalance=MILD_UNBALANCE), FROZEN_AT)
    await _later(hass, clock, timedelta(minutes=1))
    assert float(_state(hass, "voltage_unbalance").state) < 2.0
    await _later(hass, clock, timedelta(minutes=6))
    rules = [a["rule"] for a in _state(hass, "advice").attributes["advice"]]
    assert "voltage_unbalance_high" not in rules
    assert issues.async_get_issue(DOMAIN, issue_id) is None


async def test_chinese_advice_text(
    hass: HomeAssistant, feeder_bus: tuple[BusSimulator, str], clock: Clock
) -> None:
    hass.config.language = "zh-Hans"
    _, link = feeder_bus
    await _setup(hass, bus_entry(link, (FEEDER,)))
    await _later(hass, clock, timedelta(minutes=11))
    texts = [a["text"] for a in _state(hass, "advice").attributes["advice"]]
    assert any(t.startswith("三相电压不平衡度为") for t in texts)


async def test_today_rolls_over_at_midnight_in_shanghai(
    hass: HomeAssistant, feeder_bus: tuple[BusSimulator, str], clock: Clock
) -> None:
    await hass.config.async_set_time_zone("Asia/Shanghai")
    _, link = feeder_bus
    clock.move_to("2025-06-01T23:56:30+08:00")
    await _setup(hass, bus_entry(link, (FEEDER,)))
    for _ in range(3):
        await _later(hass, clock, timedelta(minutes=1))
    rate = _state(hass, "voltage_qualification_rate_today")
    assert rate.attributes["period"] == "2025-06-01"
    assert rate.attributes["monitored_minutes"] == 3 * 3  # three minutes of three phases
    bad = rate.attributes["minutes_above"] + rate.attributes["minutes_below"]
    assert float(rate.state) == pytest.approx(100.0 * (1 - bad / 9), abs=0.01)
    assert rate.attributes["maximum_at"].endswith("+08:00")
    frequency = _state(hass, "frequency_qualification_rate_today")
    assert frequency.attributes["monitored_minutes"] == 3
    month = _state(hass, "voltage_qualification_rate_month")
    assert month.attributes["period"] == "2025-06"

    # Midnight passes without a reading: the minute timer alone rolls the day over.
    clock.move_to("2025-06-02T00:00:10+08:00")
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    rate = _state(hass, "voltage_qualification_rate_today")
    assert rate.attributes["period"] == "2025-06-02"
    assert rate.state == STATE_UNKNOWN
    # The last minute of the day (23:59) still counted into June 1st's month.
    assert _state(hass, "voltage_qualification_rate_month").attributes["monitored_minutes"] == 4 * 3


async def test_statistics_and_advice_survive_a_restart(
    hass: HomeAssistant,
    feeder_bus: tuple[BusSimulator, str],
    clock: Clock,
    hass_storage: dict[str, Any],
) -> None:
    _, link = feeder_bus
    entry = bus_entry(link, (FEEDER,))
    await _setup(hass, entry)
    await _later(hass, clock, timedelta(minutes=11))
    minutes = _state(hass, "voltage_qualification_rate_today").attributes["monitored_minutes"]
    assert minutes > 0
    assert _state(hass, "advice").state != "0"

    assert await hass.config_entries.async_unload(entry.entry_id)
    stored = hass_storage[storage_key(ENTRY_ID)]["data"]
    assert stored[FEEDER]["voltage"]["day"]["key"] == "2025-06-01"
    assert stored[FEEDER]["advice"]["rules"]["voltage_unbalance_high"]["active"] is True

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    rate = _state(hass, "voltage_qualification_rate_today")
    assert rate.attributes["monitored_minutes"] == minutes
    rules = [a["rule"] for a in _state(hass, "advice").attributes["advice"]]
    assert "voltage_unbalance_high" in rules


async def test_group_sums_its_meters(
    hass: HomeAssistant, feeder_bus: tuple[BusSimulator, str]
) -> None:
    _, link = feeder_bus
    group = ConfigSubentryDataWithId(
        data={CONF_MEMBERS: [FEEDER, OTHER], CONF_RATED_POWER: 50.0},
        subentry_id="groupT1",
        subentry_type=SUBENTRY_GROUP,
        title="Transformer T1",
        unique_id=None,
    )
    entry = MockConfigEntry(
        domain=DOMAIN,
        entry_id=ENTRY_ID,
        title="usb-grid-meter-feeder-if00-port0",
        unique_id=link,
        data=serial_data(link),
        subentries_data=[meter_subentry(FEEDER), meter_subentry(OTHER), group],
    )
    await _setup(hass, entry)
    readings = coordinator_of(entry).data
    values = [r.values for r in readings.values() if isinstance(r, Reading)]
    p = sum(float(v["power_active_total"]) for v in values)
    q = sum(float(v["power_reactive_total"]) for v in values)
    key = "group_groupT1"
    assert float(_state(hass, "power_active_total", tracker=key).state) == pytest.approx(
        p, abs=1e-3
    )
    load_rate = float(_state(hass, "load_rate", tracker=key).state)
    assert load_rate == pytest.approx((p**2 + q**2) ** 0.5 / 50.0 * 100.0, abs=1e-2)
    assert float(_state(hass, "current_unbalance", tracker=key).state) > 0.0
    assert _state(hass, "advice", tracker=key).state == "0"
    assert _state(hass, "load_factor_today", tracker=key).state == STATE_UNKNOWN
    # Voltage statistics stay with the meters.
    assert (
        er.async_get(hass).async_get_entity_id(
            "sensor", DOMAIN, f"{ENTRY_ID}_{key}_voltage_qualification_rate_today"
        )
        is None
    )

    # A member that stops answering makes the group's instant indicators unavailable.
    coordinator = coordinator_of(entry)
    coordinator.bus.backoff_base = 0.0
    coordinator.bus.timeout = 0.1
    feeder_bus[0].meter(OTHER).faults.silent = True
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert _state(hass, "load_rate", tracker=key).state == STATE_UNAVAILABLE
    assert _state(hass, "advice", tracker=key).state == "0"
    await hass.config_entries.async_unload(entry.entry_id)
    assert entry.state is ConfigEntryState.NOT_LOADED
