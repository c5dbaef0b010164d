"""Evaluating a trained patch model: per-patch scores, seams, overlapped and continuous decoding, speed.

The full-frame comparison number is the PSNR of the *stitched* frame (``evaluate.evaluate_frames``);
the fork's reported number was a mean of per-patch PSNRs, which is higher (``per_patch_table``).
Everything here takes the :class:`~hnerv_lib.train.families.PatchTask` the model was trained with.
"""

from __future__ import annotations

from typing import Optional

import pandas as pd
import torch
from torch import nn

from hnerv_lib.data import geometry as G
from hnerv_lib.eval.unseen import test_time_input
from hnerv_lib.models.decoding import decode_patch_frames
from hnerv_lib.data.split import SplitIndices
from hnerv_lib.data.targets import targets_for_windows
from hnerv_lib.data.teacher import TeacherSpec
from hnerv_lib.eval.metrics import cosine_similarity, psnr, psnr_from_mse
from hnerv_lib.utils.timing import MIN_REPEATS, time_call


def _eval_mode(model: nn.Module) -> bool:
    """Switch ``model`` to eval; returns its previous training flag (restored by the caller)."""
    was = model.training
    model.eval()
    return was


@torch.no_grad()
def decode_stitched(task, model: nn.Module, frame_ids: torch.Tensor, windows: Optional[list[G.Window]] = None,
                    blend: str = "uniform", batch_frames: int = 8) -> torch.Tensor:
    """Frames (B, 3, H, W) on CPU decoded at ``windows`` (default: the training grid) and stitched with ``blend``."""
    windows = task.windows if windows is None else windows
    was, out = _eval_mode(model), []
    for start in range(0, len(frame_ids), batch_frames):
        ids = frame_ids[start : start + batch_frames].cpu()
        out.append(decode_patch_frames(model, ids, task.num_frames, windows, task.frame_hw, blend)["rgb"])
    model.train(was)
    return torch.cat(out)


@torch.no_grad()
def per_patch_table(task, model: nn.Module, split: SplitIndices, batch_frames: int = 8) -> pd.DataFrame:
    """One row per (frame, grid patch) of the train and val frames: frame, patch, row, col, split, psnr, clip_sim
    and the test-time input (what the model saw of the frame)."""
    was, rows, roles = _eval_mode(model), [], split.roles()
    unseen_input = test_time_input("patch")
    ids = torch.as_tensor(sorted(split.train + split.val), dtype=torch.long)
    cols = max(w.left for w in task.windows) // task.windows[0].width + 1
    for start in range(0, len(ids), batch_frames):
        f = ids[start : start + batch_frames].to(task.frames.device)
        rgb, clip = task.decode_patches(model, task.coords[f])
        truth = task.patches[f]
        p = psnr(rgb.flatten(0, 1), truth.flatten(0, 1)).view(len(f), -1).cpu()
        sim = (cosine_similarity(clip, task.targets[f]).cpu() if clip is not None and task.targets is not None
               else torch.full(p.shape, float("nan")))
        for i, frame in enumerate(f.tolist()):
            for k in range(task.n):
                rows.append({"frame": frame, "patch": k, "row": k // cols, "col": k % cols, "split": roles[frame],
                             "psnr": p[i, k].item(), "clip_sim": sim[i, k].item(),
                             "test-time input": unseen_input if roles[frame] == "val" else "seen in training"})
    model.train(was)
    return pd.DataFrame(rows)


def error_map(recon: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per-pixel squared error (T, H, W), averaged over the colour channels."""
    return (recon.float().cpu() - truth.float().cpu()).pow(2).mean(1)


def seam_metrics(recon: torch.Tensor, truth: torch.Tensor, windows: list[G.Window], k: int) -> dict[str, float]:
    """MSE and PSNR within ``k`` px of inner patch borders vs the rest (interior), and their ratio.

    ``ratio`` = border MSE / interior MSE: 1 means no seam penalty, 2 means borders err twice as much
    (``psnr_gap_db`` = 10 log10(ratio), interior PSNR minus border PSNR).
    """
    err = error_map(recon, truth)
    mask = G.border_mask(windows, tuple(err.shape[-2:]), k)
    if not mask.any() or mask.all():
        raise ValueError(f"seam_metrics: k={k} leaves no border or no interior pixel in {tuple(err.shape[-2:])}")
    border, interior = err[:, mask].mean(), err[:, ~mask].mean()
    ratio = (border / interior).item() if interior > 0 else float("inf")
    return {"k": k, "border_frac": mask.float().mean().item(), "mse_border": border.item(),
            "mse_interior": interior.item(), "psnr_border": psnr_from_mse(border).item(),
            "psnr_interior": psnr_from_mse(interior).item(), "ratio": ratio,
            "psnr_gap_db": psnr_from_mse(interior).item() - psnr_from_mse(border).item()}


def overlap_windows(patch_hw: tuple[int, int], frame_hw: tuple[int, int], overlap: float = 0.5) -> list[G.Window]:
    """Patch-sized sliding windows sharing ``overlap`` of their side with each neighbour (0.5: stride = patch / 2)."""
    stride = tuple(max(round(s * (1 - overlap)), 1) for s in patch_hw)
    return G.Sliding(size=tuple(patch_hw), stride=stride).windows(frame_hw)


def decode_speed(task, model: nn.Module, frame_ids: torch.Tensor, windows: Optional[list[G.Window]] = None,
                 blend: str = "uniform", repeats: int = MIN_REPEATS, batch_frames: int = 8) -> dict[str, float]:
    """Decoding throughput (median of ``repeats`` after a warm-up, utils/timing.py): patches/s of the model
    and frames/s including the stitch, with the interquartile range of the seconds."""
    windows = task.windows if windows is None else windows
    timing, _ = time_call(lambda: decode_stitched(task, model, frame_ids, windows, blend, batch_frames), max(repeats, 1))
    seconds = timing.median_s
    n = len(frame_ids) * len(windows)
    return {"windows_per_frame": len(windows), "frames": len(frame_ids), "seconds": seconds,
            "patches_per_s": n / seconds, "frames_per_s": len(frame_ids) / seconds,
            "ms_per_frame": 1e3 * seconds / len(frame_ids), "seconds_iqr": timing.iqr_s}


def overlap_comparison(task, model: nn.Module, frame_ids: torch.Tensor, k: int, overlap: float = 0.5,
                       repeats: int = MIN_REPEATS) -> pd.DataFrame:
    """Plain grid decoding vs overlapped decoding blended with a Hann window: PSNR, seam ratio, decode cost."""
    truth = task.frames[frame_ids.to(task.frames.device)].cpu()
    dense = overlap_windows(task.cfg.patch_hw, task.frame_hw, overlap)
    rows = []
    for name, windows, blend in [("grid", task.windows, "uniform"), (f"overlap {overlap:g}, hann", dense, "hann")]:
        timing, recon = time_call(lambda: decode_stitched(task, model, frame_ids, windows, blend), max(repeats, 1))
        seconds = timing.median_s
        seam = seam_metrics(recon, truth, task.windows, k)  # seams of the *grid*: where plain decoding cuts
        rows.append({"decoding": name, "windows_per_frame": len(windows),
                     "psnr": psnr(recon, truth).mean().item(), "psnr_border": seam["psnr_border"],
                     "psnr_interior": seam["psnr_interior"], "seam_ratio": seam["ratio"],
                     "ms_per_frame": 1e3 * seconds / len(frame_ids), "frames_per_s": len(frame_ids) / seconds})
    df = pd.DataFrame(rows)
    df["psnr_gain_db"] = df["psnr"] - df["psnr"].iloc[0]
    df["decode_cost_x"] = df["ms_per_frame"] / df["ms_per_frame"].iloc[0]
    return df


def shifted_queries(windows: list[G.Window], frame_hw: tuple[int, int], offset: float,
                    direction: tuple[float, float] = (1.0, 0.0)) -> tuple[list[int], torch.Tensor, list[G.Window]]:
    """Continuous queries between grid centres: each grid centre moved by ``offset`` patches along ``direction``.

    Returns the grid indices used (those with a neighbour one full step along ``direction``, so every
    offset in [0, 1] uses the same set), the exact (N, 2) normalized centres fed to the model, and the
    pixel windows scored against them (``geometry.window_at``: top-left rounded to the nearest pixel).
    """
    (h, w), (dx, dy) = frame_hw, direction
    base, centres, wins = [], [], []
    for i, win in enumerate(windows):
        cx, cy = win.center_xy(frame_hw)
        step = (dx * win.width / w, dy * win.height / h)
        try:
            G.window_at((cx + step[0], cy + step[1]), (win.height, win.width), frame_hw)  # room for a full step
        except ValueError:
            continue
        c = (cx + offset * step[0], cy + offset * step[1])
        base.append(i)
        centres.append(c)
        wins.append(G.window_at(c, (win.height, win.width), frame_hw))
    if not base:
        raise ValueError(f"no grid window has a neighbour along direction {direction} in a {h}x{w} frame")
    return base, torch.tensor(centres, dtype=torch.float32), wins


def query_targets(video, frame_ids: torch.Tensor, windows: list[G.Window], spec: TeacherSpec,
                  batch_size: int = 64, progress: bool = False, cache_dir=None) -> torch.Tensor:
    """Teacher embeddings (F, N, D) of exactly ``windows`` of the frames ``frame_ids`` (cached in
    ``cache_dir`` when given)."""
    sub = type(video)(video.frames[frame_ids.cpu()], f"{video.key}[{','.join(map(str, frame_ids.tolist()))}]", video.meta)
    return targets_for_windows(sub, windows, spec, batch_size=batch_size, progress=progress, cache_dir=cache_dir).emb


@torch.no_grad()
def continuous_query_table(task, model: nn.Module, video, split: SplitIndices, frame_ids: torch.Tensor,
                           offsets: list[float], spec: Optional[TeacherSpec] = None,
                           direction: tuple[float, float] = (1.0, 0.0), batch_size: int = 64,
                           cache_dir=None) -> pd.DataFrame:
    """Decode at fractional centres; PSNR vs exactly those pixels, CLIP sim vs the teacher on those windows
    (their embeddings cached in ``cache_dir`` when given).

    One row per (offset, frame, base patch): offset, frame, split, patch, left, top, psnr, clip_sim, test-time input.
    ``spec`` None skips the CLIP column (NaN); ``video`` holds the uint8 frames the task was built from.
    """
    was, rows, roles = _eval_mode(model), [], split.roles()
    unseen_input = test_time_input("patch")
    f = frame_ids.cpu()
    for offset in offsets:
        base, centres, wins = shifted_queries(task.windows, task.frame_hw, offset, direction)
        coords = G.coords_at(f, task.num_frames, centres)
        rgb, clip = task.decode_patches(model, coords.to(task.frames.device))
        truth = G.extract(task.frames[f.to(task.frames.device)], wins).cpu()
        p = psnr(rgb.cpu().flatten(0, 1), truth.flatten(0, 1)).view(len(f), -1)
        sim = torch.full(p.shape, float("nan"))
        if spec is not None and clip is not None:
            sim = cosine_similarity(clip.cpu(), query_targets(video, f, wins, spec, batch_size, cache_dir=cache_dir))
        for i, frame in enumerate(f.tolist()):
            for j, (k, win) in enumerate(zip(base, wins)):
                rows.append({"offset": offset, "frame": frame, "split": roles[frame], "patch": k,
                             "left": win.left, "top": win.top, "psnr": p[i, j].item(), "clip_sim": sim[i, j].item(),
                             "test-time input": unseen_input if roles[frame] == "val" else "seen in training"})
    model.train(was)
    return pd.DataFrame(rows)
