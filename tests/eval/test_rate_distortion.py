import math

import pytest

from hnerv_lib.eval.rate_distortion import Curve, bd_rate, bd_table, bits_per_pixel

ANCHOR = Curve("x265", (0.05, 0.1, 0.2, 0.4, 0.8), (24.0, 27.5, 30.0, 33.2, 36.1))


def test_bits_per_pixel():
    assert bits_per_pixel(1000, 10, 20, 40) == 1.0
    with pytest.raises(ValueError, match="positive frames"):
        bits_per_pixel(1000, 0, 20, 40)


def test_identical_curves_have_zero_bd_rate():
    assert bd_rate(ANCHOR, Curve("same", ANCHOR.rate, ANCHOR.quality)) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("factor", [0.5, 0.8, 1.25, 3.0])
def test_a_curve_needing_factor_times_the_rate_has_bd_rate_factor_minus_one(factor):
    shifted = Curve("shifted", tuple(r * factor for r in ANCHOR.rate), ANCHOR.quality)
    assert bd_rate(ANCHOR, shifted) == pytest.approx(100 * (factor - 1), abs=1e-6)
    assert bd_rate(shifted, ANCHOR) == pytest.approx(100 * (1 / factor - 1), abs=1e-6)


def test_better_quality_at_equal_rate_is_a_negative_bd_rate():
    better = Curve("better", ANCHOR.rate, tuple(q + 1.0 for q in ANCHOR.quality))
    assert bd_rate(ANCHOR, better) < 0


def test_two_point_curves_are_fitted_linearly():
    a = Curve("a", (0.1, 0.4), (25.0, 31.0))
    b = Curve("b", (0.2, 0.8), (25.0, 31.0))
    assert bd_rate(a, b) == pytest.approx(100.0, abs=1e-9)


def test_curves_that_do_not_overlap_are_a_clear_error():
    low = Curve("tiny net", (0.01, 0.02, 0.03), (15.0, 16.0, 17.5))
    with pytest.raises(ValueError, match=r"no BD-rate: 'tiny net' spans quality 15.000-17.500 and 'x265' 24.000-36.100"):
        bd_rate(ANCHOR, low)
    rows = bd_table(ANCHOR, [low, Curve("same", ANCHOR.rate, ANCHOR.quality)])
    assert math.isnan(rows[0]["bd_rate_pct"]) and "do not overlap" in rows[0]["note"]
    assert rows[1]["bd_rate_pct"] == pytest.approx(0.0, abs=1e-9) and rows[1]["overlap"] == "24.00-36.10"


@pytest.mark.parametrize("rate, quality, message", [
    ((0.1,), (30.0,), ">= 2"), ((0.1, 0.0), (30.0, 31.0), "rates > 0"), ((0.1, 0.2), (30.0, 30.0), "repeats"),
    ((0.1, 0.2), (30.0, float("nan")), "finite")])
def test_bad_curves_are_named(rate, quality, message):
    with pytest.raises(ValueError, match=message):
        Curve("c", rate, quality)
