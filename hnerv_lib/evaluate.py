"""CLI: score a finished run, or one of its compressed files, from the shell (HNeRV's ``--eval_only``).

    python -m hnerv_lib.evaluate runs/<id>                          # the trained float model
    python -m hnerv_lib.evaluate runs/<id>/<file>.hnerv --frames val  # a compressed file, unseen frames
    python -m hnerv_lib.evaluate runs/<id> --dump-images out/ --dump-video out.mp4

Prints the metrics per split (PSNR, SSIM, MS-SSIM, CLIP cosine and, with a CLIP head, the centred
cosine and retrieval top-1 that can fail), writes the per-frame table as CSV (default: in the run
directory), and on request the decoded frames as PNGs or one mp4. A compressed file is scored against
the frames and CLIP targets of the run directory it lies in (or ``--run-dir``). A top-level module: it
joins the training runs, the evaluation and the codec.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd
import torch

from hnerv_lib.codec.decode import write_mp4, reconstructor, write_frames
from hnerv_lib.eval.clip_metrics import clip_table
from hnerv_lib.eval.frames import score_frames
from hnerv_lib.train.run import Run
from hnerv_lib.train.setup import prepare
from hnerv_lib.utils import io
from hnerv_lib.utils.cli import add_debug_flag, guarded

FRAME_SETS = ("all", "train", "val")


def _source(path: Path, run_dir: Optional[Path], cache_dir: str):
    """(run, setup, reconstruct, name) for a run directory or a compressed file."""
    if path.is_dir():
        run = Run(path)
        if not run.finished:
            raise FileNotFoundError(f"run {path} has not finished (status: {run.status}); evaluate a finished run")
        model, _, setup = run.load(cache_dir)
        model = model.eval()
        return run, setup, lambda ids: setup.task.reconstruct(model, ids), "model"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is neither a run directory nor a compressed file")
    run = Run(run_dir or path.parent)
    if not run.config_path.is_file():
        raise FileNotFoundError(f"{path} is scored against its run's frames, but {run.dir} holds no run "
                                f"configuration: pass --run-dir")
    setup = prepare(run.config, torch.device("cpu"), cache_dir, progress=False)
    return run, setup, reconstructor(path, run.config.clip_sample), path.stem


def evaluate(source: str | os.PathLike, frames: str = "all", run_dir: Optional[str | os.PathLike] = None,
             cache_dir: str = "data/cache") -> tuple[pd.DataFrame, pd.DataFrame, torch.Tensor, Run, str]:
    """(metrics per split, per-frame table, decoded frames of the chosen set, run, name of what was scored)."""
    if frames not in FRAME_SETS:
        raise ValueError(f"--frames must be one of {FRAME_SETS}; got {frames!r}")
    run, s, reconstruct, name = _source(Path(source), Path(run_dir) if run_dir else None, cache_dir)
    per_frame = score_frames(reconstruct, s.task.frames, s.task.targets, s.split)
    if frames != "all":
        per_frame = per_frame[per_frame["split"] == frames].reset_index(drop=True)
    if per_frame.empty:
        raise ValueError(f"the split of {run.dir} has no {frames} frames")
    ids = torch.tensor(per_frame["frame"].tolist())
    rgb, clip = reconstruct(ids)
    table = per_frame.groupby("split", sort=False)[["psnr", "ssim", "ms_ssim", "clip_sim"]].mean()
    table.insert(0, "frames", per_frame.groupby("split", sort=False).size())
    if s.task.targets is not None:
        _, clip_all = reconstruct(torch.arange(s.task.num_frames))
        model_rows = clip_table(clip_all.cpu(), s.task.targets.cpu(), s.split, n_boot=200)
        model_rows = model_rows[model_rows["predictor"] == "model"].set_index("split")
        for col, src in (("clip_centred", "centred_cos"), ("clip_top1", "top1"), ("clip_chance_top1", "chance_top1")):
            table[col] = model_rows[src].reindex(table.index)
    return table.reset_index(), per_frame, rgb.float().clamp(0, 1).cpu(), run, name


def _write_video(frames: torch.Tensor, file: Path, fps: int) -> Path:
    """One mp4 (H.264, visually lossless CRF) written through a temp file and a rename."""
    if file.suffix != ".mp4":
        raise ValueError(f"--dump-video writes an .mp4 file; got {file}")
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.stem}.{secrets.token_hex(4)}.tmp.mp4")
    try:
        write_mp4(frames, tmp, fps)
        os.replace(tmp, file)
    finally:
        tmp.unlink(missing_ok=True)
    return file


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; user errors print one line and return 2."""
    ap = argparse.ArgumentParser(prog="python -m hnerv_lib.evaluate", description=__doc__.split("\n\n")[0])
    ap.add_argument("source", help="a finished run directory, or a compressed file of a run")
    ap.add_argument("--frames", default="all", choices=FRAME_SETS, help="which frames to score and dump")
    ap.add_argument("--run-dir", default=None, help="the run a compressed file belongs to (default: its folder)")
    ap.add_argument("--csv", default=None, help="per-frame table (default: RUN_DIR/evaluation_<what>.csv)")
    ap.add_argument("--dump-images", default=None, metavar="DIR", help="write the decoded frames as PNGs here")
    ap.add_argument("--dump-video", default=None, metavar="FILE", help="write the decoded frames as one .mp4")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--cache-dir", default="data/cache")
    add_debug_flag(ap)
    args = ap.parse_args(argv)
    return guarded("python -m hnerv_lib.evaluate", lambda: _run(args), args)


def _run(args: argparse.Namespace) -> int:
    if args.dump_video and not args.dump_video.endswith(".mp4"):  # before any work
        raise ValueError(f"--dump-video writes an .mp4 file; got {args.dump_video}")
    table, per_frame, rgb, run, name = evaluate(args.source, args.frames, args.run_dir, args.cache_dir)
    csv = Path(args.csv) if args.csv else run.evaluation_path(name)
    with io.atomic_path(csv) as tmp:
        per_frame.to_csv(tmp, index=False)
    print(f"{name} of run {run.dir} ({args.frames} frames)")
    print(table.round(4).to_string(index=False))
    print(f"per-frame table: {csv}")
    if args.dump_images:
        names = [f"frame_{f:05d}.png" for f in per_frame["frame"]]  # named by the frame's index in the video
        written = write_frames(rgb, args.dump_images, "png", args.fps, names=names)
        print(f"wrote {len(written)} PNG(s) to {args.dump_images}")
    if args.dump_video:
        print(f"wrote {_write_video(rgb, Path(args.dump_video), args.fps)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
