"""Canonical quantity keys: the one vocabulary shared by profiles, readings, entities and the CLI.

A key names a physical quantity (``voltage_a``), its unit and its kind. Profiles may
only map registers and data identifiers to keys listed here, so every consumer can
rely on the unit and the meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """What a quantity measures; consumers map kinds to their own classes (HA device classes)."""

    VOLTAGE = "voltage"
    CURRENT = "current"
    POWER = "power"
    REACTIVE_POWER = "reactive_power"
    APPARENT_POWER = "apparent_power"
    POWER_FACTOR = "power_factor"
    FREQUENCY = "frequency"
    ENERGY = "energy"
    REACTIVE_ENERGY = "reactive_energy"
    HARMONIC = "harmonic"
    ANGLE = "angle"
    TEMPERATURE = "temperature"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class Quantity:
    """One canonical quantity."""

    key: str
    unit: str | None
    kind: Kind
    name: str
    #: True for a quantity most users want to see; others start disabled in Home Assistant.
    common: bool = False
    #: True for a counter that only grows (energy registers).
    cumulative: bool = False


def _family(
    prefix: str, suffixes: tuple[str, ...], unit: str | None, kind: Kind, name: str, **kw: bool
) -> list[Quantity]:
    return [
        Quantity(f"{prefix}_{s}", unit, kind, f"{name} {s.upper() if len(s) <= 2 else s}", **kw)
        for s in suffixes
    ]


PHASES = ("a", "b", "c")
LINES = ("ab", "bc", "ca")
TARIFFS = ("t1", "t2", "t3", "t4")

_ALL: list[Quantity] = [
    *_family("voltage", PHASES, "V", Kind.VOLTAGE, "Voltage", common=True),
    *_family("voltage", LINES, "V", Kind.VOLTAGE, "Voltage", common=True),
    *_family("current", (*PHASES, "n"), "A", Kind.CURRENT, "Current", common=True),
    Quantity("power_active_total", "kW", Kind.POWER, "Active power", common=True),
    *_family("power_active", PHASES, "kW", Kind.POWER, "Active power", common=True),
    Quantity("power_reactive_total", "kvar", Kind.REACTIVE_POWER, "Reactive power", common=True),
    *_family("power_reactive", PHASES, "kvar", Kind.REACTIVE_POWER, "Reactive power"),
    Quantity("power_apparent_total", "kVA", Kind.APPARENT_POWER, "Apparent power"),
    *_family("power_apparent", PHASES, "kVA", Kind.APPARENT_POWER, "Apparent power"),
    Quantity("power_factor_total", None, Kind.POWER_FACTOR, "Power factor", common=True),
    *_family("power_factor", PHASES, None, Kind.POWER_FACTOR, "Power factor"),
    *_family("angle_voltage", PHASES, "°", Kind.ANGLE, "Voltage phase angle"),
    *_family("angle_current", PHASES, "°", Kind.ANGLE, "Current phase angle"),
    Quantity("frequency", "Hz", Kind.FREQUENCY, "Frequency", common=True),
    Quantity("demand_active", "kW", Kind.POWER, "Active power demand"),
    Quantity("demand_active_max", "kW", Kind.POWER, "Maximum active power demand"),
    Quantity(
        "energy_import_total", "kWh", Kind.ENERGY, "Import energy", common=True, cumulative=True
    ),
    Quantity(
        "energy_export_total", "kWh", Kind.ENERGY, "Export energy", common=True, cumulative=True
    ),
    Quantity("energy_total", "kWh", Kind.ENERGY, "Total energy", cumulative=True),
    *_family("energy_import", PHASES, "kWh", Kind.ENERGY, "Import energy", cumulative=True),
    *_family("energy_export", PHASES, "kWh", Kind.ENERGY, "Export energy", cumulative=True),
    *_family("energy_total", PHASES, "kWh", Kind.ENERGY, "Total energy", cumulative=True),
    *_family("energy_import", TARIFFS, "kWh", Kind.ENERGY, "Import energy", cumulative=True),
    *[
        Quantity(
            f"energy_reactive_{d}_total",
            "kvarh",
            Kind.REACTIVE_ENERGY,
            f"Reactive {d} energy",
            cumulative=True,
        )
        for d in ("import", "export")
    ],
    *_family("thd_voltage", PHASES, "%", Kind.HARMONIC, "Voltage THD"),
    *_family("thd_current", PHASES, "%", Kind.HARMONIC, "Current THD"),
    Quantity("thd_voltage_average", "%", Kind.HARMONIC, "Voltage THD average"),
    Quantity("thd_current_average", "%", Kind.HARMONIC, "Current THD average"),
    Quantity("temperature", "°C", Kind.TEMPERATURE, "Temperature"),
    Quantity("relay_state", None, Kind.STATUS, "Relay state", common=True),
    *_family("status_word", ("1", "2", "3", "4", "5", "6", "7"), None, Kind.STATUS, "Status word"),
]

QUANTITIES: dict[str, Quantity] = {q.key: q for q in _ALL}


def quantity(key: str) -> Quantity:
    """Return the quantity for a canonical key; raise KeyError naming the key otherwise."""
    try:
        return QUANTITIES[key]
    except KeyError:
        raise KeyError(f"unknown quantity key {key!r}") from None
