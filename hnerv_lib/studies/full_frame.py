"""The full-frame HNeRV + CLIP map study (notebook 01): train over seeds, inspect, verify, compress.

The first seed's run is inspected (curves, reconstructions, the CLIP map per patch, the embedding
space, per-frame quality) and compressed into its ``.hnerv`` file, which is decoded and scored by the
same evaluation as the float model; quality numbers are means over every seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

from hnerv_lib.codec.decode import decoding_speed, reconstructor
from hnerv_lib.codec.quantise import QuantConfig
from hnerv_lib.eval.clip_metrics import clip_verdict
from hnerv_lib.eval.frames import score_frames, summarize
from hnerv_lib.eval.unseen import test_time_input
from hnerv_lib.studies import training
from hnerv_lib.studies.outputs import Figure, Output, Table, Text
from hnerv_lib.studies.plots import legend_outside, map_panel, shared_max
from hnerv_lib.studies.seeds import seed_configs
from hnerv_lib.train.config import TrainConfig
from hnerv_lib.train.launch import train_first

PREFIX = "01"
VERDICT_WHAT = "Verdict generated from the full-frame tables"
FAMILY = "full"


@dataclass
class FullFrameResults:
    """Everything notebook 01 shows (tests build it from small tensors)."""

    trained: training.Trained
    frames: pd.DataFrame  # per-frame scores of the float model (first seed): frame, split, psnr, clip_sim, ...
    shown: list[int]  # frames drawn beside their reconstructions
    truth: torch.Tensor  # (S, 3, H, W) those frames
    decoded: torch.Tensor  # (S, 3, H, W) their reconstructions
    roles: dict[int, str]  # frame -> "train" | "val" | ...
    clip: Optional[torch.Tensor]  # (T, N, D) predicted CLIP embeddings of every frame (None without a head)
    targets: Optional[torch.Tensor]  # (T, N, D) the teacher's
    verification: Optional[pd.DataFrame]  # training.verification's table
    split_ids: dict[str, list[int]]  # "train" / "val" -> frame indices
    grid: tuple[int, int]
    file: dict  # the compressed file: bytes, bpp, bpp_no_clip, bpp_file, frames_per_s
    decoded_scores: dict  # summarize() of the frames decoded from the file
    kind: str = "hnerv"  # the model kind (hnerv, nerv): what it sees of an unseen frame

    @property
    def provenance(self):
        return self.trained.provenance()


def plan(params: Any) -> list[TrainConfig]:
    """The profile's full-frame model under each seed."""
    return seed_configs(params.train_config(FAMILY), params.seeds)


def shown_frames(train: list[int], val: list[int], n: int) -> list[int]:
    """Up to ``n`` frames to draw: two training frames spread over the video, then the first unseen ones."""
    return sorted(set(train[:: max(len(train) // 2, 1)][:2] + val[:2]))[:n]


def run(params: Any) -> FullFrameResults:
    """Train (or reuse) every seed, then inspect and compress the first seed's model."""
    train_first(plan(params), params.run_root, params.launcher(), params.cache_dir)  # as jobs, if asked
    trained, first = training.train_seeds(params, FAMILY)  # and times an epoch alone
    model, cfg, s = training.setup_of(first, params)
    split = s.split
    shown = shown_frames(split.train, split.val, params.show_frames)
    with torch.no_grad():
        rgb, _ = s.task.reconstruct(model, torch.tensor(shown))
        _, clip = s.task.reconstruct(model, torch.arange(s.task.num_frames))
    targets = None if s.task.targets is None else s.task.targets.cpu()
    table = None if targets is None else training.verification_over_seeds(
        params, FAMILY, training.verification(clip, targets, split, cfg.model_config().kind))
    qcfg = QuantConfig(model_bits=params.model_bits, embed_bits=params.embed_bits)
    stats = first.compress(qcfg=qcfg, cache_dir=params.cache_dir, device=params.device)
    frames = s.task.frames.cpu()
    decoded = summarize(score_frames(reconstructor(first.compressed_path, cfg.clip_sample), frames, targets, split))
    file = {"bytes": stats.file_bytes, "bpp": stats.bpp, "bpp_no_clip": stats.bpp_no_clip, "bpp_file": stats.bpp_file,
            "frames_per_s": decoding_speed(first.compressed_path)["frames_per_s"]}
    return FullFrameResults(trained=trained, frames=first.frames(), shown=shown, truth=frames[shown],
                            decoded=rgb.cpu(), roles=split.roles(), clip=None if clip is None else clip.cpu(),
                            targets=targets, verification=table, split_ids={"train": split.train, "val": split.val},
                            grid=tuple(params.grid), file=file, decoded_scores=decoded, kind=cfg.model_config().kind)


def table(results: FullFrameResults) -> pd.DataFrame:
    """The headline: quality over seeds beside the decoded file's, size, speed (quantity, value)."""
    R, summary = results, results.trained.summary
    model_keys = list(summarize(R.frames))
    seeds = R.trained.over_seeds(model_keys)
    f = R.file
    rows = [{"quantity": "parameters (all / decoder)", "value": f"{summary['params']} / {summary['params_decoder']}"},
            {"quantity": "seconds per epoch (timed alone)", "value": training.speed_text(R.trained.speed)},
            {"quantity": "file size (bytes)", "value": f["bytes"]},
            {"quantity": "bits per pixel (HNeRV's count / without CLIP head / whole file)",
             "value": f"{f['bpp']:.4f} / {f['bpp_no_clip']:.4f} / {f['bpp_file']:.4f}"},
            {"quantity": "decoding speed (frames/s)", "value": f"{f['frames_per_s']:.1f}"},
            {"quantity": "unseen (val) frames: test-time input", "value": test_time_input(R.kind)}]
    for key in model_keys:
        rows.append({"quantity": f"{key}: float model over {R.trained.seeds} seed(s) / decoded file "
                                 f"(seed {R.trained.cfg.seed})",
                     "value": f"{seeds.loc[key, 'mean [95 % CI]']} / {R.decoded_scores.get(key, float('nan')):.4f}"})
    return pd.DataFrame(rows)


def verdict(results: FullFrameResults) -> str:
    """Quality over seeds, what quantisation costs, and the CLIP verification's sentence."""
    R = results
    seeds = R.trained.over_seeds(["psnr_train", "psnr_val"])
    said = [f"Over {R.trained.seeds} training seed(s) the full-frame model reaches "
            f"{seeds.loc['psnr_train', 'mean [95 % CI]']} dB on seen frames"]
    if "psnr_val" in seeds.index:
        said.append(f" and {seeds.loc['psnr_val', 'mean [95 % CI]']} dB on unseen ones, with HNeRV's encoder fed "
                    "each unseen frame (access to the frame, not generalisation; notebook 05 compares fairly)")
    quant = R.decoded_scores.get("psnr_train", float("nan"))
    first = R.frames.loc[R.frames["split"] == "train", "psnr"].mean()
    said.append(f". Its {R.file['bpp']:.4f} bpp file decodes seen frames at {quant:.2f} dB ({quant - first:+.2f} dB "
                f"against the float model of seed {R.trained.cfg.seed}).")
    said.append(f" CLIP: {clip_verdict(R.verification)}" if R.verification is not None else " No CLIP head was trained.")
    return "".join(said)


def _reconstructions_figure(R: FullFrameResults):
    scores = R.frames.set_index("frame")["psnr"]
    errors = [(p - t).pow(2).mean(0).sqrt() for p, t in zip(R.decoded, R.truth)]  # RMS over RGB per pixel
    vmax = shared_max(errors)
    fig, axes = plt.subplots(len(R.shown), 3, figsize=(13, 2.3 * len(R.shown)), squeeze=False)
    for row, f in enumerate(R.shown):
        for ax, img, title in zip(axes[row, :2], [R.truth[row], R.decoded[row]],
                                  [f"frame {f} ({R.roles[f]}): ground truth", f"decoded, {scores.loc[f]:.2f} dB"]):
            ax.imshow(img.permute(1, 2, 0).numpy())
            ax.set_title(title, fontsize=9)
            ax.axis("off")
        map_panel(fig, axes[row, 2], errors[row], vmax)
        axes[row, 2].set_title("error (one scale for all rows)", fontsize=9)
    return fig


def embedding_figure(clip: torch.Tensor, targets: torch.Tensor):
    """Predicted (o) and teacher (x) embeddings on the first two principal components of both, coloured by
    patch position and by frame."""
    both = torch.cat([clip.flatten(0, 1), targets.flatten(0, 1)])
    xy = both @ torch.pca_lowrank(both, q=2)[2][:, :2]
    n = clip.shape[0] * clip.shape[1]
    patch_id = torch.arange(clip.shape[1]).repeat(clip.shape[0])
    time_id = torch.arange(clip.shape[0]).repeat_interleave(clip.shape[1])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, colour, name, cmap in [(axes[0], patch_id, "patch position", "tab10"), (axes[1], time_id, "frame", "viridis")]:
        ax.scatter(xy[n:, 0], xy[n:, 1], c=colour, cmap=cmap, marker="x", s=14, label="teacher")
        ax.scatter(xy[:n, 0], xy[:n, 1], c=colour, cmap=cmap, marker="o", s=8, alpha=0.6, label="network")
        ax.set_title(f"PCA of embeddings, coloured by {name}", fontsize=9)
        ax.legend(fontsize=8)
    return fig


def _per_frame_figure(frames: pd.DataFrame):
    fig, axes = plt.subplots(1, 2, figsize=(13, 3))
    sns.scatterplot(data=frames, x="frame", y="psnr", hue="split", ax=axes[0], s=18)
    sns.scatterplot(data=frames, x="frame", y="clip_sim", hue="split", ax=axes[1], s=18)
    axes[0].set_title("PSNR per frame")
    axes[0].set_ylabel("PSNR (dB)")
    axes[1].set_title("CLIP similarity per frame (mean over patches)")
    axes[1].set_ylabel("mean cosine (raw)")
    for ax in axes:
        legend_outside(ax, title="split")
    fig.tight_layout()
    return fig


def outputs(results: FullFrameResults) -> list[Output]:
    """Notebook 01's tables, figures and lines, by name."""
    R, T = results, results.trained
    s = T.summary
    clip = [] if R.clip is None or R.targets is None else [
        Figure("01_clip_map", "Predicted CLIP embedding (sampled at patch centres) vs target",
               lambda: training.clip_map_figure(R.clip, R.targets, R.split_ids, R.grid)),
        Figure("01_embedding_space", "Predicted (o) and teacher (x) CLIP embeddings, first two principal components",
               lambda: embedding_figure(R.clip, R.targets))]
    return [
        Text("01_run", f"run {T.run_dir} | {s['params']} parameters | {s['split']} | teacher: {s['teacher']}"),
        Table("01_run", training.headline_numbers(s), "", None, save=False),
        training.curves_output("01_curves", T, "pixel loss", "PSNR (dB)", "Full-frame training curves"),
        Figure("01_reconstructions", "Ground truth, reconstruction and error map", lambda: _reconstructions_figure(R)),
        *(clip or [Text("01_clip_map", "predict_clip is off: no CLIP head, no CLIP map")]),
        *training.verification_outputs("01_clip_verification", R.verification),
        Figure("01_per_frame", "Per-frame PSNR and CLIP similarity", lambda: _per_frame_figure(R.frames)),
        Table("01_full_frame", table(R), f"Full-frame HNeRV + CLIP: quality (mean over {T.seeds} training seed(s), "
              "95 % Student-t interval over seeds in brackets when there are several), size and speed "
              f"(seed {T.cfg.seed})", None),
        training.seeds_output("01_seeds", T, list(summarize(R.frames)), "Full-frame model"),
    ]
