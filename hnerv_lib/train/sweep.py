"""Sweeps: many training configurations, each a run keyed by its config hash.

* a run whose hash already finished (:attr:`Run.finished`) is reused, not retrained;
* a failing run is recorded (:meth:`Run.record_failure`: message, traceback, config) and the sweep
  goes on; the results table says ``failed`` with the error;
* a run that finishes below both its untrained start and a constant mean colour is flagged ``diverged`` (in its
  summary and in the table's ``diverged`` column; :func:`diverged` lists them);
* the runs train where ``launcher`` says (:mod:`hnerv_lib.train.launch`: in this process, as local
  processes, or as SLURM jobs writing to a shared runs root); a rerun submits only what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import pandas as pd

from hnerv_lib.train.config import TrainConfig
from hnerv_lib.train.launch import INLINE, Launcher, train_configs
from hnerv_lib.train.run import Run


@dataclass(frozen=True)
class Variant:
    """One point of a sweep: a label for tables and the config changes it makes."""

    group: str  # which ablation it belongs to, e.g. "clip_weight"
    label: str  # its value as shown in tables, e.g. "0.5"
    changes: tuple[tuple[str, Any], ...]  # (field, value) pairs applied to the base config

    def apply(self, base: TrainConfig) -> TrainConfig:
        """The base config with this variant's changes (``model.<field>`` changes a model field)."""
        fields = {k: v for k, v in self.changes if not k.startswith("model.")}
        model = {k[6:]: v for k, v in self.changes if k.startswith("model.")}
        return replace(base, **fields, model_overrides={**base.model_overrides, **model})


def variant(group: str, label: Any, **changes: Any) -> Variant:
    """Shorthand: ``variant("clip_weight", 0.5, clip_weight=0.5)``; use ``model__fc_dim=`` for model fields."""
    return Variant(group, str(label), tuple(sorted((k.replace("__", "."), v) for k, v in changes.items())))


def run_sweep(base: TrainConfig, variants: Iterable[Variant], run_root: str | Path,
              train_fn: Optional[Callable[..., dict]] = None, launcher: Launcher = INLINE,
              progress: bool = True, cache_dir: str | Path = "data/cache") -> pd.DataFrame:
    """Train every variant of ``base`` (where ``launcher`` says); one row per variant: group, label,
    seed, run id, status (``trained``, ``reused`` or ``failed``), seconds and the run's summary."""

    variants = list(variants)
    done = train_configs([v.apply(base) for v in variants], run_root, launcher, cache_dir=cache_dir,
                         train_fn=train_fn, progress=progress, desc="sweep")
    return sweep_rows(base, variants, run_root, done)


def sweep_rows(base: TrainConfig, variants: Iterable[Variant], run_root: str | Path,
               done: dict[str, dict]) -> pd.DataFrame:
    """The rows of :func:`run_sweep` from ``done``, what :func:`~hnerv_lib.train.launch.train_configs`
    returned for these variants' runs (several sweeps can train in one call, then take their rows here)."""
    rows = []
    for v in variants:
        cfg = v.apply(base)
        row = {"group": v.group, "label": v.label, "seed": cfg.seed, "run_id": cfg.run_id(), **done[cfg.run_id()]}
        rows.append(row if row["status"] == "failed" else {**row, **_flagged(Run.of(cfg, run_root).summary())})
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["group", "label", "seed", "run_id", "status"])


def _flagged(summary: dict) -> dict:
    """A summary with ``diverged`` always present (summaries written before the check say nothing: None)."""
    return {**summary, "diverged": summary.get("diverged")}


def diverged(results: pd.DataFrame) -> pd.DataFrame:
    """The rows (group, label, run_id, psnr_train, psnr_mean_colour) of runs that finished below their start and the mean colour."""
    if "diverged" not in results:
        return results.iloc[0:0]
    cols = [c for c in ("group", "label", "run_id", "psnr_train", "psnr_init", "psnr_mean_colour") if c in results]
    flagged = results["diverged"].map(lambda v: v is True or v == 1.0)  # None/NaN: written before the check
    return results[flagged.astype(bool)][cols]


def failures(results: pd.DataFrame) -> pd.DataFrame:
    """The failed rows (group, label, run_id, error) of a sweep's results."""
    if "status" not in results:
        return results.iloc[0:0]
    cols = [c for c in ("group", "label", "run_id", "error") if c in results]
    return results[results["status"] == "failed"][cols]
