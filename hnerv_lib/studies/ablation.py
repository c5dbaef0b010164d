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
from typing import Any, Sequence

import matplotlib.pyplot as plt
import pandas as pd

from hnerv_lib.eval.verdict import NO_DIFFERENCE, Estimate, judge, words
from hnerv_lib.eval.metrics import ms_ssim_fallback_note
from hnerv_lib.models import fc_dim_for_factor
from hnerv_lib.studies.comparison import measure_run
from hnerv_lib.studies.outputs import Figure, Output, Provenance, Table, Text
from hnerv_lib.studies.plots import legend_outside
from hnerv_lib.studies.seeds import over_seeds
from hnerv_lib.train.config import TrainConfig, warmup_epochs
from hnerv_lib.train.launch import INLINE, Launcher, train_configs
from hnerv_lib.train.losses import PIXEL_LOSS_TABLE
from hnerv_lib.train.run import Run
from hnerv_lib.train.sweep import Variant, diverged, failures, sweep_rows, variant

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


def run_ablation(bases: dict[str, TrainConfig], ablation: Ablation, run_root, *, launcher: Launcher = INLINE,
                 cache_dir="data/cache", train_fn=None, progress: bool = True) -> pd.DataFrame:
    """Sweep ``ablation`` over each family's base config (the runs train where ``launcher`` says); one row
    per (family, variant), with ``family``."""

    # every family's runs in one submission: no family waits for the other's last job
    configs = [v.apply(base) for base in bases.values() for v in ablation.variants(base)]
    done = train_configs(configs, run_root, launcher, cache_dir=cache_dir, train_fn=train_fn, progress=progress,
                         desc="sweep")
    parts = [sweep_rows(base, ablation.variants(base), run_root, done).assign(family=family)
             for family, base in bases.items()]
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


# ---- The study of notebook 04 (plan, run, table, verdict, outputs) ----------------------------------------

PREFIX = "04"
VERDICT_WHAT = "Findings generated from the ablation sweep"
SWEEP_COLUMNS = ["family", "group", "label", "seed", "run_id", "status", "test-time input", "params", "psnr_train",
                 "psnr_val", "ssim_train", "ssim_val", "clip_centred_train", "clip_centred_val", "clip_top1_val",
                 "clip_train", "clip_val", "seconds_per_epoch", "train_step_mb", "diverged", "error"]
FAMILY_NAMES = {"full": "full frame", "patch": "patch"}


@dataclass
class AblationResults:
    """Everything notebook 04 shows, as plain frames (tests build them by hand)."""

    plan: pd.DataFrame  # one row per (family, variant, seed): group, label, seed, run_id, changes
    results: pd.DataFrame  # one row per run: run_sweep's columns plus measure_runs'
    curves: dict[str, pd.DataFrame]  # run_id -> per-epoch metrics of the warm-up runs (first seed)
    families: list[str]
    loss_hw: dict[str, tuple[int, int]]  # family -> the image size its pixel loss sees
    executor: str  # where the runs trained: inline, local or slurm (hnerv_lib.train.launch)
    epochs: int
    run_root: str  # where the failed runs' tracebacks are
    provenance: Provenance


def bases(params: Any) -> dict[str, TrainConfig]:
    """Each swept family's base configuration (the profile's recipe at ``ablate_epochs``)."""
    return {family: params.base_config(family) for family in params.ablate_families}


def plan_table(params: Any) -> pd.DataFrame:
    """Every (family, variant, seed) with the run id it trains under and what it changes."""
    ablation = params.ablation()
    return pd.DataFrame([{"family": f, "group": v.group, "label": v.label, "seed": v.apply(b).seed,
                          "run_id": v.apply(b).run_id(), "changes": ", ".join(f"{k}={val}" for k, val in v.changes)}
                         for f, b in bases(params).items() for v in ablation.variants(b)])


def plan(params: Any) -> list[TrainConfig]:
    """The distinct runs of the sweep (variants that coincide share one)."""
    ablation = params.ablation()
    configs = {v.apply(b).run_id(): v.apply(b) for b in bases(params).values() for v in ablation.variants(b)}
    return list(configs.values())


def run(params: Any) -> AblationResults:
    """Train the sweep's runs where ``params.executor`` says (finished ones are reused, a failing one is
    recorded), measure each."""
    P, ablation, base = params, params.ablation(), bases(params)
    results = run_ablation(base, ablation, P.run_root, launcher=P.launcher(), cache_dir=P.cache_dir)
    results = measure_runs(results, base, ablation, P.run_root, P.cache_dir, P.device)
    warm = results[(results["group"] == "warmup") & (results["status"] != "failed") & (results["seed"] == P.seed)]
    curves = {r: Run.at(P.run_root, r).metrics() for r in warm["run_id"].unique()}
    teacher = next((t for t in results.get("teacher", pd.Series(dtype=str)).dropna() if not t.startswith("none")),
                   "none")
    video = results["video"].dropna().iloc[0] if "video" in results and results["video"].notna().any() else P.video
    loss_hw = {"full": tuple(P.size), "patch": (P.size[0] // P.grid[0], P.size[1] // P.grid[1])}
    return AblationResults(plan=plan_table(P), results=results, curves=curves, families=list(base), loss_hw=loss_hw,
                           executor=P.executor, epochs=P.ablate_epochs, run_root=str(P.run_root), provenance=Provenance(
                               video, teacher, split=P.split_rule().legacy(), epochs=P.ablate_epochs))


def table(results: AblationResults) -> pd.DataFrame:
    """The headline: one row per (family, group, value), means and 95 % intervals over seeds."""
    return summarise(results.results)


def verdict(results: AblationResults) -> str:
    """The findings, generated from the summarised sweep."""
    return findings(table(results))


def _pareto_figure(summary: pd.DataFrame, families: list[str]):
    ok = summary[(summary["status"] != "failed") & (summary["group"] != "size")]  # one parameter budget per family
    ok = ok.dropna(subset=["clip_centred_train"]) if "clip_centred_train" in ok else ok.iloc[0:0]
    cols = max(len(families), 1)
    fig, axes = plt.subplots(2, cols, figsize=(6.5 * cols, 8), squeeze=False)
    for col, family in enumerate(families):
        part = ok[ok["family"] == family].drop_duplicates("run_id")  # coinciding variants share their runs
        for row, (x, y, where) in enumerate([("clip_centred_train", "psnr_train", "seen"),
                                             ("clip_centred_val", "psnr_val", "unseen")]):
            ax = axes[row, col]
            pts = part.dropna(subset=[x, y]) if len(part) else part
            if pts.empty:
                ax.set_axis_off()
                continue
            for group, g in pts.groupby("group"):
                ax.scatter(g[x], g[y], label=group, s=28)
            for _, r in pts.iterrows():
                ax.annotate(f"{r['group']}={r['label']}", (r[x], r[y]), fontsize=6, xytext=(3, 2),
                            textcoords="offset points")
            front = pts[pareto_front(pts, x, y)].sort_values(x)
            ax.plot(front[x], front[y], "k--", lw=1, label="Pareto front")
            ax.axvline(0.0, color="0.5", ls=":", lw=1, label="per-position-mean baseline (0)")
            ax.set_xlabel(f"CLIP centred cosine, {where} frames (right is better)")
            ax.set_ylabel(f"PSNR (dB), {where} frames")
            ax.set_title(f"{FAMILY_NAMES.get(family, family)} — {where} frames, preset size", fontsize=10)
            legend_outside(ax)
    fig.tight_layout()
    return fig


def _warmup_figure(R: AblationResults):
    warm = R.results[R.results["run_id"].isin(list(R.curves)) & (R.results["group"] == "warmup")]
    cols = max(len(R.families), 1)
    fig, axes = plt.subplots(2, cols, figsize=(6.5 * cols, 6), squeeze=False)
    for col, family in enumerate(R.families):
        for _, r in warm[warm["family"] == family].iterrows():
            m = R.curves[r["run_id"]]
            line, = axes[0, col].plot(m["epoch"], m["pixel_loss"], label=f"warm-up {r['label']}")
            ev = m.dropna(subset=["psnr_train"])
            axes[1, col].plot(ev["epoch"], ev["psnr_train"], "o-", color=line.get_color(), label=f"warm-up {r['label']}")
            on = m.loc[m["clip_active"].astype(bool), "epoch"]
            if len(on) and on.iloc[0] > 1:
                for ax in axes[:, col]:
                    ax.axvline(on.iloc[0] - 0.5, color=line.get_color(), ls=":", lw=1)
        name = FAMILY_NAMES.get(family, family)
        axes[0, col].set(title=f"{name}: pixel loss", yscale="log", xlabel="epoch", ylabel="pixel loss (log scale)")
        axes[1, col].set(title=f"{name}: PSNR on seen frames", xlabel="epoch", ylabel="PSNR (dB)")
        for ax in axes[:, col]:
            legend_outside(ax)
    fig.tight_layout()
    return fig


def _size_figure(size: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for family, g in size.sort_values("params").groupby("family"):
        ax.plot(g["params"], g["psnr_train"], "o-", label=f"{family}, seen frames")
        ax.plot(g["params"], g["psnr_val"], "s--", label=f"{family}, unseen frames")
    ax.set(xscale="log", xlabel="parameters (log scale)", ylabel="PSNR (dB)")
    legend_outside(ax)
    fig.tight_layout()
    return fig


def outputs(results: AblationResults) -> list[Output]:
    """Notebook 04's tables, figures and lines, by name."""
    R, summary = results, table(results)
    sweep = R.results[[c for c in SWEEP_COLUMNS if c in R.results]]
    failed = failures(R.results)
    loss = group_table(summary, "loss", ["psnr_train", "psnr_val", "ssim_train", "ssim_val", "ms_ssim_val",
                                         "clip_centred_val", "clip_val"])
    loss["note"] = [loss_note(r["loss"], R.loss_hw[r["family"]]) for _, r in loss.iterrows()]
    size = group_table(summary, "size", ["params", "params_decoder", "psnr_train", "psnr_val", "clip_val",
                                         "seconds_per_epoch", "train_step_mb"])
    return [
        Text("04_plan", f"{len(R.plan)} table rows, {R.plan['run_id'].nunique()} distinct runs "
                        f"({R.epochs} epochs each, trained {R.executor})"),
        Table("04_plan", R.plan, "", None, save=False),
        Table("04_sweep", sweep, "Every ablation run (val = unseen frames)"),
        Table("04_failures", failed if len(failed) else pd.DataFrame({"failures": ["none"]}),
              f"Failed sweep runs (error; the traceback is in {R.run_root}/<run_id>/{Run.ERROR})", None),
        Text("04_failures", f"{len(failed)} of {len(R.results)} runs failed" if len(failed) else "no run failed"),
        Figure("04_pareto", "PSNR vs CLIP centred cosine (each position's mean training target removed) of the "
               "ablation runs at the preset's size, Pareto front dashed", lambda: _pareto_figure(summary, R.families)),
        _group_output("04_clip_weight", group_table(summary, "clip_weight", [
            "psnr_train", "psnr_val", "clip_centred_train", "clip_centred_val", "clip_top1_val", "clip_train",
            "clip_val"]), "CLIP loss weight lambda: pixels vs CLIP (centred cosine: the per-position-mean baseline "
                          "scores 0; retrieval top-1; raw cosine last)"),
        Figure("04_warmup_curves", "Training curves for the CLIP warm-up choices (dotted: CLIP loss on)",
               lambda: _warmup_figure(R)) if R.curves else
        Text("04_warmup_curves", "Training curves for the CLIP warm-up choices: not ablated in this profile (ablate_groups)"),
        _group_output("04_warmup", group_table(summary, "warmup", ["psnr_train", "psnr_val", "clip_train", "clip_val"]),
                      "CLIP warm-up: share of the epochs trained on pixels only"),
        _group_output("04_loss", loss, "Pixel loss: quality on seen and unseen frames (lambda fixed)"),
        _group_output("04_predict_clip", group_table(summary, "predict_clip", [
            "params", "psnr_train", "psnr_val", "seconds_per_epoch", "train_step_mb"]),
            "CLIP head removed vs kept with lambda 0"),
        _group_output("04_size", size, "Model size: the decoder scaled by the paper's 0.35/0.75/1.5/3M ratios"),
        *([Figure("04_size", "PSNR vs model size", lambda: _size_figure(size))] if len(size) else []),
    ]


def _group_output(name: str, frame: pd.DataFrame, what: str) -> Table | Text:
    """A group's table, or one line saying the profile did not ablate it (no empty table is saved)."""
    if len(frame):
        return Table(name, frame, what)
    return Text(name, f"{what}: not ablated in this profile (ablate_groups)")
