"""FLOPs of a piece of work, and what this machine can do at most: the yardstick of every speed claim.

``count_flops(fn)`` counts what ``fn`` runs (2 per multiply-add, ``torch.utils.flop_counter``), forward
and backward alike. ``gemm_gflops`` and ``conv_gflops`` time a large matrix product and a 3x3
convolution in the current process (same threads, same kernels, same environment), so a training
step's achieved GFLOP/s can be set against them: a ratio near 1 leaves nothing to gain but fewer
FLOPs; a low one says where to look. Each yardstick is a median over calls of ~0.05-0.1 s: shorter
ones varied by 20 % between calls on the 2-core VMs this project runs on.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from hnerv_lib.utils.precision import cpu_flags, cpu_model
from hnerv_lib.utils.timing import time_call

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of everything ``fn`` runs (its backward too, if it calls one); 2 per multiply-add."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _dtype(precision: str) -> torch.dtype:
    if precision not in DTYPES:
        raise ValueError(f"precision must be one of {list(DTYPES)}; got {precision!r}")
    return DTYPES[precision]


def gemm_gflops(n: int = 2048, precision: str = "fp32", repeats: int = 7) -> float:
    """GFLOP/s of an n x n by n x n matrix product (2 n^3 FLOPs), median of ``repeats`` after a warm-up."""
    if n < 1:
        raise ValueError(f"matrix size n must be >= 1; got {n}")
    dtype = _dtype(precision)
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    timing, _ = time_call(lambda: torch.mm(a, b), repeats, warmup=2)
    return 2 * n ** 3 / timing.median_s / 1e9


def conv_gflops(channels: int = 64, hw: tuple[int, int] = (80, 160), batch: int = 8, precision: str = "fp32",
                channels_last: bool = False, repeats: int = 9) -> float:
    """GFLOP/s of a 3x3 convolution, ``channels`` in and out, at ``hw`` (a mid-stage NeRV block's shape)."""
    dtype = _dtype(precision)
    x = torch.randn(batch, channels, *hw).to(dtype)
    w = torch.randn(channels, channels, 3, 3).to(dtype)
    if channels_last:
        x, w = x.to(memory_format=torch.channels_last), w.to(memory_format=torch.channels_last)
    flops = 2 * batch * channels * channels * 9 * hw[0] * hw[1]
    timing, _ = time_call(lambda: F.conv2d(x, w, padding=1), repeats, warmup=2)
    return flops / timing.median_s / 1e9


def machine_peak(bf16: bool = True, n: int = 2048) -> dict[str, Any]:
    """This process's measured GEMM and 3x3-conv GFLOP/s (fp32, and bf16 unless ``bf16=False``), with the CPU."""
    out: dict[str, Any] = {"cpu": cpu_model(), "cpu_flags": cpu_flags(), "cores": os.cpu_count(),
                           "threads": torch.get_num_threads(), "torch": torch.__version__}
    for precision in ("fp32", "bf16") if bf16 else ("fp32",):
        out[f"gemm_{precision}_gflops"] = round(gemm_gflops(n, precision), 1)
        out[f"conv3x3_{precision}_gflops"] = round(conv_gflops(precision=precision), 1)
    return out
