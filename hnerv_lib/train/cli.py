"""CLI: ``python -m hnerv_lib.train --preset NAME --set key=value ...`` (also under torchrun)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional

import torch.distributed as dist

from hnerv_lib.data.teacher import WeightsUnavailableError
from hnerv_lib.train.config import apply_overrides, get_train_preset
from hnerv_lib.train.setup import dist_env
from hnerv_lib.train.trainer import TrainingDiverged, train, validate
from hnerv_lib.utils.cli import add_debug_flag, guarded


def main(argv: Optional[list[str]] = None) -> int:
    """CLI: ``python -m hnerv_lib.train --preset NAME --set key=value ...``."""
    ap = argparse.ArgumentParser(prog="python -m hnerv_lib.train", description="Train (or resume) one run: the one trainer for every model.")
    ap.add_argument("--preset", default="hnerv-tiny", help="training preset (hnerv_lib.train.config.list_presets())")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    ap.add_argument("--run-root", default="runs")
    ap.add_argument("--run-dir", default=None, help="explicit run directory (default: run-root/<config hash>)")
    ap.add_argument("--cache-dir", default="data/cache")
    ap.add_argument("--stop-after", type=int, default=None, help="stop after this epoch (resume later)")
    add_debug_flag(ap)
    args = ap.parse_args(argv)
    return guarded("python -m hnerv_lib.train", lambda: _run(args), args,
                   user_errors=(WeightsUnavailableError,), failures=(TrainingDiverged,))


def _run(args: argparse.Namespace) -> int:
    """Validate (nothing written on a bad preset, key, value or teacher), then train and print the summary."""
    cfg = apply_overrides(get_train_preset(args.preset), args.set)
    validate(cfg)
    run_dir = Path(args.run_dir) if args.run_dir else Path(args.run_root) / cfg.run_id()
    try:
        summary = train(cfg, run_dir, cache_dir=args.cache_dir, stop_after=args.stop_after)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if dist_env()[0] == 0:
        print(f"run dir: {run_dir}")
        print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
