"""CLIP metrics on constructed cases: they must tell a perfect, a trivial and a shuffled predictor apart."""

import pytest
import torch

from hnerv_lib.data.split import Split
from hnerv_lib.eval.clip_metrics import (baselines, block_bootstrap_ci, centred_cosine, clip_table, position_means,
                                         retrieval)
from hnerv_lib.eval.verdict import separated

T, N, D = 20, 8, 32


def _targets(spread=0.05, seed=0):
    """Nearly constant targets, like a random teacher's: a shared direction plus a small per-frame part."""
    g = torch.Generator().manual_seed(seed)
    common = torch.randn(1, N, D, generator=g) * 3
    return common + spread * torch.randn(T, N, D, generator=g)


def test_perfect_predictor_scores_one():
    target = _targets()
    means = position_means(target, range(T))
    assert centred_cosine(target, target, means).mean() == pytest.approx(1.0, abs=1e-5)
    r = retrieval(target, target, means, range(T))
    assert r["top1"] == pytest.approx(1.0) and r["top5"] == pytest.approx(1.0)
    assert r["chance1"] == pytest.approx(1 / (T * N)) and r["candidates"] == T * N


def test_raw_cosine_cannot_tell_the_position_mean_from_a_perfect_predictor_but_these_can():
    target = _targets()
    means = position_means(target, range(T))
    trivial = means.expand(T, N, D)
    raw = torch.nn.functional.cosine_similarity(trivial, target, dim=-1).mean()
    assert raw > 0.99  # saturated
    assert centred_cosine(trivial, target, means).abs().max() < 1e-6  # the zero vector scores 0
    r = retrieval(trivial, target, means, range(T))
    assert r["top1"] == pytest.approx(r["chance1"], rel=1e-6) and r["top5"] == pytest.approx(r["chance5"], rel=1e-6)


def test_shuffled_predictor_is_near_chance():
    target = _targets()
    means = position_means(target, range(T))
    shuffled = baselines(target, means)["shuffled"]
    assert abs(float(centred_cosine(shuffled, target, means).mean())) < 0.1
    assert retrieval(shuffled, target, means, range(T))["top1"] < 0.05


def test_block_bootstrap_is_wider_than_the_pairwise_one_on_autocorrelated_frames():
    g = torch.Generator().manual_seed(3)
    x = torch.zeros(200)
    for i in range(1, 200):  # AR(1), rho 0.95: neighbouring frames nearly repeat
        x[i] = 0.95 * x[i - 1] + torch.randn(1, generator=g).item()
    values = x[:, None] + 0.1 * torch.randn(200, 8, generator=g)
    lo1, hi1 = block_bootstrap_ci(values, block=1)
    lo10, hi10 = block_bootstrap_ci(values, block=10)
    assert (hi10 - lo10) > 1.5 * (hi1 - lo1)
    assert separated((0, 1), (2, 3)) and not separated((0, 2), (1, 3))


def test_clip_table_leads_with_centred_cosine_and_retrieval_for_model_and_baselines():
    target = _targets()
    split = Split(6, 6, 10).indices(T)
    noisy = target + 0.01 * torch.randn(T, N, D, generator=torch.Generator().manual_seed(1))
    df = clip_table(noisy, target, split, n_boot=200)
    assert list(df.columns[:5]) == ["split", "predictor", "centred_cos", "ci_low", "ci_high"]
    assert set(df["predictor"]) == {"model", "position mean", "shuffled", "other frame"}
    row = df.set_index(["split", "predictor"])
    assert row.loc[("train", "model"), "centred_cos"] > 0.9 > row.loc[("train", "position mean"), "centred_cos"] + 0.8
    assert row.loc[("val", "model"), "top1"] > 0.5 > row.loc[("val", "position mean"), "top1"]
    assert row.loc[("train", "position mean"), "raw_cos"] > 0.99  # raw cosine stays a column, and stays saturated
    assert (df["block"] >= 1).all() and (df["ci_low"] <= df["centred_cos"]).all() and (df["centred_cos"] <= df["ci_high"]).all()
    assert "test-time input" not in df
    said = clip_table(noisy, target, split, n_boot=20, test_time_input="frame index t only").set_index(["split", "predictor"])
    assert said.loc[("val", "model"), "test-time input"] == "frame index t only"
    assert said.loc[("train", "model"), "test-time input"] == "seen in training"
    assert said.loc[("val", "shuffled"), "test-time input"] == "no network"


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"\(T, N, D\)"):
        centred_cosine(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3))


def test_target_diversity_tells_constant_from_varied_targets():
    from hnerv_lib.eval.clip_metrics import saturation_note, target_diversity

    flat = target_diversity(_targets(spread=0.01))
    varied = target_diversity(torch.randn(T, N, D, generator=torch.Generator().manual_seed(5)))
    assert flat["cos_across_frames"] > 0.99 and abs(varied["cos_across_frames"]) < 0.1
    assert varied["effective_rank"] > 3 * flat["effective_rank"] / 2 and flat["effective_rank_centred"] > 1
    assert "near 1 for any network" in saturation_note(flat) and "vary between frames" in saturation_note(varied)


def test_clip_verdict_names_a_winner_only_when_intervals_separate():
    from hnerv_lib.eval.clip_metrics import clip_verdict

    target = _targets()
    split = Split(6, 6, 10).indices(T)
    good = clip_table(target + 0.01 * torch.randn(T, N, D, generator=torch.Generator().manual_seed(1)), target, split,
                      n_boot=200)
    assert "the model beats the per-position-mean baseline" in clip_verdict(good)
    import pandas as pd

    rows = [dict(split="val", predictor="model", centred_cos=0.05, ci_low=-0.02, ci_high=0.12, top1=0.02, chance_top1=0.016),
            dict(split="val", predictor="position mean", centred_cos=0.0, ci_low=0.0, ci_high=0.0, top1=0.016,
                 chance_top1=0.016)]
    text = clip_verdict(pd.DataFrame(rows))
    assert "unseen frames the model shows no difference from the per-position-mean baseline at this budget" in text
    rows[0].update(centred_cos=-0.2, ci_low=-0.3, ci_high=-0.1)
    assert "is worse than" in clip_verdict(pd.DataFrame(rows))
    for r in rows:
        r.update(frames=4, block=2)
    assert "too few frames (4) for a block-bootstrap interval: no verdict" in clip_verdict(pd.DataFrame(rows))


def test_over_seeds_the_model_gets_a_t_interval_and_the_baselines_keep_theirs():
    from hnerv_lib.eval.clip_metrics import clip_table_over_seeds, clip_verdict

    g = torch.Generator().manual_seed(3)
    target = torch.randn(12, 4, 16, generator=g)
    split = Split.parse("6_6_10").indices(12)
    tables = [clip_table(target + s * torch.randn(12, 4, 16, generator=g), target, split, n_boot=50) for s in (0.5, 0.6, 0.7)]
    both = clip_table_over_seeds(tables)
    model = both[(both.predictor == "model") & (both.split == "train")].iloc[0]
    seeds = [t[(t.predictor == "model") & (t.split == "train")].iloc[0]["centred_cos"] for t in tables]
    assert model["centred_cos"] == pytest.approx(sum(seeds) / 3) and model["interval"] == "t over 3 seeds"
    assert model["ci_low"] < min(seeds) and model["ci_high"] > max(seeds)  # a t interval over 3 values is wide
    base = both[(both.predictor == "shuffled") & (both.split == "train")].iloc[0]
    first = tables[0][(tables[0].predictor == "shuffled") & (tables[0].split == "train")].iloc[0]
    assert (base["ci_low"], base["ci_high"]) == (first["ci_low"], first["ci_high"])
    assert base["interval"] == "block bootstrap over frames (no seed dependence)" and set(both["seeds"]) == {3}
    # 8 seen frames are too few blocks for a bootstrap verdict, but the seeds' interval needs none
    assert "95 % t over 3 seeds" in clip_verdict(both) and "too few frames" not in clip_verdict(both).split("unseen")[0]
    single = clip_table_over_seeds(tables[:1])
    assert set(single["interval"]) == {"block bootstrap over frames"} and single["centred_cos"].equals(tables[0]["centred_cos"])
