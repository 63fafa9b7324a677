"""Errors of the indicator computations."""

from __future__ import annotations

from ..errors import EdgeAgentError


class IndicatorError(EdgeAgentError):
    """Inputs that cannot give the indicator (impossible magnitudes, zero reference)."""


class StateError(IndicatorError):
    """A stored accumulator or evaluator state cannot be restored."""
