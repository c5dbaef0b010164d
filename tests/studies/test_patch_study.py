"""Notebook 02's study on constructed results: the summary row, the verdict, the outputs."""

import matplotlib
import pandas as pd
import pytest
import torch

from hnerv_lib.studies import patch as study
from hnerv_lib.studies.outputs import Figure, Table, Text, by_name
from hnerv_lib.studies.training import Trained
from hnerv_lib.train.config import TrainConfig
from hnerv_lib.train.speed import EpochSpeed
from hnerv_lib.utils.timing import Timing

matplotlib.use("Agg")


def test_spread_takes_half_unseen_frames_when_there_are_enough():
    assert study.spread(list(range(10)), [20, 21, 22], 4) == [0, 9, 20, 22]
    assert study.spread(list(range(10)), [], 3) == [0, 4, 9]  # no unseen frames: all from training
    assert study.pick([], 3) == [] and study.pick([5, 6], 0) == []


def _results(has_clip=False, gain=-2.0, seam=3.0):
    summaries = [{"video": "v", "teacher": "t", "split": "6_6_10", "params": 1234, "seconds_per_epoch": 2.0 + i,
                  "psnr_train": 25.0 + i, "psnr_val": 20.0 + i} for i in range(2)]
    metrics = pd.DataFrame({"epoch": [1, 2], "pixel_loss": [0.2, 0.1], "clip_loss": [float("nan")] * 2,
                            "clip_active": [False, False], "psnr_train": [20.0, 25.0]})
    speed = EpochSpeed(clip=Timing.of([2.0, 2.5, 1.5, 2.0, 2.0]), pixel=Timing.of([1.0] * 5), threads=2,
                       precision="fp32", channels_last=False)  # timed alone: the runs' own seconds are not read
    trained = Trained(TrainConfig(epochs=2, model="patch-quick", loss="L2"), summaries, metrics, "runs/p", speed)
    quality = pd.DataFrame([{"frames": r, "count": n, "PSNR stitched frame": v, "SSIM": 0.9, "MS-SSIM": 0.9,
                             "mean per-patch PSNR (fork's number)": v + 1.5, "CLIP sim": float("nan"),
                             "test-time input": "x"} for r, n, v in (("train", 6, 25.0), ("val", 4, 20.0))])
    per_patch = pd.DataFrame([{"frame": f, "patch": p, "row": p // 2, "col": p % 2, "split": "train" if f < 6 else "val",
                               "psnr": 25.0, "clip_sim": float("nan")} for f in range(10) for p in range(4)])
    queries = pd.DataFrame([{"split": "train", "test-time input": "seen", "offset": o, "psnr": v, "clip_sim": float("nan")}
                            for o, v in ((0.0, 25.0), (0.5, 14.0), (1.0, 24.5))])
    overlap = pd.DataFrame({"decoding": ["grid", "overlap"], "psnr_gain_db": [0.0, gain], "frames_per_s": [100.0, 40.0]})
    img = torch.rand(1, 3, 8, 16)
    return study.PatchResults(
        trained=trained, patch_hw=(4, 8), patches_per_frame=4, quality=quality, per_patch=per_patch, verification=None,
        shown=[0, 7], shown_roles=["train", "val"], truth=torch.rand(2, 3, 8, 16), decoded=torch.rand(2, 3, 8, 16),
        band=torch.zeros(8, 16, dtype=torch.bool), seams=pd.DataFrame([{"frames": "train", "ratio": seam}]),
        error_maps={"train": torch.rand(8, 16)}, queries=queries, query_frames=2, overlap=overlap,
        overlap_example={"frame": 0, "windows": 9, "plain": img, "blended": img, "truth": img},
        speed={"patches_per_s": 400.0, "frames_per_s": 100.0, "ms_per_frame": 10.0, "device": "cpu", "threads": 2},
        seam_k=2, speed_repeats=3, has_clip=has_clip)


def test_summary_row_reads_seeds_seams_queries_and_overlap():
    row = study.table(_results()).iloc[0]
    assert row["seeds"] == 2 and row["PSNR train (stitched)"].startswith("25.5 [")
    assert row["per-patch PSNR train"] == 26.5 and row["seam ratio train"] == 3.0
    assert row["query PSNR train: first offset / worst"] == "25.00 at 0 / 14.00 at 0.5"
    assert row["overlap PSNR gain (dB)"] == -2.0
    assert row["s/epoch (timed alone)"] == "2.00 [2.00, 2.00] (5 epochs, 2 threads)"


def test_verdict_says_what_the_grid_hides():
    text = study.verdict(_results())
    assert "The fork's mean of per-patch PSNRs reads +1.50 dB against the stitched frame" in text
    assert "err 3.00x the interior's MSE (visible seams)." in text
    assert "a query 0.5 of a patch away decodes at 14.00 dB against 25.00 dB on the grid centres" in text
    assert "changes PSNR by -2.00 dB against plain stitching" in text and text.endswith("No CLIP head was trained.")
    assert "(visible seams)" not in study.verdict(_results(seam=1.0))


def test_outputs_and_speed_table():
    named = by_name(study.outputs(_results()))
    speed = named["02_speed"][0].frame.set_index("quantity")["value"]
    assert speed["training: patches/s"] == pytest.approx(6 * 4 / 2.0)  # train frames x patches / s per epoch timed alone
    assert speed["training: s per epoch (timed alone: median [quartiles])"].startswith("2.00 [2.00, 2.00] (5 epochs")
    assert speed["overlapped decode: frames/s"] == 40.0
    assert [type(o) for o in named["02_clip_metrics"]] == [Text]  # no CLIP head: one line, no table
    assert {type(o) for o in named["02_continuous_queries"]} == {Table, Figure}
    for name in ("02_reconstructions", "02_error_maps", "02_patch_heatmap", "02_overlap", "02_curves"):
        fig = next(o for o in named[name] if isinstance(o, Figure)).draw()
        assert fig.axes, name


def test_maps_share_one_scale_with_colourbars_and_legends_sit_outside(figure_check):
    R = _results()
    R.error_maps["val"] = R.error_maps["train"] * 4  # unseen frames err more: the shared scale must follow them
    named = by_name(study.outputs(R))
    draw = lambda name: next(o for o in named[name] if isinstance(o, Figure)).draw()  # noqa: E731
    assert figure_check.one_scale_with_colourbars(draw("02_error_maps"), 2)[1] == pytest.approx(
        float(R.error_maps["val"].sqrt().max()), abs=1e-6)
    figure_check.one_scale_with_colourbars(draw("02_reconstructions"), 2)
    figure_check.one_scale_with_colourbars(draw("02_overlap"), 2)
    figure_check.one_scale_with_colourbars(draw("02_patch_heatmap"), 1)
    for name in ("02_continuous_queries", "02_curves"):
        fig = draw(name)
        figure_check.legends_outside(fig)
        figure_check.units_on_y(fig)


def _with_twin(R):
    queries = pd.DataFrame([{"split": s, "test-time input": "x", "offset": o, "psnr": v + (0 if s == "train" else -3),
                             "clip_sim": float("nan")} for s in ("train", "val") for o, v in ((0.0, 22.0), (0.5, 20.5), (1.0, 22.5))])
    overlap = pd.DataFrame({"decoding": ["grid", "overlap"], "psnr_gain_db": [0.0, 0.4], "seam_ratio": [1.8, 1.1],
                            "frames_per_s": [100.0, 40.0]})
    R.overlap["seam_ratio"] = [3.0, 3.5]
    R.twin = study.Twin(label="trained on the grid alone, t encoding at 16 levels, x/y at 80, decoding a 2x canvas around each cell", summary={"params": 1100, "psnr_train": 22.0, "psnr_val": 21.0},
                        queries=queries, seams=pd.DataFrame([{"frames": "train", "ratio": 1.5}]),
                        error_maps={"train": torch.rand(8, 16) * 9}, overlap=overlap,
                        slide={"frame": 0, "lefts": [0, 4, 8], "truth": torch.rand(3, 3, 4, 8), "grid": torch.rand(3, 3, 4, 8),
                               "twin": torch.rand(3, 3, 4, 8)})
    return R


def test_the_twin_is_compared_row_by_row_and_in_the_verdict():
    R = _with_twin(_results())
    rows = by_name(study.outputs(R))["02_continuity"]
    table = next(o for o in rows if isinstance(o, Table)).frame.set_index("model")
    assert list(table.index) == ["grid-trained (the profile's)", "twin: trained on the grid alone, t encoding at 16 levels, x/y at 80, decoding a 2x canvas around each cell"]
    twin = table.iloc[1]
    assert (twin["query PSNR train @0.5"], twin["query PSNR val @0.5"], twin["seam ratio train"]) == (20.5, 17.5, 1.5)
    assert table.iloc[0]["query PSNR train @0.5"] == 14.0 and table.iloc[0]["PSNR val (grid)"] == 20.0
    text = study.verdict(R)
    assert ("twin (trained on the grid alone, t encoding at 16 levels, x/y at 80, decoding a 2x canvas around each cell; 1,100 parameters against "
            "1,234, seed 0, same epochs) decodes between the grid centres at 20.50 dB (worst offset, seen frames) against 14.00 dB, and on them at 22.00 dB against 25.00 dB") in text
    assert "reach 21.00 dB against 20.00 dB, and overlapped decoding changes its PSNR by +0.40 dB." in text
    assert [type(o) for o in by_name(study.outputs(_results()))["02_continuity"]] == [Text]  # no twin: one line


def test_twin_figures_share_one_scale_and_keep_legends_outside(figure_check):
    named = by_name(study.outputs(_with_twin(_results())))
    fig = next(o for o in named["02_continuity"] if isinstance(o, Figure)).draw()
    vmin, vmax = figure_check.one_scale_with_colourbars(fig, expect_maps=2)
    assert vmax >= 3.0 * 0.99  # the twin's larger error sets the shared scale (sqrt of up to 9)
    figure_check.legends_outside(fig)
    figure_check.units_on_y(fig)
    slide = next(o for o in named["02_sliding_window"] if isinstance(o, Figure)).draw()
    assert len(slide.axes) == 9 and [ax.get_ylabel() for ax in slide.axes[::3]] == ["ground truth", "grid-trained", "twin"]


def test_patch_variant_says_grid_or_pool_and_the_xy_encoding():
    from dataclasses import replace

    from hnerv_lib.models import patch_overrides
    from hnerv_lib.studies.training import patch_variant
    from hnerv_lib.train.config import get_train_preset

    cfg = get_train_preset("patch-tiny")
    assert patch_variant(cfg) == f"trained on the grid alone, x/y encoding at t's {cfg.model_config().pe_levels} levels"
    pooled = replace(cfg, window_pool=12, model_overrides={**cfg.model_overrides, "xy_levels": 8})
    pe = cfg.model_config().pe_levels
    assert patch_variant(pooled) == f"trained on a window pool of 12 windows per frame, t encoding at {pe} levels, x/y at 8"
    canvas = replace(cfg, model_overrides={**cfg.model_overrides, **patch_overrides("patch-tiny", t_levels=4, canvas=2)})
    assert patch_variant(canvas) == (f"trained on the grid alone, t encoding at 4 levels, x/y at {pe}, "
                                     "decoding a 2x canvas around each cell")
