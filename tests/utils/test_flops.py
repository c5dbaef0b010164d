"""FLOP counting and this machine's measured yardsticks (values are machine-dependent: only their sanity is tested)."""

import pytest
import torch
import torch.nn.functional as F

from hnerv_lib.utils.flops import conv_gflops, count_flops, gemm_gflops, machine_peak


def test_counts_two_flops_per_multiply_add_forward_and_backward():
    a, b = torch.randn(32, 48), torch.randn(48, 16)
    assert count_flops(lambda: a @ b) == 2 * 32 * 48 * 16
    w = torch.randn(48, 16, requires_grad=True)
    assert count_flops(lambda: (a @ w).sum().backward()) == 2 * (2 * 32 * 48 * 16)  # forward + grad of w
    x, k = torch.randn(2, 8, 10, 12), torch.randn(8, 8, 3, 3)
    assert count_flops(lambda: F.conv2d(x, k, padding=1)) == 2 * 2 * 8 * 8 * 9 * 10 * 12  # the formula conv_gflops uses


def test_yardsticks_are_positive_and_name_the_machine():
    assert gemm_gflops(n=64, repeats=2) > 0 and conv_gflops(channels=8, hw=(8, 8), repeats=2) > 0
    peak = machine_peak(bf16=False, n=64)
    assert peak["gemm_fp32_gflops"] > 0 and "gemm_bf16_gflops" not in peak and peak["cpu_flags"]
    with pytest.raises(ValueError, match="precision must be one of \\['fp32', 'bf16'\\]; got 'fp16'"):
        gemm_gflops(n=8, precision="fp16")
