"""Unseen frames, compared on what each reconstruction may know at test time, beside the trivial baselines.

A frame held out of training (a validation frame of the split) can be reconstructed by

- **HNeRV, oracle**: the encoder is fed that very frame. This is what a ``.hnerv`` file allows (it
  stores every frame's embedding), but it is access to the frame, not generalisation;
- **HNeRV, interpolated**: the embedding blended linearly from the embeddings of the two nearest
  training frames (what a decoder that never saw the frame could have);
- **NeRV**: the frame index t only; **patch**: the coordinates (t, x, y) only;

and by two baselines without any network, which a reader computes first: the **nearest training
frame copied**, and a **linear blend of the two neighbouring training frames** (their pixels; for CLIP
their targets, renormalised). Every row names its ``test-time input``.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from hnerv_lib.data.split import SplitIndices
from hnerv_lib.eval.clip_metrics import block_bootstrap_ci, clip_table, default_block
from hnerv_lib.eval.metrics import psnr, ssim
from hnerv_lib.models.decoding import clip_at_windows, decode_frames_of

# What each protocol sees when it reconstructs an unseen frame: the `test-time input` column.
TEST_TIME_INPUT = {
    "HNeRV, oracle": "the unseen frame itself (encoder input)",
    "HNeRV, interpolated": "embeddings of the two neighbouring training frames, blended",
    "NeRV": "frame index t only",
    "patch": "patch coordinates (t, x, y) only",
    "nearest training frame": "the nearest training frame, copied (no network)",
    "neighbour blend": "the two neighbouring training frames, blended linearly (no network)",
}

# The protocol a model's own evaluation uses on unseen frames (HNeRV's encoder is fed the frame itself).
PROTOCOL_OF = {"hnerv": "HNeRV, oracle", "nerv": "NeRV", "patch": "patch"}


def test_time_input(kind: str) -> str:
    """What a model of ``kind`` (hnerv, nerv, patch) sees of an unseen frame in its own evaluation."""
    if kind not in PROTOCOL_OF:
        raise ValueError(f"unknown model kind {kind!r}; known: {list(PROTOCOL_OF)}")
    return TEST_TIME_INPUT[PROTOCOL_OF[kind]]


Reconstruct = Callable[[torch.Tensor], tuple[torch.Tensor, Optional[torch.Tensor]]]


def neighbours(num_frames: int, train: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For every frame index: the nearest training frames at or before (``lo``) and at or after (``hi``) it,
    and the weight ``w`` of ``hi`` in a linear blend. A training frame gets lo = hi = itself and w = 0; a
    frame before the first (after the last) training frame gets that frame alone."""
    train_ids = sorted({int(i) for i in train})
    if not train_ids or train_ids[0] < 0 or train_ids[-1] >= num_frames:
        raise ValueError(f"need training frames within 0..{num_frames - 1}; got {list(train)[:8]}")
    t, tr = torch.arange(num_frames), torch.tensor(train_ids)
    lo = tr[(torch.searchsorted(tr, t, right=True) - 1).clamp(min=0)]
    hi = tr[torch.searchsorted(tr, t).clamp(max=len(tr) - 1)]
    lo = torch.where(lo > t, hi, lo)  # before the first training frame
    hi = torch.where(hi < t, lo, hi)  # after the last
    w = torch.where(hi > lo, (t - lo).double() / (hi - lo).clamp(min=1).double(), torch.zeros((), dtype=torch.float64))
    return lo, hi, w


def interpolate(values: torch.Tensor, train: Sequence[int]) -> torch.Tensor:
    """``values`` (T, ...) with every frame replaced by the linear blend of its neighbouring training frames
    (training frames keep their own value)."""
    lo, hi, w = neighbours(values.shape[0], train)
    w = w.to(values.dtype if values.is_floating_point() else torch.float32).view(-1, *([1] * (values.dim() - 1)))
    v = values if values.is_floating_point() else values.float()
    return (1 - w) * v[lo] + w * v[hi]


def nearest(values: torch.Tensor, train: Sequence[int]) -> torch.Tensor:
    """``values`` (T, ...) with every frame replaced by its nearest training frame's (ties: the earlier)."""
    lo, hi, w = neighbours(values.shape[0], train)
    return values[torch.where(w <= 0.5, lo, hi)]


@torch.no_grad()
def hnerv_embeddings(model: nn.Module, frames: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """The HNeRV encoder's embedding (T, C, h, w) of every frame (float32, on the frames' device)."""
    if getattr(getattr(model, "cfg", None), "kind", None) != "hnerv":
        raise ValueError("hnerv_embeddings needs an HNeRV model (its encoder embeds frames)")
    device = next(model.parameters()).device
    parts = [model.embed(frames[i : i + batch_size].to(device)).float() for i in range(0, len(frames), batch_size)]
    return torch.cat(parts).to(frames.device)


def model_protocols(task, model: nn.Module) -> dict[str, Reconstruct]:
    """The reconstructions a trained model offers: HNeRV oracle and interpolated, or NeRV, or patch."""
    kind = model.cfg.kind
    if kind != "hnerv":
        return {"NeRV" if kind == "nerv" else "patch": lambda ids: task.reconstruct(model, ids)}
    blended = interpolate(hnerv_embeddings(model, task.frames), task.train_frames.tolist())

    def from_neighbours(ids: torch.Tensor):
        out = decode_frames_of(model, ids, task.num_frames, embeddings=blended)
        clip = clip_at_windows(out["clip"], task.windows, task.frame_hw, task.clip_sample) if out["clip"] is not None else None
        return out["rgb"], clip

    return {"HNeRV, oracle": lambda ids: task.reconstruct(model, ids), "HNeRV, interpolated": from_neighbours}


def baseline_protocols(frames: torch.Tensor, targets: Optional[torch.Tensor], train: Sequence[int]) -> dict[str, Reconstruct]:
    """Nearest training frame copied and neighbour blend, for pixels and (renormalised) CLIP targets."""
    pix = {"nearest training frame": nearest(frames, train), "neighbour blend": interpolate(frames, train)}
    emb: dict[str, Optional[torch.Tensor]] = {name: None for name in pix}
    if targets is not None:
        emb = {"nearest training frame": nearest(targets, train),
               "neighbour blend": F.normalize(interpolate(targets.float(), train), dim=-1)}
    return {name: (lambda ids, p=pix[name], e=emb[name]: (p[ids], e[ids] if e is not None else None)) for name in pix}


@torch.no_grad()
def unseen_table(protocols: dict[str, Reconstruct], frames: torch.Tensor, targets: Optional[torch.Tensor],
                 split: SplitIndices, batch_size: int = 8, n_boot: int = 200) -> pd.DataFrame:
    """One row per protocol on the unseen frames: its ``test-time input``, mean PSNR and SSIM with 95 %
    block-bootstrap intervals over frames, and the CLIP metrics that can fail (centred cosine with its
    interval, retrieval top-1 with chance) when there are targets and predictions."""
    if not split.val:
        raise ValueError("unseen_table needs a split with unseen (validation) frames; this one has none")
    unknown = [name for name in protocols if name not in TEST_TIME_INPUT]
    if unknown:
        raise ValueError(f"unknown protocol {unknown[0]!r}; known: {list(TEST_TIME_INPUT)}")
    val = torch.as_tensor(split.val)
    block = default_block(len(val))
    rows = []
    for name, reconstruct in protocols.items():
        rgb, clip = [], []
        for start in range(0, frames.shape[0], batch_size):
            ids = torch.arange(start, min(start + batch_size, frames.shape[0]))
            r, c = reconstruct(ids)
            rgb.append(r.float().cpu().clamp(0, 1))
            clip.append(c.float().cpu() if c is not None else None)
        rgb_all, truth = torch.cat(rgb), frames.float().cpu()
        p, s = psnr(rgb_all[val], truth[val]), ssim(rgb_all[val], truth[val])
        row = {"protocol": name, "test-time input": TEST_TIME_INPUT[name], "frames": len(val), "block": block,
               "psnr_val": float(p.mean()), **_ci("psnr_val", p, block, n_boot),
               "ssim_val": float(s.mean()), **_ci("ssim_val", s, block, n_boot)}
        if targets is not None and all(c is not None for c in clip):
            cm = clip_table(torch.cat(clip), targets.float().cpu(), split, n_boot=n_boot)
            m = cm[(cm["split"] == "val") & (cm["predictor"] == "model")].iloc[0]
            row.update({"clip_centred_val": m["centred_cos"], "clip_centred_val_lo": m["ci_low"],
                        "clip_centred_val_hi": m["ci_high"], "clip_top1_val": m["top1"],
                        "clip_chance_top1_val": m["chance_top1"]})
        rows.append(row)
    return pd.DataFrame(rows)


def _ci(name: str, values: torch.Tensor, block: int, n_boot: int) -> dict[str, float]:
    lo, hi = block_bootstrap_ci(values, block, n_boot)
    return {f"{name}_lo": lo, f"{name}_hi": hi}
