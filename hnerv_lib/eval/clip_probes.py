"""Did the network learn the CLIP targets, or would any vectors score as well? (the seeds' test_clip_learning)

For predicted embeddings ``pred`` and teacher targets ``target``, both (T, N, D) = (frames, patches,
dim), the mean cosine of matched pairs is compared with three baselines that keep the statistics of
the vectors but break the pairing:

* ``random``   — random unit vectors in place of the predictions;
* ``shuffled`` — targets permuted across all patches and frames;
* ``temporal`` — the same patch position in another frame (what a model that ignores time would get).

Each condition gets a bootstrap confidence interval over its pairs, per split. The train/validation gap
of the model is rated with the seeds' thresholds: < 0.05 good, 0.05-0.15 acceptable, > 0.15 overfitting.
"""

from __future__ import annotations

from typing import Optional

import pandas as pd
import torch
import torch.nn.functional as F

from hnerv_lib.data.split import SplitIndices

GAP_GOOD, GAP_ACCEPTABLE = 0.05, 0.15  # the seeds' thresholds on train - validation CLIP similarity
CONDITIONS = ("model", "random", "shuffled", "temporal")


def pair_scores(pred: torch.Tensor, target: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Cosine of every (frame, patch) pair under each condition: dict name -> (T, N) tensor."""
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(f"pred and target must both be (T, N, D); got {tuple(pred.shape)} and {tuple(target.shape)}")
    t, n, d = target.shape
    g = torch.Generator().manual_seed(1_000_003 * seed + 7_919)  # salted: never the stream that made the data
    pred, target = F.normalize(pred.float(), dim=-1), F.normalize(target.float(), dim=-1)
    cos = lambda a, b: (a * b).sum(-1)  # noqa: E731
    random_vectors = F.normalize(torch.randn(t, n, d, generator=g), dim=-1)
    shuffled = target.reshape(t * n, d)[torch.randperm(t * n, generator=g)].reshape(t, n, d)
    # another frame for every pair: shift each frame index by 1..T-1 so it never maps to itself
    other = (torch.arange(t)[:, None] + torch.randint(1, max(t, 2), (t, n), generator=g)) % t
    temporal = target[other, torch.arange(n)[None, :]] if t > 1 else torch.full_like(target, float("nan"))
    return {"model": cos(pred, target), "random": cos(random_vectors, target),
            "shuffled": cos(pred, shuffled), "temporal": cos(pred, temporal)}


def bootstrap_ci(values: torch.Tensor, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (flattened)."""
    v = values.flatten().double()
    if v.numel() == 0:
        raise ValueError("bootstrap_ci needs at least one value; got none")
    g = torch.Generator().manual_seed(seed)
    means = v[torch.randint(0, v.numel(), (n_boot, v.numel()), generator=g)].mean(1)
    lo, hi = torch.quantile(means, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return float(lo), float(hi)


def verification_table(pred: torch.Tensor, target: torch.Tensor, split: Optional[SplitIndices] = None,
                       n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Rows (split, condition, mean, ci_low, ci_high, pairs) for every condition and non-empty split."""
    scores = pair_scores(pred, target, seed)
    groups = {"all": list(range(target.shape[0]))}
    if split is not None:
        groups.update({"train": split.train, "val": split.val})
    rows = []
    for role, frames in groups.items():
        if not frames:
            continue  # never a statistic over zero frames
        for name in CONDITIONS:
            vals = scores[name][frames]
            if torch.isnan(vals).all():
                continue
            lo, hi = bootstrap_ci(vals, n_boot, seed=seed)
            rows.append({"split": role, "condition": name, "mean": float(vals.mean()), "ci_low": lo,
                         "ci_high": hi, "pairs": vals.numel()})
    return pd.DataFrame(rows)


def verdict(table: pd.DataFrame) -> dict[str, object]:
    """Margins over each baseline (with 'significant' = CIs do not overlap) and the train/val gap rating."""
    out: dict[str, object] = {}
    base = table[table["split"] == "all"].set_index("condition")
    model = base.loc["model"]
    for name in CONDITIONS[1:]:
        if name in base.index:
            out[f"margin_over_{name}"] = float(model["mean"] - base.loc[name, "mean"])
            out[f"significant_over_{name}"] = bool(model["ci_low"] > base.loc[name, "ci_high"])
    by_split = table[table["condition"] == "model"].set_index("split")["mean"]
    if "train" in by_split and "val" in by_split:
        gap = float(by_split["train"] - by_split["val"])
        out["train_val_gap"] = gap
        out["generalisation"] = "good" if gap < GAP_GOOD else "acceptable" if gap <= GAP_ACCEPTABLE else "overfitting"
    else:
        out["generalisation"] = "no validation frames"
    return out
