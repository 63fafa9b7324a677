"""The big-screen dashboard: rendered for the configured meters, stored as a Lovelace dashboard."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from homeassistant.components.frontend import DATA_PANELS
from homeassistant.components.lovelace.const import LOVELACE_DATA
from homeassistant.components.lovelace.dashboard import LovelaceStorage
from homeassistant.core import HomeAssistant
from homeassistant.helpers.template import Template
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.grid_meter.dashboard import (
    BIG_SCREEN_TEMPLATE,
    DASHBOARD_URL_PATH,
    INDICATOR_KEYS,
    DashboardError,
    MeterEntities,
    async_create_dashboard,
    build_big_screen,
)
from edge_agent.errors import ConfigError
from edge_agent.indicators import SINGLE_PHASE_LIMITS
from edge_agent.quantities import QUANTITIES

#: Card types that ship with Home Assistant's frontend (no custom: cards).
BUILT_IN_CARDS = {
    "entities",
    "gauge",
    "heading",
    "history-graph",
    "logbook",
    "markdown",
    "statistics-graph",
    "tile",
}
THREE_PHASE_KEYS = [
    "voltage_a",
    "voltage_b",
    "voltage_c",
    "voltage_ab",
    "voltage_bc",
    "voltage_ca",
    "current_a",
    "current_b",
    "current_c",
    "current_n",
    "power_active_total",
    "power_active_a",
    "power_active_b",
    "power_active_c",
    "power_reactive_total",
    "power_factor_total",
    "power_factor_a",
    "power_factor_b",
    "power_factor_c",
    "frequency",
    "energy_import_total",
    "energy_export_total",
]
SINGLE_PHASE_KEYS = [
    "voltage_a",
    "current_a",
    "power_active_total",
    "power_factor_total",
    "frequency",
]


def _meter(name: str, slug: str, keys: list[str], indicators: bool) -> MeterEntities:
    return MeterEntities(
        name=name,
        quantities={k: f"sensor.{slug}_{k}" for k in keys},
        indicators={
            k: f"{'event' if k == 'grid_excursion' else 'sensor'}.{slug}_{k}"
            for k in sorted(INDICATOR_KEYS)
        }
        if indicators
        else {},
    )


THREE_PHASE = _meter("DTSU666 2", "dtsu666_2", THREE_PHASE_KEYS, indicators=True)
SINGLE_PHASE = MeterEntities(
    name="DDSU666 4",
    quantities={k: f"sensor.ddsu666_4_{k}" for k in SINGLE_PHASE_KEYS},
    voltage_limits=SINGLE_PHASE_LIMITS,
)


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for child in node.values():
            yield from _walk(child)
    elif isinstance(node, list):
        for child in node:
            yield from _walk(child)


def _cards(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        card
        for node in _walk(config)
        if isinstance(node, dict) and isinstance(node.get("cards"), list)
        for card in node["cards"]
    ]


def _entity_ids(config: dict[str, Any]) -> set[str]:
    """Every entity id the dashboard shows: card and row entities, and those in templates."""
    found: set[str] = set()
    for node in _walk(config):
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("entity"), str):
            found.add(node["entity"])
        for item in node.get("entities", []):
            found.add(item if isinstance(item, str) else item["entity"])
        if node.get("type") == "markdown" and "state_attr(" in node["content"]:
            found.add(node["content"].split("state_attr('")[1].split("'")[0])
    return found


def _view(config: dict[str, Any], path: str) -> dict[str, Any]:
    views = [v for v in config["views"] if v["path"] == path]
    assert len(views) == 1
    view: dict[str, Any] = views[0]
    return view


# --- build_big_screen ---------------------------------------------------------------------


def test_template_names_only_known_keys() -> None:
    keys = {
        word[2:-2]
        for node in _walk(BIG_SCREEN_TEMPLATE)
        if isinstance(node, str)
        for word in node.replace("'", " ").split()
        if word.startswith("<<") and word.endswith(">>")
    }
    assert keys
    assert keys <= set(QUANTITIES) | INDICATOR_KEYS
    assert not INDICATOR_KEYS & set(QUANTITIES)


def test_two_meters_give_an_overview_and_a_view_each() -> None:
    config = build_big_screen([THREE_PHASE, SINGLE_PHASE])
    json.dumps(config)  # storable as is
    text = json.dumps(config, ensure_ascii=False)
    assert "<<" not in text
    assert "[[" not in text
    assert [v["path"] for v in config["views"]] == ["overview", "dtsu666-2", "ddsu666-4"]
    assert config["title"] == "Grid Meter"

    cards = _cards(config)
    assert {c["type"] for c in cards} <= BUILT_IN_CARDS
    assert {"gauge", "history-graph", "statistics-graph", "markdown", "logbook"} <= {
        c["type"] for c in cards
    }
    known = set(THREE_PHASE.entity_ids.values()) | set(SINGLE_PHASE.entity_ids.values())
    shown = _entity_ids(config)
    assert shown <= known
    # Everything the three-phase meter has is on its view.
    assert _entity_ids(_view(config, "dtsu666-2")) == set(THREE_PHASE.entity_ids.values()) - {
        THREE_PHASE.indicators["voltage_unbalance_approx"]
    }

    overview = _view(config, "overview")
    assert [s["cards"][0]["heading"] for s in overview["sections"]] == ["DTSU666 2", "DDSU666 4"]
    assert overview["sections"][1]["cards"][0]["tap_action"] == {
        "action": "navigate",
        "navigation_path": "/grid-meter/ddsu666-4",
    }


def test_cards_for_missing_entities_are_left_out() -> None:
    config = build_big_screen([SINGLE_PHASE])
    assert [v["path"] for v in config["views"]] == ["ddsu666-4"]  # no overview for one meter
    view = config["views"][0]
    headings = [s["cards"][0]["heading"] for s in view["sections"]]
    # No energy, no advice: those sections are gone, not left as bare headings.
    assert headings == ["Voltage", "Load", "Frequency"]
    gauges = [c for c in _cards(config) if c["type"] == "gauge"]
    assert [g["name"] for g in gauges] == ["Ua", "Frequency"]
    # The per-phase list keeps the rows the meter has.
    (per_phase,) = [c for c in _cards(config) if c.get("title") == "Per phase"]
    assert per_phase["entities"] == [
        {"entity": "sensor.ddsu666_4_current_a", "name": "Ia"},
        {"entity": "sensor.ddsu666_4_power_factor_total", "name": "PF total"},
    ]
    assert _entity_ids(config) == set(SINGLE_PHASE.quantities.values())


def test_gauges_show_the_meters_limits() -> None:
    config = build_big_screen([THREE_PHASE, SINGLE_PHASE])
    gauges = {(g["entity"]): g for g in _cards(config) if g["type"] == "gauge"}

    def edges(entity_id: str) -> list[float]:
        return [s["from"] for s in gauges[entity_id]["segments"]]

    # 220 V ±7 % (three-phase), +7 % / −10 % (single-phase); line voltages against √3·220 V.
    assert edges("sensor.dtsu666_2_voltage_b") == [189, 204.6, 235.4]
    assert edges("sensor.ddsu666_4_voltage_a") == [176, 198.0, 235.4]
    line = 220 * math.sqrt(3)
    assert edges("sensor.dtsu666_2_voltage_ab")[1:] == [
        round(line * 0.93, 1),
        round(line * 1.07, 1),
    ]
    assert edges("sensor.dtsu666_2_frequency") == [49.5, 49.8, 50.2]
    assert gauges["sensor.dtsu666_2_frequency"]["max"] == 50.5
    assert edges("sensor.dtsu666_2_voltage_unbalance") == [0, 2.0, 4.0]
    assert edges("sensor.dtsu666_2_current_unbalance") == [0, 15.0, 30.0]
    assert edges("sensor.dtsu666_2_load_rate") == [0, 80.0, 100.0]
    assert edges("sensor.dtsu666_2_power_factor") == [0.5, 0.85, 0.9]


def test_phase_voltages_only_show_the_approximate_unbalance() -> None:
    keys = [k for k in THREE_PHASE_KEYS if k not in ("voltage_ab", "voltage_bc", "voltage_ca")]
    meter = MeterEntities(
        name="DL/T 645 11",
        quantities={k: f"sensor.dlt_11_{k}" for k in keys},
        indicators={"voltage_unbalance_approx": "sensor.dlt_11_voltage_unbalance_approx"},
    )
    config = build_big_screen([meter])
    gauges = [c for c in _cards(config) if c["type"] == "gauge"]
    approx = [g for g in gauges if g["entity"] == "sensor.dlt_11_voltage_unbalance_approx"]
    assert len(approx) == 1
    assert "approximation" in approx[0]["name"]
    assert [s["from"] for s in approx[0]["segments"]] == [0, 2.0, 4.0]


def test_energy_uses_statistics_not_the_energy_cards() -> None:
    config = build_big_screen([THREE_PHASE])
    stats = [c for c in _cards(config) if c["type"] == "statistics-graph"]
    energy = [c for c in stats if "sensor.dtsu666_2_energy_import_total" in c["entities"]]
    assert [(c["period"], c["stat_types"], c["chart_type"]) for c in energy] == [
        ("day", ["change"], "bar"),
        ("month", ["change"], "bar"),
    ]


def test_meter_names_give_unique_paths() -> None:
    twins = [
        _meter("Overview", "a", SINGLE_PHASE_KEYS, indicators=False),
        _meter("Overview", "b", SINGLE_PHASE_KEYS, indicators=False),
    ]
    config = build_big_screen(twins)
    assert [v["path"] for v in config["views"]] == ["overview", "overview-2", "overview-3"]


def test_no_meter_gives_an_explanation() -> None:
    for meters in ([], [MeterEntities(name="empty")]):
        config = build_big_screen(meters)
        (view,) = config["views"]
        assert view["cards"][0]["type"] == "markdown"
        assert "No Grid Meter meter" in view["cards"][0]["content"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantities": {"voltage_x": "sensor.x"}}, "unknown quantity keys"),
        ({"indicators": {"harmonics": "sensor.x"}}, "unknown indicator keys"),
        ({"quantities": {"voltage_a": "not an entity"}}, "invalid entity ids"),
        ({"nominal_voltage": 0.0}, "nominal_voltage must be positive"),
        ({"power_factor_target": 1.2}, "power factor target"),
    ],
)
def test_bad_meter_entities_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MeterEntities(name="m", **kwargs)


def test_a_template_with_an_unknown_key_is_refused() -> None:
    bad = {**BIG_SCREEN_TEMPLATE, "meter_view": {"title": "x", "cards": ["<<voltage_x>>"]}}
    with pytest.raises(ConfigError, match="voltage_x"):
        build_big_screen([THREE_PHASE], bad)
    bad = {**BIG_SCREEN_TEMPLATE, "meter_view": {"title": "[[colour]]"}}
    with pytest.raises(ConfigError, match="colour"):
        build_big_screen([THREE_PHASE], bad)


async def test_advice_panel_renders_the_advice_sensor(hass: HomeAssistant) -> None:
    config = build_big_screen([THREE_PHASE])
    (panel,) = [c for c in _cards(config) if c["type"] == "markdown"]
    advice = "sensor.dtsu666_2_advice"

    def render() -> str:
        return str(Template(panel["content"], hass).async_render(parse_result=False)).strip()

    hass.states.async_set(advice, "0", {"advice": []})
    assert render() == "✅ All indicators are within their limits."
    hass.states.async_set(
        advice,
        "2",
        {
            "advice": [
                {
                    "rule": "overload",
                    "severity": "critical",
                    "text": "Load 112 % of 630 kVA: transfer load.",
                    "since": 1748779200.0,
                },
                {"rule": "low_power_factor", "severity": "info", "text": "Add 45 kvar."},
            ]
        },
    )
    lines = render().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("- 🔴 **Load 112 % of 630 kVA: transfer load.** _(since 2025-")
    assert lines[1] == "- 🔵 **Add 45 kvar.**"
    hass.states.async_set(advice, "unavailable", {})
    assert render() == "unavailable"


# --- async_create_dashboard ---------------------------------------------------------------


async def test_create_dashboard_is_stored_and_idempotent(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, "lovelace", {})
    config = build_big_screen([THREE_PHASE, SINGLE_PHASE])

    assert await async_create_dashboard(hass, config) == DASHBOARD_URL_PATH
    store = hass.data[LOVELACE_DATA].dashboards[DASHBOARD_URL_PATH]
    assert isinstance(store, LovelaceStorage)
    assert await store.async_load(False) == config
    assert store.config is not None
    assert store.config["title"] == "Grid Meter"
    assert store.config["mode"] == "storage"
    panel = hass.data[DATA_PANELS][DASHBOARD_URL_PATH]
    assert panel.sidebar_title == "Grid Meter"

    # Again, with other meters: the same dashboard, the new config.
    smaller = build_big_screen([SINGLE_PHASE])
    assert await async_create_dashboard(hass, smaller) == DASHBOARD_URL_PATH
    assert hass.data[LOVELACE_DATA].dashboards[DASHBOARD_URL_PATH] is store
    assert await store.async_load(False) == smaller
    assert [d for d in hass.data[LOVELACE_DATA].dashboards if d] == [DASHBOARD_URL_PATH]


async def test_the_frontend_sees_the_dashboard(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator
) -> None:
    assert await async_setup_component(hass, "lovelace", {})
    config = build_big_screen([THREE_PHASE])
    await async_create_dashboard(hass, config)
    client = await hass_ws_client(hass)

    await client.send_json_auto_id({"type": "lovelace/dashboards/list"})
    listed = await client.receive_json()
    assert [d["url_path"] for d in listed["result"]] == [DASHBOARD_URL_PATH]
    assert listed["result"][0]["icon"] == "mdi:meter-electric"
    await client.send_json_auto_id({"type": "lovelace/config", "url_path": DASHBOARD_URL_PATH})
    loaded = await client.receive_json()
    assert loaded["success"]
    assert loaded["result"] == config


async def test_create_dashboard_needs_lovelace(hass: HomeAssistant) -> None:
    with pytest.raises(DashboardError, match="not loaded"):
        await async_create_dashboard(hass, build_big_screen([THREE_PHASE]))


async def test_create_dashboard_does_not_take_over_a_yaml_dashboard(hass: HomeAssistant) -> None:
    yaml_dashboard = {"mode": "yaml", "title": "Mine", "filename": "mine.yaml"}
    lovelace = {"lovelace": {"dashboards": {DASHBOARD_URL_PATH: yaml_dashboard}}}
    assert await async_setup_component(hass, "lovelace", lovelace)
    with pytest.raises(DashboardError, match="taken"):
        await async_create_dashboard(hass, build_big_screen([THREE_PHASE]))
