"""Quantise + Huffman-code a model into ONE file that decodes the video (and its CLIP map).

Checked against github.com/haochen-rye/HNeRV (``hnerv_utils.quant_tensor``, ``train_nerv_all.py``
``quant_model`` / ``evaluate``): ``q = round((t - min) / scale)`` clamped to ``[0, 2**bits - 1]``,
``scale = (max - min) / (2**bits - 1)``, dequantised as ``min + scale * q``. Candidates are one
(min, scale) pair per tensor, or for each dim ``a`` min/max reduced over ``a`` (a pair per slice of
the other dims) when those pairs are < 2 % of the values; the lowest mean |error| wins. min/scale are
float16 (here min rounded down and scale up, so ``|t - dequantize(q)| <= scale / 2`` holds). Stored:
every weight but the encoder's at ``model_bits``; for hnerv all frames' embeddings as ONE (T, C, h, w)
tensor at ``embed_bits``. One Huffman code (dahuffman) covers all symbols, embedding first, then
weights in state-dict order. HNeRV's bits per pixel = (Huffman bits + 16 per min/scale value) /
(T * H * W): the code table, config and header are not counted (``bpp_file`` counts the whole file).

File: ``MAGIC | uint64 header length | uint32 header crc32 | JSON header | Huffman bit stream``.
"nerv" and "patch" models decode frame i at ``t = i / num_frames`` (HNeRV's ``norm_idx``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import statistics
import struct
import sys
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from dahuffman import HuffmanCodec
from torch import Tensor, nn

from . import geometry as G
from .io import atomic_path
from .models import build_model, config_from_dict, sample_clip

MAGIC = b"HNRVQ01\n"
PREFIX = struct.Struct("<QI")  # header length, header crc32
EOF_SYMBOL = -1  # dahuffman's end-of-stream symbol; codes are >= 0 so it never collides
SIDE_FRACTION = 0.02  # HNeRV: per-slice min/scale only if they number < 2 % of the values they serve
SIDE_BITS = 16  # min and scale are stored as float16, which is what HNeRV counts
F16_MAX = 65504.0  # largest float16: min/scale beyond it cannot be stored
MP4_CODECS = ("libx264", "mpeg4")  # preferred first; this PyAV build has both
X264_CRF = "18"  # near-transparent H.264 for looking at results; the .hnrv file is the real codec


def _int(name: str, value: Any, high: int | None = None) -> int:
    """``value`` if an int in [1, high]; else ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (high and value > high):
        raise ValueError(f"{name} must be an int in [1, {high or 'inf'}]; got {value!r}")
    return value


@dataclass(frozen=True)
class Quantized:
    """Integer codes plus the float16 min/scale (broadcastable to ``q``) that map them back."""

    q: Tensor  # codes in [0, 2**bits - 1]
    min: Tensor  # float16
    scale: Tensor  # float16
    bits: int
    axis: int  # -1: one pair for the whole tensor; else the dim reduced over


@dataclass(frozen=True)
class QuantConfig:
    """Bit widths of the stored weights and HNeRV frame embeddings."""

    model_bits: int = 8  # HNeRV --quant_model_bit 8: weights lose ~nothing at 8 bits
    embed_bits: int = 6  # HNeRV --quant_embed_bit 6: embeddings are T x per frame, so bits there cost most

    def __post_init__(self) -> None:
        _int("QuantConfig.model_bits", self.model_bits, 16)
        _int("QuantConfig.embed_bits", self.embed_bits, 16)


@dataclass(frozen=True)
class CompressStats:
    """Sizes of a compressed file; ``bpp`` follows HNeRV (header not counted), ``bpp_file`` is on disk."""

    path: str
    file_bytes: int
    weight_bits: int  # Huffman-coded bits of all stored weights (CLIP head included)
    embed_bits: int  # Huffman-coded bits of the hnerv embeddings (0 otherwise)
    side_bits: int  # 16 bits per stored min/scale value
    clip_head_bits: int  # the CLIP head's share of weight_bits + side_bits
    total_bits: int
    num_frames: int
    frame_hw: tuple[int, int]
    bpp: float
    bpp_no_clip: float  # comparable with HNeRV's bpp, which has no CLIP head
    bpp_file: float
    bits_per_param: float
    params: dict[str, int] = field(default_factory=dict)  # stored numbers per part (+ embedding, total)


def _f16(x: Tensor, up: bool) -> Tensor:
    """``x`` rounded to float16 towards +inf (``up``) or -inf, so the stored value brackets ``x``."""
    y = x.to(torch.float16)
    off = y.float() < x if up else y.float() > x
    return torch.where(off, torch.nextafter(y, torch.full_like(y, float("inf") if up else -float("inf"))), y)


def _candidate(t: Tensor, bits: int, axis: int) -> Quantized:
    """Quantise ``t`` with one (min, scale) pair overall (axis -1) or per slice, reducing over ``axis``."""
    lo = t.min() if axis < 0 else t.amin(axis, keepdim=True)
    hi = t.max() if axis < 0 else t.amax(axis, keepdim=True)
    mn = _f16(lo, up=False)
    scale = _f16((hi - mn.float()) / (2**bits - 1), up=True)
    s = scale.float()
    steps = torch.where(s > 0, (t - mn.float()) / torch.where(s > 0, s, 1.0), torch.zeros_like(t))
    dtype = torch.uint8 if bits <= 8 else torch.int32
    return Quantized(steps.round().clamp(0, 2**bits - 1).to(dtype), mn, scale, bits, axis)


def quantize(t: Tensor, bits: int) -> Quantized:
    """HNeRV's min/scale quantisation: per tensor or per slice, whichever has the lowest mean |error|."""
    _int("bits", bits, 16)
    if not isinstance(t, Tensor) or not t.is_floating_point() or t.numel() == 0:
        raise ValueError(f"quantize needs a non-empty float tensor; got {t!r:.80}")
    t = t.detach().float().cpu()
    if not torch.isfinite(t).all() or t.abs().max() > F16_MAX or (t.max() - t.min()) / (2**bits - 1) > F16_MAX:
        raise ValueError(f"quantize needs finite values within +-{F16_MAX} (float16 min/scale); "
                         f"got range [{t.min().item():.4g}, {t.max().item():.4g}]")
    axes = [-1] + [a for a in range(t.dim()) if 1 / t.shape[a] < SIDE_FRACTION]
    cands = [_candidate(t, bits, a) for a in axes]
    errors = [(dequantize(c) - t).abs().mean().item() for c in cands]
    return cands[errors.index(min(errors))]  # ties keep the per-tensor pair, as HNeRV's list order does


def dequantize(q: Quantized) -> Tensor:
    """``min + scale * q`` as float32."""
    return q.min.float() + q.scale.float() * q.q.float()


def quantize_model(model: nn.Module, bits: int = 8) -> dict[str, Quantized]:
    """Every state-dict entry except the encoder's (HNeRV does not ship it), quantised."""
    return {k: quantize(v, bits) for k, v in model.state_dict().items() if not k.startswith("encoder.")}


def _video_meta(cfg: Any, frames: Tensor | None, num_frames: int | None,
                frame_hw: tuple[int, int] | None, grid: Any) -> dict[str, Any]:
    """num_frames, frame_hw and (patch) geometry of the video, checked against the config."""
    if frames is not None and (not isinstance(frames, Tensor) or not frames.is_floating_point()
                               or frames.dim() != 4 or frames.shape[1] != 3):
        raise ValueError(f"frames must be a float (T, 3, H, W) tensor in [0, 1]; got {frames!r:.80}")
    if frames is not None and frame_hw is not None and tuple(frame_hw) != tuple(frames.shape[-2:]):
        raise ValueError(f"frame_hw {tuple(frame_hw)} disagrees with frames of size {tuple(frames.shape[-2:])}")
    if cfg.kind == "hnerv" and frames is None:
        raise ValueError("compressing an hnerv model needs frames (its embeddings are stored); got None")
    count = frames.shape[0] if frames is not None else num_frames
    if num_frames is not None and frames is not None and num_frames != count:
        raise ValueError(f"num_frames {num_frames} disagrees with the {count} frames given")
    _int("num_frames (or frames)", count)
    hw = tuple(frame_hw) if frame_hw is not None else tuple(frames.shape[-2:]) if frames is not None else None
    if cfg.kind != "patch":
        if hw is not None and hw != cfg.frame_hw:
            raise ValueError(f"frame size {hw} disagrees with the model's frame_hw {cfg.frame_hw}")
        # the CLIP patch grid, when given, travels along so the CLIP map can be scored after decoding
        return {"num_frames": count, "frame_hw": list(cfg.frame_hw), "geometry": grid.to_dict() if grid else None}
    if hw is None:
        raise ValueError("a patch model needs frame_hw (or frames) to stitch its patches; got None")
    geo = grid if grid is not None else G.Grid(hw[0] // cfg.patch_hw[0], hw[1] // cfg.patch_hw[1])
    sizes = {(w.height, w.width) for w in geo.windows(hw)}
    if sizes != {tuple(cfg.patch_hw)}:
        raise ValueError(f"geometry {geo} gives windows {sorted(sizes)} on {hw}; the model makes {cfg.patch_hw}")
    return {"num_frames": count, "frame_hw": list(hw), "geometry": geo.to_dict()}


@torch.no_grad()
def _embed(model: nn.Module, frames: Tensor, batch: int = 8) -> Tensor:
    """(T, C, h, w) embeddings of all frames, in frame order."""
    device = next(model.parameters()).device
    return torch.cat([model.embed(frames[i:i + batch].float().to(device)).cpu() for i in range(0, len(frames), batch)])


def _b64(x: Tensor) -> str:
    """float16 tensor -> base64 of its little-endian bytes: JSON-safe at ~21 bits a value."""
    return base64.b64encode(x.flatten().numpy().astype("<f2").tobytes()).decode()


def _unb64(text: str, shape: list[int]) -> Tensor:
    """Inverse of ``_b64``."""
    return torch.from_numpy(np.frombuffer(base64.b64decode(text, validate=True), dtype="<f2").copy()).reshape(shape)


def _code_lengths(table: dict[int, tuple[int, int]]) -> Tensor:
    """Code length per symbol value (index = symbol), EOF excluded."""
    syms = [s for s in table if s != EOF_SYMBOL]
    return torch.zeros(max(syms) + 1, dtype=torch.int64).index_put_((torch.tensor(syms),),
                                                                    torch.tensor([table[s][0] for s in syms]))


def _stats(path: Path, header: dict, tensors: dict[str, Quantized], lengths: Tensor) -> CompressStats:
    """Bit accounting of a file from its quantised tensors and code lengths."""
    bits = {"weight": 0, "embed": 0, "side": 0, "clip": 0}
    params: dict[str, int] = {}
    for name, qt in tensors.items():
        coded = int((torch.bincount(qt.q.flatten().long(), minlength=len(lengths)) * lengths).sum())
        side = SIDE_BITS * (qt.min.numel() + qt.scale.numel())
        bits["embed" if name == "embedding" else "weight"] += coded
        bits["side"] += side
        bits["clip"] += coded + side if name.startswith("clip_head.") else 0
        part = name.split(".")[0]
        params[part] = params.get(part, 0) + qt.q.numel()
    params["total"] = sum(params.values())
    video = header["video"]
    pixels = video["num_frames"] * video["frame_hw"][0] * video["frame_hw"][1]
    total = bits["weight"] + bits["embed"] + bits["side"]
    size = path.stat().st_size
    return CompressStats(str(path), size, bits["weight"], bits["embed"], bits["side"], bits["clip"], total,
                         video["num_frames"], tuple(video["frame_hw"]), total / pixels,
                         (total - bits["clip"]) / pixels, 8 * size / pixels, total / params["total"], params)


def compress(model: nn.Module, path: str | os.PathLike, frames: Tensor | None = None, *,
             num_frames: int | None = None, frame_hw: tuple[int, int] | None = None,
             grid: G.Geometry | None = None, qcfg: QuantConfig = QuantConfig()) -> CompressStats:
    """Write the quantised, Huffman-coded video (+ CLIP head) to ``path`` atomically; return its sizes."""
    if not isinstance(qcfg, QuantConfig):
        raise ValueError(f"qcfg must be a QuantConfig; got {qcfg!r}")
    cfg = getattr(model, "cfg", None)
    if cfg is None or not hasattr(cfg, "to_dict"):
        raise ValueError(f"compress needs a hnerv_lib model with a .cfg; got {type(model).__name__}")
    video = _video_meta(cfg, frames, num_frames, frame_hw, grid)
    tensors = {"embedding": quantize(_embed(model, frames), qcfg.embed_bits)} if cfg.kind == "hnerv" else {}
    tensors.update(quantize_model(model, qcfg.model_bits))
    symbols = torch.cat([qt.q.flatten().long() for qt in tensors.values()])
    counts = torch.bincount(symbols)
    codec = HuffmanCodec.from_frequencies({s: int(c) for s, c in enumerate(counts.tolist()) if c},
                                          eof=EOF_SYMBOL)
    payload = codec.encode(symbols.tolist())
    table = codec.get_code_table()
    header = {
        "format": 1, "config": cfg.to_dict(), "video": video, "num_symbols": len(symbols),
        "payload_bytes": len(payload), "payload_crc32": zlib.crc32(payload),
        "code_table": [[s, b, v] for s, (b, v) in sorted(table.items())],
        "tensors": [{"name": k, "shape": list(qt.q.shape), "bits": qt.bits, "axis": qt.axis,
                     "side_shape": list(qt.min.shape), "min": _b64(qt.min), "scale": _b64(qt.scale)}
                    for k, qt in tensors.items()],
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(MAGIC + PREFIX.pack(len(head), zlib.crc32(head)) + head + payload)
    return _stats(path, header, tensors, _code_lengths(table))


def _read(path: str | os.PathLike) -> tuple[Path, dict, dict[str, Quantized], Tensor]:
    """Header, quantised tensors and code lengths of a file; ValueError naming it if it is bad."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"compressed file {path} does not exist")
    data = path.read_bytes()

    def bad(why: str) -> ValueError:
        return ValueError(f"compressed file {path} is corrupt or truncated: {why}")

    start = len(MAGIC) + PREFIX.size
    if len(data) < start or not data.startswith(MAGIC):
        raise bad(f"no {MAGIC!r} prefix ({len(data)} bytes)")
    head_len, head_crc = PREFIX.unpack_from(data, len(MAGIC))
    head, payload = data[start:start + head_len], data[start + head_len:]
    if len(head) != head_len or zlib.crc32(head) != head_crc:
        raise bad(f"header of {head_len} bytes is cut short or fails its checksum")
    try:
        header = json.loads(head)
        if header["format"] != 1:
            raise bad(f"unknown format {header['format']!r}; this reader knows format 1")
        if len(payload) != header["payload_bytes"] or zlib.crc32(payload) != header["payload_crc32"]:
            raise bad(f"bit stream has {len(payload)} bytes, expected {header['payload_bytes']} (or bad checksum)")
        table = {s: (b, v) for s, b, v in header["code_table"]}
        symbols = HuffmanCodec(table, eof=EOF_SYMBOL).decode(payload)
        if len(symbols) != header["num_symbols"]:
            raise bad(f"decoded {len(symbols)} symbols, expected {header['num_symbols']}")
        flat, tensors, at = torch.tensor(symbols, dtype=torch.int32), {}, 0
        for e in header["tensors"]:
            n = int(torch.Size(e["shape"]).numel())
            q = flat[at:at + n].reshape(e["shape"]).to(torch.uint8 if e["bits"] <= 8 else torch.int32)
            side = [_unb64(e[k], e["side_shape"]) for k in ("min", "scale")]
            tensors[e["name"]], at = Quantized(q, *side, e["bits"], e["axis"]), at + n
        if at != len(flat):
            raise bad(f"tensor shapes cover {at} symbols of {len(flat)}")
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        if str(path) in str(err):
            raise
        raise bad(f"{type(err).__name__}: {err}") from err
    return path, header, tensors, _code_lengths(table)


class _NoEncoder(nn.Module):
    """Stands in for the HNeRV encoder, which the file does not ship."""

    def forward(self, x: Tensor) -> Tensor:
        raise ValueError("this model was loaded from a compressed file, which stores no encoder; "
                         "use the file's embeddings with model.decode")


def load_compressed(path: str | os.PathLike) -> tuple[nn.Module, Tensor | None, dict[str, Any]]:
    """(model with dequantised weights in eval mode, dequantised (T, C, h, w) embeddings or None, meta)."""
    path, header, tensors, lengths = _read(path)
    try:
        model = build_model(config_from_dict(header["config"]))
        if model.cfg.kind == "hnerv":
            model.encoder = _NoEncoder()
        model.load_state_dict({k: dequantize(v) for k, v in tensors.items() if k != "embedding"})
    except (KeyError, ValueError, RuntimeError) as err:
        raise ValueError(f"compressed file {path} does not rebuild its model: {err}") from err
    emb = dequantize(tensors["embedding"]) if "embedding" in tensors else None
    meta = {**header["video"], "kind": model.cfg.kind, "path": str(path),
            "stats": asdict(_stats(path, header, tensors, lengths))}
    return model.eval(), emb, meta


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
    count, hw = meta["num_frames"], tuple(meta["frame_hw"])
    device = next(model.parameters()).device
    if meta["kind"] == "hnerv":
        out = model.decode(emb[ids].to(device))
    elif meta["kind"] == "nerv":
        out = model((ids.float() / count).to(device))  # t = i / num_frames, as HNeRV's norm_idx
    else:
        windows = G.geometry_from_dict(meta["geometry"]).windows(hw)
        coords = G.coords(ids, count, windows, hw).flatten(0, 1).to(device)
        out = model(coords)
        patches = out["rgb"].float().cpu()
        rgb = G.stitch(patches.view(len(ids), len(windows), *patches.shape[1:]), windows, hw)
        clip = out["clip"].float().cpu().view(len(ids), len(windows), -1) if out["clip"] is not None else None
        return {"rgb": rgb.clamp(0, 1), "clip": clip}
    clip = out["clip"].float().cpu() if out["clip"] is not None else None
    return {"rgb": out["rgb"].float().cpu().clamp(0, 1), "clip": clip}


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
    """``ids -> (rgb, per-patch CLIP vectors or None)`` from a compressed file, for ``evaluate.score_frames``.

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
            wh = torch.tensor([[w.width / hw[1], w.height / hw[0]] for w in windows])
            clip = sample_clip(clip, G.centers(windows, hw), clip_sample, wh)
        return out["rgb"], clip

    return decode


def _write_mp4(frames: Tensor, file: Path, fps: int) -> None:
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
    from PIL import Image

    if fmt not in ("png", "mp4"):
        raise ValueError(f"fmt must be 'png' or 'mp4'; got {fmt!r}")
    _int("fps", fps)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"out_dir {out} exists and is not an empty directory")
    frames = decode_frames(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{secrets.token_hex(4)}.tmp"  # mkdir, unlike mkdtemp, honours umask
    tmp.mkdir()
    try:
        if fmt == "mp4":
            names = ["video.mp4"]
            _write_mp4(frames, tmp / names[0], fps)
        else:
            names = [f"frame_{i:05d}.png" for i in range(len(frames))]
            for name, img in zip(names, _to_uint8(frames)):
                Image.fromarray(img).save(tmp / name)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [out / n for n in names]


def decoding_speed(source: str | os.PathLike | Loaded, repeats: int = 3, batch: int = 8) -> dict[str, Any]:
    """Frames per second decoding every frame (median of ``repeats``), plus the file's load time."""
    _int("repeats", repeats)
    t0 = time.perf_counter()
    loaded = _loaded(source)
    load_s = None if isinstance(source, tuple) else time.perf_counter() - t0
    decode_frames(loaded, [0])  # warm-up: first-call allocations are not decoding
    cuda = next(loaded[0].parameters()).is_cuda
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        decode_frames(loaded, batch=batch)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    count = loaded[2]["num_frames"]
    return {"frames_per_s": count / median, "seconds": median, "all_seconds": times,
            "num_frames": count, "repeats": repeats, "batch": batch, "load_s": load_s}


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
    args = parser.parse_args(argv)
    try:
        if args.cmd == "decode":
            written = export_frames(args.file, args.out_dir, args.format, args.fps)
            print(f"wrote {len(written)} file(s) to {args.out_dir}")
        else:
            _, _, meta = load_compressed(args.file)
            print(json.dumps({k: meta[k] for k in ("kind", "num_frames", "frame_hw", "geometry", "stats")}, indent=2))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
