"""Printing figures and their context in the ``P<n>-<slug>: <value>`` form."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure, its goal and the context it was measured in."""

    name: str
    value: float | str
    #: e.g. ">= 0.90"; empty when the figure has no goal.
    goal: str = ""
    context: tuple[str, ...] = field(default=())

    def met(self) -> bool | None:
        """Whether the goal is met (None without a goal or a number)."""
        if not self.goal or not isinstance(self.value, float | int):
            return None
        op, _, bound = self.goal.partition(" ")
        limit = float(bound)
        return self.value >= limit if op == ">=" else self.value <= limit

    def lines(self) -> list[str]:
        """Return the figure line, then its context lines indented."""
        value = f"{self.value:.3g}" if isinstance(self.value, float) else str(self.value)
        if isinstance(self.value, float) and abs(self.value) >= 1000:
            value = f"{self.value:.0f}"
        verdict = {True: "met", False: "NOT met", None: ""}[self.met()]
        goal = f"  (goal {self.goal}: {verdict})" if self.goal else ""
        return [f"{self.name}: {value}{goal}", *(f"    {line}" for line in self.context)]


def emit(figure: Figure) -> None:
    """Print a figure at once, so a long run shows progress."""
    print("\n".join(figure.lines()), flush=True)


def note(text: str) -> None:
    """Print a context line that belongs to no single figure."""
    print(f"# {text}", flush=True)


_STARTED = time.monotonic()


def progress(text: str) -> None:
    """Progress on stderr (not part of the figures), with seconds since the start."""
    print(f"[bench {time.monotonic() - _STARTED:5.0f} s] {text}", file=sys.stderr, flush=True)
