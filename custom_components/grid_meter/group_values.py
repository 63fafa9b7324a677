"""What a group of meters (a transformer, a feeder) reads as a whole (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from edge_agent.indicators import apparent_power
from edge_agent.model import Value
from edge_agent.quantities import LINES, PHASES

#: Quantities that add up over the members: powers and phase currents.
_SUMMED = (
    "power_active_total",
    "power_reactive_total",
    *(f"power_active_{p}" for p in PHASES),
    *(f"current_{p}" for p in PHASES),
    "current_n",
)
#: Quantities the members share (one busbar): their mean is the group's.
_SHARED = (*(f"voltage_{p}" for p in (*PHASES, *LINES)), "frequency")


def _number(value: Value | None) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def group_values(members: Sequence[Mapping[str, Value]]) -> dict[str, float]:
    """Combine the readings of every member of a group.

    Powers and phase currents are summed (a key only when every member has it: a partial sum
    would understate the load); voltages and frequency are averaged over the members that
    read them. The apparent power is ``sqrt(P² + Q²)`` of the sums, else the sum of the
    members' apparent powers; the power factor is ``P / S``. Phase currents are added as
    magnitudes, which is exact for loads of similar power factor.
    """
    out: dict[str, float] = {}
    if not members:
        return out
    for key in _SUMMED:
        numbers = [_number(m.get(key)) for m in members]
        if all(n is not None for n in numbers):
            out[key] = sum(n for n in numbers if n is not None)
    for key in _SHARED:
        shared = [n for m in members if (n := _number(m.get(key))) is not None]
        if shared:
            out[key] = sum(shared) / len(shared)
    p, q = out.get("power_active_total"), out.get("power_reactive_total")
    if p is not None and q is not None:
        s: float | None = math.hypot(p, q)
    else:
        parts = [apparent_power(m) for m in members]
        s = sum(x for x in parts if x is not None) if all(x is not None for x in parts) else None
    if s is not None:
        out["power_apparent_total"] = s
        if p is not None and s > 0:
            out["power_factor_total"] = max(-1.0, min(1.0, p / s))
    return out
