"""The 2D-patches vs 3D-tubelets study: train every variant for every seed, measure, summarise, conclude.

A study's runs live in ``run_root/<study id>/`` (the id is a hash of the study's config, saved there as
``study.json``); each (variant, seed) writes ``<slug>_s<seed>.pt`` and, last, ``<slug>_s<seed>.json``.
A rerun reuses every finished (variant, seed) instead of training it again.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional

import matplotlib.pyplot as plt
import pandas as pd
import torch

from hnerv_lib.eval.verdict import Estimate, judge
from hnerv_lib.studies.outputs import Figure, Output, Provenance, Table, Text
from hnerv_lib.studies.plots import legend_outside
from hnerv_lib.studies.tubelets.clips import ArrowOfTime, ClipSet, arrow_of_time
from hnerv_lib.studies.tubelets.config import ViTConfig
from hnerv_lib.studies.tubelets.inflate import inflate
from hnerv_lib.studies.tubelets.measure import (
    flops_per_clip,
    inference_clips_per_s,
    measured_tokens,
    scale_table,
    t_interval,
    train_clips_per_s,
    train_step_memory_mb,
)
from hnerv_lib.studies.tubelets.model import (
    LSViTForAction,
    trainable_params,
    load_checkpoint,
    save_checkpoint,
)
from hnerv_lib.studies.tubelets.train import TrainSpec, accuracy, fit, predict
from hnerv_lib.utils import io

STUDY_VERSION = 2  # bump when clip cutting, training or measuring changes, so earlier runs are not reused


@dataclass(frozen=True)
class EmbeddingVariant:
    """One patch-embedding choice: 2D (tubelet_size 1) or 3D tubelets, from scratch or inflated from 2D."""

    name: str  # label in tables and plots
    tubelet_size: int = 1  # 1: 2D patches per frame; > 1: Conv3d tubelets of this many frames
    inflate: Optional[str] = None  # "central" | "average": start from the same seed's trained 2D model

    @property
    def slug(self) -> str:
        """File-name form: ``2d``, ``t2``, ``t2-central``."""
        base = "2d" if self.tubelet_size == 1 else f"t{self.tubelet_size}"
        return f"{base}-{self.inflate}" if self.inflate else base

    def config(self, base: ViTConfig) -> ViTConfig:
        """``base`` with this variant's patch embedding."""
        if self.tubelet_size == 1:
            return replace(base, use_3d_patch_embed=False)
        return replace(base, use_3d_patch_embed=True, tubelet_size=self.tubelet_size)


VARIANTS = (
    EmbeddingVariant("2D patches", 1),
    EmbeddingVariant("tubelet 2", 2),
    EmbeddingVariant("tubelet 4", 4),
    EmbeddingVariant("tubelet 2, inflated from 2D", 2, inflate="central"),  # ViViT's best initialisation
)


@dataclass(frozen=True)
class Study:
    """Everything that decides the study's numbers."""

    data: ArrowOfTime
    model: ViTConfig  # the 2D base; each variant swaps the patch embedding
    train: TrainSpec
    finetune_epochs: int  # epochs of the inflated variants, on top of their 2D model's
    seeds: tuple[int, ...] = (0, 1, 2)
    variants: tuple[EmbeddingVariant, ...] = VARIANTS

    def to_dict(self) -> dict[str, Any]:
        """JSON form (also hashed into the run id)."""
        return {"version": STUDY_VERSION, "data": self.data.to_dict(), "model": self.model.to_dict(), "train": self.train.to_dict(),
                "finetune_epochs": self.finetune_epochs, "seeds": list(self.seeds),
                "variants": [asdict(v) for v in self.variants]}

    def run_dir(self, run_root: str | Path) -> Path:
        """``run_root/<short id>``, with the config saved as ``study.json``."""
        path = Path(run_root) / f"tubelets-{io.stable_hash(self.to_dict(), length=10)}"
        if not (path / "study.json").is_file():
            io.save_json(self.to_dict(), path / "study.json")
        return path


# Columns of the per-run table, in display order (reused runs come back from JSON with sorted keys).
RESULT_COLUMNS = ("variant", "slug", "seed", "embedding", "epochs", "test_acc", "train_acc", "final_loss",
                  "fit_clips_per_s", "train_seconds", "test_clips", "tokens", "params", "gflops",
                  "infer_clips_per_s", "train_clips_per_s", "train_step_mb")


def _measure(model: LSViTForAction, batch: int) -> dict[str, Any]:
    return {"tokens": measured_tokens(model), "params": trainable_params(model), "gflops": flops_per_clip(model) / 1e9,
            "infer_clips_per_s": inference_clips_per_s(model, batch=2 * batch),
            "train_clips_per_s": train_clips_per_s(model, batch=batch),
            "train_step_mb": train_step_memory_mb(model, batch)}


def run_one(study: Study, variant: EmbeddingVariant, seed: int, train_set: ClipSet, test_set: ClipSet,
            model2d: Optional[LSViTForAction] = None) -> tuple[LSViTForAction, dict[str, Any]]:
    """Train one (variant, seed) and measure it; inflated variants need the seed's trained 2D model."""
    torch.manual_seed(seed)
    spec = replace(study.train, seed=seed)
    if variant.inflate:
        if model2d is None:
            raise ValueError(f"variant {variant.name!r} inflates a 2D model; train the 2D variant first")
        model = inflate(model2d, variant.tubelet_size, variant.inflate)
        spec = replace(spec, epochs=study.finetune_epochs)
    else:
        model = LSViTForAction(variant.config(study.model), num_frames=train_set.num_frames)
    history = fit(model, train_set, spec)
    row = {"variant": variant.name, "slug": variant.slug, "seed": seed, "embedding": model.config.embedding,
           "epochs": spec.epochs + (study.train.epochs if variant.inflate else 0),
           "test_acc": accuracy(predict(model, test_set, device=spec.device), test_set.labels),
           "train_acc": accuracy(predict(model, train_set, device=spec.device), train_set.labels),
           "final_loss": history["loss"][-1], "fit_clips_per_s": history["train_clips_per_s"],
           "train_seconds": history["train_seconds"], "test_clips": len(test_set), **_measure(model, spec.batch_size)}
    return model, row


def run_study(study: Study, train_set: ClipSet, test_set: ClipSet, run_root: str | Path,
              progress: Optional[Callable[[dict[str, Any]], None]] = None) -> pd.DataFrame:
    """One row per (variant, seed); finished runs under ``run_root`` are read back, not retrained."""
    run_dir, rows = study.run_dir(run_root), []
    for seed in study.seeds:
        model2d = None
        for variant in study.variants:
            stem = run_dir / f"{variant.slug}_s{seed}"
            if stem.with_suffix(".json").is_file():
                row = io.load_json(stem.with_suffix(".json"))
                model = load_checkpoint(stem.with_suffix(".pt"))[0] if variant.tubelet_size == 1 else None
            else:
                model, row = run_one(study, variant, seed, train_set, test_set, model2d)
                save_checkpoint(stem.with_suffix(".pt"), model, extra={"study": study.to_dict(), "result": row})
                io.save_json(row, stem.with_suffix(".json"))  # written last: the run counts as finished
            if variant.tubelet_size == 1 and not variant.inflate:
                model2d = model
            rows.append(row)
            if progress is not None:
                progress(row)
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def summarize(runs: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per variant: tokens, params, MFLOPs, speeds (median over seeds), memory, accuracy mean and t-interval."""
    out = []
    for name, g in runs.groupby("variant", sort=False):
        mean, half = t_interval(g["test_acc"], level)
        out.append({"variant": name, "tokens": int(g["tokens"].iloc[0]), "params": int(g["params"].iloc[0]),
                    "MFLOPs / clip": 1000 * g["gflops"].iloc[0], "train clips/s": g["train_clips_per_s"].median(),
                    "infer clips/s": g["infer_clips_per_s"].median(), "train-step MiB": g["train_step_mb"].iloc[0],
                    "epochs": int(g["epochs"].iloc[0]), "seeds": len(g), "test acc": mean, "ci": half,
                    "train acc": g["train_acc"].mean()})
    return pd.DataFrame(out)


def _acc_text(row: pd.Series) -> str:
    ci = f" ± {row['ci']:.1%}" if not math.isnan(row["ci"]) else " (one seed, no interval)"
    return f"{row['test acc']:.1%}{ci}"


def summary_verdict(summary: pd.DataFrame, chance: float = 0.5, level: float = 0.95) -> str:
    """A short paragraph written from the summary's numbers (the first row is the 2D reference)."""
    ref, others = summary.iloc[0], summary.iloc[1:]
    parts = []
    for _, r in others.iterrows():
        parts.append(f"{r['variant']} uses {r['tokens'] / ref['tokens']:.0%} of the 2D tokens and "
                     f"{r['MFLOPs / clip'] / ref['MFLOPs / clip']:.0%} of its FLOPs, infers at "
                     f"{r['infer clips/s'] / ref['infer clips/s']:.1f}x and trains at "
                     f"{r['train clips/s'] / ref['train clips/s']:.1f}x its speed, with "
                     f"{r['train-step MiB'] / ref['train-step MiB']:.0%} of its training-step memory")
    accs = "; ".join(f"{r['variant']} {_acc_text(r)}" for _, r in summary.iterrows())
    known = summary[summary["ci"].notna()]
    above = [r["variant"] for _, r in known.iterrows() if r["test acc"] - r["ci"] > chance]
    below = [r["variant"] for _, r in known.iterrows() if r["test acc"] + r["ci"] < chance]
    if known.empty:
        acc = f"Test accuracy ({accs}) comes from one seed each, so no difference can be called."
    else:
        acc = f"Test accuracy ({level:.0%} t-intervals over seeds): {accs}."
        acc += f" Above chance ({chance:.0%}): {', '.join(above)}." if above else f" No variant is above chance ({chance:.0%})."
        if below:
            acc += (f" Below chance: {', '.join(below)} — what they learned on the training stretches runs the "
                    f"wrong way on the held-out ones (a video-specific cue, not a general arrow of time).")
    rank = ""
    if not known.empty:
        best = known.loc[known["test acc"].idxmax()]
        top = Estimate.half_width(best["test acc"], best["ci"])
        apart = [r["variant"] for _, r in known.iterrows() if judge(top, Estimate.half_width(r["test acc"], r["ci"]))]
        rank = (f" Highest mean: {best['variant']}; its interval " +
                (f"does not overlap those of {', '.join(apart)}." if apart else "overlaps every other variant's."))
    fit_txt = ", ".join(f"{r['variant']} {r['train acc']:.0%}" for _, r in summary.iterrows())
    fitted = (f" On the training clips, which only frame order can separate (each clip's reversed twin has the "
              f"same frames), accuracy is {fit_txt} after {int(ref['epochs'])} epochs (inflated: in total).")
    return "Efficiency: " + "; ".join(parts) + ". " + acc + rank + fitted


# ---- The study of notebook 03 (plan, run, table, verdict, outputs) ----------------------------------------

PREFIX = "03"
VERDICT_WHAT = "Verdict, generated from the summary table"
TEACHER = "none (video classifier trained from scratch)"
SEED_SCALE = dict(frames=16, image_size=224, patch_size=16, tubelets=(1, 2, 4))  # seed 004's ViT-B/16 clips
SEED_TOKENS = [3136, 1568, 784]  # the seed's token counts at that scale: the model must reproduce them
SCALE_PROVENANCE = Provenance("none (shapes only)", "none (400-class head, random init)")


@dataclass
class TubeletResults:
    """Everything notebook 03 shows (tests build it from small clip sets)."""

    study: Study
    scale: pd.DataFrame  # tokens, parameters, FLOPs at the seed's scale
    train_set: ClipSet
    test_set: ClipSet
    runs: pd.DataFrame  # one row per (variant, seed): RESULT_COLUMNS
    provenance: Provenance


def plan(params: Any) -> list[tuple[EmbeddingVariant, int]]:
    """Every (variant, seed) the study trains (runs are files under the study's run directory, not TrainConfigs)."""
    study = params.study()
    return [(v, seed) for seed in study.seeds for v in study.variants]


def seed_scale() -> pd.DataFrame:
    """The token table at the seed's scale, checked against the seed's numbers."""
    scale = pd.DataFrame(scale_table(**SEED_SCALE))
    tokens = scale["tokens (embed output)"].tolist()
    if tokens != SEED_TOKENS or not (scale["tokens (embed output)"] == scale["tokens (model.num_tokens)"]).all():
        raise RuntimeError(f"the model's token counts {tokens} at 16 x 224 x 224 are not the seed's {SEED_TOKENS}")
    return scale


def provenance(study: Study, epochs: Optional[int] = None) -> Provenance:
    split = (f"arrow of time split by time: {study.data.blocks} stretches per video, first {study.data.train_frac:.0%} "
             f"train, test {study.data.gap} frames away")
    return Provenance(", ".join(study.data.videos), TEACHER, split=split, epochs=epochs)


def run(params: Any, progress: bool = True) -> TubeletResults:
    """Cut the clips, train every (variant, seed) (finished ones are read back), measure each."""
    study = params.study()
    train_set, test_set = arrow_of_time(study.data, params.cache_dir)

    def say(r: dict[str, Any]) -> None:
        print(f"{r['variant']:>28s} seed {r['seed']}: test {r['test_acc']:.3f}, train {r['train_acc']:.3f}, "
              f"{r['train_seconds']:.1f} s")

    runs = run_study(study, train_set, test_set, params.run_root, progress=say if progress else None)
    return TubeletResults(study, seed_scale(), train_set, test_set, runs, provenance(study, study.train.epochs))


def table(results: TubeletResults) -> pd.DataFrame:
    """The headline: per variant, tokens, FLOPs, speeds, memory, accuracy with its t interval over seeds."""
    return summarize(results.runs)


def verdict(results: TubeletResults) -> str:
    return summary_verdict(table(results))


def _split_table(regions: dict[str, dict]) -> pd.DataFrame:
    return pd.DataFrame([{"video": name, "frames": r["frames"], "train frames": str(r["train"]),
                          "test frames": str(r["test"]), "scene cuts after": str(r["cuts"]),
                          "train windows": r["train_windows"], "test windows": r["test_windows"]}
                         for name, r in regions.items()])


def _split_figure(regions: dict[str, dict]):
    fig, axes = plt.subplots(len(regions), 1, figsize=(11, 0.6 * len(regions) + 1.2), squeeze=False, sharex=True)
    for ax, (name, r) in zip(axes[:, 0], regions.items()):
        ax.barh(0, r["frames"], color="0.85", height=0.8)
        for role, color in (("train", "tab:blue"), ("test", "tab:orange")):
            for lo, hi in r[role]:
                ax.barh(0, max(hi - lo, 0), left=lo, color=color, height=0.8, label=role)
        for c in r["cuts"]:
            ax.axvline(c + 0.5, color="k", lw=1)
        ax.set_yticks([0], [name])
        ax.set_xlim(0, max(v["frames"] for v in regions.values()))
    handles, _ = axes[0, 0].get_legend_handles_labels()
    axes[0, 0].legend(handles[:1] + handles[-1:], ["train", "test"], ncol=2, fontsize=8, loc="lower right",
                      bbox_to_anchor=(1, 1))
    axes[-1, 0].set_xlabel("source frame (grey: gap, black line: scene cut)")
    fig.subplots_adjust(bottom=0.3)  # room for the caption under the axis label
    return fig


def moving_token(test_set: ClipSet, patch: int) -> tuple[int, int, int]:
    """(clip, row, column): the forward test clip whose pixels change most, and its most moving patch."""
    motion = (test_set.clips[:, 1:].float() - test_set.clips[:, :-1].float()).abs().mean(dim=(1, 2, 3, 4))
    forward = torch.nonzero(test_set.labels == 0).flatten()
    k = int(forward[int(motion[forward].argmax())])
    clip = test_set.clips[k]
    side = clip.shape[-1] // patch
    per_patch = (clip[1:].float() - clip[:-1].float()).abs().mean(dim=(0, 1)).reshape(side, patch, side, patch)
    row, col = divmod(int(per_patch.mean(dim=(1, 3)).argmax()), side)
    return k, row, col


def _coverage_figure(R: TubeletResults, k: int, row: int, col: int):
    clip, p, frames = R.test_set.clips[k], R.study.model.patch_size, R.study.data.num_frames
    kinds = [("2D: frame 1", 1, 1)] + [(f"t={t}: frames {t}-{2 * t - 1}", t, t) for t in (2, 4)
                                      if frames % t == 0 and frames >= 2 * t]
    fig, axes = plt.subplots(len(kinds), frames, figsize=(1.3 * frames, 1.45 * len(kinds)), squeeze=False)
    for r_i, (label, start, t) in enumerate(kinds):
        for f in range(frames):
            ax = axes[r_i, f]
            inside = start <= f < start + t
            ax.imshow(clip[f].permute(1, 2, 0).numpy(), alpha=1.0 if inside else 0.3, interpolation="nearest")
            if inside:
                ax.add_patch(plt.Rectangle((col * p - 0.5, row * p - 0.5), p, p, fill=False, ec="red", lw=2))
            ax.set_xticks([])
            ax.set_yticks([])
            if r_i == 0:
                ax.set_title(f"frame {f}", fontsize=8)
        axes[r_i, 0].set_ylabel(label, fontsize=8)
    return fig


def _summary_figure(summary: pd.DataFrame, runs: pd.DataFrame, device: str):
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    names = summary["variant"].tolist()
    xs = range(len(names))
    axes[0].bar(xs, summary["test acc"], yerr=summary["ci"].fillna(0), capsize=4, color="tab:blue", alpha=0.7,
                label="test (mean ± 95 % CI)")
    for i, name in enumerate(names):
        seeds = runs[runs["variant"] == name]
        axes[0].plot([i] * len(seeds), seeds["test_acc"], "k.", ms=5)
    axes[0].plot(xs, summary["train acc"], "o", mfc="none", mec="tab:red", label="train (mean)")
    axes[0].axhline(0.5, color="0.4", ls="--", lw=1, label="chance")
    axes[0].set_ylim(0, 1)
    axes[0].set_ylabel("accuracy (share of test clips)")
    width = 0.4
    axes[1].bar([x - width / 2 for x in xs], summary["train clips/s"], width, label="train")
    axes[1].bar([x + width / 2 for x in xs], summary["infer clips/s"], width, label="inference")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("clips / s (log scale)")
    axes[2].bar(xs, summary["train-step MiB"], color="tab:green", alpha=0.8)
    axes[2].set_ylabel("peak tensor MiB, one train step")
    for ax, title in zip(axes, ["accuracy (dots: seeds)", f"throughput on {device}", "memory"]):
        ax.set_xticks(list(xs), [n.replace(", ", ",\n") for n in names], fontsize=7)
        ax.set_title(title, fontsize=9)
        legend_outside(ax)  # the memory panel has no labelled artist: no legend
    fig.tight_layout()
    return fig


def outputs(results: TubeletResults) -> list[Output]:
    """Notebook 03's tables, figures and lines, by name."""
    R, summary = results, table(results)
    no_epochs = replace(R.provenance, epochs=None)  # the clips and their split do not depend on training
    regions = R.train_set.meta["regions"]
    k, row, col = moving_token(R.test_set, R.study.model.patch_size)
    origin, p = R.test_set.origin[k].tolist(), R.study.model.patch_size
    shown = summary.assign(**{"test acc": [f"{a:.3f} ± {c:.3f}" if c == c else f"{a:.3f}"
                                           for a, c in zip(summary["test acc"], summary["ci"])]}).drop(columns=["ci"])
    return [
        Table("03_token_counts", R.scale, "Tokens, parameters, forward GFLOPs per clip of ViT-B/16 at 16 x 224 x 224 "
              "(meta device)", None, provenance=SCALE_PROVENANCE),
        Text("03_clip_sets", f"train: {R.train_set.describe()}\ntest:  {R.test_set.describe()}"),
        Table("03_clip_split", _split_table(regions), "Arrow-of-time clip regions per video ([start, end) frames)",
              None, provenance=no_epochs),
        Figure("03_clip_split", "Which frames give train and test clips", lambda: _split_figure(regions),
               provenance=no_epochs),
        Figure("03_tubelet_coverage", f"One token of each embedding on test clip {k} ({R.study.data.videos[origin[0]]}, "
               f"source frames from {origin[1]} step {R.study.data.frame_step}, crop x={origin[2]}); red: the {p}x{p} "
               "patch", lambda: _coverage_figure(R, k, row, col), provenance=no_epochs),
        Table("03_tubelet_runs", R.runs.drop(columns=["slug"]), "Every (variant, seed) run: accuracy, timing, memory",
              None),
        Table("03_tubelets_summary", shown, f"2D patches vs tubelets on the arrow of time ({len(R.test_set)} test clips, "
              f"device {R.study.train.device})", 3),
        Figure("03_tubelets", "Accuracy, speed and memory of each patch embedding",
               lambda: _summary_figure(summary, R.runs, R.study.train.device)),
    ]
