import pandas as pd
import pytest

from hnerv_lib.studies.comparison import table_verdict, time_to_psnr, unseen_verdict


def test_time_to_psnr_interpolates_between_evaluations():
    m = pd.DataFrame({"epoch": [1, 2, 3, 4], "seconds": [1.0, 2.0, 3.0, 4.0],
                      "psnr_train": [float("nan"), 20.0, float("nan"), 25.0]})  # evaluated at 3 s and 10 s
    assert time_to_psnr(m, 19.0) == 3.0  # met at the first evaluation: its time
    assert time_to_psnr(m, 24.0) == pytest.approx(3.0 + 4 / 5 * 7.0)  # 4/5 of the way from 20 to 25 dB
    assert time_to_psnr(m, 25.0) == 10.0
    assert time_to_psnr(m, 30.0) is None and time_to_psnr(m.drop(columns="psnr_train"), 1.0) is None


def test_verdict_names_the_winner_of_each_column():
    table = pd.DataFrame([
        {"setting": "equal parameters", "design": "full frame", "psnr_train": 30.0, "psnr_val": 28.0, "clip_val": 0.9,
         "s_per_epoch": 2.0, "bpp": 0.5},
        {"setting": "equal parameters", "design": "patch", "psnr_train": 31.0, "psnr_val": 20.0, "clip_val": 0.95,
         "s_per_epoch": 1.0, "bpp": 0.6},
    ])
    text = table_verdict(table)
    assert "unseen-frame CLIP n/a" in text  # no centred-cosine columns: no CLIP verdict
    clip = {"full frame": (0.10, 0.05, 0.15), "patch": (0.12, 0.07, 0.17)}  # overlapping intervals
    for design, (m, lo, hi) in clip.items():
        table.loc[table["design"] == design, ["clip_centred_val", "clip_centred_val_lo", "clip_centred_val_hi"]] = [m, lo, hi]
    assert ("unseen-frame CLIP no difference at this budget (centred cosine full frame 0.1 [0.05, 0.15] vs patch 0.12 "
            "[0.07, 0.17])") in table_verdict(table)
    table.loc[table["design"] == "patch", ["clip_centred_val", "clip_centred_val_lo", "clip_centred_val_hi"]] = [0.4, 0.3, 0.5]
    assert "unseen-frame CLIP favours patch (centred cosine full frame 0.1 [0.05, 0.15] vs patch 0.4 [0.3, 0.5])" in table_verdict(table)
    table["clip_blocks_val"] = 2.0  # 4 unseen frames in blocks of 2: no interval worth a verdict
    assert "unseen-frame CLIP no verdict: too few frames for an interval" in table_verdict(table)
    assert "seen-frame PSNR (dB, 95 % intervals, block bootstrap over frames): no verdict: no interval (full frame 30 vs " \
           "patch 31)" in text  # a single number per design: no winner is named
    assert "the smaller file is full frame (full frame 0.5 vs patch 0.6 bpp, exact sizes)" in text
    bounds = {"full frame": {"psnr_train": (29.0, 31.0), "psnr_val": (27.0, 29.0), "s_per_epoch": (1.9, 2.1)},
              "patch": {"psnr_train": (30.5, 31.5), "psnr_val": (19.0, 21.0), "s_per_epoch": (0.9, 1.1)}}
    for design, cols in bounds.items():
        for col, (lo, hi) in cols.items():
            table.loc[table["design"] == design, [f"{col}_lo", f"{col}_hi"]] = [lo, hi]
    text = table_verdict(table)
    assert "seen-frame PSNR (dB, 95 % intervals, block bootstrap over frames): no difference at this budget " \
           "(full frame 30 [29, 31] vs patch 31 [30.5, 31.5])" in text  # overlapping: no winner
    assert "unseen-frame PSNR, with HNeRV fed the unseen frame itself: favours full frame (full frame 28 [27, 29] vs " \
           "patch 20 [19, 21])" in text
    assert "training speed (s/epoch, each design's epochs timed alone: median [quartiles]): favours patch (full frame 2 [1.9, 2.1] vs patch 1 [0.9, 1.1])" in text


def fair_row(protocol: str, db: float, half: float, params: int = 1000) -> dict:
    from hnerv_lib.eval.unseen import TEST_TIME_INPUT

    return {"protocol": protocol, "test-time input": TEST_TIME_INPUT[protocol], "params": params,
            "psnr_val": db, "psnr_val_lo": db - half, "psnr_val_hi": db + half}


def test_unseen_verdict_names_a_winner_only_where_intervals_separate_and_labels_the_oracle():
    fair = pd.DataFrame([fair_row("HNeRV, oracle", 29.0, 0.5), fair_row("HNeRV, interpolated", 22.0, 0.5),
                         fair_row("NeRV", 21.0, 0.5, 1010), fair_row("patch", 21.2, 0.5, 990),
                         fair_row("nearest training frame", 20.0, 0.4), fair_row("neighbour blend", 21.8, 0.4)])
    text = unseen_verdict(fair)
    assert "HNeRV, interpolated (embeddings of the two neighbouring training frames, blended): PSNR above the nearest " \
           "training frame (22 vs 20 dB); PSNR no different from the neighbour blend (22 vs 21.8 dB)." in text
    assert "NeRV (frame index t only): PSNR above the nearest training frame (21 vs 20 dB)" in text
    assert "Coordinate-only at about equal parameters (1,010 vs 990), NeRV against the patch model: PSNR no " \
           "different from the patch (21 vs 21.2 dB)." in text
    assert "HNeRV fed the unseen frame itself reaches 29.00 dB" in text and "no held-out result" in text
    assert "17.72 dB" in text and "different video" in text
    table = pd.DataFrame([{"setting": "equal parameters", "design": d, "psnr_train": 30.0, "psnr_val": 28.0,
                           "s_per_epoch": 1.0, "bpp": 0.5} for d in ("full frame", "patch")])
    combined = table_verdict(table, fair)
    assert "unseen-frame PSNR, with HNeRV" not in combined and text in combined


def test_equal_time_gives_the_faster_design_the_slower_ones_seconds_averaged_over_seeds():
    from hnerv_lib.studies.comparison import equal_time_epochs

    rows = pd.DataFrame([
        {"design": "full frame", "seed": 0, "train_s": 60.0, "s_per_epoch": 1.0},
        {"design": "full frame", "seed": 1, "train_s": 64.0, "s_per_epoch": 1.05},
        {"design": "patch", "seed": 0, "train_s": 36.0, "s_per_epoch": 0.6},
        {"design": "patch", "seed": 1, "train_s": 38.0, "s_per_epoch": 0.64},
    ])
    fast, slow, epochs = equal_time_epochs(rows, {"full frame": 60, "patch": 60})
    assert (fast, slow, epochs) == ("patch", "full frame", round(62.0 / 0.62))
    assert equal_time_epochs(rows, {"full frame": 60, "patch": 500})[2] == 500  # never fewer epochs than planned


def test_seed_intervals_drive_the_comparison_verdict():
    """Two seeds each: the seed interval, not a bootstrap over frames, decides, and the verdict says which."""
    from hnerv_lib.studies.seeds import over_seeds

    rows = pd.DataFrame([{"setting": "equal parameters", "design": d, "seed": s, "psnr_train": v,
                          "psnr_train_lo": v - 0.01, "psnr_train_hi": v + 0.01, "s_per_epoch": 1.0 + s / 10}
                         for d, vals in [("full frame", (30.0, 31.0)), ("patch", (30.2, 30.9))]
                         for s, v in enumerate(vals)])
    text = table_verdict(over_seeds(rows, ["setting", "design"]))
    assert "seen-frame PSNR (dB, 95 % intervals, t over 2 seeds): no difference at this budget" in text
    one = table_verdict(over_seeds(rows[rows.seed == 0], ["setting", "design"]))  # frame intervals, which separate
    assert "block bootstrap over frames (1 seed)): favours patch" in one
