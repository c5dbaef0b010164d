import pytest

from hnerv_lib.data.split import Split


@pytest.mark.parametrize(
    "text, n, counts",
    [
        ("9_10_10", 132, {"train": 119, "val": 0, "unused": 13}),  # the seeds' "90/10": no val frame
        ("4_5_5", 132, {"train": 106, "val": 0, "unused": 26}),  # the seeds' "80/20": no val frame
        ("6_6_10", 132, {"train": 80, "val": 52, "unused": 0}),  # 60/40
        ("1_1_1", 132, {"train": 132, "val": 0, "unused": 0}),
        ("8_9_10", 20, {"train": 16, "val": 2, "unused": 2}),
    ],
)
def test_split_counts(text, n, counts):
    idx = Split.parse(text).indices(n)
    assert idx.counts() == counts
    assert sorted(idx.train + idx.val + idx.unused) == list(range(n))
    assert idx.has_val == (counts["val"] > 0)


def test_split_roles_follow_the_rule():
    s = Split(train=6, gap=6, period=10)
    assert [s.role(i) for i in range(12)] == ["train"] * 6 + ["val"] * 4 + ["train"] * 2
    assert Split.parse("6_6_10") == s and s.legacy() == "6_6_10"


def test_no_val_split_says_so():
    text = Split.parse("9_10_10").indices(132).describe()
    assert "0 val" in text and "no validation frames" in text


@pytest.mark.parametrize("bad", ["9-10-10", "9_10", "a_b_c", "10_9_10", "0_1_1", "3_12_10"])
def test_bad_split_strings(bad):
    with pytest.raises(ValueError, match="split"):
        Split.parse(bad)
