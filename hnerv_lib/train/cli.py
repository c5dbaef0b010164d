"""CLI: ``python -m hnerv_lib.train --preset NAME --set key=value ...`` (also under torchrun)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

import torch.distributed as dist

from hnerv_lib.data.teacher import WeightsUnavailableError
from hnerv_lib.train.config import apply_overrides, get_train_preset
from hnerv_lib.train.setup import dist_env
from hnerv_lib.train.run import RunMismatch
from hnerv_lib.train.trainer import train, validate


def main(argv: Optional[list[str]] = None) -> int:
    """CLI: ``python -m hnerv_lib.train --preset NAME --set key=value ...``."""
    ap = argparse.ArgumentParser(prog="python -m hnerv_lib.train", description="Train (or resume) one run: the one trainer for every model.")
    ap.add_argument("--preset", default="hnerv-tiny", help="training preset (hnerv_lib.train.config.list_presets())")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    ap.add_argument("--run-root", default="runs")
    ap.add_argument("--run-dir", default=None, help="explicit run directory (default: run-root/<config hash>)")
    ap.add_argument("--cache-dir", default="data/cache")
    ap.add_argument("--stop-after", type=int, default=None, help="stop after this epoch (resume later)")
    args = ap.parse_args(argv)
    try:
        cfg = apply_overrides(get_train_preset(args.preset), args.set)
        validate(cfg)
        run_dir = Path(args.run_dir) if args.run_dir else Path(args.run_root) / cfg.run_id()
    except (ValueError, WeightsUnavailableError) as err:  # a bad preset, key, value or teacher: one line, nothing written
        print(f"python -m hnerv_lib.train: {err}", file=sys.stderr)
        return 2
    try:
        summary = train(cfg, run_dir, cache_dir=args.cache_dir, stop_after=args.stop_after)
    except RunMismatch as err:  # another configuration's directory: refused before anything was written
        print(f"python -m hnerv_lib.train: {err}", file=sys.stderr)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if dist_env()[0] == 0:
        print(f"run dir: {run_dir}")
        print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
