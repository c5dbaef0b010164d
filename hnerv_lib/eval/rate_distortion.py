"""Rate–distortion summaries: bits per pixel, and the Bjøntegaard-delta rate between two RD curves.

``bpp = 8 * bytes / (frames * H * W)`` for networks and codecs alike.

**BD-rate** (Bjøntegaard, VCEG-M33, 2001): fit log(rate) as a polynomial in quality for each curve
(cubic with four or more points, of degree n - 1 below that), integrate both fits over the quality
interval the two curves share, and turn the mean log-rate difference into a percentage:
``100 * (exp(mean(log r_test - log r_anchor)) - 1)``. Negative means the test curve needs fewer bits
than the anchor for the same quality. Curves that do not overlap in quality have no BD-rate: that is
an error which states both ranges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


def bits_per_pixel(num_bytes: float, frames: int, height: int, width: int) -> float:
    """``8 * bytes / (frames * height * width)``."""
    if min(frames, height, width) < 1 or num_bytes < 0:
        raise ValueError(f"bits_per_pixel needs bytes >= 0 and positive frames/height/width; got bytes={num_bytes}, "
                         f"frames={frames}, height={height}, width={width}")
    return 8.0 * num_bytes / (frames * height * width)


@dataclass(frozen=True)
class Curve:
    """One RD curve: rates (bpp, > 0) and qualities (dB or SSIM), one point per operating point."""

    name: str
    rate: tuple[float, ...]
    quality: tuple[float, ...]

    def __post_init__(self) -> None:
        rate = tuple(float(r) for r in self.rate)
        quality = tuple(float(q) for q in self.quality)
        if len(rate) != len(quality) or len(rate) < 2:
            raise ValueError(f"curve {self.name!r} needs >= 2 (rate, quality) points of equal count; "
                             f"got {len(rate)} rates and {len(quality)} qualities")
        if not all(np.isfinite(rate + quality)) or min(rate) <= 0:
            raise ValueError(f"curve {self.name!r} needs finite qualities and rates > 0; got rate={rate}, quality={quality}")
        if len(set(quality)) != len(quality):
            raise ValueError(f"curve {self.name!r} repeats a quality value {quality}: log-rate is not a function of it")
        object.__setattr__(self, "rate", rate)
        object.__setattr__(self, "quality", quality)

    @property
    def quality_range(self) -> tuple[float, float]:
        return min(self.quality), max(self.quality)


def _log_rate_integral(curve: Curve, low: float, high: float) -> float:
    """Integral over [low, high] of the polynomial fit of log(rate) against quality."""
    q, lr = np.asarray(curve.quality), np.log(np.asarray(curve.rate))
    degree = min(3, len(q) - 1)
    centre = q.mean()  # centred quality keeps the cubic fit well conditioned
    poly = np.polyint(np.polyfit(q - centre, lr, degree))
    return float(np.polyval(poly, high - centre) - np.polyval(poly, low - centre))


def overlap(anchor: Curve, test: Curve) -> tuple[float, float]:
    """The quality interval both curves cover; a ValueError stating both ranges when it is empty."""
    low = max(anchor.quality_range[0], test.quality_range[0])
    high = min(anchor.quality_range[1], test.quality_range[1])
    if not high > low:
        a, t = anchor.quality_range, test.quality_range
        raise ValueError(f"no BD-rate: {test.name!r} spans quality {t[0]:.3f}-{t[1]:.3f} and {anchor.name!r} "
                         f"{a[0]:.3f}-{a[1]:.3f}; the curves do not overlap")
    return low, high


def bd_rate(anchor: Curve, test: Curve) -> float:
    """Bjøntegaard-delta rate of ``test`` against ``anchor``, in percent (negative: ``test`` saves bits)."""
    low, high = overlap(anchor, test)
    diff = (_log_rate_integral(test, low, high) - _log_rate_integral(anchor, low, high)) / (high - low)
    return float(100.0 * (np.exp(diff) - 1.0))


def bd_table(anchor: Curve, tests: Sequence[Curve]) -> list[dict]:
    """One row per test curve: its BD-rate against ``anchor`` and the quality overlap it was computed on
    (or the reason there is none)."""
    rows = []
    for test in tests:
        try:
            low, high = overlap(anchor, test)
            rows.append({"curve": test.name, "anchor": anchor.name, "bd_rate_pct": bd_rate(anchor, test),
                         "overlap": f"{low:.2f}-{high:.2f}", "note": ""})
        except ValueError as err:
            rows.append({"curve": test.name, "anchor": anchor.name, "bd_rate_pct": float("nan"), "overlap": "",
                         "note": str(err)})
    return rows
