"""Quantisation of weights and embeddings as HNeRV does it: per-tensor or per-slice min/scale, the lowest error wins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

SIDE_FRACTION = 0.02  # HNeRV: per-slice min/scale only if they number < 2 % of the values they serve


SIDE_BITS = 16  # min and scale are stored as float16, which is what HNeRV counts


F16_MAX = 65504.0  # largest float16: min/scale beyond it cannot be stored


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
