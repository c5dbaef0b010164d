"""Command line: train and infer the arrow-of-time classifier; both honour ``APPCONFIG__<FIELD>`` variables.

    python -m hnerv_lib.action train --num_frames 8 --epochs 5 --out runs/aot2d
    APPCONFIG__USE_3D_PATCH_EMBED=true APPCONFIG__TUBELET_SIZE=2 \\
        python -m hnerv_lib.action train --num_frames 8 --out runs/aot_t2
    python -m hnerv_lib.action infer --checkpoint runs/aot2d/model.pt --data_root runs/aot2d/data/test --num_frames 8

``train`` cuts arrow-of-time clips from the videos into ``--data_root`` (default ``OUT/data``) as
``train/clips.pt`` and ``test/clips.pt`` (format: hnerv_lib/action/clips.py), or reads them if they
are there, then writes ``OUT/model.pt`` (self-describing checkpoint) and ``OUT/summary.json``.
``infer`` prints one line per clip and the accuracy; the checkpoint must match the patch embedding
the environment asks for.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Optional, Sequence

import torch

from hnerv_lib.data.video import DataError
from hnerv_lib.studies.tubelets.clips import ArrowOfTime, ClipSet, arrow_of_time
from hnerv_lib.studies.tubelets.config import PRESETS, ConfigError, from_env, get_preset
from hnerv_lib.studies.tubelets.inflate import INFLATION_MODES, inflate
from hnerv_lib.studies.tubelets.model import (
    LSViTForAction,
    check_compatible,
    load_checkpoint,
    read_config,
    save_checkpoint,
)
from hnerv_lib.studies.tubelets.train import (
    TrainSpec,
    accuracy,
    fit,
    predict,
    predict_proba,
)
from hnerv_lib.utils import io
from hnerv_lib.utils.cli import add_debug_flag, guarded


def _clip_sets(args: argparse.Namespace, num_frames: int) -> tuple[ClipSet, ClipSet]:
    root = Path(args.data_root or Path(args.out) / "data")
    if (root / "train" / "clips.pt").is_file():
        train_set, test_set = ClipSet.load(root / "train"), ClipSet.load(root / "test")
    else:
        spec = ArrowOfTime(videos=tuple(args.videos.split(",")), num_frames=num_frames, frame_step=args.frame_step,
                           size=args.size, crops=args.crops, blocks=args.blocks)
        train_set, test_set = arrow_of_time(spec, args.cache_dir)
        train_set.save(root / "train")
        test_set.save(root / "test")
    if train_set.num_frames != num_frames:
        raise DataError(f"clips in {root} have {train_set.num_frames} frames, but --num_frames is {num_frames}")
    return train_set, test_set


def _model(args: argparse.Namespace, image_size: int) -> LSViTForAction:
    if args.init_from:  # fine-tune: inflate a 2D checkpoint into the 3D model the environment asks for
        model2d, _ = load_checkpoint(args.init_from)
        target = from_env(model2d.config)
        if not target.use_3d_patch_embed:
            raise ConfigError("--init_from inflates a 2D checkpoint: set APPCONFIG__USE_3D_PATCH_EMBED=true")
        same_but_embedding = replace(target, use_3d_patch_embed=False, tubelet_size=model2d.config.tubelet_size)
        check_compatible(model2d.config, same_but_embedding, args.init_from)  # only the embedding may change
        if args.num_frames is not None and args.num_frames != model2d.num_frames:
            raise ConfigError(f"--num_frames {args.num_frames} differs from the checkpoint's {model2d.num_frames}")
        return inflate(model2d, target.tubelet_size, args.inflate)
    cfg = from_env(replace(get_preset(args.preset), image_size=image_size, num_classes=2))
    return LSViTForAction(cfg, num_frames=args.num_frames)


def train_main(args: argparse.Namespace) -> int:
    """Build or read the clips, train, write the checkpoint and summary."""
    torch.manual_seed(args.seed)
    model = _model(args, args.size)  # first: a bad config fails before any video is decoded
    train_set, test_set = _clip_sets(args, model.num_frames)
    spec = TrainSpec(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    history = fit(model, train_set, spec, on_epoch=lambda e, loss: print(f"epoch {e + 1}/{spec.epochs} loss {loss:.4f}"))
    test_acc = accuracy(predict(model, test_set), test_set.labels)
    summary = {"embedding": model.config.embedding, "tokens": model.num_tokens, "train": spec.to_dict(),
               "train_clips": len(train_set), "test_clips": len(test_set), "test_acc": test_acc, **history}
    out = Path(args.out)
    save_checkpoint(out / "model.pt", model, extra=summary)
    io.save_json(summary, out / "summary.json")
    print(f"{model.config.embedding}: {model.num_tokens} tokens; test accuracy {test_acc:.3f} on {len(test_set)} "
          f"clips; checkpoint {out / 'model.pt'}")
    return 0


def infer_main(args: argparse.Namespace) -> int:
    """Classify every clip under --data_root with the checkpoint; print each prediction and the accuracy."""
    stored, _ = read_config(args.checkpoint)
    expect = from_env(stored)  # the environment may ask for another embedding: then the load fails, naming both
    if args.num_frames is not None:
        expect = replace(expect, num_frames=args.num_frames)
    model, _ = load_checkpoint(args.checkpoint, expect=expect)
    data = ClipSet.load(args.data_root)
    if data.num_frames != model.num_frames:
        raise DataError(f"clips in {args.data_root} have {data.num_frames} frames; the model takes {model.num_frames}")
    probs = predict_proba(model, data, batch_size=args.batch_size)
    preds = probs.argmax(dim=1)
    for i, (p, y) in enumerate(zip(preds.tolist(), data.labels.tolist())):
        mark = "ok" if p == y else "WRONG"
        print(f"clip {i:4d}: predicted {data.classes[p]:>8s} (p={probs[i, p]:.2f}), label {data.classes[y]:>8s}  {mark}")
    acc = accuracy(preds, data.labels)
    print(f"accuracy {acc:.4f} ({int((preds == data.labels).sum())}/{len(data)}) with {model.config.embedding}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The argparse parser of both sub-commands."""
    ap = argparse.ArgumentParser(prog="python -m hnerv_lib.action", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train on arrow-of-time clips (APPCONFIG__* picks the embedding)")
    tr.add_argument("--num_frames", type=int, default=None, help="frames per clip (3D: a multiple of tubelet_size)")
    tr.add_argument("--out", required=True, help="run folder: model.pt, summary.json, data/")
    tr.add_argument("--data_root", default=None, help="folder with train/ and test/ clip sets (written if absent)")
    tr.add_argument("--epochs", type=int, default=5)
    tr.add_argument("--batch_size", type=int, default=16)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--preset", default="tiny", choices=sorted(PRESETS), help="model size before APPCONFIG__ overrides")
    tr.add_argument("--videos", default="bunny,bikes,carphone", help="comma-separated embedded names or video files")
    tr.add_argument("--size", type=int, default=32, help="square clip side in pixels (= the model's image_size)")
    tr.add_argument("--frame_step", type=int, default=2, help="source frames between clip frames")
    tr.add_argument("--crops", type=int, default=5, help="square crops across each frame's width")
    tr.add_argument("--blocks", type=int, default=3, help="interleaved train/test stretches per video")
    tr.add_argument("--init_from", default=None, help="2D checkpoint to inflate into the 3D model, then fine-tune")
    tr.add_argument("--inflate", default="central", choices=INFLATION_MODES)
    tr.add_argument("--cache_dir", default="data/cache")
    inf = sub.add_parser("infer", help="classify a clip set with a checkpoint")
    inf.add_argument("--checkpoint", required=True)
    inf.add_argument("--data_root", required=True, help="folder holding clips.pt")
    inf.add_argument("--num_frames", type=int, default=None, help="must equal the checkpoint's (default: its own)")
    inf.add_argument("--batch_size", type=int, default=32)
    for command in (tr, inf):
        add_debug_flag(command)
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; configuration, data and checkpoint errors print one line and return 2 (--debug: traceback)."""
    args = parser().parse_args(argv)
    return guarded("python -m hnerv_lib.action", lambda: train_main(args) if args.command == "train" else infer_main(args),
                   args)
