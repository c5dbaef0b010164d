"""The one timer: warm-up calls are not timed, the summary is the median and quartiles of the repeats."""

import pytest

from hnerv_lib.utils.timing import MIN_REPEATS, Timing, time_call


def test_summary_of_known_durations():
    t = Timing.of([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (t.median_s, t.q1_s, t.q3_s, t.iqr_s) == (3.0, 2.0, 4.0, 2.0)
    assert t.rate(6) == 2.0 and t.rate_range(8) == (2.0, 4.0)  # slow end at q3, fast end at q1
    assert Timing.of([0.5]).iqr_s == 0.0 and t.to_dict()["repeats"] == 5
    with pytest.raises(ValueError, match="non-negative duration"):
        Timing.of([])


def test_time_call_counts_calls_syncs_before_each_clock_read_and_returns_the_last_result():
    calls, syncs = [], []
    timing, out = time_call(lambda: calls.append(len(calls)) or len(calls), repeats=4, warmup=2,
                            sync=lambda: syncs.append(len(calls)))
    assert len(calls) == 6 and out == 6  # 2 untimed + 4 timed calls
    assert syncs == [2, 3, 4, 5, 6]  # once after the warm-up, then after every timed call
    assert len(timing.runs_s) == 4 and timing.warmup == 2 and timing.q1_s <= timing.median_s <= timing.q3_s
    assert len(time_call(lambda: None)[0].runs_s) == MIN_REPEATS


@pytest.mark.parametrize("kwargs, message", [({"repeats": 0}, "repeats must be an int >= 1"),
                                             ({"repeats": 2.5}, "repeats must be an int >= 1"),
                                             ({"warmup": -1}, "warmup must be an int >= 0")])
def test_bad_repeats_or_warmup_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        time_call(lambda: None, **kwargs)
