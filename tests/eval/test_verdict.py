"""The one verdict rule: a winner only where intervals separate, "no difference" where they overlap,
no verdict without intervals."""

import math

from hnerv_lib.eval.verdict import NO_DIFFERENCE, Estimate, judge, separated, words


def test_judge_on_separated_overlapping_and_missing_intervals():
    hi, lo, near = Estimate(0.5, 0.4, 0.6), Estimate(0.1, 0.0, 0.2), Estimate(0.45, 0.3, 0.55)
    assert judge(hi, lo) == 1 and judge(lo, hi) == -1
    assert judge(hi, lo, higher_is_better=False) == -1  # e.g. seconds per epoch: lower wins
    assert judge(hi, near) == 0 and judge(hi, Estimate(0.1)) is None and judge(Estimate(math.nan, 0, 1), hi) is None
    assert separated((0, 1), (2, 3)) and not separated((0, 2), (1, 3))


def test_words_say_the_winner_only_when_the_intervals_separate():
    a, b = Estimate(29.4, 26.5, 32.3), Estimate(23.2, 21.7, 24.6)
    assert words("HNeRV", a, "patch", b, what="PSNR", unit=" dB") == \
        "favours HNeRV (PSNR HNeRV 29.4 dB [26.5, 32.3] vs patch 23.2 dB [21.7, 24.6])"
    assert words("HNeRV", a, "copy", Estimate(30.4, 27.0, 33.6)).startswith(NO_DIFFERENCE)
    assert words("a", Estimate(1.0), "b", Estimate(2.0)) == "no verdict: no interval (a 1 vs b 2)"


def test_half_width_estimates_follow_a_t_interval():
    e = Estimate.half_width(0.43, 0.13)
    assert (e.low, e.high) == (0.43 - 0.13, 0.43 + 0.13) and e.has_interval
    assert not Estimate.half_width(0.43, None).has_interval and not Estimate.half_width(0.43, math.nan).has_interval
