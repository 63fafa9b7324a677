"""End to end: the demo's set-up starts Home Assistant with live simulated meters.

Runs ``scripts/demo_setup.py``'s steps on free ports (simulator, configuration, Home
Assistant, onboarding), logs in through Home Assistant's auth API, checks through the REST
API that meter sensors hold numbers that change from one poll to the next, and saves a
screenshot of the overview dashboard and of the big-screen dashboard ``/grid-meter``, logged
in and rendered in headless Chromium, under ``.cache/artifacts/e2e/``.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from custom_components.grid_meter.const import UPDATE_INTERVAL

from .browser import RENDERED_BYTES, screenshot

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / ".cache" / "artifacts" / "e2e"
#: Meter sensors checked: (entity id, unit) of meters on both simulated buses.
SENSORS = {
    "sensor.sdm630_1_voltage_phase_a": "V",
    "sensor.sdm630_1_active_power": "kW",
    "sensor.sdm630_1_energy_import": "kWh",
    "sensor.dtsu666_2_current_phase_a": "A",
    "sensor.dl_t_645_2007_three_phase_000000000011_voltage_phase_a": "V",
    "sensor.dl_t_645_2007_single_phase_000000000012_energy_import": "kWh",
    "sensor.sdm120_1_active_power": "kW",
    "sensor.adw300_3_voltage_phase_a": "V",
}

#: Voltage unbalance of the demo's meter on a strongly unbalanced feeder.
UNBALANCED_FEEDER = "sensor.sdm630_3_voltage_unbalance"

pytestmark = pytest.mark.e2e


def _load_demo_setup() -> ModuleType:
    path = REPO / "scripts" / "demo_setup.py"
    spec = importlib.util.spec_from_file_location("demo_setup", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo_setup"] = module
    spec.loader.exec_module(module)
    return module


demo_setup = _load_demo_setup()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def demo(tmp_path: Path, socket_enabled: None) -> Iterator[str]:
    """Run the demo on free ports; yield Home Assistant's base URL."""
    with demo_setup.running_demo(tmp_path, _free_port(), 0, host="127.0.0.1") as base:
        yield base


def _states(base: str, token: str) -> dict[str, str]:
    return {
        entity_id: demo_setup._request(f"{base}/api/states/{entity_id}", token=token)["state"]
        for entity_id in SENSORS
    }


def _wait_for_readings(base: str, token: str, timeout: float = 60.0) -> dict[str, str]:
    """Wait until every checked sensor has a number (both buses polled once)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            states = _states(base, token)
            for state in states.values():
                float(state)
        except (ValueError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
        else:
            return states


def test_demo_serves_live_meter_readings(demo: str) -> None:
    token = demo_setup.login(demo)
    first = _wait_for_readings(demo, token)
    for entity_id, unit in SENSORS.items():
        state = demo_setup._request(f"{demo}/api/states/{entity_id}", token=token)
        assert state["attributes"]["unit_of_measurement"] == unit, entity_id

    time.sleep(UPDATE_INTERVAL.total_seconds() + 2)  # at least one more poll of each bus
    second = _states(demo, token)
    for value in second.values():
        float(value)  # still numbers
    changed = [e for e in SENSORS if first[e] != second[e]]
    assert changed, f"no reading changed between two polls: {second}"

    # The frontend logs itself in with a fresh authorization code and renders the overview.
    shot = ARTIFACTS / "dashboard.png"
    entity = next(iter(SENSORS))
    screenshot(
        demo_setup.browser_url(demo),
        shot,
        ready_js=f"!!document.querySelector('home-assistant')?.hass?.states?.['{entity}']",
    )
    assert shot.stat().st_size > RENDERED_BYTES  # a rendered dashboard, not the loading screen

    # The strongly unbalanced feeder: its voltage unbalance is above the 2 % limit (the advice
    # follows after the rule's 10 min on-delay, longer than this test runs).
    unbalance = demo_setup._request(f"{demo}/api/states/{UNBALANCED_FEEDER}", token=token)
    assert float(unbalance["state"]) > 2.0

    # The big-screen dashboard the demo created with grid_meter.create_dashboard.
    shot = ARTIFACTS / "dashboard-big-screen.png"
    screenshot(
        demo_setup.browser_url(demo, f"/{demo_setup.DASHBOARD}"),
        shot,
        ready_js="!!document.querySelector('home-assistant')?.hass?.panels?.['grid-meter']",
    )
    assert shot.stat().st_size > RENDERED_BYTES
