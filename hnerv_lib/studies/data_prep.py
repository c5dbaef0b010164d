"""Data preparation (notebook 00): frames decoded once and cached, the patch geometry, the split, and the
per-patch CLIP targets, each computed from exactly the pixels of one training patch.

``run`` loads frames and targets twice, so the report shows that the second call is a cache hit; it also
checks that stitching the grid's patches gives back the frames exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

from hnerv_lib.data import geometry
from hnerv_lib.data.targets import clip_targets, measure_extraction_speed
from hnerv_lib.data.video import load_video
from hnerv_lib.eval.clip_metrics import saturation_note, target_diversity
from hnerv_lib.studies.outputs import Figure, Output, Provenance, Table, Text

PREFIX = "00"
VERDICT_WHAT = "What the prepared data is (generated from the tables above)"
NO_TEACHER = "(not used)"  # the frame, geometry and split figures involve no teacher


@dataclass
class DataPrepResults:
    """Everything notebook 00 shows (tests build it from small tensors)."""

    video: Any  # the loaded Video: frames (T, 3, H, W) uint8, frame_hw, describe(), key, meta
    split: Any  # SplitIndices of the video
    grid: tuple[int, int]
    grid_windows: list  # geometry.Window of the CLIP grid
    sliding: Any  # the overlapping-window geometry (size, stride)
    slide_windows: list
    targets: torch.Tensor  # (T, N, D) CLIP targets
    teacher: str  # the teacher actually used, described
    crop: Any  # the centre crop, or None
    seconds: dict  # frames / targets: first and cached call
    speed: dict  # CLIP extraction: device, patches_per_s
    strip_frames: int

    @property
    def provenance(self) -> Provenance:
        return Provenance(self.video.describe(), self.teacher, split=self.split.describe())


def plan(params: Any) -> list:
    """No training run: the study decodes frames and computes targets only."""
    return []


def _twice(load):
    """(value, seconds of the first call, seconds of the second): the second must be a cache hit."""
    t0 = time.perf_counter()
    load()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    value = load()
    return value, first, time.perf_counter() - t0


def run(params: Any) -> DataPrepResults:
    """Decode (or read) the frames and compute (or read) the CLIP targets, each twice; time the teacher."""
    P = params
    video, frames_first, frames_cached = _twice(lambda: load_video(P.video_spec(), P.cache_dir))
    grid_windows = P.geometry().windows(video.frame_hw)
    if not torch.equal(geometry.stitch(geometry.extract(video.frames, grid_windows), grid_windows, video.frame_hw),
                       video.frames):
        raise RuntimeError(f"the {P.grid} grid does not tile the {video.frame_hw} frames: stitch(extract(frames)) != frames")
    targets, targets_first, targets_cached = _twice(lambda: clip_targets(
        video, P.geometry(), P.teacher_spec(), cache_dir=P.cache_dir, device=P.device, batch_size=P.clip_batch))
    sliding = P.sliding()
    return DataPrepResults(
        video=video, split=P.split_rule().indices(video.num_frames), grid=tuple(P.grid), grid_windows=grid_windows,
        sliding=sliding, slide_windows=sliding.windows(video.frame_hw), targets=targets.emb,
        teacher=targets.describe_teacher(), crop=P.crop,
        seconds={"frames": (frames_first, frames_cached), "targets": (targets_first, targets_cached)},
        speed=measure_extraction_speed(P.teacher_spec(), n=P.speed_patches, batch_size=P.clip_batch, device=P.device),
        strip_frames=P.strip_frames)


def table(results: DataPrepResults) -> pd.DataFrame:
    """The headline: what was prepared and what it cost (quantity, value)."""
    R, v = results, results.video
    (f1, f2), (t1, t2) = R.seconds["frames"], R.seconds["targets"]
    return pd.DataFrame([
        {"quantity": "frames", "value": v.num_frames},
        {"quantity": "frame size (H x W)", "value": "x".join(map(str, v.frame_hw))},
        {"quantity": "centre crop", "value": "x".join(map(str, R.crop)) if R.crop else "none"},
        {"quantity": "split", "value": R.split.describe()},
        {"quantity": "patches per frame", "value": len(R.grid_windows)},
        {"quantity": "CLIP teacher", "value": R.teacher},
        {"quantity": "targets shape", "value": str(tuple(R.targets.shape))},
        {"quantity": "frame load, first / cached (s)", "value": f"{f1:.2f} / {f2:.3f}"},
        {"quantity": "targets, first / cached call (s)", "value": f"{t1:.2f} / {t2:.3f}"},
        {"quantity": f"CLIP extraction on {R.speed['device']} (patches/s)", "value": f"{R.speed['patches_per_s']:.1f}"},
    ])


def diversity(results: DataPrepResults) -> pd.DataFrame:
    """How different the targets are from each other, and what that means for judging CLIP predictions."""
    d = target_diversity(results.targets)
    return pd.DataFrame([{**{k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()},
                          "reading": saturation_note(d)}])


def verdict(results: DataPrepResults) -> str:
    R = results
    return (f"{R.video.num_frames} frames of {R.video.frame_hw[0]}x{R.video.frame_hw[1]} ({R.split.describe()}), "
            f"{len(R.grid_windows)} CLIP patches per frame, targets {tuple(R.targets.shape)} from {R.teacher}. "
            f"{diversity(R)['reading'].iloc[0]}")


def _strip_figure(R: DataPrepResults):
    v = R.video
    shown = torch.linspace(0, v.num_frames - 1, min(R.strip_frames, v.num_frames)).long()
    fig, axes = plt.subplots(1, len(shown), figsize=(2.2 * len(shown), 1.6), squeeze=False)
    for ax, i in zip(axes[0], shown):
        ax.imshow(v.frames[i].permute(1, 2, 0).numpy())
        ax.set_title(f"frame {int(i)} ({R.split.split.role(int(i))})", fontsize=8)
        ax.axis("off")
    return fig


def _geometry_figure(R: DataPrepResults):
    v, hw = R.video, R.video.frame_hw
    fig, axes = plt.subplots(1, 2, figsize=(11, 3))
    panels = [(axes[0], R.grid_windows, f"grid {R.grid[0]}x{R.grid[1]}: {len(R.grid_windows)} patches", True),
              (axes[1], R.slide_windows, f"windows {R.sliding.size[0]} px, stride {R.sliding.stride[0]}: "
                                         f"{len(R.slide_windows)}", False)]
    for ax, wins, title, numbered in panels:
        ax.imshow(v.frames[0].permute(1, 2, 0).numpy())
        colors = plt.cm.tab10((torch.arange(len(wins)) % 10).numpy())
        for k, (w, c) in enumerate(zip(wins, colors)):
            ax.add_patch(plt.Rectangle((w.left - 0.5, w.top - 0.5), w.width, w.height, fill=False, lw=1.5, ec=c))
            x, y = w.center_xy(hw)
            ax.plot(x * hw[1] - 0.5, y * hw[0] - 0.5, "o", ms=3, color=c)
            if numbered:
                ax.text(w.left + 1, w.top + 1, str(k), color="w", fontsize=8, va="top")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    return fig


def _split_figure(R: DataPrepResults):
    n = R.video.num_frames
    palette = {"train": "tab:blue", "val": "tab:orange", "unused": "0.8"}
    fig, ax = plt.subplots(figsize=(11, 1.1))
    ax.bar(range(n), 1, width=1.0, color=[palette[r] for r in R.split.roles()])
    ax.set_yticks([])
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_xlabel("frame index (after subsampling)")
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=c) for c in palette.values()],
              labels=[f"{k}: {v}" for k, v in R.split.counts().items()], ncol=3, fontsize=8, loc="upper right",
              bbox_to_anchor=(1, 1.6))
    return fig


def _similarity_figure(emb: torch.Tensor):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, sim, title, unit in [(axes[0], emb[0] @ emb[0].T, "patch x patch, frame 0", "patch"),
                                 (axes[1], emb[:, 0] @ emb[:, 0].T, "frame x frame, patch 0", "frame")]:
        sns.heatmap(sim.numpy(), ax=ax, cmap="viridis", square=True, cbar_kws={"shrink": 0.7})
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(unit)
        ax.set_ylabel(unit)
    return fig


def outputs(results: DataPrepResults) -> list[Output]:
    """Notebook 00's tables, figures and lines, by name."""
    R, v = results, results.video
    (f1, f2), (t1, t2) = R.seconds["frames"], R.seconds["targets"]
    no_teacher = replace(R.provenance, teacher=NO_TEACHER)
    d = diversity(R)
    return [
        Text("00_load", f"{v.describe()} | cache key {v.key}\nfirst load {f1:.2f} s (decode {v.meta['decode_seconds']} s "
                        f"when it was built), cached load {f2:.3f} s\n{R.split.describe()}"),
        Figure("00_frame_strip", "Evenly spaced frames", lambda: _strip_figure(R), provenance=no_teacher),
        Figure("00_geometry", "Patch grid (numbers = patch index) and overlapping windows on frame 0; dots are the "
               "normalized centres fed to the patch model", lambda: _geometry_figure(R), provenance=no_teacher),
        Text("00_geometry", "grid round trip: stitch(extract(frames)) == frames exactly"),
        Figure("00_split", "Frame roles under the split rule", lambda: _split_figure(R), provenance=no_teacher),
        Text("00_targets", f"teacher: {R.teacher}\ntargets {tuple(R.targets.shape)} (frames, patches, dim); first call "
                           f"{t1:.2f} s, cached call {t2:.3f} s"),
        Figure("00_target_similarity", "Cosine similarity of CLIP targets", lambda: _similarity_figure(R.targets)),
        Table("00_target_diversity", d, "Target diversity: mean pairwise cosine across frames (same position) and "
              "across positions (same frame); effective rank of the (frames x positions, 512) target matrix, raw and "
              "with each frame-mean removed", None),
        Text("00_target_diversity", d["reading"].iloc[0]),
        Table("00_data_prep", table(R), "Data preparation summary", None),
    ]
