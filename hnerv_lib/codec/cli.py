"""CLI: ``python -m hnerv_lib.compress decode FILE OUT_DIR`` or ``info FILE``."""

from __future__ import annotations

import argparse
import json
import sys

from hnerv_lib.codec.bitstream import load_compressed
from hnerv_lib.codec.decode import export_frames
from hnerv_lib.utils.cli import add_debug_flag, guarded


def main(argv: list[str] | None = None) -> int:
    """CLI: ``decode FILE OUT_DIR [--format png|mp4] [--fps N]`` or ``info FILE``."""
    parser = argparse.ArgumentParser(prog="python -m hnerv_lib.compress", description=main.__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    dec = sub.add_parser("decode", help="write the decoded frames")
    dec.add_argument("file")
    dec.add_argument("out_dir")
    dec.add_argument("--format", choices=("png", "mp4"), default="png")
    dec.add_argument("--fps", type=int, default=25)
    sub.add_parser("info", help="print sizes and bits per pixel").add_argument("file")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    return guarded("python -m hnerv_lib.compress", lambda: _run(args), args)


def _run(args: argparse.Namespace) -> int:
    if args.cmd == "decode":
        written = export_frames(args.file, args.out_dir, args.format, args.fps)
        print(f"wrote {len(written)} file(s) to {args.out_dir}")
    else:
        _, _, meta = load_compressed(args.file)
        print(json.dumps({k: meta[k] for k in ("kind", "num_frames", "frame_hw", "geometry", "stats")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
