"""The fair unseen-frame protocol: neighbour interpolation, the trivial baselines, HNeRV with blended
embeddings, and the `test-time input` every row carries."""

from __future__ import annotations

import math

import pytest
import torch

from hnerv_lib.data.geometry import Grid
from hnerv_lib.data.split import Split
from hnerv_lib.eval import unseen as U
from hnerv_lib.models import build_model, get_preset
from hnerv_lib.train.families import make_task


def test_neighbours_interpolate_and_nearest_on_a_ramp():
    values = torch.arange(8, dtype=torch.float64)[:, None] * torch.tensor([1.0, -2.0], dtype=torch.float64)
    train = [1, 2, 6]
    blended = U.interpolate(values, train)
    assert torch.equal(blended[train], values[train])  # a training frame keeps its own value
    assert torch.allclose(blended[4], (values[2] + values[6]) / 2)  # the midpoint of 2 and 6
    assert torch.allclose(blended[3:6], values[3:6])  # linear in time: the blend is exact inside
    assert torch.equal(blended[0], values[1]) and torch.equal(blended[7], values[6])  # edges: the one neighbour
    near = U.nearest(values, train)
    assert torch.equal(near[[0, 3, 4, 5, 7]], values[[1, 2, 2, 6, 6]])  # 4 is a tie between 2 and 6: the earlier
    with pytest.raises(ValueError, match="training frames within 0..7"):
        U.neighbours(8, [9])


def ramp_video(frames: int = 10) -> torch.Tensor:
    """Every pixel brightens linearly in time, with a fixed spatial pattern."""
    t = torch.linspace(0.1, 0.9, frames)[:, None, None, None]
    pattern = torch.rand(1, 3, 16, 32, generator=torch.Generator().manual_seed(0)) * 0.1
    return t + pattern


def test_on_a_ramp_the_blend_is_exact_and_the_copy_is_not():
    frames = ramp_video()
    split = Split(2, 2, 3).indices(len(frames))  # frames 0,1 train, 2 unseen, 3,4 train, ...
    targets = torch.nn.functional.normalize(torch.randn(len(frames), 4, 8, generator=torch.Generator().manual_seed(1)), dim=-1)
    table = U.unseen_table(U.baseline_protocols(frames, targets, split.train), frames, targets, split, n_boot=50)
    rows = table.set_index("protocol")
    assert math.isinf(rows.loc["neighbour blend", "psnr_val"]) or rows.loc["neighbour blend", "psnr_val"] > 60
    assert rows.loc["nearest training frame", "psnr_val"] < 40
    assert (table["test-time input"].str.len() > 0).all() and len(table) == 2
    assert {"clip_centred_val", "clip_top1_val", "psnr_val_lo", "psnr_val_hi"} <= set(table.columns)


def test_unseen_table_refuses_a_split_without_unseen_frames_and_unknown_protocols():
    frames = ramp_video()
    no_val = Split(1, 1, 1).indices(len(frames))
    with pytest.raises(ValueError, match=r"unseen \(validation\) frames; this one has none"):
        U.unseen_table(U.baseline_protocols(frames, None, no_val.train), frames, None, no_val)
    split = Split(2, 2, 3).indices(len(frames))
    with pytest.raises(ValueError, match="unknown protocol 'mine'"):
        U.unseen_table({"mine": lambda ids: (frames[ids], None)}, frames, None, split)


def test_hnerv_interpolated_decodes_blended_embeddings_and_the_oracle_its_own():
    torch.manual_seed(0)
    cfg = get_preset("hnerv-tiny")
    model = build_model(cfg).eval()
    h, w = cfg.frame_hw
    frames = torch.rand(6, 3, h, w, generator=torch.Generator().manual_seed(2))
    windows = Grid(2, 4).windows((h, w))
    task = make_task(cfg, frames, None, windows, [0, 2, 4, 5], "L2")
    protocols = U.model_protocols(task, model)
    assert set(protocols) == {"HNeRV, oracle", "HNeRV, interpolated"}
    seen = torch.tensor([0, 2])
    oracle, blended = protocols["HNeRV, oracle"](seen)[0], protocols["HNeRV, interpolated"](seen)[0]
    assert torch.allclose(oracle, blended, atol=1e-5)  # at a training frame both decode its own embedding
    emb = U.hnerv_embeddings(model, frames)
    with torch.no_grad():
        mid = model.decode((emb[2:3] + emb[4:5]) / 2)["rgb"].clamp(0, 1)
    assert torch.allclose(protocols["HNeRV, interpolated"](torch.tensor([3]))[0], mid, atol=1e-5)
    with torch.no_grad():
        own = model.decode(emb[3:4])["rgb"].clamp(0, 1)
    oracle3 = protocols["HNeRV, oracle"](torch.tensor([3]))[0]
    assert torch.allclose(oracle3, own, atol=1e-5) and (oracle3 - mid).abs().max() > 1e-5
