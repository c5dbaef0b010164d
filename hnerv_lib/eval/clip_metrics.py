"""CLIP metrics that can fail: centred cosine, retrieval, a per-position-mean baseline, block-bootstrap intervals.

Raw cosine between predicted and target CLIP embeddings saturates when the targets barely vary (a
random-init teacher gives cosines >= 0.99 between frames), so a network that outputs each patch
position's mean target scores as well as one that learnt every frame. The metrics here measure what
varies:

* **centred cosine**: subtract the mean *training* target of each patch position from both the
  prediction and the target, then take the cosine. A perfect predictor scores 1; the
  per-position-mean predictor scores 0.
* **retrieval top-k**: is the prediction among the k nearest (cosine, on centred vectors) of all
  targets of its split, every frame and every position? Chance is ``k / candidates``. Ties (e.g. a
  zero centred prediction) count as a random draw among the tied candidates.
* **baselines**: the per-position mean, targets shuffled across frames and positions, and the same
  position in another frame. They go through the same metrics.
* **intervals**: a moving-block bootstrap over contiguous blocks of frames. Neighbouring frames are
  near duplicates, so resampling single pairs as if independent gives intervals that are too narrow.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import pandas as pd
import torch
import torch.nn.functional as F

from hnerv_lib.eval.verdict import Estimate, judge, t_interval
from hnerv_lib.data.split import SplitIndices

EPS = 1e-8
MIN_BLOCKS = 5  # fewer independent blocks than this: an interval is not worth a verdict
PREDICTORS = ("model", "position mean", "shuffled", "other frame")


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(f"pred and target must both be (T, N, D); got {tuple(pred.shape)} and {tuple(target.shape)}")


def position_means(target: torch.Tensor, frames: Sequence[int]) -> torch.Tensor:
    """(N, D): the mean target of each patch position over ``frames`` (the training frames)."""
    if len(frames) == 0:
        raise ValueError("position_means needs at least one frame (the training frames)")
    return target[list(frames)].float().mean(0)


def centred_cosine(pred: torch.Tensor, target: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """(T, N) cosine of ``pred - means`` with ``target - means``; a zero vector scores 0."""
    _check(pred, target)
    a, b = pred.float() - means, target.float() - means
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(EPS)


def retrieval(pred: torch.Tensor, target: torch.Tensor, means: torch.Tensor, frames: Sequence[int],
              ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Top-k retrieval of each prediction of ``frames`` among all targets of ``frames`` (centred vectors).

    Returns ``top{k}`` (expected hit rate, ties split evenly), ``chance{k}`` (k / candidates) and ``candidates``.
    """
    _check(pred, target)
    frames = list(frames)
    if not frames:
        raise ValueError("retrieval needs at least one frame")
    p = F.normalize((pred[frames].float() - means).flatten(0, 1), dim=-1, eps=EPS)
    t = F.normalize((target[frames].float() - means).flatten(0, 1), dim=-1, eps=EPS)
    sims = p @ t.T  # (M, M): prediction i against every target j
    own = sims.diagonal()[:, None]
    tol = 1e-6
    higher = (sims > own + tol).sum(1).double()
    ties = ((sims - own).abs() <= tol).sum(1).double() - 1  # other candidates scoring like the own target
    m = sims.shape[0]
    out: dict[str, float] = {"candidates": float(m)}
    for k in ks:
        hit = ((k - higher) / (ties + 1)).clamp(0, 1)  # P(own target in top k) under random tie-breaking
        out[f"top{k}"] = float(hit.mean())
        out[f"chance{k}"] = min(k / m, 1.0)
    return out


def block_bootstrap_ci(values: torch.Tensor, block: int, n_boot: int = 1000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean of ``values`` (T, ...) from a moving-block bootstrap over dim 0.

    Each replicate concatenates ``ceil(T / block)`` blocks of ``block`` consecutive frames, starting at
    random frames, cut to T frames. ``block = 1`` is the ordinary bootstrap over frames.
    """
    v = values.double().reshape(values.shape[0], -1)
    t = v.shape[0]
    if t == 0 or block < 1:
        raise ValueError(f"block_bootstrap_ci needs >= 1 frame and block >= 1; got {t} frames, block {block}")
    block = min(block, t)
    per_frame = v.mean(1)
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, t - block + 1, (n_boot, math.ceil(t / block)), generator=g)
    idx = (starts[:, :, None] + torch.arange(block)[None, None, :]).reshape(n_boot, -1)[:, :t]
    means = per_frame[idx].mean(1)
    lo, hi = torch.quantile(means, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return float(lo), float(hi)


def default_block(num_frames: int) -> int:
    """Block length for the bootstrap: about the cube root of the frame count (at least 2 when T >= 4)."""
    return max(1, min(num_frames, round(num_frames ** (1 / 3)) if num_frames >= 4 else 1))


def baselines(target: torch.Tensor, means: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Predictions that know nothing frame-specific: (T, N, D) each."""
    t, n, d = target.shape
    g = torch.Generator().manual_seed(1_000_003 * seed + 104_729)
    shuffled = target.reshape(t * n, d)[torch.randperm(t * n, generator=g)].reshape(t, n, d)
    other = (torch.arange(t)[:, None] + torch.randint(1, max(t, 2), (t, n), generator=g)) % t
    other_frame = target[other, torch.arange(n)[None, :]] if t > 1 else torch.full_like(target, float("nan"))
    return {"position mean": means.expand(t, n, d).clone(), "shuffled": shuffled, "other frame": other_frame}


def clip_table(pred: torch.Tensor, target: torch.Tensor, split: SplitIndices, block: Optional[int] = None,
               n_boot: int = 1000, seed: int = 0, test_time_input: str = "") -> pd.DataFrame:
    """Rows (split, predictor) with centred cosine (and its block-bootstrap interval), retrieval top-1/top-5
    with chance, and raw cosine, for the model and every baseline, on the train and validation frames.

    Centring uses the mean *training* target per position, for every split. ``test_time_input`` (what the
    model saw of an unseen frame, eval/unseen.py) adds that column to the table.
    """
    _check(pred, target)
    means = position_means(target, split.train)
    preds = {"model": pred.float(), **baselines(target.float(), means, seed)}
    rows = []
    for role, frames in (("train", split.train), ("val", split.val)):
        if not frames:
            continue  # never a metric over zero frames
        blk = block or default_block(len(frames))
        for name, p in preds.items():
            if torch.isnan(p).any():
                continue
            cc = centred_cosine(p, target, means)[frames]
            lo, hi = block_bootstrap_ci(cc, blk, n_boot, seed=seed)
            r = retrieval(p, target, means, frames)
            raw = F.cosine_similarity(p[frames], target[frames].float(), dim=-1)
            rows.append({"split": role, "predictor": name, "centred_cos": float(cc.mean()), "ci_low": lo, "ci_high": hi,
                         "top1": r["top1"], "top5": r["top5"], "chance_top1": r["chance1"], "chance_top5": r["chance5"],
                         "raw_cos": float(raw.mean()), "frames": len(frames), "block": blk})
            if test_time_input:
                rows[-1]["test-time input"] = ("no network" if name != "model" else
                                               test_time_input if role == "val" else "seen in training")
    return pd.DataFrame(rows)


def clip_table_over_seeds(tables: Sequence[pd.DataFrame], level: float = 0.95) -> pd.DataFrame:
    """One :func:`clip_table` from the tables of several training seeds of one model.

    The model's rows become means over seeds, and their ``ci_low``/``ci_high`` the 95 % Student-t
    interval of the centred cosine over seeds. The baselines know nothing of the model and are the same
    in every seed, so they keep their block bootstrap over frames. The ``interval`` and ``seeds`` columns
    say which each row holds; one table passes through with its bootstrap named.
    """
    if not tables:
        raise ValueError("clip_table_over_seeds needs at least one table")
    first, n = tables[0], len(tables)
    out = first.copy()
    out["seeds"] = n
    out["interval"] = "block bootstrap over frames" + ("" if n == 1 else " (no seed dependence)")
    if n == 1:
        return out
    stacked = pd.concat(tables, ignore_index=True)
    numeric = [c for c in first.columns if pd.api.types.is_numeric_dtype(first[c]) and c not in ("ci_low", "ci_high")]
    for i, row in first.iterrows():
        if row["predictor"] != "model":
            continue
        same = stacked[(stacked["split"] == row["split"]) & (stacked["predictor"] == "model")]
        mean, half = t_interval(same["centred_cos"], level)
        out.loc[i, numeric] = same[numeric].mean()
        out.loc[i, ["centred_cos", "ci_low", "ci_high"]] = [mean, mean - half, mean + half]
        out.loc[i, "interval"] = f"t over {n} seeds"
    return out


def effective_rank(matrix: torch.Tensor) -> float:
    """Roy & Vetterli's effective rank: exp of the entropy of the normalised singular values (1 = one direction)."""
    s = torch.linalg.svdvals(matrix.double())
    p = s / s.sum().clamp_min(EPS)
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def target_diversity(target: torch.Tensor) -> dict[str, float]:
    """How much the teacher's targets (T, N, D) vary: mean pairwise cosine across frames (per position) and
    across positions (per frame), and the effective rank of the (T*N, D) target matrix, raw and centred."""
    if target.dim() != 3:
        raise ValueError(f"target must be (T, N, D); got {tuple(target.shape)}")
    t, n, _ = target.shape
    u = F.normalize(target.double(), dim=-1)

    def off_diagonal_mean(gram: torch.Tensor) -> float:  # (B, K, K) -> mean over the K*(K-1) off-diagonal pairs
        k = gram.shape[-1]
        return float((gram.sum((-1, -2)) - gram.diagonal(dim1=-2, dim2=-1).sum(-1)).sum() / (gram.shape[0] * k * (k - 1)))

    across_frames = off_diagonal_mean(u.transpose(0, 1) @ u.transpose(0, 1).transpose(1, 2)) if t > 1 else float("nan")
    across_positions = off_diagonal_mean(u @ u.transpose(1, 2)) if n > 1 else float("nan")
    flat = target.double().reshape(t * n, -1)
    centred = (target.double() - target.double().mean(0, keepdim=True)).reshape(t * n, -1)
    return {"cos_across_frames": across_frames, "cos_across_positions": across_positions,
            "effective_rank": effective_rank(flat), "effective_rank_centred": effective_rank(centred),
            "frames": t, "positions": n}


def saturation_note(diversity: dict[str, float], threshold: float = 0.95) -> str:
    """Plain words: will raw cosine be saturated under these targets?"""
    c = diversity["cos_across_frames"]
    if c >= threshold:
        return (f"The targets barely change between frames (mean cosine {c:.3f} across frames at the same position): "
                "raw cosine similarity will be near 1 for any network, including one that outputs each position's mean. "
                "Judge the CLIP heads by centred cosine and retrieval.")
    return (f"The targets vary between frames (mean cosine {c:.3f} across frames at the same position): raw cosine "
            "carries some information, but centred cosine and retrieval remain the stricter tests.")


def clip_verdict(table: pd.DataFrame) -> str:
    """Per split: does the model beat the per-position-mean baseline on centred cosine (intervals separate)
    and retrieval above chance? Says "no difference" when the intervals overlap."""
    parts = []
    for role in ("train", "val"):
        rows = table[table["split"] == role].set_index("predictor")
        if "model" not in rows.index or "position mean" not in rows.index:
            continue
        m, b = rows.loc["model"], rows.loc["position mean"]
        ci_m, ci_b = (m["ci_low"], m["ci_high"]), (b["ci_low"], b["ci_high"])
        name = "seen frames" if role == "train" else "unseen frames"
        blocks = m.get("frames", MIN_BLOCKS * 10) / m.get("block", 1)
        over_seeds = str(m.get("interval", "")).startswith("t over")  # the seeds' interval needs no frame blocks
        if blocks < MIN_BLOCKS and not over_seeds:
            parts.append(f"On {name} there are too few frames ({m.get('frames')}) for a block-bootstrap interval: no verdict "
                         f"(centred cosine {m['centred_cos']:.3f} vs {b['centred_cos']:.3f}).")
            continue
        outcome = judge(Estimate(m["centred_cos"], *ci_m), Estimate(b["centred_cos"], *ci_b))
        words = {1: "beats the per-position-mean baseline", -1: "is worse than the per-position-mean baseline"}.get(
            outcome, "shows no difference from the per-position-mean baseline at this budget")
        how = f", 95 % {m['interval']}" if over_seeds else ""
        parts.append(f"On {name} the model {words} (centred cosine {m['centred_cos']:.3f} [{ci_m[0]:.3f}, {ci_m[1]:.3f}]{how} vs "
                     f"{b['centred_cos']:.3f} [{ci_b[0]:.3f}, {ci_b[1]:.3f}]); retrieval top-1 {m['top1']:.3f} "
                     f"(chance {m['chance_top1']:.3f}).")
    return " ".join(parts)
