"""CLI: ``python -m hnerv_lib.compress compress RUN_DIR [OUT]``, ``info FILE`` or ``decode FILE OUT_DIR``.

A top-level module: it joins the codec (files) and the training runs (``compress`` reads a run).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hnerv_lib.codec.bitstream import load_compressed
from hnerv_lib.codec.decode import export_frames
from hnerv_lib.codec.quantise import QuantConfig
from hnerv_lib.train.run import Run
from hnerv_lib.utils.cli import add_debug_flag, guarded


def main(argv: list[str] | None = None) -> int:
    """Compress a finished training run into one .hnerv file, print a file's sizes, or decode it to frames."""
    parser = argparse.ArgumentParser(prog="python -m hnerv_lib.compress", description=main.__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    comp = sub.add_parser("compress", help="quantise and entropy-code a finished run's model into one file")
    comp.add_argument("run_dir", help="a finished run directory (runs/<id>)")
    comp.add_argument("out", nargs="?", default=None, help=f"output file (default: RUN_DIR/{Run.COMPRESSED})")
    comp.add_argument("--model-bits", type=int, default=QuantConfig.model_bits, help="weight bits (HNeRV: 8)")
    comp.add_argument("--embed-bits", type=int, default=QuantConfig.embed_bits, help="frame-embedding bits (HNeRV: 6)")
    comp.add_argument("--cache-dir", default="data/cache", help="frame and CLIP-target caches (the frames feed the encoder)")
    dec = sub.add_parser("decode", help="write the decoded frames")
    dec.add_argument("file")
    dec.add_argument("out_dir")
    dec.add_argument("--format", choices=("png", "mp4"), default="png")
    dec.add_argument("--fps", type=int, default=25)
    sub.add_parser("info", help="print sizes and bits per pixel").add_argument("file")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    return guarded("python -m hnerv_lib.compress", lambda: _run(args), args)


def _info(meta: dict) -> dict:
    stats = meta["stats"]
    return {"file": meta["path"], "kind": meta["kind"], "num_frames": meta["num_frames"], "frame_hw": meta["frame_hw"],
            "geometry": meta.get("geometry"), "quantisation": meta["quantisation"],
            "bpp": {k: stats[k] for k in ("bpp", "bpp_no_clip", "bpp_file")},
            "bits_by_part": {k: stats[k] for k in ("weight_bits", "embed_bits", "side_bits", "clip_head_bits", "total_bits")},
            "file_bytes": stats["file_bytes"], "stored_numbers": stats["params"]}


def _run(args: argparse.Namespace) -> int:
    if args.cmd == "compress":
        qcfg = QuantConfig(model_bits=args.model_bits, embed_bits=args.embed_bits)  # checked before any loading
        stats = Run(Path(args.run_dir)).compress(args.out, qcfg, cache_dir=args.cache_dir)
        print(f"wrote {stats.path}: {stats.file_bytes} bytes, {stats.bpp:.4f} bpp "
              f"({stats.bpp_no_clip:.4f} without the CLIP head), {qcfg.model_bits}-bit weights, "
              f"{qcfg.embed_bits}-bit embeddings")
    elif args.cmd == "decode":
        written = export_frames(args.file, args.out_dir, args.format, args.fps)
        print(f"wrote {len(written)} file(s) to {args.out_dir}")
    else:
        _, _, meta = load_compressed(args.file)
        print(json.dumps(_info(meta), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
