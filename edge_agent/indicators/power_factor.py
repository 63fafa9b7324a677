"""Power factor against its target and the capacitor bank that would correct it.

Targets of the Chinese power factor adjustment tariff (功率因数调整电费办法, 1983):
0.90 for high-voltage industrial users of 160 kVA and above, 0.85 for other users of
100 kVA and above, 0.80 for agricultural and wholesale users.
"""

from __future__ import annotations

import math

from ..errors import ConfigError
from .errors import IndicatorError

PF_TARGET_HIGH_VOLTAGE_INDUSTRIAL = 0.90
PF_TARGET_GENERAL = 0.85
PF_TARGET_AGRICULTURAL = 0.80
#: Default target.
PF_TARGET = PF_TARGET_HIGH_VOLTAGE_INDUSTRIAL
#: Default step of capacitor banks, kvar.
CAPACITOR_STEP = 5.0


def power_factor(p_kw: float, q_kvar: float) -> float:
    """``|P| / sqrt(P² + Q²)``; the sign of Q (lagging or leading) is not kept."""
    s = math.hypot(p_kw, q_kvar)
    if s <= 0.0:
        raise IndicatorError("power factor of zero apparent power")
    return abs(p_kw) / s


def tan_phi(pf: float) -> float:
    """``tan φ = sqrt(1 - pf²) / pf`` for a power factor in (0, 1]."""
    pf = abs(pf)
    if not 0.0 < pf <= 1.0:
        raise IndicatorError(f"power factor {pf} is not in (0, 1]")
    return math.sqrt(1.0 - pf * pf) / pf


def capacitor_kvar(p_kw: float, pf_now: float, pf_target: float = PF_TARGET) -> float:
    """Reactive compensation ``Qc = P (tan φ1 - tan φ2)`` in kvar; 0 when the target is met."""
    if not 0.0 < pf_target <= 1.0:
        raise ConfigError(f"power factor target {pf_target} is not in (0, 1]")
    if p_kw < 0.0:
        raise IndicatorError(f"capacitor sizing needs imported power, got {p_kw} kW")
    if abs(pf_now) >= pf_target:
        return 0.0
    return p_kw * (tan_phi(pf_now) - tan_phi(pf_target))


def round_up_kvar(kvar: float, step: float = CAPACITOR_STEP) -> float:
    """Round a compensation up to whole bank steps (42.1 kvar in 5 kvar steps -> 45)."""
    if not (math.isfinite(step) and step > 0.0):
        raise ConfigError(f"capacitor step {step} kvar must be positive")
    if kvar <= 0.0:
        return 0.0
    return math.ceil(kvar / step - 1e-9) * step
