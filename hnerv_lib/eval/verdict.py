"""The one rule behind every generated verdict: a winner is named only where the intervals separate.

An :class:`Estimate` is a value with its interval (block bootstrap over frames, t over seeds: the caller
says which in its caption). :func:`judge` compares two; :func:`words` says it in the report's phrases:
"favours A (...)", "no difference at this budget (...)", or "no verdict: no interval (...)" when either
side has no interval to judge by.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Optional, Sequence

NO_DIFFERENCE = "no difference at this budget"


@dataclass(frozen=True)
class Estimate:
    """A value and its interval (low, high); None bounds mean no interval."""

    value: float
    low: Optional[float] = None
    high: Optional[float] = None

    @classmethod
    def half_width(cls, value: float, half: Optional[float]) -> "Estimate":
        """value ± half (e.g. a Student-t half-width over seeds); None or NaN half: no interval."""
        if half is None or math.isnan(half):
            return cls(value)
        return cls(value, value - half, value + half)

    @property
    def has_interval(self) -> bool:
        """Whether both bounds are finite numbers."""
        return all(b is not None and math.isfinite(b) for b in (self.low, self.high))

    def text(self, digits: int = 3, unit: str = "") -> str:
        """``0.37 [0.28, 0.45]`` (or ``0.37`` without an interval), at ``digits`` significant digits."""
        body = f"{self.value:.{digits}g}{unit}"
        return body + (f" [{self.low:.{digits}g}, {self.high:.{digits}g}]" if self.has_interval else "")


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """(mean, half-width) of Student's t confidence interval; half-width is NaN for one value."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("t_interval needs at least one value")
    mean = statistics.fmean(vals)
    if len(vals) < 2:
        return mean, math.nan
    from scipy.stats import (
        t as student_t,  # scipy comes with scikit-video, a declared dependency
    )

    return mean, float(student_t.ppf(0.5 + level / 2, len(vals) - 1) * statistics.stdev(vals) / math.sqrt(len(vals)))


def over_runs(values: Sequence[float], level: float = 0.95) -> "Estimate":
    """Mean of independent runs (seeds) with its Student-t interval; one value gives no interval."""
    return Estimate.half_width(*t_interval(values, level))


def separated(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two intervals (low, high) do not overlap."""
    return a[1] < b[0] or b[1] < a[0]


def judge(a: Estimate, b: Estimate, higher_is_better: bool = True) -> Optional[int]:
    """+1 when ``a`` is better and the intervals separate, -1 when ``b`` is, 0 when they overlap, None
    when either has no interval (or a value is NaN)."""
    if math.isnan(a.value) or math.isnan(b.value) or not (a.has_interval and b.has_interval):
        return None
    if not separated((a.low, a.high), (b.low, b.high)):
        return 0
    return 1 if (a.value > b.value) == higher_is_better else -1


def words(name_a: str, a: Estimate, name_b: str, b: Estimate, higher_is_better: bool = True,
          what: str = "", digits: int = 3, unit: str = "") -> str:
    """"favours A (what A a vs B b)", "no difference at this budget (...)" or "no verdict: no interval (...)"."""
    values = f"({what + ' ' if what else ''}{name_a} {a.text(digits, unit)} vs {name_b} {b.text(digits, unit)})"
    outcome = judge(a, b, higher_is_better)
    if outcome is None:
        return f"no verdict: no interval {values}"
    if outcome == 0:
        return f"{NO_DIFFERENCE} {values}"
    return f"favours {name_a if outcome > 0 else name_b} {values}"
