"""Full-frame vs patch dual-head, measured the same way: one row of numbers per trained run.

Every column is computed by the same code for both designs: stitched (or whole) frame PSNR/SSIM on
seen and unseen frames, CLIP similarity with its baselines, seconds per epoch, the compressed size in
bits per pixel, decoding speed from the compressed file, and the seam metric (border band vs interior
error at the patch-grid borders, which a full-frame model has no reason to show).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch

from hnerv_lib.codec.bitstream import compress
from hnerv_lib.codec.decode import decoding_speed
from hnerv_lib.eval.clip_metrics import MIN_BLOCKS, block_bootstrap_ci, clip_table, default_block
from hnerv_lib.eval.frames import summarize
from hnerv_lib.eval.patches import seam_metrics
from hnerv_lib.eval.verdict import Estimate, judge, over_runs, words
from hnerv_lib.eval.unseen import baseline_protocols, model_protocols, test_time_input, unseen_table
from hnerv_lib.models import build_model, count_params, fc_dim_for_params
from hnerv_lib.studies.outputs import Figure, Output, Provenance, Table, Text
from hnerv_lib.studies.plots import legend_outside
from hnerv_lib.studies.seeds import interval_name, over_seeds, run_seeds, seed_configs
from hnerv_lib.studies.training import patch_variant
from hnerv_lib.train.config import TrainConfig
from hnerv_lib.train.launch import train_first
from hnerv_lib.train.run import Run
from hnerv_lib.train.setup import Setup, autocast
from hnerv_lib.train.speed import EpochSpeed, measure_epoch_speeds
from hnerv_lib.utils.memory import peak_tensor_mb


FAIR = ("HNeRV, interpolated", "NeRV", "patch")  # protocols that never see the unseen frame
BASELINES = ("nearest training frame", "neighbour blend")
FORK_UNSEEN_DB = 17.72  # the seeds' fork, Kitchen, split 6_6_10 (anchors.md): unseen-frame PSNR


def time_to_psnr(metrics: pd.DataFrame, target_db: float, column: str = "psnr_train") -> Optional[float]:
    """Training seconds until PSNR reaches ``target_db`` (None if no evaluation reaches it).

    Interpolated linearly in training time between the last evaluation below the target and the first
    at or above it, so two designs evaluated every k epochs do not tie at the same evaluation by
    construction; a target met at the first evaluation gives that evaluation's time.
    """
    if column not in metrics:
        return None
    evals = pd.DataFrame({"t": metrics["seconds"].cumsum(), "db": metrics[column]}).dropna()
    hit = evals.index[evals["db"] >= target_db]
    if not len(hit):
        return None
    at = evals.index.get_loc(hit[0])
    t1, db1 = evals.iloc[at]
    if at == 0:
        return float(t1)
    t0, db0 = evals.iloc[at - 1]
    return float(t0 + (target_db - db0) / (db1 - db0) * (t1 - t0))


def train_step_mb(cfg: TrainConfig, setup) -> float:
    """Peak tensor MiB of one training step (forward, loss, backward) at the run's batch size and precision."""
    model, task = setup.model.train(), setup.task
    items = torch.arange(min(cfg.batch_size, task.num_items()), device=setup.device)

    def step() -> None:
        with autocast(cfg, setup.device):  # the precision the run trained in
            loss = task.step_loss(model, items, cfg.clip_weight)
        loss.total.backward()

    peak = peak_tensor_mb(step)
    model.zero_grad(set_to_none=True)
    return peak


def measure_run(cfg: TrainConfig, run_root: str | Path, cache_dir: str | Path, device: str = "cpu",
                seam_k: int = 2, with_file: bool = True, speed: Optional[EpochSpeed] = None) -> dict:
    """All comparison columns of the finished run of ``cfg`` (its checkpoint is loaded, not retrained).

    ``with_file=False`` skips compressing the model (bpp and decoding speed), which sweeps do not need.
    ``speed``: its design's training speed timed alone (:func:`design_speeds`), which gives the
    speed columns (``s_per_epoch`` with its quartiles, ``train_s`` of its schedule); without it there are none.
    """
    run = Run.of(cfg, run_root)
    _, cfg, s = run.load(cache_dir, device)  # the stored (resolved) config and the trained weights
    step_mb = train_step_mb(cfg, s)
    with torch.no_grad():
        row = {**_measure_trained(cfg, s, run, seam_k, with_file), "train_step_mb": step_mb}
    if speed is not None:
        row.update({"s_per_epoch": speed.s_per_epoch, "s_per_epoch_lo": speed.clip.q1_s,
                    "s_per_epoch_hi": speed.clip.q3_s, "train_s": speed.train_s(cfg)})
    return row


def _psnr_intervals(frames_df: pd.DataFrame, n_boot: int = 200) -> dict[str, float]:
    """95 % block-bootstrap intervals (over frames, in frame order) of the mean seen and unseen PSNR."""
    out = {}
    for role in ("train", "val"):
        values = torch.tensor(frames_df.loc[frames_df["split"] == role].sort_values("frame")["psnr"].to_numpy())
        if len(values) and torch.isfinite(values).all():
            lo, hi = block_bootstrap_ci(values, default_block(len(values)), n_boot)
            out.update({f"psnr_{role}_lo": lo, f"psnr_{role}_hi": hi})
    return out


def _measure_trained(cfg: TrainConfig, s: Setup, run: Run, seam_k: int, with_file: bool) -> dict:
    model = s.model.eval()
    frames_df = run.frames()
    ids = torch.arange(s.task.num_frames)
    rgb, clip = s.task.reconstruct(model, ids)
    kind = cfg.model_config().kind
    row = {"design": "patch" if kind == "patch" else "full frame", "model": cfg.model,
           "test-time input": test_time_input(kind), "params": count_params(model), "epochs": cfg.epochs,
           **summarize(frames_df), **_psnr_intervals(frames_df)}
    seen = s.split.train  # seams are judged where both models were fitted
    row["seam_ratio"] = seam_metrics(rgb[seen], s.task.frames[seen], s.task.windows, seam_k)["ratio"]
    if clip is not None:  # CLIP metrics that can fail: centred cosine with its block-bootstrap interval, retrieval
        table = clip_table(clip.cpu(), s.task.targets.cpu(), s.split, n_boot=200)
        for _, m in table[table["predictor"] == "model"].iterrows():
            role = m["split"]
            row.update({f"clip_centred_{role}": m["centred_cos"], f"clip_centred_{role}_lo": m["ci_low"],
                        f"clip_centred_{role}_hi": m["ci_high"], f"clip_top1_{role}": m["top1"],
                        f"clip_chance_top1_{role}": m["chance_top1"], f"clip_blocks_{role}": m["frames"] / m["block"]})
    if not with_file:
        return row
    path = run.compressed_path
    stats = compress(model, path, s.task.frames.cpu(), grid=cfg.geometry())
    row.update({"bpp": stats.bpp, "bpp_no_clip": stats.bpp_no_clip,
                "decode_fps": decoding_speed(path)["frames_per_s"]})
    return row


def measure_seeds(cfg: TrainConfig, seeds: int, setting: str, run_root: str | Path, cache_dir: str | Path,
                  device: str = "cpu", seam_k: int = 2, speed: Optional[EpochSpeed] = None) -> list[dict]:
    """Train (or reuse) every seed of ``cfg`` and measure each: one row per seed with ``setting`` and ``seed``.

    Only the first seed is compressed (bpp and decoding speed): the file size of one design hardly
    depends on the seed, and timing the decoder once per design is enough. ``speed`` (the design's,
    timed alone) gives every seed its speed columns.
    """
    rows = []
    for i, c in enumerate(run_seeds(cfg, seeds, run_root, cache_dir=cache_dir)):
        rows.append({"setting": setting, "seed": c.seed,
                     **measure_run(c, run_root, cache_dir, device, seam_k, with_file=i == 0, speed=speed)})
    return rows


def equal_time_epochs(rows: pd.DataFrame, epochs: dict[str, int]) -> tuple[str, str, int]:
    """(faster design, slower design, epochs the faster one trains to use the slower one's training time).

    ``rows`` are the equal-parameter measurements (``design``, ``train_s``, ``s_per_epoch``; one row per
    seed, averaged here), ``epochs`` each design's epochs. The faster design never trains fewer epochs.
    """
    means = rows.groupby("design")[["train_s", "s_per_epoch"]].mean()
    fast, slow = means["train_s"].idxmin(), means["train_s"].idxmax()
    return fast, slow, max(epochs[fast], round(means.loc[slow, "train_s"] / means.loc[fast, "s_per_epoch"]))


def timed_metrics(metrics: pd.DataFrame, cfg: TrainConfig, speed: EpochSpeed) -> pd.DataFrame:
    """A run's per-epoch metrics with its ``seconds`` replaced by the design's epochs timed alone (the run
    itself may have trained beside another job)."""
    return metrics.assign(seconds=speed.epoch_seconds(cfg, len(metrics)))


def time_to_quality(cfgs: dict[str, TrainConfig], seeds: int, run_root: str | Path, target_db: float,
                    speeds: dict[str, EpochSpeed]) -> pd.DataFrame:
    """Per design: training seconds to reach ``target_db`` on seen frames, mean and 95 % t interval over
    the seeds that reached it, and how many did. Each seed's curve gives the epoch (interpolated), the
    design's speed timed alone (``speeds``) the seconds."""
    rows = []
    for design, cfg in cfgs.items():
        times = [time_to_psnr(timed_metrics(Run.of(c, run_root).metrics(), c, speeds[design]), target_db)
                 for c in seed_configs(cfg, seeds)]
        reached = [t for t in times if t is not None]
        est = over_runs(reached) if reached else Estimate(math.nan)
        rows.append({"design": design, "target_db": round(target_db, 2), "seconds_to_target": est.value,
                     "seconds_to_target_lo": est.low, "seconds_to_target_hi": est.high,
                     "reached": f"{len(reached)} of {len(times)} seeds", "interval": interval_name(len(reached))
                     if len(reached) > 1 else "none"})
    return pd.DataFrame(rows)


def unseen_over_seeds(cfgs: Sequence[TrainConfig], seeds: int, run_root: str | Path, cache_dir: str | Path,
                      device: str = "cpu", n_boot: int = 200) -> pd.DataFrame:
    """:func:`unseen_comparison` for every seed of ``cfgs`` (trained or reused), summarised by
    :func:`~hnerv_lib.studies.seeds.over_seeds`: networks get t intervals over seeds, the baselines
    (no network, no seed) keep their block-bootstrap intervals over frames."""
    per_seed = list(zip(*[run_seeds(c, seeds, run_root, cache_dir=cache_dir) for c in cfgs]))
    parts = [unseen_comparison(group, run_root, cache_dir, device, n_boot).assign(seed=i)
             for i, group in enumerate(per_seed)]
    return over_seeds(pd.concat(parts, ignore_index=True), ["protocol"])


def table_verdict(table: pd.DataFrame, fair: Optional[pd.DataFrame] = None) -> str:
    """A paragraph generated from a comparison table with one 'full frame' and one 'patch' row per setting.

    The table's unseen-frame PSNR feeds HNeRV the unseen frame itself; with ``fair`` (the table of
    :func:`unseen_comparison`) the unseen-frame sentences come from the fair protocol instead.
    """
    lines = []
    for setting, part in table.groupby("setting", sort=False):
        rows = part.set_index("design")
        if not {"full frame", "patch"} <= set(rows.index):
            continue
        full, patch = rows.loc["full frame"], rows.loc["patch"]

        def better(col: str, higher: bool = True) -> str:
            """Through the one verdict rule: a winner only where the intervals (``col``_lo/_hi) separate."""
            a, b = full.get(col, math.nan), patch.get(col, math.nan)
            if pd.isna(a) or pd.isna(b):
                return "n/a"
            est = [Estimate(r[col], r.get(f"{col}_lo"), r.get(f"{col}_hi")) for r in (full, patch)]
            return words("full frame", est[0], "patch", est[1], higher_is_better=higher)

        def smaller_file() -> str:  # file sizes are exact: no interval is needed to compare them
            a, b = full.get("bpp", math.nan), patch.get("bpp", math.nan)
            if pd.isna(a) or pd.isna(b):
                return "n/a"
            return f"{'full frame' if a < b else 'patch'} (full frame {a:.3g} vs patch {b:.3g} bpp, exact sizes)"

        def clip_words(role: str) -> str:
            col = f"clip_centred_{role}"
            if pd.isna(full.get(col, math.nan)) or pd.isna(patch.get(col, math.nan)):
                return "n/a"
            a = Estimate(full[col], full.get(f"{col}_lo"), full.get(f"{col}_hi"))
            b = Estimate(patch[col], patch.get(f"{col}_lo"), patch.get(f"{col}_hi"))
            blocks = min(full.get(f"clip_blocks_{role}", MIN_BLOCKS), patch.get(f"clip_blocks_{role}", MIN_BLOCKS))
            if blocks < MIN_BLOCKS:
                return f"no verdict: too few frames for an interval (centred cosine full frame {a.text()} vs patch {b.text()})"
            return words("full frame", a, "patch", b, what="centred cosine")

        unseen = "" if fair is not None else (
            f"unseen-frame PSNR, with HNeRV fed the unseen frame itself: {better('psnr_val')}; "
            f"unseen-frame CLIP {clip_words('val')}; ")
        how = ", ".join(part["interval"].dropna().unique()) if "interval" in part else "block bootstrap over frames"
        lines.append(f"Under {setting}: seen-frame PSNR (dB, 95 % intervals, {how}): "
                     f"{better('psnr_train')}; {unseen}training speed (s/epoch, each design's epochs timed alone: "
                     f"median [quartiles]): {better('s_per_epoch', higher=False)}; the smaller file is {smaller_file()}.")
    if fair is not None:
        lines.append(f"Unseen frames, by what each reconstruction sees at test time: {unseen_verdict(fair)}")
    return " ".join(lines)


def unseen_comparison(cfgs: list[TrainConfig], run_root: str | Path, cache_dir: str | Path,
                      device: str = "cpu", n_boot: int = 200) -> pd.DataFrame:
    """The fair unseen-frame table: every protocol of every finished run (HNeRV oracle and interpolated,
    NeRV, patch) and the two baselines without a network, each row with its ``test-time input``.

    All runs must share the video, split and teacher; the baselines use the first run's frames and targets.
    """
    parts, first = [], None
    for cfg in cfgs:
        _, cfg, s = Run.of(cfg, run_root).load(cache_dir, device)
        model = s.model.eval()
        with torch.no_grad():
            part = unseen_table(model_protocols(s.task, model), s.task.frames, s.task.targets, s.split, n_boot=n_boot)
        part.insert(1, "model", cfg.model)
        part.insert(2, "params", count_params(model))
        part.insert(3, "epochs", cfg.epochs)
        parts.append(part)
        if first is None:
            first = s
    if first is None:
        raise ValueError("unseen_comparison needs at least one run configuration")
    task = first.task
    base = unseen_table(baseline_protocols(task.frames, task.targets, first.split.train), task.frames, task.targets,
                        first.split, n_boot=n_boot)
    base.insert(1, "model", "none")
    table = pd.concat([*parts, base], ignore_index=True)
    return table.astype({"params": "Int64", "epochs": "Int64"})  # the baselines have none


def unseen_verdict(fair: pd.DataFrame, fork_db: float = FORK_UNSEEN_DB) -> str:
    """Sentences from :func:`unseen_comparison`'s table: does each fair protocol beat the two baselines
    (PSNR and centred cosine, only where 95 % intervals separate), coordinate-only NeRV vs patch, and the
    oracle named as such."""
    rows = fair.drop_duplicates("protocol").set_index("protocol")

    def compare(a: str, b: str, col: str) -> str:
        x, y = rows.loc[a], rows.loc[b]
        if col not in rows or pd.isna(x.get(col)) or pd.isna(y.get(col)):
            return ""
        label, unit = {"psnr_val": ("PSNR", " dB"), "clip_centred_val": ("CLIP centred cosine", "")}[col]
        values = f"{x[col]:.3g} vs {y[col]:.3g}{unit}"
        outcome = judge(Estimate(x[col], x[f"{col}_lo"], x[f"{col}_hi"]), Estimate(y[col], y[f"{col}_lo"], y[f"{col}_hi"]))
        if not outcome:  # overlapping intervals (or none)
            return f"{label} no different from the {b} ({values})"
        return f"{label} {'above' if outcome > 0 else 'below'} the {b} ({values})"

    def claims(a: str, others: Sequence[str]) -> str:
        said = [c for b in others for c in (compare(a, b, "psnr_val"), compare(a, b, "clip_centred_val")) if c]
        return "; ".join(said)

    out = []
    for name in (p for p in FAIR if p in rows.index):
        out.append(f"{name} ({rows.loc[name, 'test-time input']}): {claims(name, [b for b in BASELINES if b in rows.index])}.")
    if {"HNeRV, interpolated", "patch"} <= set(rows.index):
        out.append(f"HNeRV from neighbouring embeddings against the patch model: {claims('HNeRV, interpolated', ['patch'])}.")
    if {"NeRV", "patch"} <= set(rows.index):
        out.append(f"Coordinate-only at about equal parameters ({int(rows.loc['NeRV', 'params']):,} vs "
                   f"{int(rows.loc['patch', 'params']):,}), NeRV against the patch model: {claims('NeRV', ['patch'])}.")
    if "HNeRV, oracle" in rows.index:
        out.append(f"HNeRV fed the unseen frame itself reaches {rows.loc['HNeRV, oracle', 'psnr_val']:.2f} dB: "
                   f"access to the frame, not generalisation, so it is no held-out result.")
    out.append(f"For scale: the seeds' fork reported {fork_db} dB on unseen frames under 6_6_10 on Kitchen, "
               f"a different video and resolution.")
    return " ".join(out)


# ---- The study of notebook 05 (plan, run, table, verdict, outputs) ----------------------------------------

PREFIX = "05"
VERDICT_WHAT = "Verdict generated from the comparison table"
DESIGNS = {"full frame": "full", "patch": "patch"}  # design name -> TrainingParams family
COLUMNS = ["setting", "design", "model", "test-time input", "seeds", "interval", "params", "epochs", "psnr_train",
           "psnr_train_lo", "psnr_train_hi", "psnr_val", "psnr_val_lo", "psnr_val_hi", "ssim_train", "ssim_val",
           "clip_centred_train", "clip_centred_val", "clip_centred_val_lo", "clip_centred_val_hi", "clip_top1_val",
           "clip_chance_top1_val", "clip_train", "clip_val", "s_per_epoch", "s_per_epoch_lo", "s_per_epoch_hi",
           "train_s", "train_step_mb", "decode_fps", "bpp", "bpp_no_clip", "seam_ratio"]
SEED_COLUMNS = ["design", "seed", "params", "psnr_train", "psnr_val", "clip_train", "clip_val", "s_per_epoch", "bpp"]


@dataclass
class ComparisonResults:
    """Everything notebook 05 shows, as plain frames (tests build them by hand)."""

    per_seed: pd.DataFrame  # one row per (setting, design, seed): the columns of measure_run
    quality: pd.DataFrame  # time_to_quality's table
    fair: pd.DataFrame  # unseen_over_seeds' table
    fast: str  # the design that trains longer under equal training time
    slow: str
    epochs: int  # the faster design's epochs under equal training time
    target_db: float
    seeds: int
    eval_every: int
    provenance: Provenance
    patch_variant: str = ""  # studies.training.patch_variant of the patch design
    speeds: Optional[dict[str, EpochSpeed]] = None  # each design's training epochs, timed alone


def designs(params: Any) -> dict[str, TrainConfig]:
    """The two designs at equal parameters: the profile's full-frame and patch presets."""
    return {design: params.train_config(family) for design, family in DESIGNS.items()}


def nerv_config(params: Any) -> TrainConfig:
    """NeRV (frame index in) with its stem width sized to the patch model's parameter count."""
    patch = count_params(build_model(params.train_config("patch").model_config()))
    fc = fc_dim_for_params(params.nerv_model, patch, predict_clip=params.predict_clip)
    return params.train_config("nerv", model_overrides={"predict_clip": params.predict_clip, "fc_dim": fc})


def design_speeds(params: Any) -> dict[str, EpochSpeed]:
    """Both designs' training epochs timed side by side in this process, round-robin
    (:func:`measure_epoch_speeds`: a drift of the machine's speed hits both alike), before any run trains
    here, so nothing shares the cores; at the precision and memory format each run id names (``resolved()``)."""
    return measure_epoch_speeds({design: cfg.resolved() for design, cfg in designs(params).items()}, params.cache_dir)


def equal_time_config(params: Any, speeds: dict[str, EpochSpeed]) -> tuple[str, str, TrainConfig]:
    """(faster design, slower design, the faster design's config trained for the slower one's time).

    The training time of each design is its schedule at its speed timed alone (``speeds``); the epochs
    come from :func:`equal_time_epochs`, and ``params.train_config`` derives the warm-up and evaluation
    cadence from them.
    """
    cfgs = designs(params)
    rows = pd.DataFrame([{"design": d, "train_s": speeds[d].train_s(c), "s_per_epoch": speeds[d].s_per_epoch}
                         for d, c in cfgs.items()])
    fast, slow, epochs = equal_time_epochs(rows, {d: c.epochs for d, c in cfgs.items()})
    return fast, slow, params.train_config(DESIGNS[fast], epochs=epochs)


def plan(params: Any, longer: Optional[TrainConfig] = None) -> list[TrainConfig]:
    """Every run: both designs and NeRV, each seed, and the faster design's equal-time run (``longer``,
    from :func:`equal_time_config`, which needs the designs' speeds) when given."""
    return [c for cfg in (*designs(params).values(), nerv_config(params), *([longer] if longer else []))
            for c in seed_configs(cfg, params.seeds)]


def run(params: Any) -> ComparisonResults:
    """Time each design's training alone, then train (or reuse) and measure every run of the comparison,
    under the three fairness settings and the unseen-frame protocols."""
    P, cfgs = params, designs(params)
    where = (P.run_root, P.cache_dir, P.device, P.seam_k)
    speeds = design_speeds(P)
    fast, slow, longer = equal_time_config(P, speeds)
    train_first(plan(P, longer), P.run_root, P.launcher(), P.cache_dir)  # as jobs, if asked
    per_seed = [r for d, c in cfgs.items()
                for r in measure_seeds(c, P.seeds, "equal parameters", *where, speed=speeds[d])]
    equal_params = pd.DataFrame(per_seed)
    per_seed += measure_seeds(longer, P.seeds, "equal training time", *where, speed=speeds[fast])
    per_seed += [{**r, "setting": "equal training time"} for r in per_seed
                 if r["design"] == slow and r["setting"] == "equal parameters"]
    target = P.quality_target_db or equal_params.groupby("design").psnr_train.mean().min() - 1.0
    quality = time_to_quality(cfgs, P.seeds, P.run_root, target, speeds)
    fair = unseen_over_seeds([cfgs["full frame"], nerv_config(P), cfgs["patch"]], P.seeds, P.run_root,
                             P.cache_dir, P.device)
    return ComparisonResults(per_seed=pd.DataFrame(per_seed), quality=quality, fair=fair, fast=fast, slow=slow,
                             epochs=longer.epochs, target_db=float(target), seeds=P.seeds, eval_every=P.eval_every,
                             provenance=Provenance.of_summary(Run.of(cfgs["full frame"], P.run_root).summary()),
                             patch_variant=patch_variant(cfgs["patch"]), speeds=speeds)


def table(results: ComparisonResults) -> pd.DataFrame:
    """The headline: per setting and design, means over seeds with 95 % t intervals (``_lo``/``_hi``)."""
    out = over_seeds(results.per_seed, ["setting", "design"])
    return out[[c for c in COLUMNS if c in out]]


def verdict(results: ComparisonResults) -> str:
    """The closing paragraph: the headline table's settings, then the fair unseen-frame protocols."""
    return table_verdict(table(results), results.fair)


def _unseen_figure(fair: pd.DataFrame):
    kind = fair["protocol"].map(lambda p: "fair" if p in FAIR else ("oracle" if "oracle" in p else "baseline"))
    colours = kind.map({"fair": "tab:blue", "oracle": "tab:gray", "baseline": "tab:orange"})
    panels = [(c, t) for c, t in [("psnr_val", "PSNR on unseen frames (dB)"),
                                  ("clip_centred_val", "CLIP centred cosine, unseen frames")] if c in fair]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 3.4), squeeze=False, sharey=True)
    for ax, (col, title) in zip(axes[0], panels):
        err = [fair[col] - fair[f"{col}_lo"], fair[f"{col}_hi"] - fair[col]]
        ax.barh(fair["protocol"], fair[col], xerr=err, color=colours, capsize=3)
        ax.set_xlabel(title)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].invert_yaxis()  # shared y axis: inverting once puts the first protocol on top
    axes[0][0].set_title("blue: never sees the unseen frame; grey: HNeRV fed the frame; orange: no network", fontsize=8)
    fig.tight_layout()
    return fig


def _settings_figure(headline: pd.DataFrame):
    """Per setting, the two designs side by side with their 95 % intervals as error bars."""
    panels = [(c, t, u) for c, t, u in [("psnr_train", "PSNR, seen frames", "PSNR (dB)"),
                                         ("psnr_val", "PSNR, unseen frames", "PSNR (dB)"),
                                         ("clip_centred_val", "CLIP centred cosine, unseen frames", "centred cosine")]
              if c in headline]
    settings = list(dict.fromkeys(headline["setting"]))
    designs = list(dict.fromkeys(headline["design"]))
    width = 0.8 / max(len(designs), 1)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels) + 1.5, 3.4), squeeze=False)
    for ax, (col, title, unit) in zip(axes[0], panels):
        for i, design in enumerate(designs):
            rows = headline[headline["design"] == design].set_index("setting").reindex(settings)
            lo, hi = rows.get(f"{col}_lo"), rows.get(f"{col}_hi")
            err = None if lo is None or hi is None else [(rows[col] - lo).clip(lower=0).fillna(0),
                                                         (hi - rows[col]).clip(lower=0).fillna(0)]
            ax.bar([x + (i - (len(designs) - 1) / 2) * width for x in range(len(settings))], rows[col], width,
                   yerr=err, capsize=3, label=design)
        ax.set_xticks(range(len(settings)), settings, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(unit)
    legend_outside(axes[0][-1], title="design (bars: 95 % interval)")
    fig.tight_layout()
    return fig


def outputs(results: ComparisonResults) -> list[Output]:
    """Notebook 05's tables, figures and lines, by name."""
    R, headline = results, table(results)
    seed_rows = R.per_seed[R.per_seed["setting"] == "equal parameters"]
    slow_s = seed_rows.loc[seed_rows["design"] == R.slow, "train_s"].mean()
    return [
        Table("05_equal_parameters", seed_rows[[c for c in SEED_COLUMNS if c in seed_rows]], "", None, save=False),
        Text("05_patch_variant", f"The patch design is {R.patch_variant or 'trained on the grid alone'} "
                                 "(patch_canvas, patch_t_levels, patch_xy_levels, patch_window_pool); notebook 02 "
                                 "sets the profile's patch model beside its twin (table 02_continuity: the twin_* "
                                 "knobs, which trade seen-frame quality for queries between grid centres and for "
                                 "unseen frames; this comparison scores the profile's model)"),
        Text("05_equal_time", f"{R.fast} trains {R.epochs} epochs to match {R.slow}'s {slow_s:.0f} s "
                              f"(means over {R.seeds} seed(s))"),
        Text("05_speeds", "Training speed, timed alone in this process before the runs trained (the runs may train "
                          "as jobs sharing the cores): " + "; ".join(f"{d} {sp.describe()}"
                                                                     for d, sp in (R.speeds or {}).items())),
        Table("05_time_to_quality", R.quality, f"Training time to reach {R.target_db:.2f} dB on seen frames "
              f"(each seed's curve, evaluated every {R.eval_every} epochs and interpolated linearly in training time, "
              "gives the epoch; each design's epochs timed alone give the seconds; mean and 95 % t interval over the "
              "seeds that reached it)", None),
        Table("05_unseen_fair", R.fair, "Unseen frames by what each reconstruction sees at test time: HNeRV fed the "
              "frame (oracle) or its neighbours' blended embeddings, NeRV (t) and patch (t, x, y) at about equal "
              f"parameters, and two baselines without a network; networks: mean and 95 % t interval over {R.seeds} "
              "training seed(s) (block bootstrap over frames for one seed), baselines: 95 % block bootstrap over "
              "frames (column interval)"),
        Figure("05_unseen_fair", "Unseen-frame quality by test-time input, with 95 % intervals",
               lambda: _unseen_figure(R.fair)),
        Text("05_unseen_verdict", unseen_verdict(R.fair)),
        Table("05_comparison", headline, f"Full frame vs patch dual-head, mean over {R.seeds} training seed(s) with "
              "95 % intervals (_lo/_hi; the interval column says how they were made); bpp and decode_fps from the "
              "first seed; val = unseen frames, the test-time input column says what each model saw of them"),
        Figure("05_comparison", "Full frame vs patch dual-head under three fairness settings",
               lambda: _settings_figure(headline)),
    ]
