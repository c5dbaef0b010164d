"""Text -> patches search over a video's CLIP embeddings: the network's predictions vs the teacher's targets.

The network's side reads its CLIP head only: no decoded pixels are passed through CLIP. Agreement with
the teacher's ranking is measured as recall@k (the share of the teacher's top k the network also puts in
its top k).
"""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F


def patch_scores(query: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """Cosine of a (D,) text embedding with every (T, N, D) patch embedding -> (T, N)."""
    if query.dim() != 1 or emb.dim() != 3 or emb.shape[-1] != query.shape[0]:
        raise ValueError(f"need a (D,) query and (T, N, D) embeddings; got {tuple(query.shape)} and {tuple(emb.shape)}")
    return F.normalize(emb.float(), dim=-1) @ F.normalize(query.float(), dim=0)


def top_patches(query: torch.Tensor, emb: torch.Tensor, k: int = 5) -> pd.DataFrame:
    """The k best (frame, patch) pairs for a query: rank, frame, patch, score."""
    scores = patch_scores(query, emb)
    k = min(k, scores.numel())
    best = scores.flatten().topk(k)
    n = scores.shape[1]
    return pd.DataFrame({"rank": range(1, k + 1), "frame": (best.indices // n).tolist(),
                         "patch": (best.indices % n).tolist(), "score": best.values.tolist()})


def top_frames(query: torch.Tensor, emb: torch.Tensor, k: int = 5) -> pd.DataFrame:
    """The k best frames, a frame scoring as its best patch: rank, frame, score."""
    scores = patch_scores(query, emb).max(dim=1).values
    best = scores.topk(min(k, scores.numel()))
    return pd.DataFrame({"rank": range(1, len(best.indices) + 1), "frame": best.indices.tolist(),
                         "score": best.values.tolist()})


def recall_at_k(query: torch.Tensor, net: torch.Tensor, teacher: torch.Tensor, k: int = 5, unit: str = "patch") -> float:
    """Share of the teacher's top-k (patches or frames) that the network's top-k also contains."""
    pick = top_patches if unit == "patch" else top_frames if unit == "frame" else None
    if pick is None:
        raise ValueError(f"unit must be 'patch' or 'frame'; got {unit!r}")
    cols = ["frame", "patch"] if unit == "patch" else ["frame"]
    ours = set(map(tuple, pick(query, net, k)[cols].values.tolist()))
    theirs = set(map(tuple, pick(query, teacher, k)[cols].values.tolist()))
    return len(ours & theirs) / len(theirs)


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks of a 1-D tensor, ties sharing their average rank (as Spearman's rho needs)."""
    x = x.double()
    order = x.argsort()
    ranks = torch.empty_like(x)
    ranks[order] = torch.arange(1, len(x) + 1, dtype=torch.float64)
    values, inverse = torch.unique(x, return_inverse=True)
    sums = torch.zeros(len(values), dtype=torch.float64).index_add_(0, inverse, ranks)
    counts = torch.zeros(len(values), dtype=torch.float64).index_add_(0, inverse, torch.ones_like(ranks))
    return (sums / counts)[inverse]


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two equally shaped score tensors (flattened); NaN when one is constant."""
    ra, rb = _ranks(a.flatten()), _ranks(b.flatten())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = (ra.norm() * rb.norm()).item()
    return float((ra @ rb).item() / den) if den > 0 else float("nan")


def ranking_agreement(query: torch.Tensor, emb: torch.Tensor, teacher: torch.Tensor, k: int = 5) -> dict[str, float]:
    """How well ``emb``'s ranking of every patch for a text query matches the teacher's: Spearman over all
    (frame, patch) scores and recall@k of the teacher's top-k patches."""
    return {"spearman": spearman(patch_scores(query, emb), patch_scores(query, teacher)),
            f"recall@{k}": recall_at_k(query, emb, teacher, k, "patch")}
