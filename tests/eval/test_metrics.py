"""Exact-value checks for hnerv_lib.metrics (CPU, float64 where a hand computation is compared)."""

import math

import pytest
import torch

from hnerv_lib.eval import metrics


def _const(value: float, n: int = 1, c: int = 3, h: int = 16, w: int = 16) -> torch.Tensor:
    return torch.full((n, c, h, w), value, dtype=torch.float64)


def test_psnr_constant_images_differing_by_a_tenth_is_20_db():
    assert metrics.psnr(_const(0.6), _const(0.5)).item() == pytest.approx(20.0, abs=1e-9)


def test_psnr_is_per_image():
    pred = torch.cat([_const(0.6), _const(1.0)])
    target = torch.cat([_const(0.5), _const(0.5)])  # mse 0.01 and 0.25
    result = metrics.psnr(pred, target)
    assert result.shape == (2,)
    assert result.tolist() == pytest.approx([20.0, 10 * math.log10(4.0)], abs=1e-9)


def test_psnr_respects_data_range():
    result = metrics.psnr(_const(153.0), _const(127.5), data_range=255.0)
    assert result.item() == pytest.approx(20.0, abs=1e-9)


def test_psnr_of_identical_images_is_inf():
    assert metrics.psnr(_const(0.3), _const(0.3)).tolist() == [math.inf]


def test_psnr_from_mse_values():
    result = metrics.psnr_from_mse(torch.tensor([0.01, 0.001, 1.0, 0.0], dtype=torch.float64))
    assert result.tolist() == pytest.approx([20.0, 30.0, 0.0, math.inf], abs=1e-9)


@pytest.mark.parametrize(
    ("mse", "data_range", "fragment"),
    [
        (torch.tensor([-0.5]), 1.0, "-0.5"),
        (torch.tensor([0.1]), 0.0, "data_range"),
        (torch.tensor([0.1]), math.nan, "nan"),
    ],
)
def test_psnr_from_mse_rejects_bad_input(mse, data_range, fragment):
    with pytest.raises(ValueError, match=fragment):
        metrics.psnr_from_mse(mse, data_range)


def test_psnr_rejects_shape_mismatch_and_names_shapes():
    with pytest.raises(ValueError, match=r"\(1, 3, 16, 16\).*\(1, 3, 16, 8\)"):
        metrics.psnr(_const(0.1), _const(0.1, w=8))


def test_psnr_rejects_non_4d_input():
    with pytest.raises(ValueError, match=r"\(3, 16, 16\)"):
        metrics.psnr(_const(0.1)[0], _const(0.1)[0])


def test_ssim_of_identical_images_is_one():
    x = torch.rand(2, 3, 32, 64, generator=torch.Generator().manual_seed(0))
    assert metrics.ssim(x, x).tolist() == [1.0, 1.0]


def test_ssim_of_constant_images_matches_luminance_term():
    # Constant images have zero variance, so SSIM reduces to (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 * 1)^2.
    # pytorch_msssim builds its Gaussian window in float32 (its 2-D sum is 1 - 6e-8), which leaks a ~1e-8
    # "variance" into the C2 = 9e-4 contrast term: hence 1e-5, not float64 precision.
    a, b, c1 = 0.5, 0.2, 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    result = metrics.ssim(_const(a, h=32, w=32), _const(b, h=32, w=32))
    assert result.item() == pytest.approx(expected, abs=1e-5)


def test_ms_ssim_falls_back_to_ssim_on_small_images_and_says_so():
    gen = torch.Generator().manual_seed(1)
    pred, target = torch.rand(2, 3, 32, 64, generator=gen), torch.rand(2, 3, 32, 64, generator=gen)
    result = metrics.ms_ssim(pred, target)
    assert result.fallback is True
    assert result.note == "MS-SSIM needs min side > 160 px; got 32x64, reported SSIM instead"
    assert torch.equal(result.value, metrics.ssim(pred, target))


@pytest.mark.parametrize(("h", "w", "fallback"), [(160, 200, True), (161, 161, False), (192, 192, False)])
def test_ms_ssim_size_threshold_is_strictly_greater_than_160(h, w, fallback):
    x = torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(2))
    result = metrics.ms_ssim(x, x)
    assert result.fallback is fallback
    assert (result.note == "") is (not fallback)
    assert result.value.tolist() == pytest.approx([1.0], abs=1e-6)


def test_ms_ssim_on_192_matches_pytorch_msssim():
    import pytorch_msssim

    gen = torch.Generator().manual_seed(3)
    pred, target = torch.rand(2, 3, 192, 192, generator=gen), torch.rand(2, 3, 192, 192, generator=gen)
    result = metrics.ms_ssim(pred, target)
    expected = pytorch_msssim.ms_ssim(pred, target, data_range=1, size_average=False)
    assert result.fallback is False and result.note == ""
    assert torch.equal(result.value, expected)


def test_metrics_do_not_break_with_grad():
    pred = torch.full((1, 3, 32, 32), 0.4, requires_grad=True)
    target = torch.full((1, 3, 32, 32), 0.5)
    (metrics.ssim(pred, target).sum() + metrics.ms_ssim(pred, target).value.sum()).backward()
    assert pred.grad is not None and pred.grad.shape == pred.shape


def test_cosine_similarity_known_vectors():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [3.0, 4.0], [1.0, 2.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, 1.0], [1.0, 1.0], [6.0, 8.0], [-1.0, -2.0]], dtype=torch.float64)
    result = metrics.cosine_similarity(a, b)
    assert result.tolist() == pytest.approx([0.0, 1 / math.sqrt(2), 1.0, -1.0], abs=1e-12)


def test_cosine_similarity_keeps_leading_dims():
    a = torch.ones(2, 3, 4)
    assert metrics.cosine_similarity(a, a).shape == (2, 3)


def test_cosine_similarity_rejects_mismatched_last_dim():
    with pytest.raises(ValueError, match=r"\(2, 4\).*\(2, 5\)"):
        metrics.cosine_similarity(torch.ones(2, 4), torch.ones(2, 5))
