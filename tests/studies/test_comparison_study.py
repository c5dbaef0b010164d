"""Notebook 05's study: the equal-time rule, the headline table and the verdict on constructed results."""

import pandas as pd
import pytest
from matplotlib.container import BarContainer

from hnerv_lib.report.params import ComparisonParams
from hnerv_lib.studies import comparison as study
from hnerv_lib.studies.outputs import Figure, Provenance, Table, by_name
from hnerv_lib.studies.comparison import time_to_psnr
from hnerv_lib.train.config import warmup_epochs
from hnerv_lib.train.speed import EpochSpeed
from hnerv_lib.utils.timing import Timing


def _params(**kw):
    return ComparisonParams(profile="smoke", full_model="hnerv-quick", patch_model="patch-quick", full_epochs=20,
                            patch_epochs=20, clip_warmup_frac=0.25, eval_every=10, **kw)


def _rows(setting="equal parameters", full_s=60.0, patch_s=30.0, seeds=(0, 1)):
    rows = []
    for d, total in (("full frame", full_s), ("patch", patch_s)):
        for s in seeds:
            v = 30.0 if d == "full frame" else 25.0
            rows.append({"setting": setting, "design": d, "seed": s, "model": d, "test-time input": "x", "params": 100,
                         "epochs": 20, "train_s": total + s, "s_per_epoch": (total + s) / 20, "psnr_train": v + s / 10,
                         "psnr_train_lo": v, "psnr_train_hi": v + 0.2, "psnr_val": v - 5 + s / 5, "bpp": 0.5})
    return pd.DataFrame(rows)


def _speed(clip_s, pixel_s=None):
    return EpochSpeed(clip=Timing.of([clip_s] * 5), pixel=Timing.of([pixel_s or clip_s] * 5), threads=2,
                      precision="fp32", channels_last=False)


def test_equal_time_gives_the_faster_design_scaled_epochs_and_warmup():
    P = _params()
    speeds = {"full frame": _speed(3.0, 2.0), "patch": _speed(1.5, 1.0)}  # 5 of 20 epochs pixel-only
    fast, slow, cfg = study.equal_time_config(P, speeds)
    assert (fast, slow) == ("patch", "full frame")
    full_s = 5 * 2.0 + 15 * 3.0  # the slower design's schedule at its speed timed alone
    assert cfg.epochs == round(full_s / 1.5) == 37  # ... at the faster one's CLIP-epoch pace
    assert cfg.model == "patch-quick" and cfg.batch_size == P.patch_batch
    assert cfg.clip_warmup_epochs == warmup_epochs(0.25, 37) > P.train_config("patch").clip_warmup_epochs
    swapped = study.equal_time_config(P, {"full frame": _speed(1.0), "patch": _speed(2.0)})  # full frame faster
    assert swapped[:2] == ("full frame", "patch") and swapped[2].model == "hnerv-quick" and swapped[2].epochs == 40


def test_time_to_quality_takes_epochs_from_the_curve_and_seconds_from_the_speed(tmp_path):
    cfg = _params().train_config("patch")
    metrics = pd.DataFrame({"epoch": range(1, 21), "seconds": [99.0] * 20,  # a job's epochs: not used
                            "psnr_train": [float("nan")] * 9 + [20.0] + [float("nan")] * 9 + [25.0]})
    timed = study.timed_metrics(metrics, cfg, _speed(2.0, 1.0))
    assert timed["seconds"].tolist() == [1.0] * 5 + [2.0] * 15 and timed["psnr_train"].equals(metrics["psnr_train"])
    assert time_to_psnr(timed, 20.0) == 5 * 1.0 + 5 * 2.0
    assert time_to_psnr(timed, 22.5) == pytest.approx(15.0 + 0.5 * 20.0)  # half-way between the evaluations


def _results(**kw):
    per_seed = pd.concat([_rows(), _rows("equal training time")], ignore_index=True)
    fair = pd.DataFrame([{"protocol": p, "test-time input": "t", "params": 100, "psnr_val": v, "psnr_val_lo": v - 0.1,
                          "psnr_val_hi": v + 0.1} for p, v in
                         [("NeRV", 20.0), ("patch", 22.0), ("nearest training frame", 18.0), ("neighbour blend", 19.0)]])
    quality = pd.DataFrame([{"design": "patch", "target_db": 24.0, "seconds_to_target": 10.0}])
    base = dict(per_seed=per_seed, quality=quality, fair=fair, fast="patch", slow="full frame", epochs=40,
                target_db=24.0, seeds=2, eval_every=10, provenance=Provenance("bunny 32x64", "ViT-B-32 (random init)"))
    return study.ComparisonResults(**{**base, **kw})


def test_table_averages_seeds_per_setting_and_design_in_the_published_column_order():
    t = study.table(_results())
    assert list(t[["setting", "design"]].itertuples(index=False, name=None)) == [
        ("equal parameters", "full frame"), ("equal parameters", "patch"),
        ("equal training time", "full frame"), ("equal training time", "patch")]
    assert t["seeds"].tolist() == [2] * 4
    assert t.loc[0, "psnr_train"] == 30.05 and t.loc[1, "train_s"] == 30.5
    assert list(t.columns) == [c for c in study.COLUMNS if c in t.columns]


def test_verdict_separates_only_where_seed_intervals_do_and_ends_with_the_fair_protocols():
    text = study.verdict(_results())
    assert text.count("Under equal") == 2
    assert "seen-frame PSNR (dB, 95 % intervals, t over 2 seeds): favours full frame" in text
    assert "NeRV against the patch model" in text and "with HNeRV fed the unseen frame itself" not in text
    close = _results(per_seed=_rows().assign(psnr_train=lambda d: 30.0 + d["seed"] * 2.0))  # seeds spread 2 dB
    assert "seen-frame PSNR (dB, 95 % intervals, t over 2 seeds): no" in study.verdict(close)


def test_outputs_name_every_published_table_and_figure():
    named = by_name(study.outputs(_results()))
    saved = {n for n, items in named.items() for o in items if isinstance(o, Table) and o.save}
    drawn = {n for n, items in named.items() for o in items if isinstance(o, Figure)}
    assert saved == {"05_time_to_quality", "05_unseen_fair", "05_comparison"}
    assert drawn == {"05_unseen_fair", "05_comparison"}
    assert "patch trains 40 epochs to match full frame's 60 s" in named["05_equal_time"][0].text


def test_settings_figure_has_interval_bars_units_and_an_outside_legend(figure_check):
    fig = by_name(study.outputs(_results()))["05_comparison"][1].draw()
    figure_check.legends_outside(fig)
    figure_check.units_on_y(fig, 2)
    bars = [c for ax in fig.axes for c in ax.containers if isinstance(c, BarContainer)]
    assert len(bars) == 4 and all(c.errorbar is not None for c in bars)  # 2 panels x 2 designs, each with its interval


def test_the_patch_variant_is_said():
    from hnerv_lib.studies.outputs import by_name

    named = by_name(study.outputs(_results(patch_variant="trained on the grid alone, x/y encoding at t's 80 levels")))
    assert named["05_patch_variant"][0].text.startswith("The patch design is trained on the grid alone, x/y encoding")
