"""Parameter counting and HNeRV's model-size targeting.

Counting convention (HNeRV's ``--modelsize``, ``train_nerv_all.py``): the *paper size* of a video
model is what must be stored to decode the video,

    paper size = decoder params (stem + NeRV blocks + RGB head) + embedding numbers per frame x frames.

The encoder is excluded (it is not needed to decode) and so is the CLIP head (not part of the
video). The frame embeddings are counted as numbers; HNeRV stores them quantised to 6 bits. NeRV
and patch models have no per-frame embedding. HNeRV's own log line leaves the 3x3 RGB head
(3 * 9 * C + 3 numbers) out of "decoder" but stores it in its quantised checkpoint; we count it.
"""

from __future__ import annotations

import math

from torch import nn

from hnerv_lib.models.config import DecoderConfig, FullFrameConfig

PARTS = ("all", "encoder", "decoder", "rgb_head", "clip_head")  # submodule names every model has


def embedding_numbers_per_frame(cfg: DecoderConfig) -> int:
    """Numbers stored per frame: ``embed_ch * h * w`` for hnerv (16 * 2 * 4 = 128 in the paper), else 0."""
    if isinstance(cfg, FullFrameConfig) and cfg.kind == "hnerv":
        return cfg.embed_ch * cfg.embed_hw[0] * cfg.embed_hw[1]
    return 0


def fc_dim_for_size(cfg: DecoderConfig, target_params: float, num_frames: int) -> int:
    """HNeRV's closed-form ``fc_dim`` so that decoder + ``num_frames`` embeddings ~ ``target_params``.

    As in ``train_nerv_all.py``: stage i holds ~ fc_dim**2 * r**(2i + 1) * s_i**2 * k_i**2 weights
    (r = 1 / reduce) and the stem ``in_ch * grid * fc_dim``; the positive root of that quadratic,
    truncated, is fc_dim. Biases, the lower_width floor and the head are ignored, as HNeRV does.
    Extra stride-1 blocks (``dec_blocks > 1``, which HNeRV's formula omits) add r**(2i + 2) * k_i**2.
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"num_frames must be an int >= 1; got {num_frames!r}")
    budget = float(target_params) - embedding_numbers_per_frame(cfg) * num_frames
    if not budget > 0:
        raise ValueError(
            f"target_params {target_params!r} leaves no decoder budget after "
            f"{embedding_numbers_per_frame(cfg)} x {num_frames} embedding numbers"
        )
    r = 1.0 / cfg.reduce
    a = 0.0
    for i, stride in enumerate(cfg.dec_strides):
        k2 = cfg.ks.kernel(i) ** 2
        a += r ** (2 * i + 1) * stride**2 * k2 + (cfg.dec_blocks - 1) * r ** (2 * i + 2) * k2
    gh, gw = cfg.grid_hw
    # HNeRV budgets the hnerv stem as if 3x3 (x 9) though it builds a 1x1 conv; kept so fc_dim matches
    stem_k2 = 9 if isinstance(cfg, FullFrameConfig) and cfg.kind == "hnerv" else 1
    b = cfg.in_channels * gh * gw * stem_k2
    fc_dim = int((-b + math.sqrt(b * b + 4 * a * budget)) / (2 * a))
    if fc_dim < 1:
        raise ValueError(f"target_params {target_params!r} is too small for any decoder (fc_dim {fc_dim})")
    return fc_dim


def count_params(model: nn.Module, part: str = "all") -> int:
    """Number of parameters in ``part`` of a model: one of PARTS ('decoder' = stem + NeRV blocks)."""
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; known: {PARTS}")
    module = model if part == "all" else getattr(model, part, None)
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def paper_size(model: nn.Module, cfg: DecoderConfig, num_frames: int) -> int:
    """HNeRV's model size: decoder + RGB head + embedding numbers x ``num_frames`` (see module doc)."""
    stored = count_params(model, "decoder") + count_params(model, "rgb_head")
    return stored + embedding_numbers_per_frame(cfg) * num_frames


def param_breakdown(model: nn.Module, num_frames: int) -> dict[str, int]:
    """Every part's parameter count plus the embedding numbers and the paper size, for tables."""
    counts = {part: count_params(model, part) for part in PARTS}
    counts["embedding"] = embedding_numbers_per_frame(model.cfg) * num_frames
    counts["paper_size"] = paper_size(model, model.cfg, num_frames)
    return counts
