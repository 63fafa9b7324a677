"""Polling on the shared clock, skipped ticks, disabled polling, entity updates in slices."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.grid_meter import coordinator as coordinator_module
from custom_components.grid_meter import slices
from custom_components.grid_meter.const import DOMAIN
from custom_components.grid_meter.coordinator import GridMeterCoordinator
from custom_components.grid_meter.slices import SlicedUpdates
from edge_agent.model import SerialSettings
from edge_agent.simulator import BusSimulator, start_pty

from .conftest import BAUD, FROZEN_AT, coordinator_of, meter_subentry, serial_data, sim_meters

PERIOD = 0.3


@pytest.fixture(autouse=True)
def fast_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Poll every 0.3 s of real time."""
    monkeypatch.setattr(coordinator_module, "UPDATE_INTERVAL", timedelta(seconds=PERIOD))


@pytest.fixture
async def two_buses(hass: HomeAssistant, tmp_path: Path) -> AsyncIterator[list[MockConfigEntry]]:
    """Two bus entries, each on its own simulated pty."""
    entries, servers = [], []
    for n in range(2):
        sim = BusSimulator(
            sim_meters(("1", "2")), SerialSettings(baudrate=BAUD), time_scale=0.0, start=FROZEN_AT
        )
        server = await start_pty(sim)
        servers.append(server)
        entry = MockConfigEntry(
            domain=DOMAIN,
            entry_id=f"bus{n}",
            title=f"bus {n}",
            unique_id=server.path,
            data=serial_data(server.path),
            subentries_data=[meter_subentry(a) for a in ("1", "2")],
        )
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        entries.append(entry)
    await hass.async_block_till_done()
    yield entries
    for entry in entries:
        await hass.config_entries.async_unload(entry.entry_id)
    for server in servers:
        await server.close()


def record_polls(
    hass: HomeAssistant, coordinator: GridMeterCoordinator, delay: float = 0.0
) -> list[tuple[float, float]]:
    """Record (start, end) loop times of every poll of the coordinator's bus from now on."""
    polls: list[tuple[float, float]] = []
    poll: Callable[[], Awaitable[object]] = coordinator.bus.poll

    async def recorded() -> object:
        started = hass.loop.time()
        await asyncio.sleep(delay)
        result = await poll()
        polls.append((started, hass.loop.time()))
        return result

    coordinator.bus.poll = recorded  # type: ignore[method-assign]
    return polls


async def test_buses_poll_in_step_on_one_clock(
    hass: HomeAssistant, two_buses: list[MockConfigEntry]
) -> None:
    logs = [record_polls(hass, coordinator_of(e)) for e in two_buses]
    await asyncio.sleep(4 * PERIOD + 0.1)
    starts = [[start for start, _ in log] for log in logs]
    assert all(len(s) >= 3 for s in starts), starts
    for series in starts:
        # Each poll starts on a multiple of the period, not a period after the last one ended.
        for start in series:
            assert (start + 0.05) % PERIOD < 0.1, (start, series)
    # Both buses started each round together.
    for a, b in zip(starts[0], starts[1], strict=False):
        assert abs(a - b) < 0.05
    # One poll per tick: no tick ran twice (timers may fire a little early).
    assert [coordinator_of(e).skipped_polls for e in two_buses] == [0, 0]


async def test_a_tick_during_a_long_poll_is_skipped(
    hass: HomeAssistant, two_buses: list[MockConfigEntry]
) -> None:
    coordinator = coordinator_of(two_buses[0])
    polls = record_polls(hass, coordinator, delay=1.5 * PERIOD)
    await asyncio.sleep(5 * PERIOD)
    assert coordinator.skipped_polls >= 2
    # Never two polls of one bus at once.
    ordered = sorted(polls)
    assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(ordered))


async def test_no_polls_when_polling_is_disabled(
    hass: HomeAssistant, two_buses: list[MockConfigEntry]
) -> None:
    entry = two_buses[0]
    hass.config_entries.async_update_entry(entry, pref_disable_polling=True)
    polls = record_polls(hass, coordinator_of(entry))
    await asyncio.sleep(3 * PERIOD)
    others = record_polls(hass, coordinator_of(two_buses[1]))
    await asyncio.sleep(3 * PERIOD)
    assert polls == []
    assert len(others) >= 2


async def test_sliced_updates_yield_to_the_loop(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slices, "SLICE_SECONDS", 0.0)
    order: list[str] = []
    callbacks = {n: (lambda n=n: order.append(f"cb{n}")) for n in range(4)}
    updates = SlicedUpdates[int, Callable[[], None]](hass, "test", lambda cb: cb())
    hass.loop.call_soon(order.append, "other")
    updates.run(callbacks)
    assert order == ["cb0"]  # the first slice ran at once
    await hass.async_block_till_done()
    assert order[:3] == ["cb0", "other", "cb1"]
    assert sorted(order) == ["cb0", "cb1", "cb2", "cb3", "other"]


async def test_a_new_batch_replaces_an_unfinished_one(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slices, "SLICE_SECONDS", 0.0)
    calls: list[int] = []
    callbacks: dict[int, Callable[[], None]] = {n: (lambda n=n: calls.append(n)) for n in range(4)}
    updates = SlicedUpdates[int, Callable[[], None]](hass, "test", lambda cb: cb())
    updates.run(callbacks)
    del callbacks[3]  # an entity removed meanwhile is skipped
    updates.run(callbacks)
    await hass.async_block_till_done()
    assert calls == [0, 0, 1, 2]


async def test_refreshes_asked_for_during_a_poll_wait_their_turn(
    hass: HomeAssistant, two_buses: list[MockConfigEntry]
) -> None:
    coordinator = coordinator_of(two_buses[0])
    polls = record_polls(hass, coordinator, delay=0.2)
    await asyncio.gather(coordinator.async_refresh(), coordinator.async_refresh())
    assert len(polls) >= 2
    ordered = sorted(polls)
    assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(ordered))


async def test_a_failing_update_does_not_stop_the_others(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def broken() -> None:
        raise ValueError("entity bug")

    callbacks: dict[int, Callable[[], None]] = {
        0: lambda: calls.append(0),
        1: broken,
        2: lambda: calls.append(2),
    }
    SlicedUpdates[int, Callable[[], None]](hass, "test updates", lambda cb: cb()).run(callbacks)
    await hass.async_block_till_done()
    assert calls == [0, 2]
    assert "test updates: an update failed" in caplog.text
    assert "entity bug" in caplog.text
