"""Operating advice from sustained indicator excursions.

Each rule looks at the indicators of one reading and either finds an excursion, finds
none, or cannot tell (inputs missing). :class:`AdviceEvaluator` raises an advice only
after its rule has found the excursion continuously for ``on_delay`` seconds and
clears it after ``off_delay`` seconds without, so one noisy sample changes nothing.
Texts live in :mod:`edge_agent.advice_texts`; :func:`render` fills them in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Any

from .advice_texts import ADVICE_TEXTS
from .errors import ConfigError
from .indicators._numbers import number, numbers, require_positive
from .indicators.errors import StateError
from .indicators.frequency import FREQUENCY_LIMIT, FREQUENCY_LIMIT_SMALL_SYSTEM, NOMINAL_FREQUENCY
from .indicators.instant import PHASE_CURRENTS, instant_indicators
from .indicators.load import DEFAULT_LOAD_BANDS, LoadBands, apparent_power
from .indicators.power_factor import CAPACITOR_STEP, PF_TARGET, round_up_kvar
from .indicators.unbalance import (
    CURRENT_UNBALANCE_LIMIT,
    VOLTAGE_UNBALANCE_LIMIT,
    VOLTAGE_UNBALANCE_SHORT_TIME_LIMIT,
)
from .indicators.voltage import THREE_PHASE_LIMITS, DeviationLimits
from .model import Value
from .quantities import LINES, PHASES

type Placeholder = str | int | float

#: Version of the dict written by :meth:`AdviceEvaluator.to_dict`.
STATE_VERSION = 1


class Severity(StrEnum):
    """How urgent an advice is."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule found in one reading."""

    severity: Severity
    #: The indicator key that triggered it (``current_unbalance``, ``voltage_deviation_a``).
    indicator: str
    value: float
    placeholders: Mapping[str, Placeholder]


@dataclass(frozen=True, slots=True)
class Advice:
    """One piece of operating advice; ``rule`` is its stable id and translation key."""

    rule: str
    severity: Severity
    indicator: str
    value: float
    placeholders: Mapping[str, Placeholder]
    #: When the excursion began (Unix timestamp).
    since: float


@dataclass(frozen=True, slots=True)
class Timing:
    """Seconds an excursion must last before advice is raised, and be gone before it clears."""

    on_delay: float
    off_delay: float

    def __post_init__(self) -> None:
        if not (self.on_delay >= 0.0 and self.off_delay >= 0.0):
            raise ConfigError(f"advice delays {self.on_delay}/{self.off_delay} s must be >= 0")


_MINUTE = 60.0

DEFAULT_TIMINGS: Mapping[str, Timing] = MappingProxyType(
    {
        "phase_load_imbalance": Timing(15 * _MINUTE, 5 * _MINUTE),
        "voltage_high": Timing(10 * _MINUTE, 5 * _MINUTE),
        "voltage_low": Timing(10 * _MINUTE, 5 * _MINUTE),
        "voltage_unbalance_high": Timing(10 * _MINUTE, 5 * _MINUTE),
        "heavy_load": Timing(30 * _MINUTE, 10 * _MINUTE),
        "overload": Timing(5 * _MINUTE, 5 * _MINUTE),
        "low_power_factor": Timing(30 * _MINUTE, 10 * _MINUTE),
        "frequency_deviation": Timing(1 * _MINUTE, 1 * _MINUTE),
    }
)


@dataclass(frozen=True, slots=True)
class AdviceConfig:
    """Thresholds of the advice rules; defaults follow the standards in docs/indicators.md."""

    #: Phase-to-neutral nominal voltage, V.
    nominal_voltage: float = 220.0
    voltage_limits: DeviationLimits = THREE_PHASE_LIMITS
    #: A voltage excursion beyond this multiple of its limit is critical.
    voltage_critical_factor: float = 1.5
    nominal_frequency: float = NOMINAL_FREQUENCY
    frequency_limit: float = FREQUENCY_LIMIT
    frequency_critical_limit: float = FREQUENCY_LIMIT_SMALL_SYSTEM
    current_unbalance_limit: float = CURRENT_UNBALANCE_LIMIT
    current_unbalance_critical: float = 2 * CURRENT_UNBALANCE_LIMIT
    #: Below this largest phase current (A) the load is too light to judge its balance.
    current_unbalance_min_current: float = 5.0
    voltage_unbalance_limit: float = VOLTAGE_UNBALANCE_LIMIT
    voltage_unbalance_short_time_limit: float = VOLTAGE_UNBALANCE_SHORT_TIME_LIMIT
    #: Transformer or feeder capacity, kVA; the load rules need it.
    rated_power: float | None = None
    load_bands: LoadBands = DEFAULT_LOAD_BANDS
    power_factor_target: float = PF_TARGET
    #: Below this active power (kW) a low power factor is not worth compensating.
    power_factor_min_power: float = 1.0
    capacitor_step: float = CAPACITOR_STEP
    timings: Mapping[str, Timing] = field(default_factory=lambda: dict(DEFAULT_TIMINGS))

    def __post_init__(self) -> None:
        require_positive(self.nominal_voltage, "nominal voltage")
        require_positive(self.nominal_frequency, "nominal frequency")
        require_positive(self.capacitor_step, "capacitor step (kvar)")
        if self.rated_power is not None:
            require_positive(self.rated_power, "rated power (kVA)")
        if not 0.0 < self.power_factor_target <= 1.0:
            raise ConfigError(f"power factor target {self.power_factor_target} is not in (0, 1]")
        unknown = set(self.timings) - set(DEFAULT_TIMINGS)
        if unknown:
            raise ConfigError(f"timings for unknown advice rules: {sorted(unknown)}")

    def timing(self, rule: str) -> Timing:
        """Return the timing of one rule (its default when not configured)."""
        return self.timings.get(rule, DEFAULT_TIMINGS[rule])


class _Unknown(Enum):
    UNKNOWN = "unknown"


#: A rule cannot tell from this reading; its state stays as it was.
UNKNOWN = _Unknown.UNKNOWN
type Outcome = Finding | _Unknown | None
type _Check = Callable[[Mapping[str, float], Mapping[str, Value], AdviceConfig], Outcome]


def _n(x: float, digits: int = 1) -> float | int:
    """Round for display; whole numbers become ints (45.0 -> 45)."""
    rounded = round(x, digits)
    return int(rounded) if float(rounded).is_integer() else rounded


# --- rules ----------------------------------------------------------------------------


def _phase_load_imbalance(
    ind: Mapping[str, float], values: Mapping[str, Value], cfg: AdviceConfig
) -> Outcome:
    unbalance = ind.get("current_unbalance")
    currents = numbers(values, PHASE_CURRENTS)
    if currents is None:
        return UNKNOWN
    loads = {p.upper(): abs(i) for p, i in zip(PHASES, currents, strict=True)}
    heavy = max(loads, key=loads.__getitem__)
    light = min(loads, key=loads.__getitem__)
    if unbalance is None or loads[heavy] < cfg.current_unbalance_min_current:
        return None
    if unbalance <= cfg.current_unbalance_limit:
        return None
    mean = sum(loads.values()) / 3.0
    # The largest move between the extremes that overshoots neither: afterwards one of
    # them sits at the mean and at most one more move remains.
    amps = min(loads[heavy] - mean, mean - loads[light])
    critical = unbalance > cfg.current_unbalance_critical
    return Finding(
        Severity.CRITICAL if critical else Severity.WARNING,
        "current_unbalance",
        unbalance,
        {
            "value": _n(unbalance),
            "limit": _n(cfg.current_unbalance_limit),
            "from_phase": heavy,
            "to_phase": light,
            "amps": _n(amps),
            "target": _n(mean),
        },
    )


def _deviations(ind: Mapping[str, float]) -> dict[str, float]:
    phase = {p: ind[f"voltage_deviation_{p}"] for p in PHASES if f"voltage_deviation_{p}" in ind}
    if phase:
        return phase
    return {ln: ind[f"voltage_deviation_{ln}"] for ln in LINES if f"voltage_deviation_{ln}" in ind}


def _voltage(high: bool) -> _Check:
    def check(ind: Mapping[str, float], values: Mapping[str, Value], cfg: AdviceConfig) -> Outcome:
        deviations = _deviations(ind)
        if not deviations:
            return UNKNOWN
        pick = max if high else min
        phase = pick(deviations, key=deviations.__getitem__)
        deviation = deviations[phase]
        limit = cfg.voltage_limits.upper if high else cfg.voltage_limits.lower
        if (deviation if high else -deviation) <= limit:
            return None
        voltage = number(values.get(f"voltage_{phase}"))
        critical = abs(deviation) > limit * cfg.voltage_critical_factor
        return Finding(
            Severity.CRITICAL if critical else Severity.WARNING,
            f"voltage_deviation_{phase}",
            deviation,
            {
                "phase": phase.upper(),
                "voltage": _n(voltage) if voltage is not None else "?",
                "deviation": _n(abs(deviation)),
                "limit": _n(limit),
            },
        )

    return check


def _voltage_unbalance_high(
    ind: Mapping[str, float], values: Mapping[str, Value], cfg: AdviceConfig
) -> Outcome:
    unbalance = ind.get("voltage_unbalance")
    if unbalance is None:
        return UNKNOWN
    if unbalance <= cfg.voltage_unbalance_limit:
        return None
    critical = unbalance > cfg.voltage_unbalance_short_time_limit
    return Finding(
        Severity.CRITICAL if critical else Severity.WARNING,
        "voltage_unbalance",
        unbalance,
        {
            "value": _n(unbalance, 2),
            "limit": _n(cfg.voltage_unbalance_limit),
            "short_limit": _n(cfg.voltage_unbalance_short_time_limit),
        },
    )


def _load(overload: bool) -> _Check:
    def check(ind: Mapping[str, float], values: Mapping[str, Value], cfg: AdviceConfig) -> Outcome:
        rate = ind.get("load_rate")
        s = apparent_power(values)
        if rate is None or s is None or cfg.rated_power is None:
            return UNKNOWN
        bands = cfg.load_bands
        if overload and rate <= bands.overload:
            return None
        if not overload and not bands.heavy < rate <= bands.overload:
            return None
        return Finding(
            Severity.CRITICAL if overload else Severity.WARNING,
            "load_rate",
            rate,
            {
                "value": _n(rate, 0),
                "load": _n(s),
                "rated": _n(cfg.rated_power),
                "limit": _n(bands.overload if overload else bands.heavy),
            },
        )

    return check


def _low_power_factor(
    ind: Mapping[str, float], values: Mapping[str, Value], cfg: AdviceConfig
) -> Outcome:
    pf = ind.get("power_factor")
    p = number(values.get("power_active_total"))
    compensation = ind.get("reactive_compensation")
    if pf is None or p is None:
        return UNKNOWN
    if p < cfg.power_factor_min_power or pf >= cfg.power_factor_target or compensation is None:
        return None
    kvar = round_up_kvar(compensation, cfg.capacitor_step)
    if kvar <= 0.0:
        return None
    return Finding(
        Severity.INFO,
        "power_factor",
        pf,
        {
            "value": _n(pf, 2),
            "target": _n(cfg.power_factor_target, 2),
            "power": _n(p),
            "kvar": _n(kvar),
        },
    )


def _frequency_deviation(
    ind: Mapping[str, float], values: Mapping[str, Value], cfg: AdviceConfig
) -> Outcome:
    deviation = ind.get("frequency_deviation")
    if deviation is None:
        return UNKNOWN
    if abs(deviation) <= cfg.frequency_limit:
        return None
    critical = abs(deviation) > cfg.frequency_critical_limit
    return Finding(
        Severity.CRITICAL if critical else Severity.WARNING,
        "frequency_deviation",
        deviation,
        {
            "value": _n(deviation, 2),
            "frequency": _n(cfg.nominal_frequency + deviation, 2),
            "limit": _n(cfg.frequency_limit, 2),
        },
    )


#: Rule id -> check, in the order advice is listed.
RULES: Mapping[str, _Check] = {
    "overload": _load(overload=True),
    "heavy_load": _load(overload=False),
    "voltage_high": _voltage(high=True),
    "voltage_low": _voltage(high=False),
    "voltage_unbalance_high": _voltage_unbalance_high,
    "phase_load_imbalance": _phase_load_imbalance,
    "low_power_factor": _low_power_factor,
    "frequency_deviation": _frequency_deviation,
}

#: Stable rule ids (Home Assistant translation keys).
ADVICE_RULES = tuple(RULES)


# --- evaluator --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _RuleState:
    #: Start of the current run of findings.
    since: float | None = None
    #: Start of the current run without findings while the advice is still raised.
    quiet_since: float | None = None
    active: bool = False
    finding: Finding | None = None


def _step(state: _RuleState, outcome: Outcome, now: float, timing: Timing) -> _RuleState:
    if outcome is UNKNOWN:
        return state
    if isinstance(outcome, Finding):
        since = state.since if state.since is not None else now
        active = state.active or now - since >= timing.on_delay
        return _RuleState(since, None, active, outcome)
    if not state.active:
        return _RuleState()
    quiet = state.quiet_since if state.quiet_since is not None else now
    if now - quiet >= timing.off_delay:
        return _RuleState()
    return replace(state, quiet_since=quiet)


class AdviceEvaluator:
    """Feeds readings through every rule and keeps the advice that has persisted."""

    def __init__(self, config: AdviceConfig | None = None) -> None:
        self._config = config or AdviceConfig()
        self._states: dict[str, _RuleState] = {rule: _RuleState() for rule in RULES}

    @property
    def config(self) -> AdviceConfig:
        """The thresholds in use."""
        return self._config

    def evaluate(self, timestamp: float, values: Mapping[str, Value]) -> list[Advice]:
        """Take one reading into account and return the advice now raised."""
        cfg = self._config
        indicators = instant_indicators(
            values,
            nominal_voltage=cfg.nominal_voltage,
            nominal_frequency=cfg.nominal_frequency,
            power_factor_target=cfg.power_factor_target,
            rated_power=cfg.rated_power,
        )
        for rule, check in RULES.items():
            outcome = check(indicators, values, cfg)
            self._states[rule] = _step(self._states[rule], outcome, timestamp, cfg.timing(rule))
        return self.active

    @property
    def active(self) -> list[Advice]:
        """The advice raised now, in rule order."""
        out = []
        for rule, state in self._states.items():
            if state.active and state.finding is not None and state.since is not None:
                f = state.finding
                out.append(
                    Advice(rule, f.severity, f.indicator, f.value, f.placeholders, state.since)
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return the state as a JSON-able dict (configuration excluded)."""
        return {
            "version": STATE_VERSION,
            "rules": {
                rule: _state_to_dict(state)
                for rule, state in self._states.items()
                if state != _RuleState()
            },
        }

    def restore(self, data: object) -> None:
        """Load a state from :meth:`to_dict`; on :class:`StateError` nothing changes."""
        if not isinstance(data, Mapping) or data.get("version") != STATE_VERSION:
            raise StateError("advice state is not a version 1 mapping")
        rules = data.get("rules")
        if not isinstance(rules, Mapping):
            raise StateError("advice state has no rules mapping")
        states = {rule: _RuleState() for rule in RULES}
        for rule, stored in rules.items():
            if rule in states:
                states[rule] = _state_from_dict(stored)
        self._states = states


def _state_to_dict(state: _RuleState) -> dict[str, Any]:
    f = state.finding
    return {
        "since": state.since,
        "quiet_since": state.quiet_since,
        "active": state.active,
        "finding": None
        if f is None
        else {
            "severity": f.severity.value,
            "indicator": f.indicator,
            "value": f.value,
            "placeholders": dict(f.placeholders),
        },
    }


def _state_from_dict(data: object) -> _RuleState:
    if not isinstance(data, Mapping):
        raise StateError(f"advice rule state {data!r} is not a mapping")
    try:
        since, quiet = data["since"], data["quiet_since"]
        active = data["active"]
        stored = data["finding"]
        finding = None
        if stored is not None:
            placeholders = dict(stored["placeholders"])
            if not all(isinstance(v, str | int | float) for v in placeholders.values()):
                raise StateError("advice placeholders must be strings or numbers")
            value = number(stored["value"])
            if value is None:
                raise StateError(f"advice value {stored['value']!r} is not a number")
            finding = Finding(
                Severity(stored["severity"]), str(stored["indicator"]), value, placeholders
            )
    except (KeyError, TypeError, ValueError) as err:
        raise StateError(f"advice rule state is malformed: {err}") from None
    if not isinstance(active, bool) or any(
        t is not None and number(t) is None for t in (since, quiet)
    ):
        raise StateError("advice rule state has bad times or flags")
    return _RuleState(number(since), number(quiet), active, finding)


# --- texts ------------------------------------------------------------------------------


def language_of(language: str) -> str:
    """Map a language tag to one with texts: any Chinese tag -> ``zh-Hans``, unknown -> ``en``."""
    if language in ADVICE_TEXTS:
        return language
    if language.lower().replace("_", "-").startswith("zh"):
        return "zh-Hans"
    return "en"


def render(advice: Advice, language: str = "en") -> str:
    """Return the advice as a sentence in ``language`` (``en`` or ``zh-Hans``)."""
    template = ADVICE_TEXTS[language_of(language)][advice.rule]
    return template.format_map(dict(advice.placeholders))
