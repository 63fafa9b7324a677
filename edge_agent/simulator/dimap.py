"""Which value model quantity a DL/T 645 data identifier reports.

The profile's items say which keys a profile reads; a meter also answers the members of
blocks, freeze and load-profile records, so the simulator carries a full default map.
Quantities with no canonical key (export per tariff, reactive per tariff, reactive
demand) use derived keys starting with ``_`` that :func:`derived_values` adds.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..model import Value
from ..profiles.model import Profile, ProfileProtocol
from ..protocols.dlt645_catalogue import DI_FREQUENCY, TARIFFS, energy_di
from ..quantities import PHASES

ZERO = "_zero"
_TARIFF_RANGE = range(1, TARIFFS + 1)
#: Export is booked on the flat tariff (T3) only.
_EXPORT_TARIFF = 3

#: 2007 instantaneous families (DI2) -> key stem; voltage and current have no total.
_VARIABLES_2007 = {
    0x01: "voltage",
    0x02: "current",
    0x03: "power_active",
    0x04: "power_reactive",
    0x05: "power_apparent",
    0x06: "power_factor",
}
#: 2007 energy kinds (DI2) -> (key of the total, key stem per tariff).
_ENERGY_2007 = {
    0x00: ("energy_total", "_energy_total"),
    0x01: ("energy_import_total", "energy_import"),
    0x02: ("energy_export_total", "_energy_export"),
    0x03: ("energy_reactive_import_total", "_reactive_import"),
    0x04: ("energy_reactive_export_total", "_reactive_export"),
    0x05: ("energy_reactive_import_total", "_reactive_import"),
    0x06: (ZERO, ZERO),
    0x07: (ZERO, ZERO),
    0x08: ("energy_reactive_export_total", "_reactive_export"),
}


def _map_2007() -> dict[int, str]:
    keys: dict[int, str] = {}
    for kind, stem in _VARIABLES_2007.items():
        if kind >= 0x03:
            keys[0x02000000 | (kind << 16)] = f"{stem}_total"
        for index, phase in enumerate(PHASES, start=1):
            keys[0x02000000 | (kind << 16) | (index << 8)] = f"{stem}_{phase}"
    keys[0x02800001] = "current_n"
    keys[DI_FREQUENCY] = "frequency"
    keys[0x02800004] = "demand_active"
    keys[0x02800005] = "_demand_reactive"
    keys[0x02800007] = "temperature"
    for kind, (total, stem) in _ENERGY_2007.items():
        keys[energy_di(kind)] = total
        for tariff in _TARIFF_RANGE:
            keys[energy_di(kind, tariff)] = stem if stem == ZERO else f"{stem}_t{tariff}"
    for n in range(1, 8):
        keys[0x04000500 | n] = f"status_word_{n}"
    return keys


def _map_1997() -> dict[int, str]:
    keys = {0x9010: "energy_import_total", 0x9020: "energy_export_total", 0xC020: ZERO}
    for tariff in _TARIFF_RANGE:
        keys[0x9010 + tariff] = f"energy_import_t{tariff}"
        keys[0x9020 + tariff] = f"_energy_export_t{tariff}"
    for family, stem in ((0xB61, "voltage"), (0xB62, "current")):
        for index, phase in enumerate(PHASES, start=1):
            keys[family << 4 | index] = f"{stem}_{phase}"
    for family, stem in (
        (0xB63, "power_active"),
        (0xB64, "power_reactive"),
        (0xB65, "power_factor"),
    ):
        keys[family << 4] = f"{stem}_total"
        for index, phase in enumerate(PHASES, start=1):
            keys[family << 4 | index] = f"{stem}_{phase}"
    return keys


_DEFAULTS = {
    ProfileProtocol.DLT645_2007: _map_2007(),
    ProfileProtocol.DLT645_1997: _map_1997(),
}


def di_keys(profile: Profile) -> dict[int, str]:
    """DI -> quantity key for a profile: the default map, overridden by the profile's items."""
    keys = dict(_DEFAULTS.get(profile.protocol, {}))
    keys.update({item.di: item.key for item in profile.items})
    return keys


def derived_values(values: Mapping[str, Value]) -> dict[str, Value]:
    """Compute the ``_`` keys of the default map from the canonical values."""

    def number(key: str) -> float:
        value = values.get(key, 0.0)
        return float(value) if isinstance(value, int | float) else 0.0

    imported = number("energy_import_total")
    derived: dict[str, Value] = {ZERO: 0.0, "_demand_reactive": number("power_reactive_total")}
    for tariff in _TARIFF_RANGE:
        share = number(f"energy_import_t{tariff}") / imported if imported else 0.0
        booked = 1.0 if tariff == _EXPORT_TARIFF else 0.0
        export = number("energy_export_total") * booked
        derived[f"_energy_export_t{tariff}"] = export
        derived[f"_energy_total_t{tariff}"] = number(f"energy_import_t{tariff}") + export
        derived[f"_reactive_import_t{tariff}"] = number("energy_reactive_import_total") * share
        derived[f"_reactive_export_t{tariff}"] = number("energy_reactive_export_total") * booked
    return derived
