"""Indicators, 1-minute statistics and advice of one meter or group (no Home Assistant code)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from edge_agent.advice import Advice, AdviceConfig, AdviceEvaluator
from edge_agent.indicators import (
    FREQUENCY_LIMIT,
    FREQUENCY_LIMIT_SMALL_SYSTEM,
    PF_TARGET,
    SINGLE_PHASE_LIMITS,
    THREE_PHASE_LIMITS,
    DeviationLimits,
    MinuteAccumulator,
    StateError,
    frequency_qualification,
    instant_indicators,
    load_statistics,
    voltage_qualification,
)
from edge_agent.model import Value
from edge_agent.quantities import LINES, PHASES

from .const import (
    CONF_FREQUENCY_LIMIT,
    CONF_NOMINAL_VOLTAGE,
    CONF_PF_TARGET,
    CONF_RATED_POWER,
    DEFAULT_NOMINAL_VOLTAGE,
)

#: The accumulators a tracker keeps, by the name their state is stored under.
ACCUMULATORS = ("voltage", "frequency", "load")


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    """What a meter's or group's indicators are judged against."""

    #: Phase-to-neutral nominal voltage, V.
    nominal_voltage: float = DEFAULT_NOMINAL_VOLTAGE
    #: Transformer or feeder capacity, kVA; the load rate needs it.
    rated_power: float | None = None
    power_factor_target: float = PF_TARGET
    frequency_limit: float = FREQUENCY_LIMIT
    voltage_limits: DeviationLimits = THREE_PHASE_LIMITS
    #: Monitor line-to-line voltages (a meter without phase voltages).
    line_voltages: bool = False

    @property
    def phases(self) -> tuple[str, ...]:
        """Channel suffixes of the monitored voltages (a, b, c or ab, bc, ca)."""
        return LINES if self.line_voltages else PHASES

    def advice_config(self) -> AdviceConfig:
        """Thresholds of the advice rules."""
        return AdviceConfig(
            nominal_voltage=self.nominal_voltage,
            voltage_limits=self.voltage_limits,
            frequency_limit=self.frequency_limit,
            frequency_critical_limit=max(FREQUENCY_LIMIT_SMALL_SYSTEM, 2 * self.frequency_limit),
            rated_power=self.rated_power,
            power_factor_target=self.power_factor_target,
        )


def settings_from(data: Mapping[str, Any], keys: Collection[str]) -> TrackerSettings:
    """Return the settings in subentry data, for a meter (or group) reading ``keys``."""
    rated = data.get(CONF_RATED_POWER)
    phase_voltages = [f"voltage_{p}" for p in PHASES if f"voltage_{p}" in keys]
    return TrackerSettings(
        nominal_voltage=float(data.get(CONF_NOMINAL_VOLTAGE) or DEFAULT_NOMINAL_VOLTAGE),
        rated_power=float(rated) if rated else None,
        power_factor_target=float(data.get(CONF_PF_TARGET) or PF_TARGET),
        frequency_limit=float(data.get(CONF_FREQUENCY_LIMIT) or FREQUENCY_LIMIT),
        voltage_limits=SINGLE_PHASE_LIMITS if len(phase_voltages) == 1 else THREE_PHASE_LIMITS,
        line_voltages=not phase_voltages and "voltage_ab" in keys,
    )


class Tracker:
    """Feeds readings into the instant indicators, the accumulators and the advice evaluator."""

    def __init__(self, settings: TrackerSettings, tz: tzinfo) -> None:
        """Start empty; ``tz`` is where days and months begin."""
        self.settings = settings
        self.tz = tz
        self.voltage = voltage_qualification(
            settings.nominal_voltage,
            tz=tz,
            limits=settings.voltage_limits,
            line=settings.line_voltages,
        )
        self.frequency = frequency_qualification(tz=tz, limit=settings.frequency_limit)
        self.load = load_statistics(tz=tz)
        self.evaluator = AdviceEvaluator(settings.advice_config())
        #: Indicators of the latest reading; empty while there is none.
        self.instant: dict[str, float] = {}
        #: Advice raised now.
        self.advice: list[Advice] = []
        #: Values of the latest reading; empty while there is none.
        self.values: Mapping[str, Value] = {}

    @property
    def accumulators(self) -> dict[str, MinuteAccumulator]:
        """The accumulators by storage name."""
        return {"voltage": self.voltage, "frequency": self.frequency, "load": self.load}

    def feed(self, timestamp: float, values: Mapping[str, Value]) -> list[Advice]:
        """Take one reading into account; return the advice that has just become active."""
        for accumulator in self.accumulators.values():
            accumulator.feed(timestamp, values)
        self.values = values
        s = self.settings
        self.instant = instant_indicators(
            values,
            nominal_voltage=s.nominal_voltage,
            power_factor_target=s.power_factor_target,
            rated_power=s.rated_power,
        )
        before = {a.rule for a in self.advice}
        self.advice = self.evaluator.evaluate(timestamp, values)
        return [a for a in self.advice if a.rule not in before]

    def lost(self) -> None:
        """No reading this time: the instant indicators are unknown."""
        self.instant = {}
        self.values = {}

    def advance(self, now: float) -> None:
        """Close the minutes that are over and roll days and months over."""
        for accumulator in self.accumulators.values():
            accumulator.advance(now)

    def to_dict(self) -> dict[str, Any]:
        """Return the state to keep across restarts (settings excluded)."""
        return {
            **{name: acc.to_dict() for name, acc in self.accumulators.items()},
            "advice": self.evaluator.to_dict(),
        }

    def restore(self, data: object) -> list[str]:
        """Load a state from :meth:`to_dict`; return what could not be restored, with why.

        Each part is restored on its own, so one malformed part loses only itself.
        """
        if not isinstance(data, Mapping):
            return [f"state is not a mapping: {data!r}"]
        problems = []
        for name, accumulator in self.accumulators.items():
            if name in data:
                try:
                    accumulator.restore(data[name])
                except StateError as err:
                    problems.append(f"{name}: {err}")
        if "advice" in data:
            try:
                self.evaluator.restore(data["advice"])
            except StateError as err:
                problems.append(f"advice: {err}")
            self.advice = self.evaluator.active
        return problems
