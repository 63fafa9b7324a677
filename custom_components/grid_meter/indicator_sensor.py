"""Sensors of the grid indicators and the advice of each meter and group."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Final

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, UnitOfFrequency, UnitOfPower
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from edge_agent.indicators import ChannelStats, MinuteAccumulator, PeriodStats, load_factor
from edge_agent.quantities import LINES, PHASES

from .analytics import GridAnalytics
from .analytics_entity import AnalyticsEntity, Target
from .tracker import Tracker, TrackerSettings

_PHASE_VOLTAGES = {f"voltage_{p}" for p in PHASES}
_LINE_VOLTAGES = {f"voltage_{line}" for line in LINES}
_CURRENTS = {f"current_{p}" for p in PHASES}
_ANGLES = {f"angle_voltage_{p}" for p in PHASES}

type Applies = Callable[[frozenset[str], TrackerSettings], bool]


@dataclass(frozen=True, kw_only=True)
class IndicatorSensorEntityDescription(SensorEntityDescription):
    """An indicator of a meter or group."""

    value_fn: Callable[[Tracker], StateType]
    attributes_fn: Callable[[Tracker], dict[str, Any]] | None = None
    #: Whether a meter or group with these quantity keys and settings has this indicator.
    applies: Applies
    #: Computed from the latest reading: unavailable without one.
    instant: bool = False
    #: Groups get it too (voltage and frequency statistics stay with the meters).
    for_groups: bool = False


def _has(*keys: str) -> Applies:
    return lambda keys_, _settings: set(keys) <= keys_


def _apparent(keys: frozenset[str]) -> bool:
    p = "power_active_total" in keys
    return "power_apparent_total" in keys or (
        p and bool({"power_reactive_total", "power_factor_total"} & keys)
    )


def _instant(key: str) -> Callable[[Tracker], StateType]:
    def value(tracker: Tracker) -> StateType:
        x = tracker.instant.get(key)
        return None if x is None else round(x, 3)

    return value


def _instant_sensor(
    key: str,
    applies: Applies,
    *,
    unit: str | None = PERCENTAGE,
    device_class: SensorDeviceClass | None = None,
    precision: int = 1,
    enabled: bool = True,
    for_groups: bool = False,
) -> IndicatorSensorEntityDescription:
    return IndicatorSensorEntityDescription(
        key=key,
        translation_key=key,
        native_unit_of_measurement=unit,
        device_class=device_class,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=precision,
        entity_registry_enabled_default=enabled,
        value_fn=_instant(key),
        applies=applies,
        instant=True,
        for_groups=for_groups,
    )


# --- accumulated statistics -------------------------------------------------------------


def _iso(tracker: Tracker, timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt_util.utc_from_timestamp(timestamp).astimezone(tracker.tz).isoformat()


def _round(x: float | None, digits: int = 2) -> float | None:
    return None if x is None else round(x, digits)


type Pick = Callable[[Tracker], tuple[PeriodStats, ChannelStats]]


def _pick(accumulator: str, period: str, channel: str | None) -> Pick:
    """Choose the statistics of one channel (or all pooled) of today or this month."""

    def pick(tracker: Tracker) -> tuple[PeriodStats, ChannelStats]:
        acc: MinuteAccumulator = tracker.accumulators[accumulator]
        stats = acc.day if period == "today" else acc.month
        return stats, stats.total if channel is None else stats.channel(channel)

    return pick


def _rate_attributes(pick: Pick) -> Callable[[Tracker], dict[str, Any]]:
    def attributes(tracker: Tracker) -> dict[str, Any]:
        period, stats = pick(tracker)
        return {
            "period": period.key,
            "monitored_minutes": stats.monitored,
            "minutes_above": stats.above,
            "minutes_below": stats.below,
            "above_rate": _round(stats.above_rate),
            "below_rate": _round(stats.below_rate),
            "maximum": _round(stats.maximum),
            "maximum_at": _iso(tracker, stats.maximum_at),
            "minimum": _round(stats.minimum),
            "minimum_at": _iso(tracker, stats.minimum_at),
        }

    return attributes


def _rate_sensor(
    key: str, pick: Pick, applies: Applies, *, enabled: bool = True
) -> IndicatorSensorEntityDescription:
    return IndicatorSensorEntityDescription(
        key=key,
        translation_key=key,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=2,
        entity_registry_enabled_default=enabled,
        value_fn=lambda t: _round(pick(t)[1].qualification_rate),
        attributes_fn=_rate_attributes(pick),
        applies=applies,
    )


def _voltages(keys: frozenset[str], settings: TrackerSettings) -> set[str]:
    """Return the monitored voltage channels this meter reads."""
    return {f"voltage_{p}" for p in settings.phases} & keys


def _one_of_several(channel: str) -> Applies:
    """Apply to a monitored voltage channel when there is more than one."""
    return lambda k, s: channel in _voltages(k, s) and len(_voltages(k, s)) > 1


def _line_monitored(channel: str) -> Applies:
    """Apply to a line voltage monitored in place of phase voltages."""
    return lambda k, s: s.line_voltages and channel in k


def _voltage_rate_sensors() -> list[IndicatorSensorEntityDescription]:
    out = []
    for period in ("today", "month"):
        out.append(
            _rate_sensor(
                f"voltage_qualification_rate_{period}",
                _pick("voltage", period, None),
                lambda k, s: bool(_voltages(k, s)),
            )
        )
        for p in (*PHASES, *LINES):
            out.append(
                _rate_sensor(
                    f"voltage_qualification_rate_{p}_{period}",
                    _pick("voltage", period, f"voltage_{p}"),
                    _one_of_several(f"voltage_{p}"),
                    enabled=False,
                )
            )
    return out


def _load_factor_attributes(tracker: Tracker) -> dict[str, Any]:
    stats = tracker.load.day.channel("power_active_total")
    return {
        "period": tracker.load.day.key,
        "monitored_minutes": stats.monitored,
        "mean": _round(stats.mean, 3),
        "maximum": _round(stats.maximum, 3),
        "maximum_at": _iso(tracker, stats.maximum_at),
    }


INDICATOR_SENSORS: Final[tuple[IndicatorSensorEntityDescription, ...]] = (
    *(_instant_sensor(f"voltage_deviation_{p}", _has(f"voltage_{p}")) for p in PHASES),
    *(
        _instant_sensor(
            f"voltage_deviation_{line}",
            _line_monitored(f"voltage_{line}"),
        )
        for line in LINES
    ),
    _instant_sensor(
        "voltage_unbalance",
        lambda k, _s: k >= _LINE_VOLTAGES or k >= (_PHASE_VOLTAGES | _ANGLES),
        precision=2,
    ),
    _instant_sensor(
        "voltage_unbalance_approx",
        lambda k, _s: k >= _PHASE_VOLTAGES and not k >= _LINE_VOLTAGES,
        precision=2,
    ),
    _instant_sensor("current_unbalance", _has(*_CURRENTS), for_groups=True),
    _instant_sensor("neutral_current_ratio", _has(*_CURRENTS, "current_n"), enabled=False),
    _instant_sensor(
        "frequency_deviation",
        _has("frequency"),
        unit=UnitOfFrequency.HERTZ,
        device_class=SensorDeviceClass.FREQUENCY,
        precision=2,
    ),
    _instant_sensor(
        "power_factor",
        lambda k, _s: (
            "power_factor_total" in k or {"power_active_total", "power_reactive_total"} <= k
        ),
        unit=None,
        device_class=SensorDeviceClass.POWER_FACTOR,
        precision=2,
        for_groups=True,
    ),
    _instant_sensor(
        "reactive_compensation",
        lambda k, _s: (
            "power_active_total" in k and ("power_factor_total" in k or "power_reactive_total" in k)
        ),
        unit="kvar",
        device_class=None,
        precision=0,
        enabled=False,
        for_groups=True,
    ),
    _instant_sensor(
        "load_rate",
        lambda k, s: s.rated_power is not None and _apparent(k),
        precision=1,
        for_groups=True,
    ),
    *_voltage_rate_sensors(),
    *(
        _rate_sensor(
            f"frequency_qualification_rate_{period}",
            _pick("frequency", period, None),
            _has("frequency"),
        )
        for period in ("today", "month")
    ),
    IndicatorSensorEntityDescription(
        key="load_factor_today",
        translation_key="load_factor_today",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=lambda t: _round(load_factor(t.load.day)),
        attributes_fn=_load_factor_attributes,
        applies=_has("power_active_total"),
        for_groups=True,
    ),
)

#: The summed active power of a group (a meter has it as a quantity sensor).
GROUP_POWER = IndicatorSensorEntityDescription(
    key="power_active_total",
    translation_key="power_active_total",
    native_unit_of_measurement=UnitOfPower.KILO_WATT,
    device_class=SensorDeviceClass.POWER,
    state_class=SensorStateClass.MEASUREMENT,
    suggested_display_precision=3,
    value_fn=lambda t: _round(_float(t.values.get("power_active_total")), 3),
    applies=_has("power_active_total"),
    instant=True,
    for_groups=True,
)


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def descriptions_for(
    target: Target, settings: TrackerSettings
) -> list[IndicatorSensorEntityDescription]:
    """Return the indicator sensors a meter or group has."""
    candidates: Collection[IndicatorSensorEntityDescription] = (
        (GROUP_POWER, *INDICATOR_SENSORS) if target.is_group else INDICATOR_SENSORS
    )
    return [
        d
        for d in candidates
        if (d.for_groups or not target.is_group) and d.applies(target.keys, settings)
    ]


class IndicatorSensor(AnalyticsEntity, SensorEntity):
    """One indicator of a meter or group."""

    entity_description: IndicatorSensorEntityDescription

    def __init__(
        self,
        analytics: GridAnalytics,
        target: Target,
        description: IndicatorSensorEntityDescription,
    ) -> None:
        """Initialize the sensor."""
        super().__init__(analytics, target, description.key)
        self.entity_description = description

    @property
    def available(self) -> bool:
        """Statistics always are; an instantaneous indicator needs the latest reading."""
        if not self.entity_description.instant:
            return True
        return self.entity_description.value_fn(self.tracker) is not None

    @property
    def native_value(self) -> StateType:
        """The indicator's value."""
        return self.entity_description.value_fn(self.tracker)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Counts and extremes behind a rate."""
        attributes_fn = self.entity_description.attributes_fn
        return None if attributes_fn is None else attributes_fn(self.tracker)


class AdviceSensor(AnalyticsEntity, SensorEntity):
    """The number of advice items raised for a meter or group, the advice as an attribute."""

    _attr_translation_key = "advice"
    _attr_state_class = SensorStateClass.MEASUREMENT

    def __init__(self, analytics: GridAnalytics, target: Target) -> None:
        """Initialize the sensor."""
        super().__init__(analytics, target, "advice")

    @property
    def native_value(self) -> int:
        """How many advice items are raised."""
        return len(self.tracker.advice)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The advice, rendered in Home Assistant's language."""
        return {
            "advice": [
                {
                    "rule": a.rule,
                    "severity": str(a.severity),
                    "text": self.analytics.render(a),
                    "since": _iso(self.tracker, a.since),
                }
                for a in self.tracker.advice
            ]
        }
