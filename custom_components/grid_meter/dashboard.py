"""The "Grid Meter" big-screen dashboard: rendered for the configured meters, stored by Lovelace.

``build_big_screen`` is pure: it fills ``dashboards/big_screen.yaml`` (read once, at import) with
the entity ids of each meter. ``async_create_dashboard`` creates or updates the storage-mode
dashboard ``/grid-meter`` through Lovelace's dashboards collection, the object behind the
``lovelace/dashboards/*`` websocket commands (Home Assistant keeps no other handle on it).
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from homeassistant.components.frontend import DATA_PANELS
from homeassistant.components.lovelace.const import LOVELACE_DATA
from homeassistant.components.lovelace.dashboard import DashboardsCollection, LovelaceStorage
from homeassistant.core import HomeAssistant, valid_entity_id
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util import slugify

from edge_agent.errors import ConfigError
from edge_agent.indicators import (
    CURRENT_UNBALANCE_LIMIT,
    DEFAULT_LOAD_BANDS,
    FREQUENCY_LIMIT,
    NOMINAL_FREQUENCY,
    PF_TARGET,
    THREE_PHASE_LIMITS,
    VOLTAGE_UNBALANCE_LIMIT,
    VOLTAGE_UNBALANCE_SHORT_TIME_LIMIT,
    DeviationLimits,
    LoadBands,
)
from edge_agent.quantities import QUANTITIES

DASHBOARD_URL_PATH: Final = "grid-meter"
DASHBOARD_TITLE: Final = "Grid Meter"
DASHBOARD_ICON: Final = "mdi:meter-electric"
TEMPLATE_PATH: Final = Path(__file__).parent / "dashboards" / "big_screen.yaml"

#: Indicator entities a meter may have, besides its quantities (the template's ``<<key>>``s).
INDICATOR_KEYS: Final = frozenset(
    {
        "voltage_unbalance",
        "voltage_unbalance_approx",
        "current_unbalance",
        "voltage_qualification_rate_today",
        "frequency_deviation",
        "load_rate",
        "power_factor",
        "advice",
        "grid_excursion",
    }
)

#: The websocket commands whose handlers are methods of Lovelace's dashboards collection API.
_COLLECTION_COMMANDS: Final = (
    "lovelace/dashboards/update",
    "lovelace/dashboards/create",
    "lovelace/dashboards/list",
)
_WEBSOCKET_HANDLERS: Final = "websocket_api"
_OVERVIEW_PATH: Final = "overview"

_ENTITY = re.compile(r"<<([a-z0-9_]+)>>")
_VALUE = re.compile(r"\[\[([a-z_]+)\]\]")


class DashboardError(HomeAssistantError):
    """The dashboard cannot be created or stored."""


@dataclass(frozen=True, slots=True)
class MeterEntities:
    """The entity ids of one meter and the limits its gauges show."""

    name: str
    #: Canonical quantity key (edge_agent.quantities) -> entity id.
    quantities: Mapping[str, str] = field(default_factory=dict)
    #: Indicator key (INDICATOR_KEYS) -> entity id.
    indicators: Mapping[str, str] = field(default_factory=dict)
    #: Phase-to-neutral nominal voltage, V.
    nominal_voltage: float = 220.0
    voltage_limits: DeviationLimits = THREE_PHASE_LIMITS
    nominal_frequency: float = NOMINAL_FREQUENCY
    frequency_limit: float = FREQUENCY_LIMIT
    power_factor_target: float = PF_TARGET
    load_bands: LoadBands = DEFAULT_LOAD_BANDS

    def __post_init__(self) -> None:
        if unknown := set(self.quantities) - set(QUANTITIES):
            raise ConfigError(f"meter {self.name!r}: unknown quantity keys {sorted(unknown)}")
        if unknown := set(self.indicators) - INDICATOR_KEYS:
            raise ConfigError(f"meter {self.name!r}: unknown indicator keys {sorted(unknown)}")
        if bad := [e for e in self.entity_ids.values() if not valid_entity_id(e)]:
            raise ConfigError(f"meter {self.name!r}: invalid entity ids {bad}")
        for name in ("nominal_voltage", "nominal_frequency", "frequency_limit"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"meter {self.name!r}: {name} must be positive, got {value}")
        if not 0.0 < self.power_factor_target <= 1.0:
            raise ConfigError(
                f"meter {self.name!r}: power factor target {self.power_factor_target} "
                "is not in (0, 1]"
            )

    @property
    def entity_ids(self) -> dict[str, str]:
        """Quantity and indicator keys (disjoint sets) -> entity id."""
        return {**self.quantities, **self.indicators}


def _load_template() -> dict[str, Any]:
    data = yaml.safe_load(TEMPLATE_PATH.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ConfigError(f"{TEMPLATE_PATH.name} is not a mapping")
    return data


#: The dashboard template, read once when the module is imported (never in the event loop).
BIG_SCREEN_TEMPLATE: Final = _load_template()


# --- rendering ------------------------------------------------------------------------------


class _Drop:
    """Marks a template node that names an entity the meter does not have."""


_DROP: Final = _Drop()


def _render_str(text: str, entities: Mapping[str, str], values: Mapping[str, Any]) -> Any:
    for key in _ENTITY.findall(text):
        if key not in QUANTITIES and key not in INDICATOR_KEYS:
            raise ConfigError(f"dashboard template names an unknown entity key {key!r}")
        if key not in entities:
            return _DROP
    for key in _VALUE.findall(text):
        if key not in values:
            raise ConfigError(f"dashboard template uses an unknown value [[{key}]]")
    if (whole := _VALUE.fullmatch(text)) is not None:
        return values[whole.group(1)]
    text = _ENTITY.sub(lambda m: entities[m.group(1)], text)
    return _VALUE.sub(lambda m: str(values[m.group(1)]), text)


def _is_heading(node: Any) -> bool:
    return isinstance(node, Mapping) and node.get("type") == "heading"


def _render(node: Any, entities: Mapping[str, str], values: Mapping[str, Any]) -> Any:
    """Fill the placeholders of a template node; _DROP when it must disappear."""
    if isinstance(node, str):
        return _render_str(node, entities, values)
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, child in node.items():
            rendered = _render(child, entities, values)
            if rendered is _DROP:
                return _DROP
            out[key] = rendered
        return out
    if isinstance(node, list):
        items = [r for child in node if (r := _render(child, entities, values)) is not _DROP]
        # A list that lost items and keeps nothing but headings has nothing left to show.
        if len(items) < len(node) and all(_is_heading(i) for i in items):
            return _DROP
        return items
    return node


def _band(reference: float, upper: float, lower: float, digits: int = 1) -> dict[str, float]:
    """Gauge edges: min / max at twice the limits, low / high at the limits (in %)."""
    return {
        "min": math.floor(reference * (1 - 2 * lower / 100)),
        "low": round(reference * (1 - lower / 100), digits),
        "high": round(reference * (1 + upper / 100), digits),
        "max": math.ceil(reference * (1 + 2 * upper / 100)),
    }


def _values(meter: MeterEntities, path: str) -> dict[str, Any]:
    """Return the ``[[name]]`` values of one meter."""
    limits = meter.voltage_limits
    phase = _band(meter.nominal_voltage, limits.upper, limits.lower)
    line = _band(meter.nominal_voltage * math.sqrt(3), limits.upper, limits.lower)
    fn, df = meter.nominal_frequency, meter.frequency_limit
    return {
        "name": meter.name,
        "path": path,
        "view_url": f"/{DASHBOARD_URL_PATH}/{path}",
        **{f"voltage_{k}": v for k, v in phase.items()},
        **{f"line_voltage_{k}": v for k, v in line.items()},
        "frequency_min": round(fn - 2.5 * df, 2),
        "frequency_low": round(fn - df, 2),
        "frequency_high": round(fn + df, 2),
        "frequency_max": round(fn + 2.5 * df, 2),
        "pf_target": meter.power_factor_target,
        "pf_warning": round(meter.power_factor_target - 0.05, 2),
        "unbalance_limit": VOLTAGE_UNBALANCE_LIMIT,
        "unbalance_short_limit": VOLTAGE_UNBALANCE_SHORT_TIME_LIMIT,
        "current_unbalance_limit": CURRENT_UNBALANCE_LIMIT,
        "current_unbalance_critical": 2 * CURRENT_UNBALANCE_LIMIT,
        "load_heavy": meter.load_bands.heavy,
        "load_overload": meter.load_bands.overload,
    }


def _shown_entities(meter: MeterEntities) -> dict[str, str]:
    """Entity ids the dashboard shows: the approximate unbalance only without the exact one."""
    shown = meter.entity_ids
    if "voltage_unbalance" in shown:
        shown.pop("voltage_unbalance_approx", None)
    return shown


def _view_paths(meters: Sequence[MeterEntities]) -> list[str]:
    """Return a unique URL path per meter view, made from the meter names."""
    taken = {_OVERVIEW_PATH} if len(meters) > 1 else set()
    paths = []
    for meter in meters:
        base = slugify(meter.name, separator="-") or "meter"
        path, n = base, 1
        while path in taken:
            n += 1
            path = f"{base}-{n}"
        taken.add(path)
        paths.append(path)
    return paths


def build_big_screen(
    meters: Sequence[MeterEntities], template: Mapping[str, Any] = BIG_SCREEN_TEMPLATE
) -> dict[str, Any]:
    """Return the Lovelace config of the big-screen dashboard for ``meters``.

    One view per meter (cards for entities a meter lacks are left out), preceded by an overview
    when there are several meters; a single explanatory view when there is none.
    """
    views: list[Any] = []
    overview: list[Any] = []
    for meter, path in zip(meters, _view_paths(meters), strict=True):
        entities, values = _shown_entities(meter), _values(meter, path)
        view = _render(template["meter_view"], entities, values)
        if view is _DROP:
            continue
        views.append(view)
        section = _render(template["overview_section"], entities, values)
        if section is not _DROP:
            overview.append(section)
    if len(views) > 1:
        views.insert(0, {**template["overview_view"], "sections": overview})
    if not views:
        views = [_render(template["empty_view"], {}, {})]
    return {"title": template["title"], "views": views}


# --- storing --------------------------------------------------------------------------------


def _dashboards_collection(hass: HomeAssistant) -> DashboardsCollection:
    """Lovelace's dashboards collection, found through its websocket command handlers."""
    handlers: Mapping[str, tuple[Any, Any]] = hass.data.get(_WEBSOCKET_HANDLERS) or {}
    for command in _COLLECTION_COMMANDS:
        if (registered := handlers.get(command)) is None:
            continue
        owner = getattr(inspect.unwrap(registered[0]), "__self__", None)
        collection = getattr(owner, "storage_collection", None)
        if isinstance(collection, DashboardsCollection):
            return collection
    raise DashboardError(
        "the dashboards collection of Home Assistant is not available "
        "(is Home Assistant in recovery mode?)"
    )


async def async_create_dashboard(hass: HomeAssistant, config: Mapping[str, Any]) -> str:
    """Create the storage dashboard /grid-meter, or replace its config; return its URL path.

    Its title, icon and sidebar settings are set on creation only, so a user's changes stay.
    The Lovelace integration must be loaded (it is with the frontend).
    """
    if LOVELACE_DATA not in hass.data:
        raise DashboardError("the dashboards (lovelace) integration is not loaded")
    collection = _dashboards_collection(hass)
    if not any(item.get("url_path") == DASHBOARD_URL_PATH for item in collection.async_items()):
        if DASHBOARD_URL_PATH in hass.data.get(DATA_PANELS, {}):
            raise DashboardError(f"/{DASHBOARD_URL_PATH} is taken by another panel")
        await collection.async_create_item(
            {
                "url_path": DASHBOARD_URL_PATH,
                "title": DASHBOARD_TITLE,
                "icon": DASHBOARD_ICON,
                "show_in_sidebar": True,
                "require_admin": False,
            }
        )
    store = hass.data[LOVELACE_DATA].dashboards.get(DASHBOARD_URL_PATH)
    if not isinstance(store, LovelaceStorage):
        raise DashboardError(f"/{DASHBOARD_URL_PATH} is not a storage-mode dashboard")
    await store.async_save(dict(config))
    return DASHBOARD_URL_PATH
