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

import base64
import json
import os
import struct
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from dahuffman import HuffmanCodec
from torch import Tensor, nn

from hnerv_lib.codec.quantise import (
    SIDE_BITS,
    QuantConfig,
    Quantized,
    _int,
    dequantize,
    quantize,
    quantize_model,
)
from hnerv_lib.data import geometry as G
from hnerv_lib.models import build_model, config_from_dict
from hnerv_lib.utils.io import atomic_path

MAGIC = b"HNRVQ01\n"


PREFIX = struct.Struct("<QI")  # header length, header crc32


EOF_SYMBOL = -1  # dahuffman's end-of-stream symbol; codes are >= 0 so it never collides


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


def file_layout(path: str | os.PathLike) -> dict[str, int]:
    """Bytes of each part of a compressed file: ``prefix`` (magic, length, crc), ``header`` (the JSON:
    config, code table, quantisation ranges) and ``payload`` (the Huffman bit stream)."""
    data = Path(path).read_bytes()
    start = len(MAGIC) + PREFIX.size
    if len(data) < start or not data.startswith(MAGIC):
        raise ValueError(f"compressed file {path} is corrupt or truncated: no {MAGIC!r} prefix ({len(data)} bytes)")
    head_len = PREFIX.unpack_from(data, len(MAGIC))[0]
    return {"prefix": start, "header": head_len, "payload": len(data) - start - head_len}


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
    weights = {t["bits"] for t in header["tensors"] if t["name"] != "embedding"}
    embed = [t["bits"] for t in header["tensors"] if t["name"] == "embedding"]
    meta = {**header["video"], "kind": model.cfg.kind, "path": str(path),
            "quantisation": {"model_bits": max(weights) if weights else None, "embed_bits": embed[0] if embed else None},
            "stats": asdict(_stats(path, header, tensors, lengths))}
    return model.eval(), emb, meta
