"""Notebook 03's study on constructed clips and runs: the token it draws, its outputs, the seed's scale."""

import math

import matplotlib
import pandas as pd
import pytest
import torch

from hnerv_lib.report.params import TubeletParams
from hnerv_lib.utils.parse import ConfigError
from hnerv_lib.studies.outputs import Figure, Table, by_name
from hnerv_lib.studies.tubelets import study
from hnerv_lib.studies.tubelets.clips import ClipSet

matplotlib.use("Agg")


def _clips(moving_clip=2, moving_patch=(1, 0)):
    """4 forward/reversed pairs of 4-frame 16x16 clips; only one forward clip moves, in one 8x8 patch."""
    clips = torch.zeros(8, 4, 3, 16, 16, dtype=torch.uint8)
    r, c = moving_patch
    for f in range(4):
        clips[moving_clip, f, :, 8 * r:8 * r + 8, 8 * c:8 * c + 8] = 60 * f
    origin = torch.tensor([[0, 2 * i, 0, i % 2] for i in range(8)])
    meta = {"regions": {"bunny": {"frames": 40, "train": [[0, 20]], "test": [[22, 40]], "cuts": [],
                                  "train_windows": 4, "test_windows": 4}}}
    return ClipSet(clips, torch.tensor([0, 1] * 4), origin=origin, meta=meta)


def test_the_drawn_token_is_the_forward_clip_and_patch_that_move_most():
    assert study.moving_token(_clips(), 8) == (2, 1, 0)
    assert study.moving_token(_clips(moving_clip=4, moving_patch=(0, 1)), 8) == (4, 0, 1)


def _results():
    P = TubeletParams(profile="smoke", tube_frames=4, tube_size=16, tube_patch=8, tube_epochs=3, tube_seeds=2)
    rows = [{"variant": name, "slug": slug, "seed": s, "embedding": name, "epochs": 3, "test_acc": acc + s / 100,
             "train_acc": 0.9, "final_loss": 0.1, "fit_clips_per_s": 1.0, "train_seconds": 1.0, "test_clips": 8,
             "tokens": tokens, "params": 10, "gflops": tokens / 1e3, "infer_clips_per_s": 1e3 / tokens,
             "train_clips_per_s": 5e2 / tokens, "train_step_mb": tokens / 10, "unseen_acc": math.nan,
             "test_curve": [0.5, 0.6, acc + s / 100]}
            for name, slug, tokens, acc in [("2D patches", "2d", 16, 0.8), ("tubelet 2", "t2", 8, 0.6)] for s in (0, 1)]
    spec = P.study()
    task = study.TaskResults(spec, {"train": _clips(), "test": _clips()}, pd.DataFrame(rows), study.provenance(spec, 3))
    return study.TubeletResults(pd.DataFrame({"tokens (embed output)": [1]}), {"arrow of time": task})


def test_outputs_caption_the_clip_split_without_epochs_and_the_scale_without_a_video():
    R = _results()
    named = by_name(study.outputs(R))
    assert named["03_token_counts"][0].provenance == study.SCALE_PROVENANCE
    assert all(o.provenance.epochs is None for o in named["03_clip_split"])
    assert named["03_tubelet_coverage"][0].what.startswith("One token of each embedding on test clip 2 (bunny")
    summary = next(o for o in named["03_tubelets_summary"] if isinstance(o, Table)).frame
    assert summary["test acc"].tolist()[0].startswith("0.805 ± ")  # mean over two seeds with its t half-width
    fig = next(o for o in named["03_tubelet_coverage"] if isinstance(o, Figure)).draw()
    assert len(fig.axes) == 2 * 4  # 2D and tubelet-2 rows (4 frames cannot hold two 4-frame tubelets) x 4 frames
    assert study.verdict(R).startswith("Arrow of time (chance 50%). Efficiency: tubelet 2 uses 50% of the 2D tokens")
    assert len(next(o for o in named["03_tubelets_curves"] if isinstance(o, Figure)).draw().axes) == 2
    claims = next(o for o in named["03_claims"] if isinstance(o, Table)).frame
    faster = claims[claims["claim"] == study.SEED_CLAIMS["speed"]]
    assert faster["outcome"].tolist() == ["holds"] and "50% of the tokens; trains at 2.0x, infers at 2.0x" in faster["evidence"].iloc[0]
    motion = claims[claims["claim"] == study.SEED_CLAIMS["motion"]]
    assert motion["outcome"].tolist() == ["contradicted"]  # 0.605 under 0.805, intervals apart: 2D is better here
    compute = claims[claims["claim"] == study.SEED_CLAIMS["compute"]]  # no equal-FLOPs run: fewer FLOPs, and it lost
    assert compute["outcome"].tolist() == [study.UNTESTED] and "on 50% of 2D's training FLOPs" in compute["test"].iloc[0]


def test_a_tubelet_that_wins_on_fewer_flops_holds_the_compute_claim_without_an_equal_flops_run():
    R = _results()
    runs = R.tasks["arrow of time"].runs
    runs.loc[runs["slug"] == "t2", "test_acc"] += 0.35  # 0.955 over 0.805, intervals apart
    claims = study.claims(R)
    compute = claims[claims["claim"] == study.SEED_CLAIMS["compute"]]
    assert compute["outcome"].tolist() == ["holds"] and compute["evidence"].iloc[0].startswith("tubelet 2 95.5%")


def test_the_seed_scale_reproduces_the_seeds_token_counts(monkeypatch):
    assert study.seed_scale()["tokens (embed output)"].tolist() == study.SEED_TOKENS
    monkeypatch.setattr(study, "SEED_TOKENS", [1, 2, 3])
    with pytest.raises(RuntimeError, match="are not the seed's \\[1, 2, 3\\]"):
        study.seed_scale()


def test_parameters_give_each_task_its_study_and_refuse_bad_task_or_variant_lists():
    P = TubeletParams(profile="smoke", tube_variants=["2d", "t4", "t2-central"], pan_epochs=4, pan_draws=3)
    arrow, pan = P.study("arrow of time"), P.study("camera pan")
    assert arrow.model.num_classes == 2 and arrow.train.paired and arrow.train.flip and arrow.chance == 0.5
    assert pan.model.num_classes == 9 and not pan.train.paired and not pan.train.flip and pan.chance == 1 / 9
    assert pan.train.epochs == 4 and pan.data.draws == 3 and pan.data.holdout == "carphone"
    assert [v.slug for v in pan.variants] == ["2d", "t4", "t2-central"]
    assert arrow.to_dict()["task"] == "arrow of time" != pan.to_dict()["task"]
    assert {(s.model.attention, s.model.causal) for s in (arrow, pan)} == {("divided", True)}  # the default
    joint = TubeletParams(profile="smoke", tube_attention="joint", tube_causal=False).study("camera pan").model
    assert (joint.attention, joint.causal) == ("joint", False)
    with pytest.raises(ConfigError, match=r"tube_attention='sparse': must be one of \['joint', 'divided'\]"):
        TubeletParams(profile="smoke", tube_attention="sparse")
    with pytest.raises(ConfigError, match=r"tube_tasks=\['camera pans'\]: each must be one of"):
        TubeletParams(profile="smoke", tube_tasks=["camera pans"])
    with pytest.raises(ConfigError, match=r"tube_variants=\['t2', '2d'\]: '2d' first"):
        TubeletParams(profile="smoke", tube_variants=["t2", "2d"])
    with pytest.raises(ConfigError, match="no tubelet task 'pan'"):
        P.study("pan")
