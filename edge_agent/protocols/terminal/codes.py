"""Quantity codes of the binary terminal encoding: one byte per canonical quantity key.

A binary value is a signed 32-bit integer ``raw``; the quantity is ``raw × 10**exponent``
in the key's canonical unit. Integers with a fixed decimal exponent are what DL/T 645
meters already deliver (BCD with fixed decimals) and need no floating point on a
Cortex-M0/M3 without FPU; float32 would also lose energy resolution above 167 772.16 kWh.
Codes are stable: never renumber, only append.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QuantityCode:
    """One row of the code table."""

    code: int
    key: str
    #: Decimal exponent: the quantity is ``raw × 10**exponent``.
    exponent: int

    @property
    def divisor(self) -> int:
        """``10**-exponent``: raw units per canonical unit."""
        return int(10**-self.exponent)

    def to_raw(self, value: float) -> int:
        """Scale a value in the canonical unit to the integer that goes on the wire."""
        return round(value * self.divisor)

    def from_raw(self, raw: int) -> float | int:
        """Scale a wire integer back to the canonical unit (an int when the exponent is 0)."""
        if self.exponent == 0:
            return raw
        return raw / self.divisor


def _block(start: int, exponent: int, *keys: str) -> list[QuantityCode]:
    return [QuantityCode(start + i, key, exponent) for i, key in enumerate(keys)]


_TABLE: list[QuantityCode] = [
    *_block(
        0x01, -2, "voltage_a", "voltage_b", "voltage_c", "voltage_ab", "voltage_bc", "voltage_ca"
    ),
    *_block(0x08, -3, "current_a", "current_b", "current_c", "current_n"),
    *_block(0x10, -4, "power_active_total", "power_active_a", "power_active_b", "power_active_c"),
    *_block(
        0x14, -4, "power_reactive_total", "power_reactive_a", "power_reactive_b", "power_reactive_c"
    ),
    *_block(
        0x18, -4, "power_apparent_total", "power_apparent_a", "power_apparent_b", "power_apparent_c"
    ),
    *_block(0x1C, -3, "power_factor_total", "power_factor_a", "power_factor_b", "power_factor_c"),
    *_block(0x20, -2, "frequency"),
    *_block(0x21, -4, "demand_active", "demand_active_max"),
    *_block(0x28, -1, "angle_voltage_a", "angle_voltage_b", "angle_voltage_c"),
    *_block(0x2B, -1, "angle_current_a", "angle_current_b", "angle_current_c"),
    *_block(0x30, -2, "energy_import_total", "energy_export_total", "energy_total"),
    *_block(0x33, -2, "energy_import_a", "energy_import_b", "energy_import_c"),
    *_block(0x36, -2, "energy_export_a", "energy_export_b", "energy_export_c"),
    *_block(0x39, -2, "energy_total_a", "energy_total_b", "energy_total_c"),
    *_block(
        0x3C, -2, "energy_import_t1", "energy_import_t2", "energy_import_t3", "energy_import_t4"
    ),
    *_block(0x40, -2, "energy_reactive_import_total", "energy_reactive_export_total"),
    *_block(0x48, -2, "thd_voltage_a", "thd_voltage_b", "thd_voltage_c"),
    *_block(0x4B, -2, "thd_current_a", "thd_current_b", "thd_current_c"),
    *_block(0x4E, -2, "thd_voltage_average", "thd_current_average"),
    *_block(0x50, -1, "temperature"),
    *_block(0x51, 0, "relay_state"),
    *_block(0x58, 0, *(f"status_word_{n}" for n in range(1, 8))),
]

#: Code table by code byte.
BY_CODE: dict[int, QuantityCode] = {row.code: row for row in _TABLE}
#: Code table by canonical quantity key.
BY_KEY: dict[str, QuantityCode] = {row.key: row for row in _TABLE}
