"""Sweeps: many training configurations, each a run keyed by its config hash.

* a run whose hash already finished (:attr:`Run.finished`) is reused, not retrained;
* a failing run is recorded (:meth:`Run.record_failure`: message, traceback, config) and the sweep
  goes on; the results table says ``failed`` with the error;
* a run that finishes below both its untrained start and a constant mean colour is flagged ``diverged`` (in its
  summary and in the table's ``diverged`` column; :func:`diverged` lists them);
* ``shard=(i, n)`` takes every n-th configuration by hash, so machines never collide; merging results
  is copying ``runs/`` folders together.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import pandas as pd
from tqdm.auto import tqdm

from hnerv_lib.train.config import TrainConfig
from hnerv_lib.train.run import Run
from hnerv_lib.train.trainer import train as default_train


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


def in_shard(run_id: str, shard: tuple[int, int]) -> bool:
    """Whether a run belongs to shard ``i`` of ``n`` (by its hash, so every machine agrees)."""
    i, n = shard
    if not 0 <= i < n:
        raise ValueError(f"shard must be (i, n) with 0 <= i < n; got {shard}")
    return int(run_id, 16) % n == i


def run_sweep(base: TrainConfig, variants: Iterable[Variant], run_root: str | Path,
              train_fn: Optional[Callable[..., dict]] = None, shard: tuple[int, int] = (0, 1),
              progress: bool = True, **train_kwargs: Any) -> pd.DataFrame:
    """Run every variant of ``base`` in this shard; one row per variant: status, seconds and the summary."""

    train_fn = train_fn or default_train
    rows = []
    for v in tqdm(list(variants), desc="sweep", disable=not progress):
        cfg = v.apply(base)
        run = Run.of(cfg, run_root)
        row = {"group": v.group, "label": v.label, "seed": cfg.seed, "run_id": run.run_id}
        if not in_shard(run.run_id, shard):
            continue
        if run.finished:
            rows.append({**row, "status": "reused", **_flagged(run.summary())})
            continue
        start = time.perf_counter()
        try:
            summary = train_fn(cfg, run.dir, progress=False, **train_kwargs)
            rows.append({**row, "status": "trained", "wall_s": time.perf_counter() - start, **_flagged(summary)})
        except Exception as err:  # a failing configuration must not stop the sweep
            run.record_failure(err, cfg)  # the trainer did too; a custom train_fn may not have
            rows.append({**row, "status": "failed", "error": f"{type(err).__name__}: {err}"})
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
