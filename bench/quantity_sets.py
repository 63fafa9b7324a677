"""The SDM630 quantity sets P2 compares, and profiles that read exactly those.

``MBMD_37``: the 34 quantities of volkszaehler/mbmd's SDM630 opcode table
(``meters/rs485/sdm.go``, unchanged from 2019 to its 2025 releases) plus the three
per-phase current THDs that table lists as optional, 37 in all. ``BASIC``: phase
voltages and currents, total power, total power factor, frequency, import and export
energy.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from edge_agent.profiles import load_profile
from edge_agent.profiles.model import Profile

SDM630 = "eastron-sdm630"

MBMD_37: tuple[str, ...] = (
    *(f"voltage_{p}" for p in "abc"),
    *(f"current_{p}" for p in "abc"),
    *(f"power_active_{p}" for p in "abc"),
    "power_active_total",
    "power_apparent_total",
    "power_reactive_total",
    "demand_active",
    *(f"power_factor_{p}" for p in "abc"),
    "power_factor_total",
    "frequency",
    "energy_import_total",
    "energy_export_total",
    "energy_total",
    *(f"energy_{kind}_{p}" for kind in ("import", "export", "total") for p in "abc"),
    *(f"thd_voltage_{p}" for p in "abc"),
    "thd_voltage_average",
    *(f"thd_current_{p}" for p in "abc"),
)

BASIC: tuple[str, ...] = (
    *(f"voltage_{p}" for p in "abc"),
    *(f"current_{p}" for p in "abc"),
    "power_active_total",
    "power_factor_total",
    "frequency",
    "energy_import_total",
    "energy_export_total",
)

SETS: dict[str, tuple[str, ...]] = {"mbmd37": MBMD_37, "basic": BASIC}


def subset_profile(name: str, base: str = SDM630) -> Profile:
    """Return the base profile reduced to one quantity set, as ``bench-<base>-<name>``."""
    profile = load_profile(base)
    keys = set(SETS[name])
    registers = tuple(r for r in profile.registers if r.key in keys)
    missing = keys - {r.key for r in registers}
    if missing:
        raise ValueError(f"{base} has no register for {sorted(missing)}")
    return replace(profile, id=f"bench-{base}-{name}", registers=registers)


def profile_document(profile: Profile) -> dict[str, Any]:
    """Return a profile as the YAML document the profile loader reads."""
    assert profile.modbus is not None
    options = profile.modbus
    return {
        "id": profile.id,
        "manufacturer": profile.manufacturer,
        "model": profile.model,
        "protocol": str(profile.protocol),
        "source": profile.source,
        "phases": profile.phases,
        "nominal_voltage": profile.nominal_voltage,
        "modbus": {
            "max_registers": options.max_registers,
            "word_order": options.word_order,
            "register_bytes": options.register_bytes,
            "max_gap": options.max_gap,
        },
        "registers": [
            {
                "key": r.key,
                "address": r.address,
                "type": str(r.type),
                "scale": r.scale,
                "function": r.function,
            }
            for r in profile.registers
        ],
    }


def write_profile(directory: Path, profile: Profile) -> None:
    """Write a profile where ``GRID_METER_PROFILES`` can find it."""
    directory.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(profile_document(profile), sort_keys=False)
    (directory / f"{profile.id}.yaml").write_text(text)
