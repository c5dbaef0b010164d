"""Jittered-window training of the patch model (issue 15): a fixed pool of K windows per frame, the
teacher called for the pool once (cached), one pool window drawn per training item; off = today's model."""

from dataclasses import replace

import pytest
import torch

from hnerv_lib.data import geometry as G
from hnerv_lib.data import targets as T
from hnerv_lib.data.video import load_video
from hnerv_lib.train.config import TrainConfig, get_train_preset
from hnerv_lib.train.trainer import prepare, train


def _cfg(name="patch-tiny", **kw):
    return replace(get_train_preset(name), **{"precision": "fp32", "channels_last": False, **kw})


def test_pool_opens_with_the_grid_then_draws_integer_windows_inside_the_frame():
    pool = G.WindowPool(2, 4, per_frame=12, seed=0)
    lists = pool.windows_per_frame((32, 64), num_frames=5)
    grid = G.Grid(2, 4).windows((32, 64))
    assert len(lists) == 5 and all(len(ws) == 12 and ws[:8] == grid for ws in lists)
    extra = [w for ws in lists for w in ws[8:]]
    assert all((w.height, w.width) == (16, 16) and 0 <= w.top <= 16 and 0 <= w.left <= 48 for w in extra)
    assert len({(w.top, w.left) for w in extra}) > 10  # spread over positions, not a few repeated ones
    assert lists[0][8:] != lists[1][8:]  # each frame has its own positions
    assert pool.windows_per_frame((32, 64), 5) == lists  # a function of its fields: it can name a cache
    assert G.WindowPool(2, 4, 12, seed=1).windows_per_frame((32, 64), 5) != lists
    assert G.geometry_from_dict(pool.to_dict()) == pool


def test_pool_smaller_than_the_grid_is_refused():
    with pytest.raises(ValueError, match=r"per_frame must be >= 8; got 5"):
        G.WindowPool(2, 4, per_frame=5)
    with pytest.raises(ValueError, match=r"per_frame must be >= 8; got 5"):
        _cfg(window_pool=5)


def test_pool_coords_are_each_frames_time_and_window_centres():
    lists = G.WindowPool(2, 4, 10).windows_per_frame((32, 64), 3)
    c = G.pool_coords(lists, (32, 64))
    assert c.shape == (3, 10, 3)
    assert torch.allclose(c[2, :, 0], torch.full((10,), 2 / 3))
    assert torch.allclose(c[1, 9, 1:], G.centers([lists[1][9]], (32, 64))[0])


def test_pool_targets_are_cached_once_and_hold_the_grid_targets_first(smoke_cache, monkeypatch):
    cfg = _cfg(window_pool=12)
    video = load_video(cfg.video_spec(), smoke_cache)
    grid = T.clip_targets(video, cfg.geometry(), cfg.teacher_spec(), cache_dir=smoke_cache, progress=False)
    pool = T.clip_targets(video, cfg.pool(), cfg.teacher_spec(), cache_dir=smoke_cache, progress=False)
    assert pool.emb.shape == (video.num_frames, 12, grid.emb.shape[-1])
    assert torch.allclose(pool.emb[:, :8], grid.emb, atol=1e-5)  # the same pixels through the same teacher
    assert pool.key != grid.key != T.targets_key(video, replace(cfg, window_pool=16).pool(), cfg.teacher_spec())
    monkeypatch.setattr(T, "embed_windows", lambda *a, **k: pytest.fail("a cached pool called the teacher"))
    again = T.clip_targets(video, cfg.pool(), cfg.teacher_spec(), cache_dir=smoke_cache, progress=False)
    assert torch.equal(again.emb, pool.emb) and again.windows == pool.windows


def test_a_pool_item_is_its_windows_pixels_centre_and_target(smoke_cache):
    s = prepare(_cfg(window_pool=12, loss="L2"), torch.device("cpu"), smoke_cache, progress=False)
    task = s.task
    assert task.num_items() == len(task.train_frames) * 12 and task.items_per_epoch() == len(task.train_frames) * 8
    assert task.targets.shape[1] == 8 and task.pool_targets.shape[1] == 12  # evaluation reads the grid's
    seen = {}

    def model(coords):
        seen["coords"] = coords
        return {"rgb": torch.zeros(len(coords), 3, 16, 16), "clip": None, "features": None}

    items = torch.tensor([0, 11, 12 * 3 + 9])
    loss = task.step_loss(model, items, 0.0)
    frame, k = task.train_frames[3].item(), 9
    assert torch.allclose(seen["coords"][2], G.pool_coords(task.pool, task.frame_hw)[frame, k])
    pixels = torch.stack([task.pool[task.train_frames[f].item()][j].slice(task.frames[task.train_frames[f]])
                          for f, j in ((0, 0), (0, 11), (3, 9))])
    assert loss.pixel.item() == pytest.approx((pixels ** 2).mean().item(), rel=1e-5)  # zero output: L2 = mean(x^2)


def test_pool_training_runs_the_grids_steps_and_learns(tmp_path, smoke_cache, monkeypatch):
    import pandas as pd

    from hnerv_lib.train.families import PatchTask

    calls = []
    real = PatchTask._pool_loss
    monkeypatch.setattr(PatchTask, "_pool_loss", lambda self, *a: calls.append(1) or real(self, *a))
    cfg = _cfg(window_pool=12, epochs=4, eval_every=4)
    train(cfg, tmp_path, cache_dir=smoke_cache, progress=False)
    m = pd.read_csv(tmp_path / "metrics.csv")
    assert m["pixel_loss"].iloc[-1] < m["pixel_loss"].iloc[0] and m["psnr_train"].iloc[-1] > 10
    train_frames = len(prepare(cfg, torch.device("cpu"), smoke_cache, progress=False).task.train_frames)
    assert len(calls) == 4 * -(-train_frames * 8 // cfg.batch_size)  # the grid's steps per epoch, not the pool's
    assert cfg.run_id() != _cfg().run_id()


def test_pool_off_keeps_the_run_ids_of_earlier_runs():
    """window_pool=0 trains as before the switch existed, so it stays out of the id (computed at 10bc721)."""
    assert _cfg().run_id() == "09deca6f9b"
    assert _cfg("hnerv-tiny").run_id() == "b00a1680a0"


def test_pool_on_a_full_frame_model_is_refused_before_any_decoding(tmp_path, monkeypatch):
    import hnerv_lib.train.setup as setup

    monkeypatch.setattr(setup, "load_video", lambda *a, **k: pytest.fail("frames were decoded before validation"))
    with pytest.raises(ValueError, match=r"window_pool=12 draws patch-model training windows, but model "
                                         r"'hnerv-tiny' is a hnerv model"):
        train(_cfg("hnerv-tiny", window_pool=12), tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
    assert not (tmp_path / "run").exists()


def test_a_pool_on_the_training_frames_asks_the_teacher_for_their_random_windows_only(smoke_cache, monkeypatch):
    cfg = _cfg(window_pool=12)
    video = load_video(cfg.video_spec(), smoke_cache)
    grid = T.clip_targets(video, cfg.geometry(), cfg.teacher_spec(), cache_dir=smoke_cache, progress=False)
    full, part = cfg.pool(), replace(cfg.pool(), frames=(5, 0, 2))
    assert part.frames == (0, 2, 5) and "frames" not in full.to_dict()  # the keys of earlier pools hold
    assert G.geometry_from_dict(part.to_dict()) == part
    lists, part_lists = (p.windows_per_frame(video.frame_hw, video.num_frames) for p in (full, part))
    tiles = cfg.geometry().windows(video.frame_hw)
    assert all(part_lists[f] == lists[f] for f in (0, 2, 5))  # a training frame's windows do not change
    assert part_lists[1] == tiles + tiles[:4]  # the others repeat their tiles
    calls, real = [], T.embed_windows
    monkeypatch.setattr(T, "embed_windows", lambda teacher, frames, windows, **k:
                        calls.append((len(frames), len(windows[0]))) or real(teacher, frames, windows, **k))
    t = T.clip_targets(video, part, cfg.teacher_spec(), cache_dir=smoke_cache, progress=False)
    assert calls == [(3, 4)]  # three frames with 4 random windows each; every tile from the grid's entry
    assert torch.equal(t.emb[:, :8], grid.emb) and torch.equal(t.emb[1, 8:], grid.emb[1, :4])
    whole = T.clip_targets(video, full, cfg.teacher_spec(), cache_dir=smoke_cache, progress=False)
    assert torch.allclose(t.emb[[0, 2, 5]], whole.emb[[0, 2, 5]], atol=1e-5)  # the same windows, the same teacher
    s = prepare(cfg, torch.device("cpu"), smoke_cache, progress=False)  # training builds its pool this way
    train_frames = s.task.train_frames.tolist()
    assert s.task.pool_targets.shape[:2] == (video.num_frames, 12)
    assert all(s.task.pool[f] == (lists[f] if f in train_frames else tiles + tiles[:4]) for f in range(video.num_frames))


def test_a_pool_refuses_frames_it_cannot_hold():
    with pytest.raises(ValueError, match=r"frames must be frame indices \(>= 0\), at least one; got \(\)"):
        G.WindowPool(2, 4, 12, frames=())
    with pytest.raises(ValueError, match="frames go up to 9 but the video has 5 frames"):
        G.WindowPool(2, 4, 12, frames=(1, 9)).windows_per_frame((32, 64), 5)
