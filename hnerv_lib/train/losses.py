"""Training losses: HNeRV's pixel losses as a data table of weighted terms, plus the CLIP-embedding loss.

The weights in ``PIXEL_LOSS_TABLE`` were checked against ``loss_fn`` in ``hnerv_utils.py`` of the original
HNeRV repository (github.com/haochen-rye/HNeRV, commit 7d86849). As there, L1/L2 are per-image means over
C, H, W; the structural terms are ``1 - SSIM`` / ``1 - MS-SSIM`` at data_range 1; the target is detached.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from torch import Tensor

from hnerv_lib.eval import metrics

# "mean" averages per-image losses over the batch (HNeRV's batch_average=True); "none" keeps shape (N,).
REDUCTIONS: tuple[str, ...] = ("mean", "none")


class MSSSIMFallbackWarning(UserWarning):
    """Warned when an MS-SSIM loss term had to use SSIM because the images were too small for MS-SSIM."""


@dataclass(frozen=True)
class PixelLossSpec:
    """Weights of one pixel loss over the four per-image terms; terms with weight 0 are not computed."""

    l1: float = 0.0  # weight on mean |pred - target|
    l2: float = 0.0  # weight on mean (pred - target)**2
    ssim: float = 0.0  # weight on 1 - SSIM
    ms_ssim: float = 0.0  # weight on 1 - MS-SSIM (1 - SSIM below metrics.MS_SSIM_MIN_SIDE, with a warning)

    def __post_init__(self) -> None:
        for name in ("l1", "l2", "ssim", "ms_ssim"):
            weight = getattr(self, name)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
                raise ValueError(f"PixelLossSpec.{name} must be a number >= 0; got {weight!r}")
        if self.l1 + self.l2 + self.ssim + self.ms_ssim == 0:
            raise ValueError(f"PixelLossSpec needs at least one non-zero weight; got {self!r}")


# Source: hnerv_utils.py::loss_fn in haochen-rye/HNeRV, where each FusionN is a weighted sum of these terms.
PIXEL_LOSS_TABLE: Mapping[str, PixelLossSpec] = MappingProxyType(
    {
        "L1": PixelLossSpec(l1=1.0),
        "L2": PixelLossSpec(l2=1.0),
        "SSIM": PixelLossSpec(ssim=1.0),
        "Fusion1": PixelLossSpec(l2=0.3, ssim=0.7),
        "Fusion2": PixelLossSpec(l1=0.3, ssim=0.7),
        "Fusion3": PixelLossSpec(l2=0.5, ssim=0.5),
        "Fusion4": PixelLossSpec(l1=0.5, ssim=0.5),
        "Fusion5": PixelLossSpec(l2=0.7, ssim=0.3),
        "Fusion6": PixelLossSpec(l1=0.7, ssim=0.3),
        "Fusion7": PixelLossSpec(l2=0.7, l1=0.3),
        "Fusion8": PixelLossSpec(l2=0.5, l1=0.5),
        "Fusion9": PixelLossSpec(l1=0.9, ssim=0.1),
        "Fusion10": PixelLossSpec(l1=0.7, ms_ssim=0.3),
        "Fusion11": PixelLossSpec(l1=0.9, ms_ssim=0.1),
        "Fusion12": PixelLossSpec(l1=0.8, ms_ssim=0.2),
    }
)

# Names accepted by pixel_loss, in table order.
PIXEL_LOSSES: tuple[str, ...] = tuple(PIXEL_LOSS_TABLE)


def _reduce(per_image: Tensor, reduction: str) -> Tensor:
    """Apply ``reduction`` ("mean" -> scalar, "none" -> unchanged ``(N,)``)."""
    return per_image.mean() if reduction == "mean" else per_image


def _check_reduction(reduction: str) -> None:
    """Raise ValueError unless ``reduction`` is one of ``REDUCTIONS``."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; expected one of {REDUCTIONS}")


def _one_minus_ms_ssim(pred: Tensor, target: Tensor) -> Tensor:
    """Per-image ``1 - MS-SSIM``, warning (not failing) when metrics falls back to SSIM on small images."""
    result = metrics.ms_ssim(pred, target)
    if result.fallback:
        # Python shows each distinct message once per call site, so a training loop is not flooded.
        warnings.warn(f"MS-SSIM loss term: {result.note}", MSSSIMFallbackWarning, stacklevel=2)
    return 1 - result.value


def weighted_pixel_loss(pred: Tensor, target: Tensor, spec: PixelLossSpec, reduction: str = "mean") -> Tensor:
    """Weighted sum of the per-image terms in ``spec``; a scalar for "mean", shape ``(N,)`` for "none"."""
    _check_reduction(reduction)
    metrics.check_image_pair(pred, target)
    target = target.detach()  # the frame is ground truth: gradients flow only into pred, as in HNeRV
    terms = []
    if spec.l1:
        terms.append(spec.l1 * (pred - target).abs().flatten(1).mean(1))
    if spec.l2:
        terms.append(spec.l2 * (pred - target).pow(2).flatten(1).mean(1))
    if spec.ssim:
        terms.append(spec.ssim * (1 - metrics.ssim(pred, target)))
    if spec.ms_ssim:
        terms.append(spec.ms_ssim * _one_minus_ms_ssim(pred, target))
    return _reduce(sum(terms[1:], terms[0]), reduction)


def pixel_loss(pred: Tensor, target: Tensor, kind: str = "L2", reduction: str = "mean") -> Tensor:
    """HNeRV pixel loss ``kind`` (one of ``PIXEL_LOSSES``) between ``(N, C, H, W)`` images in [0, 1]."""
    spec = PIXEL_LOSS_TABLE.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise ValueError(f"unknown pixel loss {kind!r}; known names: {', '.join(PIXEL_LOSSES)}")
    return weighted_pixel_loss(pred, target, spec, reduction)


def clip_loss(pred: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """``1 - cosine`` per ``(..., D)`` vector (0 aligned, 2 opposite), averaged unless reduction is "none"."""
    _check_reduction(reduction)
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor) or pred.shape != target.shape:
        shapes = [tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__ for x in (pred, target)]
        got = f"{shapes[0]} and {shapes[1]}"
        raise ValueError(f"pred and target must be tensors of one shape (..., D); got {got}")
    # The CLIP target embedding is fixed data: gradients flow only into pred.
    per_vector = 1 - metrics.cosine_similarity(pred, target.detach())
    return _reduce(per_vector, reduction)
