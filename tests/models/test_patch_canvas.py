"""A canvas patch model (issue 15): the decoder outputs 2x the patch around each grid cell, so a query
between cells is a crop of its nearest cell's canvas, and overlapped decoding blends crops of one field."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hnerv_lib.data import geometry as G
from hnerv_lib.eval import patches as PE
from hnerv_lib.models import build_model, get_preset
from hnerv_lib.models.decoding import canvas_queries, decode_patches
from hnerv_lib.models.patch import crop
from hnerv_lib.train.families import PatchTask

FRAME_HW, GRID = (32, 64), G.Grid(2, 4)  # the smoke geometry: 16x16 patches
CANVAS = dict(canvas=2, dec_strides=(2, 2, 2, 2))  # patch-tiny with one more x2 stage: 32x32 canvases


def _frames(t=3):
    return torch.rand(t, 3, *FRAME_HW, generator=torch.Generator().manual_seed(0))


class CanvasOracle(nn.Module):
    """A canvas 'model' whose canvas at a cell is exactly the reflect-padded frame around that cell."""

    def __init__(self, frames: torch.Tensor):
        super().__init__()
        self.cfg = get_preset("patch-tiny", **CANVAS)
        (mh, mw), self.frames = self.cfg.margin_hw, frames
        self.padded = F.pad(frames, (mw, mw, mh, mh), mode="reflect")

    def forward(self, coords, corners=None):
        (h, w), (ph, pw), (ch, cw) = FRAME_HW, self.cfg.patch_hw, self.cfg.canvas_hw
        canvases = []
        for t, x, y in coords.tolist():
            top, left = round(y * h - ph / 2), round(x * w - pw / 2)
            assert top % ph == 0 and left % pw == 0, "the oracle is only ever asked about grid cells"
            canvases.append(self.padded[round(t * len(self.frames)), :, top : top + ch, left : left + cw])
        canvas = torch.stack(canvases)
        corners = torch.tensor(self.cfg.margin_hw).expand(len(coords), 2) if corners is None else corners
        return {"rgb": crop(canvas, corners, self.cfg.patch_hw), "clip": None, "canvas": canvas}


def test_canvas_config_sizes_the_decoder_output_and_refuses_what_cannot_centre():
    cfg = get_preset("patch-tiny", **CANVAS)
    assert cfg.canvas_hw == (32, 32) and cfg.margin_hw == (8, 8) and get_preset("patch-tiny").margin_hw == (0, 0)
    with pytest.raises(ValueError, match=r"must equal the decoder's output \(32, 32\)"):
        get_preset("patch-tiny", canvas=2)  # the strides still make 16 px
    with pytest.raises(ValueError, match=r"canvas must be an int >= 1"):
        get_preset("patch-tiny", canvas=0)
    with pytest.raises(ValueError, match=r"whole pixels"):
        get_preset("patch-tiny", canvas=2, patch_hw=(3, 3), fc_hw=(3, 3), dec_strides=(2,))


def test_the_patch_is_the_canvas_centre_and_clip_pools_only_the_crop_it_describes():
    model = build_model(get_preset("patch-tiny", **CANVAS)).eval()
    coords = torch.rand(4, 3, generator=torch.Generator().manual_seed(1))
    out = model(coords)
    assert out["canvas"].shape == (4, 3, 32, 32) and out["rgb"].shape == (4, 3, 16, 16)
    assert torch.equal(out["rgb"], out["canvas"][..., 8:24, 8:24])
    corners = torch.tensor([[0, 0], [8, 8], [16, 3], [5, 16]])
    moved = model(coords, corners)
    for i, (top, left) in enumerate(corners.tolist()):
        assert torch.equal(moved["rgb"][i], out["canvas"][i, :, top : top + 16, left : left + 16])
        features = out["features"][i : i + 1, :, top : top + 16, left : left + 16]
        torch.testing.assert_close(moved["clip"][i : i + 1], model.clip_head(features))
    torch.testing.assert_close(moved["clip"][1], out["clip"][1])  # corner (8, 8) is the centre
    assert not torch.allclose(moved["clip"][0], out["clip"][0])
    with pytest.raises(ValueError, match=r"crop corners"):
        model(coords, torch.tensor([[17, 0]] * 4))


def test_without_a_canvas_the_model_decodes_as_before():
    model = build_model(get_preset("patch-tiny")).eval()
    coords = torch.rand(3, 3, generator=torch.Generator().manual_seed(2))
    out = model(coords)
    assert torch.equal(out["rgb"], model.rgb_head(out["features"])) and torch.equal(out["canvas"], out["rgb"])
    torch.testing.assert_close(out["clip"], model.clip_head(out["features"]))


def test_queries_snap_to_the_trained_cell_centres_bit_for_bit():
    cfg = get_preset("patch-tiny", **CANVAS)
    windows = GRID.windows(FRAME_HW)
    on_grid = G.coords(torch.tensor([0, 2]), 3, windows, FRAME_HW).reshape(-1, 3)
    snapped, corners = canvas_queries(cfg, on_grid, FRAME_HW)
    assert torch.equal(snapped, on_grid) and (corners == 8).all()
    base, centres, wins = PE.shifted_queries(windows, FRAME_HW, 0.75)  # 12 px right: the right neighbour's cell
    snapped, corners = canvas_queries(cfg, G.coords_at(torch.tensor([1]), 3, centres)[0], FRAME_HW)
    cells = G.coords(torch.tensor([1]), 3, windows, FRAME_HW)[0]
    assert torch.equal(snapped, cells[[i + 1 for i in base]])
    assert corners.tolist() == [[8, 4]] * len(base)  # 12 px right of its cell = 4 px left of the next one's
    with pytest.raises(ValueError, match=r"lies inside the 32x64 frame.*x=0.9900.*left=55"):
        canvas_queries(cfg, torch.tensor([[0.0, 0.99, 0.5]]), FRAME_HW)  # a window past the frame's right edge
    with pytest.raises(ValueError, match=r"does not divide"):
        canvas_queries(cfg, on_grid, (30, 64))


def test_a_perfect_canvas_answers_every_window_in_the_frame_exactly():
    frames = _frames()
    oracle = CanvasOracle(frames)
    task = PatchTask(oracle.cfg, frames, None, GRID.windows(FRAME_HW), [0, 1], "L2")
    dense = PE.overlap_windows(oracle.cfg.patch_hw, FRAME_HW, 0.5)
    for blend in ("uniform", "hann"):
        recon = PE.decode_stitched(task, oracle, torch.arange(3), dense, blend)
        torch.testing.assert_close(recon, frames)  # every sliding window, cropped from its cell's canvas
    for offset in (0.0, 0.25, 0.5, 0.75, 1.0):
        _, centres, wins = PE.shifted_queries(task.windows, FRAME_HW, offset)
        rgb, _ = decode_patches(oracle, G.coords_at(torch.tensor([2]), 3, centres), FRAME_HW)
        torch.testing.assert_close(rgb[0], G.extract(frames[2:3], wins)[0])
    with pytest.raises(ValueError, match=r"needs the frame size"):
        decode_patches(oracle, G.coords(torch.tensor([0]), 3, task.windows, FRAME_HW))


def test_a_canvas_task_trains_on_the_reflect_padded_canvas_and_learns_it():
    frames = _frames()
    oracle = CanvasOracle(frames)
    task = PatchTask(oracle.cfg, frames, None, GRID.windows(FRAME_HW), [0, 1], "L2")
    assert task.step_loss(oracle, torch.arange(task.num_items()), 0.0).pixel.item() == 0.0  # its target: that canvas
    torch.manual_seed(0)
    model = build_model(oracle.cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    items = torch.arange(task.num_items())
    first = task.step_loss(model, items, 0.0).pixel.item()
    for _ in range(30):
        opt.zero_grad()
        task.step_loss(model, items, 0.0).total.backward()
        opt.step()
    assert task.step_loss(model, items, 0.0).pixel.item() < 0.95 * first

    class MarginOff(CanvasOracle):  # right in the patch, 0.1 off everywhere else in the canvas
        def forward(self, coords, corners=None):
            out = super().forward(coords, corners)
            ring = torch.full((32, 32), 0.1)
            ring[8:24, 8:24] = 0
            return {**out, "canvas": out["canvas"] + ring}

    loss = task.step_loss(MarginOff(frames), items, 0.0).pixel.item()
    assert loss == pytest.approx(0.01 * 0.75)  # the margin is 3/4 of the canvas, and the loss sees it


def test_a_window_pool_and_a_canvas_are_refused_together():
    frames = _frames()
    pool = G.WindowPool(per_frame=12).windows_per_frame(FRAME_HW, 3)
    with pytest.raises(ValueError, match=r"do not combine"):
        PatchTask(get_preset("patch-tiny", **CANVAS), frames, None, GRID.windows(FRAME_HW), [0, 1], "L2", pool=pool)
