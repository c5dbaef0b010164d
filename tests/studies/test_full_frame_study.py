"""Notebook 01's study on constructed results: the headline table over seeds, the verdict, the outputs."""

import matplotlib
import pandas as pd
import torch

from hnerv_lib.studies import full_frame as study
from hnerv_lib.studies.outputs import Figure, Table, Text, by_name
from hnerv_lib.studies.training import Trained, verification
from hnerv_lib.data.split import Split
from hnerv_lib.train.config import TrainConfig
from hnerv_lib.train.speed import EpochSpeed
from hnerv_lib.utils.timing import Timing

matplotlib.use("Agg")


def _frames(shift=0.0):
    return pd.DataFrame([{"frame": f, "split": "train" if f < 6 else "val", "psnr": 30.0 + shift - (f >= 6) * 5,
                          "ssim": 0.9, "ms_ssim": 0.95, "clip_sim": 0.8} for f in range(10)])


def _results(clip=True, seeds=(30.0, 31.0)):
    summaries = [{"video": "bunny 32x64", "teacher": "ViT-B-32", "split": "6_6_10", "params": 1000, "params_decoder": 800,
                  "seconds_per_epoch": 1.0 + i, "psnr_train": v, "psnr_val": v - 5, "ssim_train": 0.9, "ssim_val": 0.8,
                  "ms_ssim_train": 0.95, "ms_ssim_val": 0.9, "clip_train": 0.8, "clip_val": 0.8}
                 for i, v in enumerate(seeds)]
    metrics = pd.DataFrame({"epoch": [1, 2, 3], "pixel_loss": [0.3, 0.2, 0.1], "clip_loss": [float("nan"), 0.5, 0.4],
                            "clip_active": [False, True, True], "psnr_train": [20.0, float("nan"), 30.0],
                            "psnr_val": [18.0, float("nan"), 25.0]})
    speed = EpochSpeed(clip=Timing.of([0.8, 0.9, 1.0, 1.1, 1.2]), pixel=Timing.of([0.5] * 5), threads=2,
                       precision="bf16", channels_last=True)
    trained = Trained(TrainConfig(epochs=3, clip_warmup_epochs=1), summaries, metrics, "runs/abc", speed)
    g = torch.Generator().manual_seed(0)
    targets = torch.randn(10, 8, 16, generator=g)
    pred = targets + 0.1 * torch.randn(10, 8, 16, generator=g)
    split = Split.parse("6_6_10").indices(10)
    table = verification(pred, targets, split, "hnerv") if clip else None
    return study.FullFrameResults(
        trained=trained, frames=_frames(), shown=[0, 6], truth=torch.rand(2, 3, 8, 16), decoded=torch.rand(2, 3, 8, 16),
        roles={f: "train" if f < 6 else "val" for f in range(10)}, clip=pred if clip else None,
        targets=targets if clip else None, verification=table, split_ids={"train": split.train, "val": split.val},
        grid=(2, 4), file={"bytes": 100, "bpp": 0.5, "bpp_no_clip": 0.4, "bpp_file": 0.55, "frames_per_s": 10.0},
        decoded_scores={"psnr_train": 29.5, "psnr_val": 24.5, "ssim_train": 0.9, "ssim_val": 0.8, "ms_ssim_train": 0.9,
                        "ms_ssim_val": 0.9, "clip_train": 0.8, "clip_val": 0.8})


def test_table_gives_quality_over_seeds_beside_the_decoded_file():
    t = study.table(_results()).set_index("quantity")["value"]
    row = t["psnr_train: float model over 2 seed(s) / decoded file (seed 0)"]
    assert row.startswith("30.5 [") and row.endswith(" / 29.5000")  # mean of seeds 30 and 31, the file's own score
    assert t["bits per pixel (HNeRV's count / without CLIP head / whole file)"] == "0.5000 / 0.4000 / 0.5500"
    assert t["unseen (val) frames: test-time input"] == "the unseen frame itself (encoder input)"
    # timed alone in the notebook's process, not the runs' own epoch times (1.0 and 2.0 s in their summaries)
    assert t["seconds per epoch (timed alone)"] == "1.00 [0.90, 1.10] (5 epochs, 2 threads)"


def test_verdict_names_the_oracle_and_the_quantisation_cost():
    text = study.verdict(_results())
    assert text.startswith("Over 2 training seed(s) the full-frame model reaches 30.5 [")
    assert "access to the frame, not generalisation" in text and "(-0.50 dB against the float model of seed 0)" in text
    assert "CLIP: On seen frames" in text
    assert study.verdict(_results(clip=False)).endswith("No CLIP head was trained.")


def test_outputs_without_a_clip_head_say_so_instead_of_drawing_it():
    named = by_name(study.outputs(_results(clip=False)))
    assert isinstance(named["01_clip_map"][0], Text) and "no CLIP head" in named["01_clip_map"][0].text
    assert [type(o) for o in named["01_clip_verification"]] == [Text]
    with_clip = by_name(study.outputs(_results()))
    assert {type(o) for o in with_clip["01_clip_verification"]} == {Text, Table}
    assert len(with_clip["01_embedding_space"][0].draw().axes) == 2
    fig = with_clip["01_curves"][0].draw()
    assert [ln.get_label() for ln in fig.axes[0].lines][:2] == ["pixel loss", "CLIP loss (1 - cos)"]
    seeds = next(o for o in with_clip["01_seeds"] if isinstance(o, Table))
    assert seeds.what.startswith("Full-frame model over training seeds 0..1") and isinstance(with_clip["01_per_frame"][0], Figure)


def test_clip_map_shows_raw_and_centred_cosine_on_one_fixed_scale(figure_check):
    named = by_name(study.outputs(_results()))
    fig = named["01_clip_map"][0].draw()
    assert figure_check.one_scale_with_colourbars(fig, 4) == (-1.0, 1.0)  # raw and centred, seen and unseen
    assert {ax.get_title().split(" per patch")[0] for ax in fig.axes if ax.get_title()} == {"raw cosine", "centred cosine"}
    figure_check.one_scale_with_colourbars(named["01_reconstructions"][0].draw(), 2)
    for name in ("01_per_frame", "01_curves"):
        fig = named[name][0].draw()
        figure_check.legends_outside(fig)
        figure_check.units_on_y(fig, 2)
