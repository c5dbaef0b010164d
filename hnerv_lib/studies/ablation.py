"""The ablation study of notebook 04: which variants a sweep runs, model sizes, the Pareto front.

Every ablation changes one thing of the profile's base configuration (the seeds' recipe: Fusion6,
lambda 0.2, 1/6 of the epochs pixel-only):

* ``clip_weight``  — lambda of the CLIP loss;
* ``warmup``       — share of the epochs trained on pixels only before the CLIP loss starts;
* ``predict_clip`` — the CLIP head removed, against the head kept but trained with lambda 0;
* ``loss``         — the pixel loss;
* ``size``         — the decoder scaled by the paper's size ratios 0.35 : 0.75 : 1.5 : 3 (relative
  to the profile's preset, which plays the part of the paper's 1.5M model).

Variants that coincide (lambda 0.2 is also the base of every other group) share one config hash, so
the sweep trains them once and reuses the run for every table they appear in.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

import pandas as pd

from hnerv_lib.eval.verdict import NO_DIFFERENCE, Estimate, judge, words
from hnerv_lib.eval.metrics import ms_ssim_fallback_note
from hnerv_lib.models import fc_dim_for_factor
from hnerv_lib.studies.comparison import measure_run
from hnerv_lib.studies.seeds import over_seeds
from hnerv_lib.train.config import TrainConfig, warmup_epochs
from hnerv_lib.train.losses import PIXEL_LOSS_TABLE
from hnerv_lib.train.sweep import Variant, diverged, run_sweep, variant

GROUPS = ("clip_weight", "warmup", "predict_clip", "loss", "size")
SEEDLESS = ("size",)  # groups that name no winner (a trend): one seed each, the seeds go where the verdicts are
PAPER_SIZES_M = (0.35, 0.75, 1.5, 3.0)  # HNeRV's Bunny model sizes; 1.5M is the reference


def _fraction_label(x: float) -> str:
    return str(Fraction(x).limit_denominator(12)) if x else "0"


@dataclass(frozen=True)
class Ablation:
    """The values each ablation group tries; ``groups`` picks which groups run."""

    clip_weights: tuple[float, ...] = (0.0, 0.1, 0.2, 0.5, 1.0)
    warmup_fracs: tuple[float, ...] = (0.0, 1 / 6, 1 / 3)  # the seeds' 0, 50 and 100 of 300 epochs
    losses: tuple[str, ...] = ("L2", "L1", "Fusion6", "Fusion4", "Fusion10")
    size_factors: tuple[float, ...] = tuple(s / 1.5 for s in PAPER_SIZES_M)
    groups: tuple[str, ...] = GROUPS
    seeds: int = 1  # training seeds of every variant outside SEEDLESS (findings: t intervals over them)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.groups) - set(GROUPS))
        if unknown:
            raise ValueError(f"unknown ablation groups {unknown}; known: {list(GROUPS)}")
        bad = [f for f in self.warmup_fracs if not 0 <= f <= 1]
        if bad:
            raise ValueError(f"warm-up fractions must lie in [0, 1]; got {bad}")
        if self.seeds < 1:
            raise ValueError(f"Ablation seeds must be >= 1; got {self.seeds}")

    def variants(self, base: TrainConfig) -> list[Variant]:
        """Every variant of ``base`` in the chosen groups, in table order."""
        out: list[Variant] = []
        if "clip_weight" in self.groups:
            out += [variant("clip_weight", w, clip_weight=float(w)) for w in self.clip_weights]
        if "warmup" in self.groups:
            out += [variant("warmup", _fraction_label(f), clip_warmup_epochs=warmup_epochs(f, base.epochs))
                    for f in self.warmup_fracs]
        if "predict_clip" in self.groups:
            out += [variant("predict_clip", "off", clip_weight=0.0, model__predict_clip=False),
                    variant("predict_clip", "on, lambda 0", clip_weight=0.0, model__predict_clip=True)]
        if "loss" in self.groups:
            out += [variant("loss", name, loss=name) for name in self.losses]
        if "size" in self.groups:
            preset_fc = base.model_config().fc_dim
            for f in self.size_factors:
                fc = fc_dim_for_factor(base.model, f, **base.model_overrides)
                # the preset's own width adds no override, so the x1 run shares the base run's hash
                out.append(variant("size", f"x{f:.2g}", **({} if fc == preset_fc else {"model__fc_dim": fc})))
        return out + [Variant(v.group, v.label, tuple(sorted((*v.changes, ("seed", base.seed + i)))))
                      for i in range(1, self.seeds) for v in out if v.group not in SEEDLESS]


def pareto_front(df: pd.DataFrame, x: str, y: str) -> pd.Series:
    """Boolean mask of the rows no other row beats on both ``x`` and ``y`` (higher is better for both)."""
    xs, ys = df[x].to_numpy(), df[y].to_numpy()
    keep = []
    for i in range(len(df)):
        dominated = ((xs >= xs[i]) & (ys >= ys[i]) & ((xs > xs[i]) | (ys > ys[i]))).any()
        keep.append(not dominated)
    return pd.Series(keep, index=df.index)


def loss_note(name: str, image_hw: tuple[int, int]) -> str:
    """Why a loss with an MS-SSIM term behaves as its SSIM twin on images this small ("" when it does not)."""
    note = ms_ssim_fallback_note(*image_hw) if PIXEL_LOSS_TABLE[name].ms_ssim else ""
    return f"its MS-SSIM term is 1 - SSIM here ({note})" if note else ""


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (family, group, value): finished runs averaged over their seeds, with 95 % Student-t
    intervals over seeds (``_lo``/``_hi``; one seed keeps its block bootstrap over frames; the ``interval``
    column says which), failed runs kept as they are."""
    if "seed" not in results or results.empty:
        return results
    done = results[results["status"] != "failed"]
    summary = over_seeds(done, ["family", "group", "label"]) if len(done) else done
    return pd.concat([summary, results[results["status"] == "failed"]], ignore_index=True)


def group_table(results: pd.DataFrame, group: str, columns: Sequence[str]) -> pd.DataFrame:
    """One ablation group's rows (family, value, the chosen columns) from the summarised sweep
    (:func:`summarise`); a table with an unseen-frame column also says what the model saw of those frames
    (``test-time input``), and one over seeds says how many and how its intervals were made."""
    part = results[(results["group"] == group) & (results["status"] != "failed")]
    unseen = any(c.endswith("_val") for c in columns) and "test-time input" in part
    bounds = [b for c in columns for b in (f"{c}_lo", f"{c}_hi") if c.startswith("psnr_") and b in part]
    chosen = [*[c for c in columns if c in part], *bounds, *(["test-time input"] if unseen else []),
              *[c for c in ("seeds", "interval") if c in part]]
    return part[["family", "label", *chosen]].rename(columns={"label": group})


def run_ablation(bases: dict[str, TrainConfig], ablation: Ablation, run_root, *, shard: tuple[int, int] = (0, 1),
                 cache_dir="data/cache", train_fn=None, progress: bool = True) -> pd.DataFrame:
    """Sweep ``ablation`` over each family's base config; one row per (family, variant), with ``family``."""

    parts = []
    for family, base in bases.items():
        res = run_sweep(base, ablation.variants(base), run_root, train_fn=train_fn, shard=shard,
                        progress=progress, cache_dir=cache_dir)
        parts.append(res.assign(family=family))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def measure_runs(results: pd.DataFrame, bases: dict[str, TrainConfig], ablation: Ablation, run_root, cache_dir,
                 device: str = "cpu") -> pd.DataFrame:
    """``results`` plus, per finished run, the CLIP metrics that can fail (centred cosine, retrieval) and the
    training-step memory.

    Each distinct run is measured once (runs shared by several groups are loaded a single time).
    """

    configs = {v.apply(base).run_id(): v.apply(base) for family, base in bases.items()
               for v in ablation.variants(base)}
    wanted = ("test-time input", "clip_centred_train", "clip_centred_val", "clip_top1_val", "train_step_mb",
              "psnr_train_lo", "psnr_train_hi", "psnr_val_lo", "psnr_val_hi")
    done = results[results["status"].isin(["trained", "reused"])]["run_id"].unique()
    extra = {}
    for run_id in done:
        row = measure_run(configs[run_id], run_root, cache_dir, device, with_file=False)
        extra[run_id] = {k: row[k] for k in wanted if k in row}
    measured = pd.DataFrame.from_dict(extra, orient="index").rename_axis("run_id").reset_index()
    return results.merge(measured, on="run_id", how="left") if len(measured) else results


def _delta(part: pd.DataFrame, label_hi: str, label_lo: str, col: str) -> float:
    rows = part.set_index("label")[col]
    return float(rows.get(label_hi, float("nan")) - rows.get(label_lo, float("nan")))


def _estimate(row: pd.Series, col: str) -> Estimate:
    return Estimate(row[col], row.get(f"{col}_lo"), row.get(f"{col}_hi"))


def _ranked(group: pd.DataFrame, col: str, what: str) -> str:
    """Which value of a group is highest on ``col``, and whether its interval separates from each other's."""
    best = group.loc[group[col].idxmax()]
    top = _estimate(best, col)
    others = group.drop(index=best.name)
    apart = [r["label"] for _, r in others.iterrows() if judge(top, _estimate(r, col)) == 1]
    close = [r["label"] for _, r in others.iterrows() if judge(top, _estimate(r, col)) == 0]
    text = f"the highest {what} comes from {best['label']} ({top.text(4, ' dB')})"
    if close:
        return text + f"; {NO_DIFFERENCE} from {', '.join(map(str, close))}" + (
            f", above {', '.join(map(str, apart))}" if apart else "")
    if apart and len(apart) == len(others):
        return text + "; its interval separates from every other value"
    return text + " (no intervals: no verdict)"


def findings(results: pd.DataFrame) -> str:
    """Sentences generated from the summarised sweep table (:func:`summarise`: the CLIP loss's pixel cost,
    the best loss, warm-up, size), judged by the one verdict rule on its 95 % intervals: Student-t over
    training seeds where a value ran under several, else a block bootstrap over frames (one run: the
    variation between seeds is then not in it); the first sentence says which."""
    ok = results[results["status"] != "failed"]
    lines = []
    if "interval" in ok and ok["interval"].notna().any():
        kinds = ok[ok["group"] != "size"]["interval"].dropna().unique() if (ok["group"] != "size").any() else []
        lines.append(f"Intervals: 95 %, {' / '.join(kinds) or 'none'}.")
    for family, part in ok.groupby("family", sort=False):
        name = "full frame" if family == "full" else "patch"
        lam = part[part["group"] == "clip_weight"].set_index("label")
        if {"0.0", "1.0"} <= set(lam.index):
            clip_col, clip_name = (("clip_centred_val", "unseen-frame CLIP centred cosine") if "clip_centred_val" in lam
                                   else ("clip_val", "unseen-frame raw CLIP cosine"))
            pix = words("lambda 1.0", _estimate(lam.loc["1.0"], "psnr_train"), "lambda 0",
                        _estimate(lam.loc["0.0"], "psnr_train"), digits=4)
            lines.append(f"{name}: seen-frame PSNR {pix}; lambda 1.0 vs 0 changes {clip_name} by "
                         f"{lam.loc['1.0', clip_col] - lam.loc['0.0', clip_col]:+.4f}.")
        loss = part[part["group"] == "loss"]
        if len(loss) > 1:
            lines.append(f"{name}: among pixel losses, {_ranked(loss, 'psnr_train', 'seen-frame PSNR')}.")
        warm = part[part["group"] == "warmup"]
        if len(warm) > 1:
            lines.append(f"{name}: among CLIP warm-ups, {_ranked(warm, 'psnr_train', 'seen-frame PSNR')}.")
        head = part[part["group"] == "predict_clip"].set_index("label")
        if {"off", "on, lambda 0"} <= set(head.index):
            said = words("head on, lambda 0", _estimate(head.loc["on, lambda 0"], "psnr_train"), "head off",
                         _estimate(head.loc["off"], "psnr_train"), what="seen-frame PSNR", digits=4)
            lines.append(f"{name}: carrying an untrained CLIP head: {said}.")
        size = part[part["group"] == "size"].sort_values("params")
        if len(size) > 1:
            lines.append(f"{name}: from {int(size['params'].iloc[0]):,} to {int(size['params'].iloc[-1]):,} parameters, "
                         f"seen-frame PSNR goes from {size['psnr_train'].iloc[0]:.2f} to {size['psnr_train'].iloc[-1]:.2f} dB.")
    failed = results[results["status"] == "failed"]
    lines.append(f"{len(failed)} run(s) failed." if len(failed) else "No run failed.")
    dead = diverged(results)
    if len(dead):
        names = ", ".join(f"{r['group']}={r['label']}" for _, r in dead.iterrows())
        lines.append(f"{len(dead)} run(s) diverged (ended below their untrained start and a constant colour; "
                     f"their numbers mean nothing): {names}.")
    return " ".join(lines)
