"""Three-phase voltage unbalance (GB/T 15543-2008) and current (load) unbalance.

The standard's voltage unbalance is ``ε = |U2| / |U1| x 100 %``, negative- over
positive-sequence component. It is exact from phasors, and exact from the three
line-to-line magnitudes alone (they carry no zero sequence). Phase-to-neutral
magnitudes alone cannot give it; :func:`voltage_unbalance_approx` is the labelled
stand-in for that case.
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Sequence

from .errors import IndicatorError

#: GB/T 15543-2008 limits at the point of common coupling, %.
VOLTAGE_UNBALANCE_LIMIT = 2.0
VOLTAGE_UNBALANCE_SHORT_TIME_LIMIT = 4.0
#: Usual limit for the current unbalance of a distribution transformer, %.
CURRENT_UNBALANCE_LIMIT = 15.0

_A = cmath.rect(1.0, 2.0 * math.pi / 3.0)  # the operator a = 1∠120°
#: Rounding slack for magnitudes that exactly close a degenerate (flat) triangle.
_SLACK = 1e-12


def _three(values: Sequence[float], what: str) -> tuple[float, float, float]:
    if len(values) != 3:
        raise IndicatorError(f"{what} need three phases, got {len(values)}")
    a, b, c = (float(v) for v in values)
    return a, b, c


def sequence_components(phasors: Sequence[complex]) -> tuple[complex, complex, complex]:
    """Zero-, positive- and negative-sequence components of three phasors (phase order A, B, C)."""
    if len(phasors) != 3:
        raise IndicatorError(f"sequence components need three phasors, got {len(phasors)}")
    va, vb, vc = phasors
    zero = (va + vb + vc) / 3.0
    positive = (va + _A * vb + _A * _A * vc) / 3.0
    negative = (va + _A * _A * vb + _A * vc) / 3.0
    return zero, positive, negative


def voltage_unbalance_from_phasors(
    magnitudes: Sequence[float], angles_deg: Sequence[float]
) -> float:
    """``|U2| / |U1|`` in % from magnitudes and angles (degrees, common reference).

    Phase or line phasors both work: the zero sequence does not enter. When the
    angles describe the reverse rotation (A-C-B) the larger component is taken as the
    positive sequence, so the result is the unbalance, not a rotation alarm.
    """
    mags = _three(magnitudes, "phasor magnitudes")
    angles = _three(angles_deg, "phasor angles")
    phasors = [cmath.rect(m, math.radians(a)) for m, a in zip(mags, angles, strict=True)]
    _, positive, negative = sequence_components(phasors)
    big, small = sorted((abs(positive), abs(negative)), reverse=True)
    if big <= 0.0:
        raise IndicatorError("phasors without positive- and negative-sequence component")
    return small / big * 100.0


def voltage_unbalance_from_lines(ab: float, bc: float, ca: float) -> float:
    """GB/T 15543-2008 formula from the three line-to-line magnitudes, in %.

    ``ε = sqrt((1 - sqrt(3 - 6L)) / (1 + sqrt(3 - 6L)))`` with
    ``L = (a⁴ + b⁴ + c⁴) / (a² + b² + c²)²``. Only valid for line-to-line voltages.
    """
    if min(ab, bc, ca) < 0.0:
        raise IndicatorError(f"line voltages {ab}, {bc}, {ca} must not be negative")
    squares = ab * ab + bc * bc + ca * ca
    if squares <= 0.0:
        raise IndicatorError("line voltages are all zero")
    # 3 - 6L = 1 - d with d = 6L - 2 = 2 Σ(a² - b²)² / (Σa²)², free of cancellation near
    # balance; then ε = sqrt((1 - r) / (1 + r)) = sqrt(d) / (1 + r) with r = sqrt(1 - d).
    a2, b2, c2 = ab * ab, bc * bc, ca * ca
    d = 2.0 * ((a2 - b2) ** 2 + (b2 - c2) ** 2 + (c2 - a2) ** 2) / (squares * squares)
    if d > 1.0 + _SLACK:
        raise IndicatorError(f"line voltages {ab}, {bc}, {ca} V do not close a triangle")
    root = math.sqrt(max(1.0 - d, 0.0))
    return math.sqrt(d) / (1.0 + root) * 100.0


def voltage_unbalance_approx(a: float, b: float, c: float) -> float:
    """Approximate unbalance from phase-to-neutral magnitudes only, in %.

    The IEEE "phase voltage unbalance rate" (PVUR): largest deviation from the mean
    over the mean. It is not the GB/T 15543 quantity (which needs the sequence
    components) and is reported under its own name.
    """
    return _max_deviation_ratio((a, b, c), "phase voltages")


def _max_deviation_ratio(values: tuple[float, float, float], what: str) -> float:
    mean = sum(values) / 3.0
    if mean <= 0.0:
        raise IndicatorError(f"{what} {values} have no positive mean")
    return max(abs(v - mean) for v in values) / mean * 100.0


def current_unbalance(ia: float, ib: float, ic: float) -> float:
    """``(Imax - Imin) / Imax`` in %, on magnitudes (a signed current counts by its size)."""
    currents = (abs(ia), abs(ib), abs(ic))
    top = max(currents)
    if top <= 0.0:
        raise IndicatorError("current unbalance of three zero currents")
    return (top - min(currents)) / top * 100.0


def neutral_current_ratio(i_n: float, ia: float, ib: float, ic: float) -> float:
    """``In / mean(Ia, Ib, Ic)`` in %."""
    mean = (abs(ia) + abs(ib) + abs(ic)) / 3.0
    if mean <= 0.0:
        raise IndicatorError("neutral current ratio with three zero phase currents")
    return abs(i_n) / mean * 100.0
