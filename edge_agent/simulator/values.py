"""The value model of one simulated meter: three-phase quantities that move with time.

Everything is a pure function of (options, instant) plus the relay history, so a
meter answers the same thing for the same instant however it is asked, and two runs
with one seed agree. Conventions:

* Load follows a daily curve (low at night, peaks morning and evening) with slow
  noise; per-phase shares differ by the unbalance setting.
* Voltages: nominal × phase unbalance × slow drift × noise × rare excursions (sags
  and swells lasting one minute). ``unbalance`` is the negative-sequence ratio
  V2/V1 the phase magnitudes are set for (noise adds a little).
* Angles are degrees lagging U_a in [0, 360): U_b 120, U_c 240; a current lags its
  voltage by arccos(pf) (inductive load, Q > 0).
* Derived values are exact: P = U·I·pf per phase, S = U·I, Q = √(S² − P²), totals are
  sums, S_total = √(P² + Q²), line voltages are phasor differences.
* Energy counters integrate the smooth power curve (see :mod:`.energy`); export is a
  fixed small number (no generation). A tripped relay zeroes current and power and
  stops the counters.
"""

from __future__ import annotations

import cmath
import math
import time
from dataclasses import dataclass

from ..model import Value
from ..quantities import LINES, PHASES, QUANTITIES
from . import noise
from .energy import CHANNELS, EnergyIntegrator

#: Default voltage unbalance (V2/V1): a healthy feeder.
MILD_UNBALANCE = 0.005
#: A strongly unbalanced feeder, above the 2 % limit of EN 50160.
STRONG_UNBALANCE = 0.03
#: Seconds between knots of the smooth power curve (and energy integration segments).
KNOT_SECONDS = 900.0
#: Seconds an excursion (sag or swell) lasts.
EXCURSION_SECONDS = 60.0

_PF_MIN, _PF_MAX = 0.85, 0.98
#: Tariff index (0 = T1 sharp .. 3 = T4 valley) for each local hour.
_TARIFF_BY_HOUR = (3,) * 7 + (2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 1, 1, 0, 0, 1, 2, 3)
#: Shares of the starting import counter per tariff.
_TARIFF_SHARES = (0.08, 0.32, 0.35, 0.25)
#: Per-phase current-share pattern (sums to 0), scaled by the unbalance.
_LOAD_PATTERN = (0.6, -1.0, 0.4)
_VOLTAGE_PATTERN = (1.0, -1.0, 0.0)
_ANGLES = (0.0, 120.0, 240.0)
_KNOT_CACHE = 50_000


def _bump(hour: float, centre: float, width: float) -> float:
    distance = (hour - centre + 12.0) % 24.0 - 12.0
    return math.exp(-0.5 * (distance / width) ** 2)


def _raw_shape(hour: float) -> float:
    return (
        0.18
        + 0.35 * _bump(hour, 7.5, 1.2)
        + 0.22 * _bump(hour, 12.5, 2.0)
        + 0.62 * _bump(hour, 19.5, 1.8)
    )


_SHAPE_MAX = max(_raw_shape(h / 10.0) for h in range(240))


def daily_shape(hour: float) -> float:
    """Load as a fraction of the daily peak at a local hour (0 ≤ hour < 24)."""
    return _raw_shape(hour) / _SHAPE_MAX


@dataclass(frozen=True, slots=True)
class ModelOptions:
    """How one simulated meter's values behave."""

    seed: int = 0
    phases: int = 3
    nominal_voltage: float = 220.0
    nominal_frequency: float = 50.0
    #: Total active power at the evening peak in kW; None picks 4..12 kW from the seed.
    peak_kw: float | None = None
    #: Voltage unbalance V2/V1 (see :data:`MILD_UNBALANCE`, :data:`STRONG_UNBALANCE`).
    unbalance: float = MILD_UNBALANCE
    #: Relative amplitude of fast voltage noise.
    voltage_noise: float = 0.003
    #: Probability that a phase has a sag or swell in any one minute.
    excursion_probability: float = 0.002
    #: Hours east of UTC for the daily curve and tariffs; None = this machine's zone.
    utc_offset: float | None = None


@dataclass(frozen=True, slots=True)
class _Phase:
    """Instantaneous values of one phase."""

    voltage: float
    current: float
    power: float
    reactive: float
    angle: float


class ValueModel:
    """Values of one simulated meter at any instant (Unix seconds); see module docstring."""

    def __init__(self, options: ModelOptions, start: float) -> None:
        self.options = options
        self._seed = options.seed
        self._keys = {name: noise.key(options.seed, name) for name in _CHANNEL_NAMES}
        draw = self._draw
        self.peak_kw = options.peak_kw if options.peak_kw is not None else 4.0 + 8.0 * draw("peak")
        offset = options.utc_offset
        self.utc_offset_seconds: int = (
            time.localtime(start).tm_gmtoff if offset is None else round(offset * 3600.0)
        )
        spread = min(0.6, 12.0 * options.unbalance)
        if options.phases == 1:
            self._weights: tuple[float, ...] = (3.0, 0.0, 0.0)
        else:
            self._weights = tuple(1.0 + spread * p for p in _LOAD_PATTERN)
        self._magnitudes = tuple(
            1.0 + options.unbalance * math.sqrt(3.0) * p for p in _VOLTAGE_PATTERN
        )
        self._base_pf = tuple(0.88 + 0.08 * draw(f"pf{i}") for i in range(3))
        self._relay_events: list[tuple[float, bool]] = []
        self._knots: dict[int, tuple[float, ...]] = {}
        self._energy = EnergyIntegrator(self._energy_knot, self._tariff, KNOT_SECONDS, start)
        total = (20_000.0 + 60_000.0 * draw("energy")) * self.peak_kw / 8.0
        self._energy_start = (
            *(total * w / sum(self._weights) for w in self._weights),
            0.35 * total,
            *(total * share for share in _TARIFF_SHARES),
        )
        self._export = 30.0 * draw("export")
        self._reactive_export = 5.0 * draw("reactive_export")
        self._demand_max = 1.2 * self.peak_kw * (1.0 + 0.05 * draw("demand"))

    # --- noise helpers ----------------------------------------------------------------

    def _draw(self, name: str) -> float:
        return noise.uniform(noise.key(self._seed, name), 0)

    def _smooth(self, name: str, t: float, period: float) -> float:
        return noise.smooth(self._keys[name], t, period)

    # --- relay ------------------------------------------------------------------------

    def set_relay(self, closed: bool, t: float) -> None:
        """Open or close the load relay at instant ``t`` (events must come in time order)."""
        if self.relay_closed(t) != closed:
            self._relay_events.append((t, closed))

    def relay_closed(self, t: float) -> bool:
        """Whether the relay was closed at ``t``."""
        closed = True
        for when, state in self._relay_events:
            if when > t:
                break
            closed = state
        return closed

    def _outages(self, t: float) -> list[tuple[float, float]]:
        """Return the (opened, closed-or-t) relay outages before ``t``."""
        spans: list[tuple[float, float]] = []
        opened: float | None = None
        for when, state in self._relay_events:
            if when > t:
                break
            if not state and opened is None:
                opened = when
            elif state and opened is not None:
                spans.append((opened, when))
                opened = None
        if opened is not None:
            spans.append((opened, t))
        return spans

    # --- the smooth curve -------------------------------------------------------------

    def local_hour(self, t: float) -> float:
        """Hour of the local day at ``t``."""
        return ((t + self.utc_offset_seconds) % 86400.0) / 3600.0

    def load_fraction(self, t: float) -> float:
        """Load at ``t`` as a fraction of the peak (before the relay)."""
        drift = 1.0 + 0.15 * self._smooth("load", t, 1800.0)
        return max(0.03, daily_shape(self.local_hour(t)) * drift)

    def _knot(self, k: int) -> tuple[float, ...]:
        """(P_a, P_b, P_c, Q_a, Q_b, Q_c) at knot ``k``, relay ignored."""
        cached = self._knots.get(k)
        if cached is not None:
            return cached
        t = k * KNOT_SECONDS
        total = self.peak_kw * self.load_fraction(t)
        powers = []
        reactive = []
        for i, weight in enumerate(self._weights):
            share = weight * (1.0 + 0.05 * self._smooth(f"share{i}", t, 900.0))
            power = total * share / 3.0
            pf = self._base_pf[i] + 0.03 * self._smooth(f"pf{i}", t, 3600.0)
            pf = min(_PF_MAX, max(_PF_MIN, pf))
            powers.append(power)
            reactive.append(power * math.tan(math.acos(pf)))
        if len(self._knots) > _KNOT_CACHE:
            self._knots.clear()
        result = self._knots[k] = (*powers, *reactive)
        return result

    def _energy_knot(self, k: int) -> tuple[float, float, float, float]:
        """(P_a, P_b, P_c, Q_total) at knot ``k`` for the energy integrator."""
        pa, pb, pc, qa, qb, qc = self._knot(k)
        return pa, pb, pc, qa + qb + qc

    def _tariff(self, k: int) -> int:
        return _TARIFF_BY_HOUR[int(self.local_hour(k * KNOT_SECONDS))]

    def _smooth_power(self, t: float) -> tuple[float, ...]:
        """(P_a, P_b, P_c, Q_a, Q_b, Q_c) of the smooth curve at ``t``, relay ignored."""
        k = math.floor(t / KNOT_SECONDS)
        fraction = t / KNOT_SECONDS - k
        start, end = self._knot(k), self._knot(k + 1)
        return tuple(a + (b - a) * fraction for a, b in zip(start, end, strict=True))

    # --- instantaneous values ---------------------------------------------------------

    def _voltage(self, i: int, t: float, load: float) -> float:
        options = self.options
        level = 1.0 + 0.01 * self._smooth("vday", t, 3600.0) - 0.015 * (load - 0.5)
        jitter = 1.0 + options.voltage_noise * self._smooth(f"vnoise{i}", t, 3.0)
        return (
            options.nominal_voltage * self._magnitudes[i] * level * jitter * self._excursion(i, t)
        )

    def _excursion(self, i: int, t: float) -> float:
        index = math.floor(t / EXCURSION_SECONDS)
        if noise.uniform(self._keys[f"excursion{i}"], index) >= self.options.excursion_probability:
            return 1.0
        kind = noise.uniform(self._keys[f"excursion_kind{i}"], index)
        depth = noise.uniform(self._keys[f"excursion_depth{i}"], index)
        return 1.0 - (0.1 + 0.3 * depth) if kind < 0.7 else 1.06 + 0.06 * depth

    def _phases(self, t: float, closed: bool) -> list[_Phase]:
        load = self.load_fraction(t)
        smooth = self._smooth_power(t)
        phases = []
        for i in range(3):
            voltage = self._voltage(i, t, load)
            jitter = 1.0 + 0.02 * self._smooth(f"pjitter{i}", t, 2.0) if closed else 0.0
            power, reactive = smooth[i] * jitter, smooth[3 + i] * jitter
            apparent = math.hypot(power, reactive)
            phi = math.degrees(math.atan2(reactive, power)) if apparent else 0.0
            phases.append(_Phase(voltage, 1000.0 * apparent / voltage, power, reactive, phi))
        return phases

    def energy(self, t: float) -> tuple[float, ...]:
        """Counters per channel of :data:`~.energy.CHANNELS` at ``t``, relay outages removed."""
        raw = self._energy.integral(t)
        for opened, closed in self._outages(t):
            lost = self._energy.integral(closed)
            gone = self._energy.integral(opened)
            raw = tuple(r - (a - b) for r, a, b in zip(raw, lost, gone, strict=True))
        return tuple(s + r for s, r in zip(self._energy_start, raw, strict=True))

    def values_at(self, t: float) -> dict[str, Value]:
        """Every canonical quantity at ``t``."""
        closed = self.relay_closed(t)
        phases = self._phases(t, closed)
        load = self.load_fraction(t)
        values: dict[str, float | int] = {}
        phasors_u = []
        phasors_i = []
        for name, phase, angle in zip(PHASES, phases, _ANGLES, strict=True):
            values[f"voltage_{name}"] = phase.voltage
            values[f"current_{name}"] = phase.current
            values[f"power_active_{name}"] = phase.power
            values[f"power_reactive_{name}"] = phase.reactive
            apparent = math.hypot(phase.power, phase.reactive)
            values[f"power_apparent_{name}"] = apparent
            values[f"power_factor_{name}"] = phase.power / apparent if apparent else 1.0
            values[f"angle_voltage_{name}"] = angle
            values[f"angle_current_{name}"] = (angle + phase.angle) % 360.0
            phasors_u.append(cmath.rect(phase.voltage, -math.radians(angle)))
            phasors_i.append(cmath.rect(phase.current, -math.radians(angle + phase.angle)))
        for line, (i, j) in zip(LINES, ((0, 1), (1, 2), (2, 0)), strict=True):
            values[f"voltage_{line}"] = abs(phasors_u[i] - phasors_u[j])
        values["current_n"] = abs(sum(phasors_i))
        power = sum(p.power for p in phases)
        reactive = sum(p.reactive for p in phases)
        apparent = math.hypot(power, reactive)
        values["power_active_total"] = power
        values["power_reactive_total"] = reactive
        values["power_apparent_total"] = apparent
        values["power_factor_total"] = power / apparent if apparent else 1.0
        values["frequency"] = (
            self.options.nominal_frequency
            + 0.04 * self._smooth("freq", t, 240.0)
            + 0.008 * self._smooth("freq_fast", t, 7.0)
        )
        values["demand_active"] = sum(self._smooth_power(t)[:3]) if closed else 0.0
        values["demand_active_max"] = self._demand_max
        values.update(self._energy_values(t))
        for i, name in enumerate(PHASES):
            values[f"thd_voltage_{name}"] = 1.8 + 0.6 * self._smooth(f"thdu{i}", t, 600.0)
            thd_i = (6.0 + 14.0 * (1.0 - min(load, 1.0))) * (
                1.0 + 0.2 * self._smooth(f"thdi{i}", t, 300.0)
            )
            values[f"thd_current_{name}"] = thd_i if closed else 0.0
        for kind in ("voltage", "current"):
            average = sum(float(values[f"thd_{kind}_{p}"]) for p in PHASES) / 3
            values[f"thd_{kind}_average"] = average
        values["temperature"] = 22.0 + 8.0 * load + 2.0 * self._smooth("temp", t, 3600.0)
        values["relay_state"] = 1 if closed else 0
        for n in range(1, 8):
            values[f"status_word_{n}"] = 0
        # DL/T 645-2007 status word 3: bit 4 relay open, bit 6 relay commanded open.
        values["status_word_3"] = 0 if closed else 0x50
        result: dict[str, Value] = dict(values)
        for key in QUANTITIES:
            result.setdefault(key, 0.0)
        return result

    def _energy_values(self, t: float) -> dict[str, float]:
        counters = dict(zip(CHANNELS, self.energy(t), strict=True))
        values: dict[str, float] = {}
        export_share = self._export / 3.0
        for name in PHASES:
            values[f"energy_import_{name}"] = counters[name]
            values[f"energy_export_{name}"] = export_share
            values[f"energy_total_{name}"] = counters[name] + export_share
        imported = counters["a"] + counters["b"] + counters["c"]
        values["energy_import_total"] = imported
        values["energy_export_total"] = self._export
        values["energy_total"] = imported + self._export
        for n in range(1, 5):
            values[f"energy_import_t{n}"] = counters[f"t{n}"]
        values["energy_reactive_import_total"] = counters["reactive"]
        values["energy_reactive_export_total"] = self._reactive_export
        return values


_PHASE_CHANNELS = (
    "share",
    "pf",
    "vnoise",
    "pjitter",
    "excursion",
    "excursion_kind",
    "excursion_depth",
    "thdu",
    "thdi",
)
_CHANNEL_NAMES = (
    "load",
    "vday",
    "freq",
    "freq_fast",
    "temp",
    *(f"{stem}{i}" for stem in _PHASE_CHANNELS for i in range(3)),
)
