"""patch_eval: seam metric on a constructed case, continuous-query alignment, overlapped decoding, tables."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hnerv_lib.data import geometry as G
from hnerv_lib.eval import patches as PE
from hnerv_lib.data.teacher import TeacherSpec, load_teacher
from hnerv_lib.data.targets import _to_pil
from hnerv_lib.data.video import Video
from hnerv_lib.models import build_model, get_preset
from hnerv_lib.data.split import Split
from hnerv_lib.train.families import PatchTask

FRAME_HW, GRID = (32, 64), G.Grid(2, 4)  # smoke geometry: 16x16 patches


def _frames(t=3):
    return torch.randint(0, 256, (t, 3, *FRAME_HW), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


class Oracle(nn.Module):
    """A 'patch model' that returns exactly the pixels of the window centred at each (t, x, y) query."""

    def __init__(self, frames: torch.Tensor, patch_hw=(16, 16)):
        super().__init__()
        self.frames, self.patch_hw = frames, patch_hw

    def forward(self, coords):
        out = []
        for t, x, y in coords.tolist():
            win = G.window_at((x, y), self.patch_hw, FRAME_HW)
            out.append(win.slice(self.frames[round(t * len(self.frames))]))
        return {"rgb": torch.stack(out), "clip": None}


def _task(frames_u8, targets=None):
    windows = GRID.windows(FRAME_HW)
    return PatchTask(get_preset("patch-tiny"), frames_u8.float() / 255, targets, windows, [0, 1], "L2")


def test_seam_metric_on_a_known_band():
    truth = torch.full((2, 3, *FRAME_HW), 0.5)
    windows, k = GRID.windows(FRAME_HW), 2
    band = G.border_mask(windows, FRAME_HW, k)
    recon = truth + torch.where(band, 0.1, 0.05)  # error 0.1 in the band, 0.05 elsewhere
    m = PE.seam_metrics(recon, truth, windows, k)
    # inner borders: 1 horizontal line (64 px wide) and 3 vertical lines (32 px tall), each 2k = 4 px thick
    assert band.sum().item() == 4 * 64 + 3 * 4 * 32 - 3 * 4 * 4
    assert m["mse_border"] == pytest.approx(0.01) and m["mse_interior"] == pytest.approx(0.0025)
    assert m["ratio"] == pytest.approx(4.0) and m["psnr_gap_db"] == pytest.approx(10 * math.log10(4))
    assert m["psnr_border"] == pytest.approx(20.0) and m["psnr_interior"] == pytest.approx(20 * math.log10(20))
    assert PE.error_map(recon, truth).shape == (2, *FRAME_HW)


def test_shifted_queries_keep_the_same_base_and_round_to_pixels():
    windows = GRID.windows(FRAME_HW)
    base0, c0, w0 = PE.shifted_queries(windows, FRAME_HW, 0.0)
    base, centres, wins = PE.shifted_queries(windows, FRAME_HW, 0.3)
    assert base0 == base == [0, 1, 2, 4, 5, 6]  # the last column has no right neighbour
    assert w0 == [windows[i] for i in base]
    torch.testing.assert_close(centres[:, 0] - c0[:, 0], torch.full((6,), 0.3 * 16 / 64))
    assert [w.left - windows[i].left for i, w in zip(base, wins)] == [5] * 6  # 4.8 px rounds to 5


def test_fractional_query_target_is_the_teachers_embedding_of_exactly_that_window():
    frames, spec = _frames(2), TeacherSpec(pretrained=None)
    video = Video(frames, "test-frames", {})
    _, _, wins = PE.shifted_queries(GRID.windows(FRAME_HW), FRAME_HW, 0.3)
    got = PE.query_targets(video, torch.tensor([1]), wins[:2], spec)
    teacher = load_teacher(spec)
    with torch.no_grad():
        batch = torch.stack([teacher.preprocess(_to_pil(frames[1, :, w.top : w.top + 16, w.left : w.left + 16]))
                             for w in wins[:2]])
        want = F.normalize(teacher.model.encode_image(batch).float(), dim=-1)
    assert got.shape == (1, 2, 512)
    torch.testing.assert_close(got[0], want, rtol=0, atol=1e-6)


def test_continuous_queries_of_an_exact_model_are_exact():
    frames = _frames(3)
    task, split = _task(frames), Split(2, 2, 3).indices(3)
    df = PE.continuous_query_table(task, Oracle(task.frames), Video(frames, "k", {}), split, torch.tensor([0, 2]),
                                   [0.0, 0.25, 0.5])
    assert len(df) == 3 * 2 * 6 and df["psnr"].eq(float("inf")).all() and df["clip_sim"].isna().all()
    assert df.groupby("offset")["left"].min().tolist() == [0, 4, 8]


def test_overlapped_decoding_of_an_exact_model_gives_the_exact_frame():
    frames = _frames(3)
    task = _task(frames)
    dense = PE.overlap_windows((16, 16), FRAME_HW, 0.5)
    assert len(dense) == 3 * 7 and {(w.top, w.left) for w in dense} >= {(8, 8), (16, 48)}
    out = PE.decode_stitched(task, Oracle(task.frames), torch.arange(3), dense, blend="hann")
    torch.testing.assert_close(out, task.frames, rtol=0, atol=1e-6)
    table = PE.overlap_comparison(task, Oracle(task.frames), torch.arange(2), k=2, repeats=1)
    assert table["decoding"].tolist() == ["grid", "overlap 0.5, hann"] and table["psnr"].min() > 100
    speed = PE.decode_speed(task, Oracle(task.frames), torch.arange(3), repeats=2)
    assert speed["patches_per_s"] == pytest.approx(8 * speed["frames_per_s"])


def test_per_patch_table_shape_and_scores():
    frames = _frames(5)
    targets = F.normalize(torch.randn(5, 8, 512), dim=-1)
    task, split = _task(frames, targets), Split(2, 2, 3).indices(5)  # train 0, 1, 3, 4; val 2
    torch.manual_seed(0)
    net = build_model(get_preset("patch-tiny"))
    df = PE.per_patch_table(task, net, split)
    assert len(df) == 5 * 8 and list(df.columns) == ["frame", "patch", "row", "col", "split", "psnr", "clip_sim", "test-time input"]
    assert df.groupby("frame").size().eq(8).all() and (df["row"] * 4 + df["col"]).equals(df["patch"])
    assert df[df.frame == 2]["split"].eq("val").all() and df["clip_sim"].between(-1, 1).all()
    truth = G.extract(task.frames, task.windows)[3, 5]
    pred = net.eval()(task.coords[3, 5][None])["rgb"].clamp(0, 1)
    want = 10 * math.log10(1 / (pred - truth).pow(2).mean().item())
    assert df[(df.frame == 3) & (df.patch == 5)]["psnr"].item() == pytest.approx(want, rel=1e-4)
    oracle = PE.per_patch_table(task, Oracle(task.frames), split)
    assert oracle["psnr"].eq(float("inf")).all() and oracle["clip_sim"].isna().all()
