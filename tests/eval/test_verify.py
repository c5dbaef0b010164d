import pytest
import torch
import torch.nn.functional as F

from hnerv_lib.data.split import Split
from hnerv_lib.eval.clip_probes import bootstrap_ci, pair_scores, verdict, verification_table


def _targets(t=10, n=8, d=64, seed=0):
    return F.normalize(torch.randn(t, n, d, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_perfect_model_scores_one_and_beats_every_baseline():
    target = _targets()
    table = verification_table(target.clone(), target, Split(6, 6, 10).indices(10), n_boot=200)
    model = table[(table.condition == "model")].set_index("split")["mean"]
    assert model.to_dict() == pytest.approx({"all": 1.0, "train": 1.0, "val": 1.0})
    v = verdict(table)
    assert all(v[f"significant_over_{b}"] for b in ("random", "shuffled", "temporal"))
    assert v["margin_over_random"] > 0.8 and v["generalisation"] == "good" and v["train_val_gap"] == pytest.approx(0)


def test_constant_model_beats_no_baseline():
    target = _targets()
    const = target.mean((0, 1), keepdim=True).expand_as(target)  # the same vector everywhere
    v = verdict(verification_table(const, target, n_boot=200))
    assert not v["significant_over_shuffled"] and not v["significant_over_temporal"]
    assert abs(v["margin_over_shuffled"]) < 0.05 and abs(v["margin_over_temporal"]) < 0.05


def test_model_that_ignores_time_ties_with_temporal_shuffle():
    target = _targets()
    static = target[:1].expand_as(target)  # frame 0's targets for every frame: no temporal information
    v = verdict(verification_table(static, target, n_boot=200))
    assert abs(v["margin_over_temporal"]) < 0.05


def test_gap_thresholds():
    target = _targets()
    pred = target.clone()
    pred[6:] = F.normalize(target[6:] + 0.7 * _targets(seed=1)[6:], dim=-1)  # worse on frames 6..9 (val)
    v = verdict(verification_table(pred, target, Split(6, 6, 10).indices(10), n_boot=200))
    assert v["train_val_gap"] > 0.15 and v["generalisation"] == "overfitting"


def test_no_val_frames_no_val_rows():
    target = _targets()
    table = verification_table(target, target, Split(9, 10, 10).indices(10), n_boot=50)
    assert set(table.split) == {"all", "train"} and verdict(table)["generalisation"] == "no validation frames"


def test_baselines_shapes_and_never_the_same_frame():
    s = pair_scores(_targets(), _targets())
    assert set(s) == {"model", "random", "shuffled", "temporal"} and all(v.shape == (10, 8) for v in s.values())
    target = _targets()
    assert (pair_scores(target, target)["temporal"] < 0.999).all()  # a pair never meets its own frame


def test_bootstrap_ci_brackets_the_mean():
    vals = torch.arange(100.0)
    lo, hi = bootstrap_ci(vals, n_boot=500)
    assert lo < 49.5 < hi and hi - lo < 20
    with pytest.raises(ValueError, match="at least one value"):
        bootstrap_ci(torch.tensor([]))
    with pytest.raises(ValueError, match=r"\(T, N, D\)"):
        pair_scores(torch.zeros(2, 3), torch.zeros(2, 3))
