"""Exact-value checks for hnerv_lib.losses against hand-computed terms."""

import pytest
import pytorch_msssim
import torch

from hnerv_lib.train import losses

# Typed in by hand from HNeRV's hnerv_utils.py::loss_fn, independently of losses.PIXEL_LOSS_TABLE.
HNERV_FUSIONS = {
    "Fusion1": {"l2": 0.3, "ssim": 0.7},
    "Fusion2": {"l1": 0.3, "ssim": 0.7},
    "Fusion3": {"l2": 0.5, "ssim": 0.5},
    "Fusion4": {"l1": 0.5, "ssim": 0.5},
    "Fusion5": {"l2": 0.7, "ssim": 0.3},
    "Fusion6": {"l1": 0.7, "ssim": 0.3},
    "Fusion7": {"l2": 0.7, "l1": 0.3},
    "Fusion8": {"l2": 0.5, "l1": 0.5},
    "Fusion9": {"l1": 0.9, "ssim": 0.1},
    "Fusion10": {"l1": 0.7, "ms_ssim": 0.3},
    "Fusion11": {"l1": 0.9, "ms_ssim": 0.1},
    "Fusion12": {"l1": 0.8, "ms_ssim": 0.2},
}


def _pair(h: int, w: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, h, w, generator=gen), torch.rand(2, 3, h, w, generator=gen)


def _hand_terms(pred, target, ms_ssim_available: bool):
    ssim = pytorch_msssim.ssim(pred, target, data_range=1, size_average=False)
    ms = pytorch_msssim.ms_ssim(pred, target, data_range=1, size_average=False) if ms_ssim_available else ssim
    return {
        "l1": (pred - target).abs().mean(dim=(1, 2, 3)),
        "l2": ((pred - target) ** 2).mean(dim=(1, 2, 3)),
        "ssim": 1 - ssim,
        "ms_ssim": 1 - ms,
    }


def _weighted(weights, terms):
    return sum(weight * terms[name] for name, weight in weights.items())


def test_l1_l2_exact_on_hand_made_tensors():
    pred = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    target = torch.tensor([[[[0.1, 0.2], [0.3, 0.4]]]], dtype=torch.float64)
    assert losses.pixel_loss(pred, target, "L1").item() == pytest.approx(0.25, abs=1e-12)
    assert losses.pixel_loss(pred, target, "L2").item() == pytest.approx(0.075, abs=1e-12)


def test_per_sample_reduction_and_batch_mean():
    pred = torch.zeros(2, 1, 2, 2, dtype=torch.float64)
    target = torch.stack([torch.full((1, 2, 2), v, dtype=torch.float64) for v in (0.5, 0.1)])
    per_sample = losses.pixel_loss(pred, target, "L2", reduction="none")
    assert per_sample.tolist() == pytest.approx([0.25, 0.01], abs=1e-12)
    assert losses.pixel_loss(pred, target, "L2").item() == pytest.approx(0.13, abs=1e-12)


def test_ssim_loss_is_one_minus_ssim():
    pred, target = _pair(32, 32)
    expected = 1 - pytorch_msssim.ssim(pred, target, data_range=1, size_average=False)
    assert torch.equal(losses.pixel_loss(pred, target, "SSIM", reduction="none"), expected)


def test_table_covers_exactly_hnerv_names():
    assert losses.PIXEL_LOSSES == ("L1", "L2", "SSIM", *HNERV_FUSIONS)


@pytest.mark.parametrize("name", list(HNERV_FUSIONS))
def test_fusion_equals_hand_weighted_terms(name):
    # MS-SSIM fusions need min side > 160 to exercise real MS-SSIM; the others stay small to keep tests fast.
    size = (192, 192) if "ms_ssim" in HNERV_FUSIONS[name] else (32, 64)
    pred, target = _pair(*size, seed=1)
    expected = _weighted(HNERV_FUSIONS[name], _hand_terms(pred, target, ms_ssim_available=size[0] > 160))
    result = losses.pixel_loss(pred, target, name, reduction="none")
    torch.testing.assert_close(result, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(losses.pixel_loss(pred, target, name), expected.mean(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["Fusion10", "Fusion11", "Fusion12"])
def test_ms_ssim_fusions_fall_back_to_ssim_on_32x64_with_warning(name):
    pred, target = _pair(32, 64, seed=2)
    expected = _weighted(HNERV_FUSIONS[name], _hand_terms(pred, target, ms_ssim_available=False))
    with pytest.warns(losses.MSSSIMFallbackWarning, match="got 32x64, reported SSIM instead"):
        result = losses.pixel_loss(pred, target, name, reduction="none")
    torch.testing.assert_close(result, expected, rtol=0, atol=1e-6)


def test_unknown_loss_name_is_named_and_known_names_listed():
    pred, target = _pair(16, 16)
    with pytest.raises(ValueError, match=r"'Fusion13'.*Fusion12"):
        losses.pixel_loss(pred, target, "Fusion13")


def test_unknown_reduction_is_named():
    pred, target = _pair(16, 16)
    with pytest.raises(ValueError, match="'sum'"):
        losses.pixel_loss(pred, target, "L1", reduction="sum")


def test_negative_weight_is_rejected():
    with pytest.raises(ValueError, match=r"l1.*-0\.5"):
        losses.PixelLossSpec(l1=-0.5)


def test_gradient_flows_to_pred_only():
    pred = torch.full((1, 3, 16, 16), 0.2, requires_grad=True)
    target = torch.full((1, 3, 16, 16), 0.7, requires_grad=True)
    losses.pixel_loss(pred, target, "Fusion6").backward()
    assert pred.grad is not None and target.grad is None


def test_clip_loss_identical_is_zero_and_opposite_is_two():
    v = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert losses.clip_loss(v, v.clone()).item() == pytest.approx(0.0, abs=1e-12)
    assert losses.clip_loss(v, -v).item() == pytest.approx(2.0, abs=1e-12)


def test_clip_loss_known_mix_and_per_vector():
    pred = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    target = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)  # cos 0 and 1
    assert losses.clip_loss(pred, target, reduction="none").tolist() == pytest.approx([1.0, 0.0], abs=1e-12)
    assert losses.clip_loss(pred, target).item() == pytest.approx(0.5, abs=1e-12)


def test_clip_loss_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"\(2, 8\).*\(2, 4\)"):
        losses.clip_loss(torch.ones(2, 8), torch.ones(2, 4))
