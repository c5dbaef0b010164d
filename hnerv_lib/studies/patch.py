"""The patch dual-head study (notebook 02): (t, x, y) -> RGB patch + CLIP vector, scored like a codec.

The first seed's model is scored the way the full-frame model is (PSNR of the stitched frame) beside the
fork's own number (mean of per-patch PSNRs), inspected at the seams between patches, decoded with
overlapping Hann-blended windows, queried between grid centres, and timed; quality numbers over every
seed come from the runs' summaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from hnerv_lib.data import geometry
from hnerv_lib.data.video import load_video
from hnerv_lib.eval import patches as PE
from hnerv_lib.eval.clip_metrics import clip_verdict
from hnerv_lib.eval.frames import evaluate_frames
from hnerv_lib.eval.metrics import psnr
from hnerv_lib.eval.unseen import test_time_input
from hnerv_lib.studies import training
from hnerv_lib.studies.outputs import Figure, Output, Table, Text
from hnerv_lib.studies.plots import legend_outside, map_panel, shared_max
from hnerv_lib.studies.seeds import seed_configs
from hnerv_lib.train.config import TrainConfig
from hnerv_lib.train.launch import train_first

PREFIX = "02"
VERDICT_WHAT = "Verdict generated from the patch-model tables"
FAMILY = "patch"
SEEN = "seen in training"
SEED_KEYS = ["psnr_train", "psnr_val", "clip_train", "clip_val"]


@dataclass
class Twin:
    """The patch model's twin (issue 15): its encoding, canvas or window pool changed at equal parameters,
    scored like it: one seed, first frames."""

    label: str  # training.patch_variant of its config: "trained on the grid alone, t encoding at 16 levels, ..."
    summary: dict  # its run summary (params, psnr_train, psnr_val, clip_train, ...)
    queries: pd.DataFrame  # per (split, offset): mean psnr and clip_sim
    seams: pd.DataFrame  # per split: seam metrics at the grid's borders
    error_maps: dict[str, torch.Tensor]  # split -> (H, W) mean squared error per pixel
    overlap: pd.DataFrame  # plain grid vs overlapped decoding
    slide: dict  # frame, lefts, truth / grid / twin: (S, 3, ph, pw) windows moved across the frame's top row


@dataclass
class PatchResults:
    """Everything notebook 02 shows (tests build it from small tensors and frames)."""

    trained: training.Trained
    patch_hw: tuple[int, int]
    patches_per_frame: int
    quality: pd.DataFrame  # per split: stitched-frame PSNR/SSIM, the fork's mean per-patch PSNR, CLIP
    per_patch: pd.DataFrame  # per (frame, patch): psnr, clip_sim, row, col, split
    verification: Optional[pd.DataFrame]  # CLIP metrics that can fail (None without a CLIP head)
    shown: list[int]  # frames drawn beside their stitched decodes
    shown_roles: list[str]
    truth: torch.Tensor  # (S, 3, H, W)
    decoded: torch.Tensor  # (S, 3, H, W) stitched decodes
    band: torch.Tensor  # (H, W) bool: the seam band
    seams: pd.DataFrame  # per split: seam metrics
    error_maps: dict[str, torch.Tensor]  # split -> (H, W) mean squared error per pixel
    queries: pd.DataFrame  # continuous queries: per (split, offset) mean psnr and clip_sim
    query_frames: int
    overlap: pd.DataFrame  # plain grid vs overlapped decoding
    overlap_example: dict  # frame, windows, plain, blended, truth: one frame both ways
    speed: dict  # decode speed (patches_per_s, frames_per_s, ms_per_frame), device, threads
    seam_k: int
    speed_repeats: int
    has_clip: bool
    clip: Optional[torch.Tensor] = None  # (T, N, D) predicted CLIP embeddings of every frame
    targets: Optional[torch.Tensor] = None  # (T, N, D) the teacher's
    split_ids: dict[str, list[int]] = field(default_factory=dict)  # "train" / "val" -> frame indices
    grid: tuple[int, int] = (2, 4)
    twin: Optional[Twin] = None  # the twin, when the profile asks for one

    @property
    def provenance(self):
        return self.trained.provenance()


def plan(params: Any) -> list[TrainConfig]:
    """The profile's patch model under each seed, and its twin (one seed) when there is one."""
    twin = twin_params(params)
    return [*seed_configs(params.train_config(FAMILY), params.seeds),
            *([twin.train_config(FAMILY)] if twin is not None else [])]


TWIN_KNOBS = {"window_pool": 0, "xy_levels": 0, "t_levels": 0, "canvas": 1}  # twin_<k> sets patch_<k>; this value: off


def twin_params(params: Any) -> Optional[Any]:
    """The parameters of the twin (one seed): the profile's patch model with the twin_* knobs in place of its
    patch_* knobs, at the preset's parameter count; None when every twin_* knob is off."""
    if all(getattr(params, f"twin_{k}") == off for k, off in TWIN_KNOBS.items()):
        return None
    return replace(params, seeds=1, **{f"patch_{k}": getattr(params, f"twin_{k}") for k in TWIN_KNOBS})


def pick(ids: list[int], n: int) -> list[int]:
    """``n`` evenly spaced entries of ``ids``."""
    return [ids[int(i)] for i in torch.linspace(0, len(ids) - 1, n).round().long()] if n > 0 and ids else []


def spread(train: list[int], val: list[int], n: int) -> list[int]:
    """``n`` frames: half of them unseen (as many as there are), the rest spread over the training frames."""
    n_val = min(n // 2, len(val))
    return pick(train, n - n_val) + pick(val, n_val)


def _role_rows(frames_df: pd.DataFrame, patches_df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for role in ("train", "val"):
        f, p = frames_df[frames_df.split == role], patches_df[patches_df.split == role]
        if len(f) == 0:
            continue  # no metric over zero frames
        rows.append({"frames": role, "count": len(f), "PSNR stitched frame": f.psnr.mean(), "SSIM": f.ssim.mean(),
                     "MS-SSIM": f.ms_ssim.mean(), "mean per-patch PSNR (fork's number)": p.psnr.mean(),
                     "CLIP sim": p.clip_sim.mean(), "test-time input": test_time_input("patch") if role == "val" else SEEN})
    out = pd.DataFrame(rows)
    out.attrs["ms_ssim_note"] = frames_df.attrs.get("ms_ssim_note", "")
    return out


def _seams(task, model, eval_ids: torch.Tensor, split, k: int) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
    recon = PE.decode_stitched(task, model, eval_ids)
    truth = task.frames[eval_ids.to(task.frames.device)].cpu()
    roles = np.array([split.split.role(int(f)) for f in eval_ids])
    rows, maps = [], {}
    for role in ("train", "val"):
        sel = torch.from_numpy(roles == role)
        if sel.any():
            rows.append({"frames": role, **PE.seam_metrics(recon[sel], truth[sel], task.windows, k),
                         "test-time input": test_time_input("patch") if role == "val" else SEEN})
            maps[role] = PE.error_map(recon[sel], truth[sel]).mean(0)
    return pd.DataFrame(rows), maps


def _queries(params: Any, cfg: TrainConfig, task, model, split, per_patch: pd.DataFrame, has_clip: bool):
    """Continuous queries by offset; offset 0 must score like the grid (the same pixels and targets)."""
    ids = torch.tensor(spread(split.train, split.val, params.query_frames))
    video = load_video(cfg.video_spec(), params.cache_dir)  # uint8 frames: the teacher embeds these for the queries
    queries = PE.continuous_query_table(task, model, video, split, ids, params.query_offsets,
                                        cfg.teacher_spec() if has_clip else None, batch_size=params.clip_batch,
                                        cache_dir=params.cache_dir)
    if 0.0 in params.query_offsets:
        same = queries[queries.offset == 0].merge(per_patch, on=["frame", "patch"], suffixes=("", "_grid"))
        if not np.allclose(same.psnr, same.psnr_grid, atol=1e-3) or (
                has_clip and not np.allclose(same.clip_sim, same.clip_sim_grid, atol=1e-3)):
            raise RuntimeError("offset-0 queries do not score like the grid: the query path and the grid disagree")
    by_offset = queries.groupby(["split", "test-time input", "offset"])[["psnr", "clip_sim"]].mean().reset_index()
    return by_offset, len(ids)


def _slide(task, models: dict[str, Any], frame: int, count: int) -> dict:
    """``count`` windows moved across the top row of ``frame``, decoded by each model, with the truth."""
    (h, w), (ph, pw) = task.frame_hw, task.cfg.patch_hw
    lefts = sorted({int(round(x)) for x in torch.linspace(0, w - pw, max(count, 2)).tolist()})
    wins = [geometry.Window(0, left, ph, pw) for left in lefts]
    ids = torch.tensor([frame])
    coords = geometry.coords(ids, task.num_frames, wins, task.frame_hw).to(task.frames.device)
    out = {"frame": frame, "lefts": lefts, "truth": geometry.extract(task.frames[ids.to(task.frames.device)], wins)[0].cpu()}
    for name, model in models.items():
        out[name] = task.decode_patches(model, coords)[0][0].cpu()
    return out


def _twin(P: Any, model, task, eval_ids: torch.Tensor, frame: int) -> Optional[Twin]:
    """Train (or reuse) the twin of the profile's patch model and score it the same way."""
    TP = twin_params(P)
    if TP is None:
        return None
    trained, first = training.train_seeds(TP, FAMILY, timed=False)  # its speed is the profile model's
    twin, cfg, s = training.setup_of(first, TP)
    per_patch = PE.per_patch_table(s.task, twin, s.split)
    queries, _ = _queries(TP, cfg, s.task, twin, s.split, per_patch, s.task.targets is not None)
    seams, maps = _seams(s.task, twin, eval_ids, s.split, P.seam_k)
    return Twin(label=training.patch_variant(cfg), summary=trained.summary, queries=queries,
                seams=seams, error_maps=maps,
                overlap=PE.overlap_comparison(s.task, twin, eval_ids, P.seam_k, P.overlap, P.speed_repeats),
                slide={**_slide(task, {"grid": model, "twin": twin}, frame, P.slide_windows),
                       "role": "an unseen frame" if s.split.split.role(frame) == "val" else "a training frame"})


def run(params: Any) -> PatchResults:
    """Train (or reuse) every seed, then score, inspect and time the first seed's model."""
    P = params
    train_first(plan(P), P.run_root, P.launcher(), P.cache_dir)  # as jobs, if asked
    trained, first = training.train_seeds(P, FAMILY)  # and times an epoch alone
    model, cfg, s = training.setup_of(first, P)
    task, split = s.task, s.split
    has_clip = task.targets is not None
    frames_df = evaluate_frames(task, model, split)  # the same per-frame scoring as the full-frame model
    per_patch = PE.per_patch_table(task, model, split)
    with torch.no_grad():
        clip = task.reconstruct(model, torch.arange(task.num_frames))[1] if has_clip else None
    table = training.verification_over_seeds(P, FAMILY, training.verification(clip, task.targets, split, "patch")) \
        if has_clip else None
    shown = spread(split.train, split.val, P.show_frames)
    show = torch.tensor(shown)
    eval_ids = torch.tensor(sorted(split.train + split.val))
    seams, maps = _seams(task, model, eval_ids, split, P.seam_k)
    queries, n_queried = _queries(P, cfg, task, model, split, per_patch, has_clip)
    overlap = PE.overlap_comparison(task, model, eval_ids, P.seam_k, P.overlap, P.speed_repeats)
    patch_hw = tuple(cfg.model_config().patch_hw)
    dense = PE.overlap_windows(patch_hw, task.frame_hw, P.overlap)
    truth = task.frames[show.to(task.frames.device)].cpu()
    example = {"frame": shown[0], "windows": len(dense), "plain": PE.decode_stitched(task, model, show[:1]),
               "blended": PE.decode_stitched(task, model, show[:1], dense, "hann"), "truth": truth[:1]}
    speed = {**PE.decode_speed(task, model, eval_ids, repeats=P.speed_repeats), "device": P.device,
             "threads": torch.get_num_threads()}
    return PatchResults(
        trained=trained, patch_hw=patch_hw, patches_per_frame=len(task.windows), quality=_role_rows(frames_df, per_patch),
        per_patch=per_patch, verification=table, shown=shown, shown_roles=[split.split.role(f) for f in shown],
        truth=truth, decoded=PE.decode_stitched(task, model, show),
        band=geometry.border_mask(task.windows, task.frame_hw, P.seam_k), seams=seams, error_maps=maps,
        queries=queries, query_frames=n_queried, overlap=overlap, overlap_example=example, speed=speed,
        seam_k=P.seam_k, speed_repeats=P.speed_repeats, has_clip=has_clip, clip=None if clip is None else clip.cpu(),
        targets=task.targets.cpu() if has_clip else None, split_ids={"train": split.train, "val": split.val},
        grid=tuple(P.grid), twin=_twin(P, model, task, eval_ids, shown[0]))


def _value(quality: pd.DataFrame, role: str, col: str) -> float:
    return quality.loc[quality.frames == role, col].iloc[0] if role in set(quality.frames) else float("nan")


def table(results: PatchResults) -> pd.DataFrame:
    """The headline: one row of the model's numbers (quality over seeds, seams, queries, overlap, speed)."""
    R, T = results, results.trained
    seeds = T.over_seeds(SEED_KEYS)
    over = lambda key: seeds.loc[key, "mean [95 % CI]"] if key in seeds.index else "n/a"  # noqa: E731
    q = R.queries[R.queries.split == "train"].set_index("offset")
    return pd.DataFrame([{
        "parameters": T.summary["params"], "epochs": T.cfg.epochs, "seeds": T.seeds, "s/epoch (timed alone)": training.speed_text(T.speed),
        "PSNR train (stitched)": over("psnr_train"), "PSNR val (stitched)": over("psnr_val"),
        "per-patch PSNR train": _value(R.quality, "train", "mean per-patch PSNR (fork's number)"),
        "CLIP train": over("clip_train"), "CLIP val": over("clip_val"),
        "seam ratio train": float(R.seams.loc[R.seams.frames == "train", "ratio"].iloc[0]),
        "query PSNR train: first offset / worst": (f"{q.psnr.iloc[0]:.2f} at {q.index[0]:g} / {q.psnr.min():.2f} at "
                                                   f"{q.psnr.idxmin():g}" if len(q) else ""),
        "overlap PSNR gain (dB)": float(R.overlap.psnr_gain_db.iloc[1]),
        "decode frames/s": round(R.speed["frames_per_s"], 2),
        "unseen frames: test-time input": test_time_input("patch"),
    }]).round(4)


def verdict(results: PatchResults) -> str:
    """What the numbers say: stitched vs per-patch PSNR, seams, off-grid queries, overlapped decoding, CLIP."""
    R = results
    seeds = R.trained.over_seeds(["psnr_train", "psnr_val"])
    stitched = _value(R.quality, "train", "PSNR stitched frame")
    fork = _value(R.quality, "train", "mean per-patch PSNR (fork's number)")
    said = [f"Over {R.trained.seeds} training seed(s) the stitched frames reach {seeds.loc['psnr_train', 'mean [95 % CI]']} "
            "dB on seen frames"]
    if "psnr_val" in seeds.index:
        said.append(f" and {seeds.loc['psnr_val', 'mean [95 % CI]']} dB on unseen ones (from (t, x, y) alone)")
    said.append(f". The fork's mean of per-patch PSNRs reads {fork - stitched:+.2f} dB against the stitched frame "
                f"(seed {R.trained.cfg.seed}).")
    seam = R.seams.loc[R.seams.frames == "train", "ratio"]
    if len(seam):
        ratio = float(seam.iloc[0])
        said.append(f" Pixels within {R.seam_k} px of a patch border err {ratio:.2f}x the interior's MSE"
                    + (" (visible seams)." if ratio > 1.2 else "."))
    q = R.queries[R.queries.split == "train"].set_index("offset")
    if len(q) > 1 and 0.0 in q.index:
        worst = q.psnr.idxmin()
        said.append(f" Off the grid, a query {worst:g} of a patch away decodes at {q.psnr.min():.2f} dB against "
                    f"{q.loc[0.0, 'psnr']:.2f} dB on the grid centres.")
    gain = float(R.overlap.psnr_gain_db.iloc[1])
    said.append(f" Overlapped Hann-blended decoding changes PSNR by {gain:+.2f} dB against plain stitching.")
    said.append(f" CLIP: {clip_verdict(R.verification)}" if R.verification is not None else " No CLIP head was trained.")
    if R.twin is not None:
        said.append(" " + _twin_sentence(R))
    return "".join(said)


def _off_grid(queries: pd.DataFrame, split: str = "train") -> tuple[float, float]:
    """(PSNR on the grid centres, worst PSNR strictly between them) of one split's continuous queries."""
    q = queries[queries.split == split].set_index("offset").psnr
    between = q[(q.index > 0) & (q.index < 1)]
    return float(q.get(0.0, float("nan"))), float(between.min()) if len(between) else float("nan")


def _twin_sentence(R: PatchResults) -> str:
    (on_g, off_g), (on_t, off_t) = _off_grid(R.queries), _off_grid(R.twin.queries)
    gain_t = float(R.twin.overlap.psnr_gain_db.iloc[1])
    return (f"Its twin ({R.twin.label}; {R.twin.summary.get('params', 0):,} parameters against "
            f"{R.trained.summary.get('params', 0):,}, seed {R.trained.cfg.seed}, same epochs) decodes between the grid "
            f"centres at {off_t:.2f} dB (worst offset, seen frames) against {off_g:.2f} dB, and on them at {on_t:.2f} "
            f"dB against {on_g:.2f} dB; the stitched unseen frames reach {R.twin.summary.get('psnr_val', float('nan')):.2f} "
            f"dB against {R.trained.summary.get('psnr_val', float('nan')):.2f} dB, and overlapped decoding changes "
            f"its PSNR by {gain_t:+.2f} dB.")


def _reconstructions_figure(R: PatchResults):
    errors = list(PE.error_map(R.decoded, R.truth).sqrt())  # RMS over RGB per pixel
    vmax = shared_max(errors)
    fig, axes = plt.subplots(len(R.shown), 3, figsize=(13, 2.3 * len(R.shown)), squeeze=False)
    for r, (f, role) in enumerate(zip(R.shown, R.shown_roles)):
        db = psnr(R.decoded[r:r + 1], R.truth[r:r + 1]).item()
        for ax, img, title in zip(axes[r, :2], [R.truth[r], R.decoded[r]],
                                  [f"frame {f} ({role}): ground truth", f"stitched decode, {db:.2f} dB"]):
            ax.imshow(img.permute(1, 2, 0).numpy())
            ax.set_title(title, fontsize=8)
            ax.axis("off")
        map_panel(fig, axes[r, 2], errors[r], vmax, band=R.band)
        axes[r, 2].set_title(f"error, one scale for all rows (cyan: {R.seam_k} px seam band)", fontsize=8)
    return fig


def _error_maps_figure(R: PatchResults):
    maps = {role: m.sqrt() for role, m in R.error_maps.items()}
    vmax = shared_max(maps.values())
    fig, axes = plt.subplots(1, len(maps), figsize=(6.5 * len(maps), 2.8), squeeze=False)
    for ax, (role, m) in zip(axes[0], maps.items()):
        map_panel(fig, ax, m, vmax, band=R.band)
        ax.set_title(f"RMS error over {role} frames (one scale)", fontsize=9)
    return fig


def _heatmap_figure(R: PatchResults):
    roles = [r for r in ("train", "val") if (R.per_patch.split == r).any()]
    grids = {role: R.per_patch[R.per_patch.split == role].pivot_table(index="row", columns="col", values="psnr",
                                                                       aggfunc="mean") for role in roles}
    lo, hi = min(float(g.min().min()) for g in grids.values()), max(float(g.max().max()) for g in grids.values())
    fig, axes = plt.subplots(1, len(roles), figsize=(5.5 * len(roles), 3.0), squeeze=False)
    for ax, role in zip(axes[0], roles):
        sns.heatmap(grids[role], ax=ax, annot=True, fmt=".1f", cmap="magma", vmin=lo, vmax=hi,
                    cbar_kws={"label": "PSNR (dB)", "shrink": 0.8})
        ax.set_title(f"PSNR per patch, mean over {role} frames (one scale)", fontsize=9)
        ax.set_xlabel("patch column")
        ax.set_ylabel("patch row")
    fig.tight_layout()
    return fig


def _queries_figure(R: PatchResults):
    fig, axes = plt.subplots(1, 2 if R.has_clip else 1, figsize=(11 if R.has_clip else 5.5, 3.2), squeeze=False)
    for role, part in R.queries.groupby("split"):
        axes[0, 0].plot(part.offset, part.psnr, "o-", label=f"{role} frames")
        if R.has_clip:
            axes[0, 1].plot(part.offset, part.clip_sim, "o-", label=f"{role} frames")
    axes[0, 0].set_title("PSNR of the queried window", fontsize=9)
    axes[0, 0].set_ylabel("PSNR (dB)")
    if R.has_clip:
        axes[0, 1].set_title("CLIP sim to the teacher on that window", fontsize=9)
        axes[0, 1].set_ylabel("mean cosine (raw)")
    for ax in axes[0]:
        ax.set_xlabel("offset from the grid centre (patches)")
        legend_outside(ax)
    fig.tight_layout()
    return fig


def _overlap_figure(R: PatchResults):
    ex = R.overlap_example
    e1, e2 = PE.error_map(ex["plain"], ex["truth"])[0].sqrt(), PE.error_map(ex["blended"], ex["truth"])[0].sqrt()
    vmax = float(max(e1.max(), e2.max()))
    fig, axes = plt.subplots(1, 3, figsize=(13, 2.6))
    for ax, e, title in [(axes[0], e1, "grid"), (axes[1], e2, f"{ex['windows']} overlapping windows, Hann blend")]:
        map_panel(fig, ax, e, vmax, band=R.band)
        ax.set_title(f"error, {title} (one scale)", fontsize=8)
    axes[2].imshow(ex["blended"][0].permute(1, 2, 0).numpy())
    axes[2].set_title(f"overlapped decode of frame {ex['frame']}", fontsize=8)
    axes[2].axis("off")
    return fig


def _speed_table(R: PatchResults) -> pd.DataFrame:
    s, per_epoch = R.speed, R.trained.speed.s_per_epoch if R.trained.speed else float("nan")
    train_frames = int(_value(R.quality, "train", "count")) if "train" in set(R.quality.frames) else 0
    return pd.DataFrame([
        {"quantity": "decode: patches/s (grid, fp32, 8 frames per batch)", "value": round(s["patches_per_s"], 1)},
        {"quantity": "decode: frames/s incl. stitching", "value": round(s["frames_per_s"], 2)},
        {"quantity": "decode: ms per frame", "value": round(s["ms_per_frame"], 2)},
        {"quantity": "overlapped decode: frames/s", "value": round(float(R.overlap.frames_per_s.iloc[1]), 2)},
        {"quantity": "training: s per epoch (timed alone: median [quartiles])", "value": training.speed_text(R.trained.speed)},
        {"quantity": "training: patches/s", "value": round(train_frames * R.patches_per_frame / per_epoch, 1)},
        {"quantity": "device, threads", "value": f"{s['device']}, {s['threads']}"},
    ])


def outputs(results: PatchResults) -> list[Output]:
    """Notebook 02's tables, figures and lines, by name."""
    R, T = results, results.trained
    s, (ph, pw) = T.summary, R.patch_hw
    note = R.quality.attrs.get("ms_ssim_note", "")
    queried = f"Continuous queries on {R.query_frames} frames"
    return [
        Text("02_run", f"run {T.run_dir} | {s['params']:,} parameters | {R.patches_per_frame} patches of {ph}x{pw} per "
                       f"frame\n{s['split']} | teacher: {s['teacher']}"),
        Table("02_run", training.headline_numbers(s), "", None, save=False),
        training.curves_output("02_curves", T, f"pixel loss ({T.cfg.loss})", "PSNR of the stitched frame (dB)",
                               "Patch model training curves"),
        Table("02_quality", R.quality, "Patch model quality: stitched-frame PSNR/SSIM (the comparison with the "
              "full-frame model) and the fork's mean per-patch PSNR" + (f" ({note})" if note else "")),
        Table("02_per_patch", R.per_patch, "Per-patch PSNR and CLIP similarity"),
        *training.verification_outputs("02_clip_metrics", R.verification),
        Figure("02_reconstructions", "Ground truth, stitched patch decodes and per-pixel error",
               lambda: _reconstructions_figure(R)),
        Table("02_seams", R.seams, f"Seam metric: MSE within {R.seam_k} px of inner patch borders vs the interior "
              "(ratio > 1: borders err more)", 5),
        Figure("02_error_maps", "Per-pixel RMS error averaged over frames; cyan: the seam band",
               lambda: _error_maps_figure(R)),
        Figure("02_patch_heatmap", "Per-patch PSNR laid out as the patch grid", lambda: _heatmap_figure(R)),
        *([Figure("02_clip_map", "Predicted CLIP embedding per patch vs target, raw and centred cosine",
                  lambda: training.clip_map_figure(R.clip, R.targets, R.split_ids, R.grid))]
          if R.clip is not None and R.targets is not None else [Text("02_clip_map", "no CLIP head: no CLIP map")]),
        Figure("02_continuous_queries", queried, lambda: _queries_figure(R)),
        Table("02_continuous_queries", R.queries, f"{queried}: mean PSNR and CLIP sim by offset"),
        Table("02_overlap", R.overlap, "Plain grid vs overlapped (Hann-blended) decoding: PSNR, seam ratio and decode "
              "cost over train and val frames"),
        Figure("02_overlap", "Error of plain vs overlapped decoding (same colour scale)", lambda: _overlap_figure(R)),
        Table("02_speed", _speed_table(R), f"Decoding speed (median of {R.speed_repeats}) and training speed", None),
        Table("02_summary", table(R), f"Patch dual-head model: summary; s/epoch, PSNR and CLIP are means over {T.seeds} "
              "training seed(s) with the 95 % Student-t interval over seeds in brackets when there are several, the "
              f"rest from seed {T.cfg.seed}", None),
        training.seeds_output("02_seeds", T, SEED_KEYS, "Patch model"),
        *_twin_outputs(R),
    ]


def _continuity_table(R: PatchResults) -> pd.DataFrame:
    rows = []
    for name, summary, queries, seams, overlap in [
            ("grid-trained (the profile's)", R.trained.summary, R.queries, R.seams, R.overlap),
            (f"twin: {R.twin.label}", R.twin.summary, R.twin.queries, R.twin.seams, R.twin.overlap)]:
        row = {"model": name, "parameters": summary.get("params"), "PSNR train (grid)": summary.get("psnr_train"),
               "PSNR val (grid)": summary.get("psnr_val")}
        for split in ("train", "val"):
            q = queries[queries.split == split].set_index("offset").psnr
            row.update({f"query PSNR {split} @{o:g}": v for o, v in q.items()})
        row.update({"seam ratio train": float(seams.loc[seams.frames == "train", "ratio"].iloc[0]),
                    "overlap PSNR gain (dB)": float(overlap.psnr_gain_db.iloc[1]),
                    "overlap seam ratio": float(overlap.seam_ratio.iloc[1]), "CLIP train": summary.get("clip_train"),
                    "unseen frames: test-time input": test_time_input("patch")})
        rows.append(row)
    return pd.DataFrame(rows).round(3)


def _continuity_figure(R: PatchResults):
    fig, axes = plt.subplots(1, 3, figsize=(16, 3.4), gridspec_kw={"width_ratios": [1.1, 1, 1]})
    for (name, queries), colour in zip([("grid-trained", R.queries), ("twin", R.twin.queries)], ("C0", "C3")):
        for split, style in (("train", "o-"), ("val", "s--")):
            part = queries[queries.split == split]
            if len(part):
                axes[0].plot(part.offset, part.psnr, style, color=colour, label=f"{name}, {split} frames")
    axes[0].set_xlabel("offset from the grid centre (patches)")
    axes[0].set_ylabel("PSNR of the queried window (dB)")
    axes[0].set_title("Continuous queries", fontsize=9)
    legend_outside(axes[0])
    maps = {"grid-trained": R.error_maps["train"].sqrt(), "twin": R.twin.error_maps["train"].sqrt()}
    vmax = shared_max(maps.values())
    for ax, (name, m) in zip(axes[1:], maps.items()):
        map_panel(fig, ax, m, vmax, band=R.band)
        ax.set_title(f"{name}: RMS error over train frames\n(both maps on one scale)", fontsize=8)
    fig.tight_layout()
    return fig


def _slide_figure(R: PatchResults):
    sl = R.twin.slide
    rows = [("ground truth", sl["truth"]), ("grid-trained", sl["grid"]), ("twin", sl["twin"])]
    fig, axes = plt.subplots(3, len(sl["lefts"]), figsize=(1.6 * len(sl["lefts"]) + 1, 5.2), squeeze=False)
    for r, (name, patches) in enumerate(rows):
        for c, left in enumerate(sl["lefts"]):
            ax = axes[r, c]
            ax.imshow(patches[c].clamp(0, 1).permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            title = f"x = {left} px" if r == 0 else (f"{psnr(patches[c:c + 1], sl['truth'][c:c + 1]).item():.1f} dB")
            ax.set_title(title, fontsize=8)
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.suptitle(f"Frame {sl['frame']}, {sl.get('role', 'a training frame')}: one window moved across the top row, "
                 "decoded from (t, x, y); PSNR of each window", fontsize=10)
    fig.tight_layout()
    return fig


def _twin_outputs(R: PatchResults) -> list[Output]:
    if R.twin is None:
        return [Text("02_continuity", "no twin (every twin_* knob is off)")]
    what = f"The profile's grid-trained patch model vs its twin, {R.twin.label} (seed {R.trained.cfg.seed} each)"
    return [
        Table("02_continuity", _continuity_table(R), f"{what}: quality on the grid, between grid centres, at seams", None),
        Figure("02_continuity", f"{what}: PSNR against query offset, and error maps on one scale",
               lambda: _continuity_figure(R)),
        Figure("02_sliding_window", f"{what}: a window sliding across one frame", lambda: _slide_figure(R)),
    ]
