"""The patch model's x and y encodings at their own frequency count (issue 15 item 2); 0 keeps the fork's."""

import pytest
import torch

from hnerv_lib.models import build_model, count_params, get_preset


def test_xy_levels_equal_to_pe_levels_encode_exactly_like_the_joint_encoding():
    joint = build_model(get_preset("patch-tiny"))
    split = build_model(get_preset("patch-tiny", xy_levels=get_preset("patch-tiny").pe_levels))
    coords = torch.rand(5, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(joint.embed(coords), split.embed(coords))  # [t sin, t cos, x sin, x cos, y sin, y cos]


def test_fewer_xy_levels_shrink_the_input_and_keep_t_as_it_was():
    cfg = get_preset("patch-tiny", xy_levels=6)
    model = build_model(cfg)
    coords = torch.rand(4, 3, generator=torch.Generator().manual_seed(1))
    emb = model.embed(coords)
    assert cfg.in_channels == 2 * cfg.pe_levels + 4 * 6 and emb.shape == (4, cfg.in_channels, 1, 1)
    base = build_model(get_preset("patch-tiny"))
    assert torch.equal(emb[:, : 2 * cfg.pe_levels], base.embed(coords)[:, : 2 * cfg.pe_levels])  # t untouched
    assert count_params(model) < count_params(base)  # a narrower stem input
    moved = coords.clone()
    moved[:, 1] += 1 / 64  # one pixel at 64 px: low frequencies only, so the encoding barely moves
    assert (model.embed(moved) - emb)[:, 2 * cfg.pe_levels:].abs().max() < 0.2


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_bad_xy_levels_are_refused(bad):
    with pytest.raises(ValueError, match=r"xy_levels must be an int >= 0"):
        get_preset("patch-tiny", xy_levels=bad)
