import pandas as pd

from hnerv_lib.studies.comparison import time_to_psnr, verdict


def test_time_to_psnr_counts_training_seconds_until_the_first_hit():
    m = pd.DataFrame({"epoch": [1, 2, 3, 4], "seconds": [1.0, 2.0, 3.0, 4.0],
                      "psnr_train": [float("nan"), 20.0, float("nan"), 25.0]})
    assert time_to_psnr(m, 19.0) == 3.0 and time_to_psnr(m, 24.0) == 10.0
    assert time_to_psnr(m, 30.0) is None and time_to_psnr(m.drop(columns="psnr_train"), 1.0) is None


def test_verdict_names_the_winner_of_each_column():
    table = pd.DataFrame([
        {"setting": "equal parameters", "design": "full frame", "psnr_train": 30.0, "psnr_val": 28.0, "clip_val": 0.9,
         "s_per_epoch": 2.0, "bpp": 0.5},
        {"setting": "equal parameters", "design": "patch", "psnr_train": 31.0, "psnr_val": 20.0, "clip_val": 0.95,
         "s_per_epoch": 1.0, "bpp": 0.6},
    ])
    text = verdict(table)
    assert "seen-frame PSNR favours patch (full frame 30 vs patch 31)" in text
    assert "unseen-frame PSNR favours full frame (full frame 28 vs patch 20)" in text
    assert "training speed favours patch" in text and "the smaller file is full frame" in text
