"""Decoding a compressed file (or a loaded one) back to frames, PNG/MP4 export and decoding speed."""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hnerv_lib.codec.bitstream import load_compressed
from hnerv_lib.codec.quantise import _int
from hnerv_lib.data import geometry as G
from hnerv_lib.models.decoding import clip_at_windows, decode_frames_of
from hnerv_lib.utils.timing import MIN_REPEATS, time_call

MP4_CODECS = ("libx264", "mpeg4")  # preferred first; this PyAV build has both


X264_CRF = "18"  # near-transparent H.264 for looking at results; the .hnrv file is the real codec


Loaded = tuple[nn.Module, Tensor | None, dict[str, Any]]


def _loaded(source: str | os.PathLike | Loaded) -> Loaded:
    return source if isinstance(source, tuple) else load_compressed(source)


def _indices(indices: Any, count: int) -> Tensor:
    idx = torch.arange(count) if indices is None else torch.as_tensor(indices, dtype=torch.long).flatten()
    if idx.numel() and (idx.min() < 0 or idx.max() >= count):
        raise ValueError(f"frame indices must lie in [0, {count}); got {idx.tolist()}")
    return idx


def _decode_batch(model: nn.Module, emb: Tensor | None, meta: dict[str, Any], ids: Tensor) -> dict[str, Any]:
    """Decode frames ``ids``: dict(rgb=(B, 3, H, W) in [0, 1], clip=map (full-frame), vectors (patch) or None)."""
    hw = tuple(meta["frame_hw"])
    windows = G.geometry_from_dict(meta["geometry"]).windows(hw) if meta["kind"] == "patch" else None
    return decode_frames_of(model, ids, meta["num_frames"], embeddings=emb, windows=windows, frame_hw=hw)


@torch.no_grad()
def decode_frames(source: str | os.PathLike | Loaded, indices: Any = None, batch: int = 8) -> Tensor:
    """(len(indices), 3, H, W) frames in [0, 1], in the order asked (all frames by default)."""
    _int("batch", batch)
    model, emb, meta = _loaded(source)
    out = [torch.empty(0, 3, *meta["frame_hw"])]
    for ids in _indices(indices, meta["num_frames"]).split(batch):
        out.append(_decode_batch(model, emb, meta, ids)["rgb"])
    return torch.cat(out)


def reconstructor(source: str | os.PathLike | Loaded, clip_sample: str = "center"):
    """``ids -> (rgb, per-patch CLIP vectors or None)`` from a compressed file, for ``eval.frames.score_frames``.

    Full-frame CLIP maps are read at the stored grid's patch centres (or averaged over the patch area).
    """
    model, emb, meta = _loaded(source)
    hw = tuple(meta["frame_hw"])
    windows = G.geometry_from_dict(meta["geometry"]).windows(hw) if meta.get("geometry") else None

    @torch.no_grad()
    def decode(ids: Tensor) -> tuple[Tensor, Tensor | None]:
        out = _decode_batch(model, emb, meta, ids.cpu())
        clip = out["clip"]
        if clip is not None and clip.dim() == 4:  # a full-frame CLIP map: sample it at the patch centres
            if windows is None:
                raise ValueError(f"{meta['path']} stores no patch geometry: pass grid= to compress()")
            clip = clip_at_windows(clip, windows, hw, clip_sample)
        return out["rgb"], clip

    return decode


def write_mp4(frames: Tensor, file: Path, fps: int) -> None:
    import av

    h, w = frames.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"mp4 (yuv420p) needs an even frame size; got {h}x{w}")
    codec = next((c for c in MP4_CODECS if c in av.codecs_available), None)
    if codec is None:
        raise ValueError(f"this PyAV build has none of the mp4 encoders {MP4_CODECS}")
    with av.open(str(file), "w") as box:
        stream = box.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": X264_CRF} if codec == "libx264" else {}
        for img in _to_uint8(frames):
            box.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        box.mux(stream.encode())


def _to_uint8(frames: Tensor) -> Any:
    """(T, 3, H, W) in [0, 1] -> (T, H, W, 3) uint8 numpy array."""
    return (frames * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def export_frames(path: str | os.PathLike | Loaded, out_dir: str | os.PathLike, fmt: str = "png",
                  fps: int = 25) -> list[Path]:
    """Decode ``path`` into ``out_dir`` (frame_00000.png ... or video.mp4); all or nothing appears."""
    _check_out(out_dir, fmt, fps)
    return write_frames(decode_frames(path), out_dir, fmt, fps)


def _check_out(out_dir: str | os.PathLike, fmt: str, fps: int) -> None:
    if fmt not in ("png", "mp4"):
        raise ValueError(f"fmt must be 'png' or 'mp4'; got {fmt!r}")
    _int("fps", fps)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"out_dir {out} exists and is not an empty directory")


def write_frames(frames: Tensor, out_dir: str | os.PathLike, fmt: str = "png", fps: int = 25,
                 names: list[str] | None = None) -> list[Path]:
    """Write (T, 3, H, W) frames in [0, 1] into ``out_dir`` as PNGs (``names``, default frame_00000.png ...)
    or one video.mp4; the folder appears complete or not at all."""
    from PIL import Image

    _check_out(out_dir, fmt, fps)
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{secrets.token_hex(4)}.tmp"  # mkdir, unlike mkdtemp, honours umask
    tmp.mkdir()
    try:
        if fmt == "mp4":
            names = ["video.mp4"]
            write_mp4(frames, tmp / names[0], fps)
        else:
            names = names or [f"frame_{i:05d}.png" for i in range(len(frames))]
            for name, img in zip(names, _to_uint8(frames)):
                Image.fromarray(img).save(tmp / name)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [out / n for n in names]


def decoding_speed(source: str | os.PathLike | Loaded, repeats: int = MIN_REPEATS, batch: int = 8) -> dict[str, Any]:
    """Frames per second decoding every frame (median of ``repeats`` after a warm-up, with the
    interquartile range as ``frames_per_s_iqr``), plus the file's load time."""
    _int("repeats", repeats)
    t0 = time.perf_counter()
    loaded = _loaded(source)
    load_s = None if isinstance(source, tuple) else time.perf_counter() - t0
    decode_frames(loaded, [0])  # warm-up: first-call allocations are not decoding
    cuda = next(loaded[0].parameters()).is_cuda
    timing, _ = time_call(lambda: decode_frames(loaded, batch=batch), repeats, warmup=0,
                          sync=torch.cuda.synchronize if cuda else None)
    count = loaded[2]["num_frames"]
    return {"frames_per_s": timing.rate(count), "frames_per_s_iqr": timing.rate_range(count),
            "seconds": timing.median_s, "timing": timing.to_dict(),
            "num_frames": count, "repeats": repeats, "batch": batch, "load_s": load_s}
