"""Image and embedding quality metrics: PSNR, SSIM, MS-SSIM (with an explicit small-image fallback), cosine.

Every image metric takes ``(N, C, H, W)`` float tensors in ``[0, 1]`` and returns one value per image,
shape ``(N,)``. Nothing here detaches: the losses module differentiates through ``ssim`` and ``ms_ssim``;
wrap calls in ``torch.no_grad()`` when only evaluating.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytorch_msssim
import torch
import torch.nn.functional as F
from torch import Tensor

# pytorch_msssim's default Gaussian window; both SSIM and MS-SSIM here use it, as HNeRV does.
SSIM_WIN_SIZE = 11
# MS-SSIM halves the image 4 times; pytorch_msssim asserts min(H, W) > (win_size - 1) * 2**4 (strictly).
MS_SSIM_MIN_SIDE = (SSIM_WIN_SIZE - 1) * 2**4
# Images are floats in [0, 1] throughout the library, so the peak signal value is 1.
DATA_RANGE = 1.0


@dataclass(frozen=True)
class MSSSIMResult:
    """Per-image MS-SSIM, or SSIM when the images were too small for MS-SSIM (then ``fallback`` is True)."""

    value: Tensor  # shape (N,): MS-SSIM per image, or SSIM per image when fallback is True
    fallback: bool  # True when SSIM was reported because min(H, W) <= MS_SSIM_MIN_SIDE
    note: str  # human-readable reason for the fallback; empty when no fallback happened


def check_image_pair(pred: Tensor, target: Tensor) -> None:
    """Raise ValueError unless ``pred`` and ``target`` are same-shaped 4-D floating-point image batches."""
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor):
        kinds = f"{type(pred).__name__} and {type(target).__name__}"
        raise ValueError(f"images must be torch.Tensor; got {kinds}")
    if pred.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W); got pred.shape={tuple(pred.shape)}")
    if pred.shape != target.shape:
        shapes = f"pred.shape={tuple(pred.shape)}, target.shape={tuple(target.shape)}"
        raise ValueError(f"pred and target shapes differ: {shapes}")
    if not pred.is_floating_point() or pred.dtype != target.dtype:
        dtypes = f"pred {pred.dtype}, target {target.dtype}"
        raise ValueError(f"images must share one floating dtype; got {dtypes}")


def psnr_from_mse(mse: Tensor, data_range: float = DATA_RANGE) -> Tensor:
    """PSNR in dB from MSE(s): ``10 * log10(data_range**2 / mse)``; ``mse == 0`` gives ``+inf``.

    Unlike HNeRV's ``psnr_fn_single`` (which adds 1e-9 to the MSE and so tops out at 90 dB), a perfect
    reconstruction is reported as ``+inf`` rather than an arbitrary cap.
    """
    is_number = isinstance(data_range, (int, float)) and not isinstance(data_range, bool)
    if not is_number or not 0 < data_range < math.inf:
        raise ValueError(f"data_range must be a finite positive number; got {data_range!r}")
    mse = torch.as_tensor(mse)
    if bool((mse < 0).any()):
        raise ValueError(f"mse must be >= 0; got min value {mse.min().item()!r}")
    # log10 of (range^2 / 0) is +inf in IEEE arithmetic, which is exactly the documented result.
    return 10.0 * torch.log10(data_range**2 / mse)


def psnr(pred: Tensor, target: Tensor, data_range: float = DATA_RANGE) -> Tensor:
    """Per-image PSNR in dB, shape ``(N,)``; identical images give ``+inf`` (see ``psnr_from_mse``)."""
    check_image_pair(pred, target)
    mse = (pred - target).pow(2).flatten(1).mean(1)
    return psnr_from_mse(mse, data_range)


def ssim(pred: Tensor, target: Tensor) -> Tensor:
    """Per-image SSIM (channel-averaged), shape ``(N,)``, via ``pytorch_msssim.ssim`` with data_range 1."""
    check_image_pair(pred, target)
    return pytorch_msssim.ssim(
        pred, target, data_range=DATA_RANGE, size_average=False, win_size=SSIM_WIN_SIZE
    )


def ms_ssim_fallback_note(height: int, width: int) -> str:
    """The note explaining why MS-SSIM is unavailable at ``height x width``; empty when it is available."""
    if min(height, width) > MS_SSIM_MIN_SIDE:
        return ""
    return f"MS-SSIM needs min side > {MS_SSIM_MIN_SIDE} px; got {height}x{width}, reported SSIM instead"


def ms_ssim(pred: Tensor, target: Tensor) -> MSSSIMResult:
    """Per-image MS-SSIM; below the minimum size it reports SSIM instead and says so in the result."""
    check_image_pair(pred, target)
    height, width = pred.shape[-2:]
    note = ms_ssim_fallback_note(height, width)
    if note:
        return MSSSIMResult(value=ssim(pred, target), fallback=True, note=note)
    value = pytorch_msssim.ms_ssim(
        pred, target, data_range=DATA_RANGE, size_average=False, win_size=SSIM_WIN_SIZE
    )
    return MSSSIMResult(value=value, fallback=False, note="")


def cosine_similarity(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity along the last dim of ``(..., D)`` tensors (leading dims broadcast), shape ``(...)``.

    A zero vector has similarity 0 with everything (torch clamps the norm product at 1e-8).
    """
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise ValueError(f"inputs must be torch.Tensor; got {type(a).__name__} and {type(b).__name__}")
    if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"inputs need the same last dim D in (..., D); got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    return F.cosine_similarity(a, b, dim=-1)
