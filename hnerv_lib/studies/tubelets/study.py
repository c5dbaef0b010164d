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

import pandas as pd
import torch

from hnerv_lib.eval.verdict import Estimate, judge
from hnerv_lib.studies.tubelets.clips import ArrowOfTime, ClipSet
from hnerv_lib.studies.tubelets.config import ViTConfig
from hnerv_lib.studies.tubelets.inflate import inflate
from hnerv_lib.studies.tubelets.measure import (
    flops_per_clip,
    inference_clips_per_s,
    measured_tokens,
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


def verdict(summary: pd.DataFrame, chance: float = 0.5, level: float = 0.95) -> str:
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
