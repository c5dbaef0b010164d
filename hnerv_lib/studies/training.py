"""What notebooks 01 (full frame) and 02 (patch) share: one model trained over seeds, its learning curves,
its CLIP verification table, and the table of its numbers over seeds.

The two study modules (:mod:`~hnerv_lib.studies.full_frame`, :mod:`~hnerv_lib.studies.patch`) build on
these, so both notebooks draw their curves and judge their CLIP head by the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch

from hnerv_lib.eval.clip_metrics import centred_cosine, clip_table, clip_table_over_seeds, clip_verdict, position_means
from hnerv_lib.eval.unseen import test_time_input
from hnerv_lib.studies.outputs import Figure, Provenance, Table, Text
from hnerv_lib.studies.plots import legend_outside, similarity_panel
from hnerv_lib.studies.seeds import run_seeds, seed_configs, summary_table
from hnerv_lib.train.config import TrainConfig
from hnerv_lib.train.run import Run
from hnerv_lib.train.speed import EpochSpeed, measure_epoch_speed
from hnerv_lib.train.setup import Setup


@dataclass
class Trained:
    """One family's model trained (or reused) under every seed; the first seed's run is the one inspected."""

    cfg: TrainConfig  # the first seed's configuration
    seed_summaries: list[dict]  # each seed's run summary
    metrics: pd.DataFrame  # the first seed's per-epoch metrics
    run_dir: str
    speed: Optional[EpochSpeed] = None  # seconds per epoch, timed alone in this process (train.speed)

    @property
    def summary(self) -> dict:
        return self.seed_summaries[0]

    @property
    def seeds(self) -> int:
        return len(self.seed_summaries)

    def provenance(self) -> Provenance:
        return Provenance.of_summary(self.summary, epochs=self.cfg.epochs)

    def over_seeds(self, keys: Sequence[str]) -> pd.DataFrame:
        """Per metric: mean, 95 % t interval over seeds, each seed (indexed by metric)."""
        return summary_table(self.seed_summaries, keys).set_index("metric")


def train_seeds(params: Any, family: str, timed: bool = True) -> tuple[Trained, Run]:
    """Train (or reuse) ``family``'s run of every seed; the first seed's run with its record.

    ``timed``: also time its training epochs alone in this process (:func:`measure_epoch_speed`, on the
    first run's stored config), since the runs may have trained as jobs sharing the cores.
    """
    cfg = params.train_config(family)
    configs = run_seeds(cfg, params.seeds, params.run_root, cache_dir=params.cache_dir)
    summaries = [Run.of(c, params.run_root).summary() for c in configs]
    first = Run.of(cfg, params.run_root)
    speed = measure_epoch_speed(first.config, params.cache_dir) if timed else None
    return Trained(cfg, summaries, first.metrics(), str(first.dir), speed), first


def patch_variant(cfg: TrainConfig) -> str:
    """How a patch model is trained, in words: on the grid alone or a window pool, its encoding, its canvas."""
    model = cfg.model_config()
    levels = f"t encoding at {model.pe_levels} levels, x/y at {model.xy_levels}" if getattr(model, "xy_levels", 0) \
        else f"x/y encoding at t's {model.pe_levels} levels"
    where = f"a window pool of {cfg.window_pool} windows per frame" if cfg.window_pool else "the grid alone"
    canvas = getattr(model, "canvas", 1)
    return f"trained on {where}, {levels}" + (f", decoding a {canvas}x canvas around each cell" if canvas > 1 else "")


def headline_numbers(summary: dict) -> pd.DataFrame:
    """The run summary's quality numbers, as a two-column table for display (its speed is timed apart:
    :attr:`Trained.speed`)."""
    keys = [k for k in summary if k.startswith(("psnr", "ssim", "clip"))]
    return pd.DataFrame({"quantity": keys, "value": [summary[k] for k in keys]})


def speed_text(speed: Optional[EpochSpeed]) -> str:
    """A table cell for a training speed timed alone: median s/epoch with its quartiles and threads."""
    if speed is None:
        return "not timed"
    c = speed.clip
    return f"{c.median_s:.2f} [{c.q1_s:.2f}, {c.q3_s:.2f}] ({len(c.runs_s)} epochs, {speed.threads} threads)"


def curves_figure(metrics: pd.DataFrame, warmup_epochs: int, loss_label: str, psnr_title: str):
    """Training loss (pixel, and CLIP once on), PSNR and CLIP cosine per evaluation; dashed: the warm-up's end."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.4))
    axes[0].plot(metrics.epoch, metrics.pixel_loss, label=loss_label)
    active = metrics[metrics.clip_active.astype(bool)]  # the CLIP loss is only computed after the warm-up
    if len(active):
        axes[0].plot(active.epoch, active.clip_loss, label="CLIP loss (1 - cos)")
    axes[0].set_yscale("log")
    axes[0].set_title("training loss")
    axes[0].set_ylabel("loss (log scale)")
    evals = metrics.dropna(subset=["psnr_train"])
    for role in ("train", "val"):
        if f"psnr_{role}" in evals:
            axes[1].plot(evals.epoch, evals[f"psnr_{role}"], "o-", label=f"{role} frames")
        if f"clip_{role}" in evals:
            axes[2].plot(evals.epoch, evals[f"clip_{role}"], "o-", label=f"{role} frames")
    axes[1].set_title(psnr_title)
    axes[1].set_ylabel("PSNR (dB)")
    axes[2].set_title("CLIP cosine similarity to targets")
    axes[2].set_ylabel("mean cosine (raw)")
    for ax in axes:
        ax.axvline(warmup_epochs + 0.5, ls="--", c="0.5", label="CLIP loss starts")
        ax.set_xlabel("epoch")
        legend_outside(ax)
    fig.tight_layout()
    return fig


def clip_map_figure(clip: torch.Tensor, targets: torch.Tensor, split_ids: dict[str, list[int]], grid: tuple[int, int]):
    """Per patch position, mean over each split's frames: raw cosine of prediction and target (top row) and
    the centred cosine, each position's mean training target removed from both (bottom row: the raw one
    saturates when the targets hardly vary). Both on [-1, 1], with colourbars."""
    roles = [r for r in ("train", "val") if split_ids.get(r)]
    raw = torch.nn.functional.cosine_similarity(clip.float(), targets.float(), dim=-1)  # (T, N)
    centred = centred_cosine(clip, targets, position_means(targets, split_ids["train"]))
    fig, axes = plt.subplots(2, len(roles), figsize=(5.5 * len(roles), 5.4), squeeze=False)
    for j, role in enumerate(roles):
        idx = split_ids[role]
        for i, (values, what) in enumerate([(raw, "raw cosine"), (centred, "centred cosine")]):
            similarity_panel(axes[i, j], values[idx].mean(0).view(*grid).numpy(),
                             f"{what} per patch, {role} frames ({len(idx)})", what)
    fig.tight_layout()
    return fig


def verification(clip: torch.Tensor, targets: torch.Tensor, setup_split, kind: str) -> pd.DataFrame:
    """CLIP metrics that can fail (centred cosine with its interval, retrieval, baselines) of one model."""
    return clip_table(clip.cpu(), targets.cpu(), setup_split, test_time_input=test_time_input(kind))


def verification_over_seeds(params: Any, family: str, first: pd.DataFrame) -> pd.DataFrame:
    """The verification table over every training seed of ``family`` (``first``: the first seed's, already
    computed): the model's rows are means with t intervals over seeds (:func:`clip_table_over_seeds`)."""
    tables = [first]
    for cfg in seed_configs(params.train_config(family), params.seeds)[1:]:
        model, stored, s = Run.of(cfg, params.run_root).load(params.cache_dir, params.device)
        with torch.no_grad():
            _, clip = s.task.reconstruct(model.eval(), torch.arange(s.task.num_frames))
        tables.append(verification(clip, s.task.targets, s.split, stored.model_config().kind))
    return clip_table_over_seeds(tables)


def verification_what(table: pd.DataFrame) -> str:
    """The caption of a CLIP verification table."""
    seeds = int(table["seeds"].iloc[0]) if "seeds" in table else 1
    ci = (f"the model's: mean and 95 % t interval over {seeds} training seeds; the baselines': 95 % block-bootstrap "
          "CI" if seeds > 1 else "95 % block-bootstrap CI")
    return (f"CLIP metrics that can fail: centred cosine (each position's mean training target removed; {ci}, "
            f"blocks of {table['block'].iloc[0]} frames), retrieval top-1/top-5 among all targets of the split (chance "
            "beside), raw cosine last; model vs baselines")


def verification_outputs(name: str, table: Optional[pd.DataFrame]) -> list:
    """The verification table and its one-line verdict, or a line saying there is no CLIP head."""
    if table is None:
        return [Text(name, "predict_clip is off: no CLIP head, nothing to verify")]
    return [Text(name, clip_verdict(table)), Table(name, table, verification_what(table))]


def seeds_output(name: str, trained: Trained, keys: Sequence[str], what: str) -> Table:
    """The per-seed table of ``keys``: mean, 95 % t interval, each seed."""
    seeds = trained.over_seeds(keys).reset_index()
    first = trained.cfg.seed
    return Table(name, seeds, f"{what} over training seeds {first}..{first + trained.seeds - 1}: mean, 95 % t interval, "
                              "each seed")


def setup_of(run: Run, params: Any) -> tuple[torch.nn.Module, TrainConfig, Setup]:
    """The first seed's trained model (eval mode), its stored config and setup (frames and targets from the caches)."""
    model, cfg, s = run.load(params.cache_dir, params.device)
    return model.eval(), cfg, s


def curves_output(name: str, trained: Trained, loss_label: str, psnr_title: str, what: str) -> Figure:
    return Figure(name, what, lambda: curves_figure(trained.metrics, trained.cfg.clip_warmup_epochs, loss_label,
                                                   psnr_title))
