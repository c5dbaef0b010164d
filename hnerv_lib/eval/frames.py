"""Per-frame evaluation on seen (train) and unseen (validation) frames: PSNR, SSIM, MS-SSIM, CLIP similarity.

A split that selects no validation frame (e.g. HNeRV's ``9_10_10``) gets no validation metric at all:
the summary omits it instead of printing a mean over zero frames.
"""

from __future__ import annotations

from typing import Callable, Optional

import pandas as pd
import torch
from torch import nn

from hnerv_lib.data.split import SplitIndices
from hnerv_lib.eval.metrics import cosine_similarity, ms_ssim, psnr, ssim


@torch.no_grad()
def score_frames(reconstruct: Callable, frames: torch.Tensor, targets: Optional[torch.Tensor], split: SplitIndices,
                 batch_size: int = 8) -> pd.DataFrame:
    """One row per train/val frame: frame, split, psnr, ssim, ms_ssim, clip_sim (NaN without CLIP).

    ``reconstruct(frame_ids) -> (rgb (B, 3, H, W), clip (B, N, D) or None)`` is the thing scored: a trained
    model through its task, or a compressed file's decoder.
    """
    rows, ids, roles, note = [], torch.as_tensor(split.train + split.val, dtype=torch.long), split.roles(), ""
    for start in range(0, len(ids), batch_size):
        frame_ids = ids[start : start + batch_size].to(frames.device)
        rgb, clip = reconstruct(frame_ids)
        truth = frames[frame_ids]
        rgb = rgb.to(truth.device)
        p, s, ms = psnr(rgb, truth), ssim(rgb, truth), ms_ssim(rgb, truth)
        note = ms.note
        sim = (cosine_similarity(clip.to(truth.device), targets[frame_ids]).mean(-1)
               if clip is not None and targets is not None else torch.full((len(frame_ids),), float("nan")))
        for k, f in enumerate(frame_ids.tolist()):
            rows.append({"frame": f, "split": roles[f], "psnr": p[k].item(), "ssim": s[k].item(),
                         "ms_ssim": ms.value[k].item(), "clip_sim": sim[k].item()})
    df = pd.DataFrame(rows).sort_values("frame").reset_index(drop=True)
    df.attrs["ms_ssim_note"] = note  # says when MS-SSIM fell back to SSIM on small frames
    return df


def evaluate_frames(task, model: nn.Module, split: SplitIndices, batch_size: int = 8) -> pd.DataFrame:
    """``score_frames`` of a model through its task (full-frame or patch), in eval mode."""
    was_training = model.training
    model.eval()
    try:
        return score_frames(lambda ids: task.reconstruct(model, ids), task.frames, task.targets, split, batch_size)
    finally:
        model.train(was_training)


def summarize(frames: pd.DataFrame) -> dict[str, float]:
    """Means per split, e.g. ``psnr_train``, ``clip_val``; a split with no frames gets no key."""
    out: dict[str, float] = {}
    for role in ("train", "val"):
        part = frames[frames["split"] == role]
        if len(part) == 0:
            continue  # never report a metric over zero frames
        out[f"psnr_{role}"] = float(part["psnr"].mean())
        out[f"ssim_{role}"] = float(part["ssim"].mean())
        out[f"ms_ssim_{role}"] = float(part["ms_ssim"].mean())
        if part["clip_sim"].notna().any():
            out[f"clip_{role}"] = float(part["clip_sim"].mean())
    return out

