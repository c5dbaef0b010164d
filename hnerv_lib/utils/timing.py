"""The one timer behind every speed the report gives: warm-up calls, then repeats, median and quartiles.

Other processes only ever add time, so a single run says little; the median of several repeats with
its interquartile range says how steady the number is. GPU work is synchronised before each clock read.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

MIN_REPEATS = 5  # the fewest repeats a reported speed rests on


@dataclass(frozen=True)
class Timing:
    """Wall seconds of repeated calls: median, first and third quartile, and every repeat."""

    median_s: float
    q1_s: float
    q3_s: float
    runs_s: tuple[float, ...]
    warmup: int = 0

    @classmethod
    def of(cls, runs_s: Sequence[float], warmup: int = 0) -> "Timing":
        """The summary of seconds measured elsewhere (e.g. round-robin over settings)."""
        runs = tuple(float(r) for r in runs_s)
        if not runs or min(runs) < 0:
            raise ValueError(f"a timing needs >= 1 non-negative duration; got {list(runs)}")
        if len(runs) == 1:
            return cls(runs[0], runs[0], runs[0], runs, warmup)
        q1, _, q3 = statistics.quantiles(runs, n=4, method="inclusive")
        return cls(statistics.median(runs), q1, q3, runs, warmup)

    @property
    def iqr_s(self) -> float:
        """Interquartile range in seconds."""
        return self.q3_s - self.q1_s

    def rate(self, count: float) -> float:
        """``count`` items per second at the median."""
        return count / self.median_s if self.median_s > 0 else float("inf")

    def rate_range(self, count: float) -> tuple[float, float]:
        """Items per second at the third and first quartile (slow end, fast end)."""
        return (count / self.q3_s if self.q3_s > 0 else float("inf"), count / self.q1_s if self.q1_s > 0 else float("inf"))

    def to_dict(self) -> dict[str, Any]:
        """JSON form: median, quartiles, IQR, repeats, warm-up calls and every repeat."""
        return {"median_s": self.median_s, "q1_s": self.q1_s, "q3_s": self.q3_s, "iqr_s": self.iqr_s,
                "repeats": len(self.runs_s), "warmup": self.warmup, "runs_s": list(self.runs_s)}


def check_counts(repeats: object, warmup: object) -> None:
    """One clear error unless ``repeats`` is an int >= 1 and ``warmup`` an int >= 0."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an int >= 1; got {repeats!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0; got {warmup!r}")


def time_call(fn: Callable[[], Any], repeats: int = MIN_REPEATS, warmup: int = 1,
              sync: Optional[Callable[[], None]] = None) -> tuple[Timing, Any]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed; the timing and the last result.

    ``sync`` (e.g. ``torch.cuda.synchronize``) runs before each clock read, so queued GPU work counts.
    """
    check_counts(repeats, warmup)
    wait = sync or (lambda: None)
    out = None
    for _ in range(warmup):  # first calls pay for allocation and kernel selection
        out = fn()
    wait()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        wait()
        runs.append(time.perf_counter() - start)
    return Timing.of(runs, warmup), out
