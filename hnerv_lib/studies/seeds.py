"""Seeds: one configuration trained under several seeds, its numbers summarised over them.

``seed_configs(cfg, n)`` gives the runs (seeds ``cfg.seed .. cfg.seed + n - 1``; each is its own run
directory, reused once finished). :func:`over_seeds` turns one row per (group, seed) into one row per
group: every number is the mean over seeds, and ``<col>_lo`` / ``<col>_hi`` its 95 % Student-t interval
over seeds, the interval the report's verdicts judge by (:mod:`hnerv_lib.eval.verdict`). Where a group
has a single seed, or a number does not vary with the seed (a baseline without a network), the row's
own interval is kept (a block bootstrap over frames); the ``interval`` column says which each row has.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import pandas as pd

from hnerv_lib.eval.verdict import Estimate, t_interval
from hnerv_lib.train.config import TrainConfig
from hnerv_lib.train.trainer import run

LEVEL = 0.95


def seed_configs(cfg: TrainConfig, seeds: int) -> list[TrainConfig]:
    """``cfg`` under ``seeds`` consecutive seeds, starting at its own."""
    if int(seeds) < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds!r}")
    return [replace(cfg, seed=cfg.seed + i) for i in range(int(seeds))]


def run_seeds(cfg: TrainConfig, seeds: int, run_root: Any, **train_kwargs: Any) -> list[TrainConfig]:
    """Train (or reuse) every seed of ``cfg``; returns their configs, first seed first."""
    configs = seed_configs(cfg, seeds)
    for c in configs:
        run(c, run_root, **train_kwargs)
    return configs


def interval_name(n: int) -> str:
    """How the intervals of a row over ``n`` seeds were made (the tables' ``interval`` column)."""
    return f"t over {n} seeds" if n > 1 else "block bootstrap over frames (1 seed)"


def _bounded(columns: Sequence[str]) -> list[str]:
    return [c for c in columns if not c.endswith(("_lo", "_hi"))]


def over_seeds(rows: pd.DataFrame, by: Sequence[str], seed_col: str = "seed", level: float = LEVEL) -> pd.DataFrame:
    """One row per ``by`` group: numbers averaged over its seeds with ``_lo``/``_hi`` t intervals over them.

    Columns that are not numbers keep their first value (they are the same in every seed: model,
    test-time input). A numeric column that is constant within a group (a baseline, the parameter
    count) keeps the group's own ``_lo``/``_hi`` if it had them and gets no seed interval.
    """
    if seed_col not in rows:
        raise ValueError(f"over_seeds needs a {seed_col!r} column; got {list(rows.columns)}")
    out = []
    for key, group in rows.groupby(list(by), sort=False, dropna=False):
        row: dict[str, Any] = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        n = group[seed_col].nunique()
        varied = False
        for col in _bounded([c for c in rows.columns if c not in (*by, seed_col)]):
            values = group[col]
            numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
            if not numeric or values.isna().all():
                row[col] = values.iloc[0]
                continue
            mean, half = t_interval(values.dropna(), level)
            constant = values.nunique(dropna=True) == 1
            row[col] = values.dropna().iloc[0] if constant else mean  # a constant keeps its type (params: int)
            if not constant and n > 1:
                row[f"{col}_lo"], row[f"{col}_hi"] = mean - half, mean + half
                varied = True
            elif f"{col}_lo" in group:  # one seed, or no seed dependence: the row's own interval
                row[f"{col}_lo"], row[f"{col}_hi"] = group[f"{col}_lo"].iloc[0], group[f"{col}_hi"].iloc[0]
        row["seeds"] = n
        row["interval"] = interval_name(n) if varied or n == 1 else "block bootstrap over frames (no seed dependence)"
        out.append(row)
    return pd.DataFrame(out)


def summary_table(summaries: Sequence[dict], keys: Sequence[str], level: float = LEVEL) -> pd.DataFrame:
    """Per metric of the run summaries: mean, 95 % t interval over seeds, and each seed's value."""
    rows = []
    for key in keys:
        values = [s[key] for s in summaries if key in s and s[key] is not None]
        if not values:
            continue
        mean, half = t_interval(values, level)
        rows.append({"metric": key, "mean [95 % CI]": Estimate.half_width(mean, half).text(5),
                     "mean": mean, "ci_low": mean - half, "ci_high": mean + half,
                     "seeds": len(values), "interval": f"t over {len(values)} seeds" if len(values) > 1 else "none (1 seed)",
                     "per seed": ", ".join(f"{v:.4g}" for v in values)})
    return pd.DataFrame(rows)
