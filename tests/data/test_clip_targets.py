"""CLIP targets: alignment with the training pixels, caching, keys, seeded random teachers, offline."""

from __future__ import annotations

import time
from pathlib import Path

import open_clip
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from hnerv_lib.data import targets as ct
from hnerv_lib.data import teacher as tt
from hnerv_lib.data.video import Video
from hnerv_lib.data.geometry import Grid, Sliding, Window

RANDOM = tt.TeacherSpec(pretrained=None)  # seed 0; the only teacher that works offline
GRID = Grid(2, 4)  # 16x16 tiles of a 32x64 frame
CPU = torch.device("cpu")
OFFLINE = not tt.weights_obtainable("ViT-B-32", "openai")
offline_only = pytest.mark.skipif(not OFFLINE, reason="openai weights are obtainable on this machine")


def make_video(frames: int = 4, key: str = "test", seed: int = 0) -> Video:
    gen = torch.Generator().manual_seed(seed)
    return Video(frames=torch.randint(0, 256, (frames, 3, 32, 64), dtype=torch.uint8, generator=gen), key=key, meta={})


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.fixture(scope="module")
def video() -> Video:
    return make_video()


@pytest.fixture(scope="module")
def first(video, tmp_path_factory):
    """(cache_dir, targets, call counts) of a first, computing clip_targets call."""
    cache = tmp_path_factory.mktemp("cache")
    calls = {"load_teacher": 0, "embed_windows": 0}
    with pytest.MonkeyPatch.context() as mp:
        for name in calls:
            original = getattr(ct, name)

            def counted(*args, _name=name, _original=original, **kwargs):
                calls[_name] += 1
                return _original(*args, **kwargs)

            mp.setattr(ct, name, counted)
        targets = ct.clip_targets(video, GRID, RANDOM, cache_dir=cache, progress=False)
    return cache, targets, calls


def test_target_is_embedding_of_exactly_the_training_patch(video, first):
    _, targets, _ = first
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    model.eval()
    for t, i in [(0, 0), (2, 5), (3, 7)]:
        row, col = divmod(i, 4)
        crop = video.frames[t, :, row * 16 : (row + 1) * 16, col * 16 : (col + 1) * 16]
        image = Image.fromarray(crop.permute(1, 2, 0).numpy())
        with torch.no_grad():
            ref = F.normalize(model.encode_image(preprocess(image)[None]), dim=-1)[0]
        assert torch.allclose(targets.emb[t, i], ref, atol=1e-5), (t, i)


def test_shape_unit_norm_and_meta(video, first):
    cache, targets, calls = first
    assert calls == {"load_teacher": 1, "embed_windows": 1}
    assert targets.emb.shape == (4, 8, 512) and targets.emb.dtype == torch.float32
    assert torch.allclose(targets.emb.norm(dim=-1), torch.ones(4, 8), atol=1e-5)
    assert targets.windows == GRID.windows((32, 64)) and targets.geometry == GRID.to_dict()
    assert targets.teacher["random_init"] and targets.teacher["pretrained"] is None
    assert "random init (seed 0)" in targets.describe_teacher()
    meta = targets.meta
    assert meta["video_key"] == "test" and meta["count"] == 32 and meta["frame_hw"] == [32, 64]
    assert meta["patches_per_s"] > 0 and meta["teacher"] == targets.teacher
    names = sorted(p.name for p in files_under(cache))
    assert names == [f"{targets.key}.json", f"{targets.key}.pt"]


def test_cache_hit_computes_nothing(video, first, monkeypatch):
    cache, targets, _ = first

    def forbidden(*args, **kwargs):
        raise AssertionError("a cache hit must not build a teacher or embed anything")

    monkeypatch.setattr(ct, "load_teacher", forbidden)
    monkeypatch.setattr(ct, "embed_windows", forbidden)
    again = ct.clip_targets(video, GRID, RANDOM, cache_dir=cache, progress=False)
    assert again.key == targets.key and torch.equal(again.emb, targets.emb)
    assert again.windows == targets.windows and again.teacher == targets.teacher


def test_keys_change_with_geometry_seed_and_video():
    a, b = make_video(1, key="a"), make_video(1, key="b")
    base = ct.targets_key(a, GRID, RANDOM)
    assert base == ct.targets_key(make_video(1, key="a", seed=9), Grid(2, 4), tt.TeacherSpec(pretrained=None))
    others = [
        ct.targets_key(a, Grid(1, 2), RANDOM),
        ct.targets_key(a, Sliding((16, 16), (8, 8)), RANDOM),
        ct.targets_key(a, GRID, tt.TeacherSpec(pretrained=None, seed=1)),
        ct.targets_key(b, GRID, RANDOM),
        ct.targets_key(a, GRID, tt.TeacherSpec(pretrained="openai")),
    ]
    assert len({base, *others}) == 1 + len(others)
    # Real weights ignore the seed, so it must not split their cache.
    assert ct.targets_key(a, GRID, tt.TeacherSpec(seed=0)) == ct.targets_key(a, GRID, tt.TeacherSpec(seed=1))


def test_random_init_is_seeded_and_restores_rng(video):
    state = torch.get_rng_state()
    fresh = tt._build_teacher(RANDOM, CPU)
    assert torch.equal(torch.get_rng_state(), state), "building a teacher must not move the global RNG"
    other_seed = tt._build_teacher(tt.TeacherSpec(pretrained=None, seed=1), CPU)
    cached = tt.load_teacher(RANDOM)
    assert cached is tt.load_teacher(RANDOM) and fresh is not cached
    windows = GRID.windows(video.frame_hw)[:2]
    frames = video.frames[:1]
    e_fresh, e_cached, e_other = (ct.embed_windows(t, frames, windows, progress=False) for t in (fresh, cached, other_seed))
    assert torch.equal(e_fresh, e_cached)
    assert not torch.allclose(e_fresh, e_other, atol=1e-3)


def test_per_frame_windows_match_grid_targets(video, first):
    _, targets, _ = first
    grid = GRID.windows(video.frame_hw)
    per_frame = [[grid[t]] for t in range(video.num_frames)]  # a different window on every frame
    out = ct.targets_for_windows(video, per_frame, RANDOM, progress=False)
    assert out.emb.shape == (4, 1, 512)
    for t in range(4):
        assert torch.allclose(out.emb[t, 0], targets.emb[t, t], atol=1e-5)


def test_windows_targets_are_cached_when_asked_and_a_hit_builds_no_teacher(video, tmp_path, monkeypatch):
    grid = GRID.windows(video.frame_hw)
    plain = ct.targets_for_windows(video, grid[:3], RANDOM, progress=False)
    assert not tmp_path.joinpath("targets").exists()  # no cache_dir: nothing written
    first = ct.targets_for_windows(video, grid[:3], RANDOM, progress=False, cache_dir=tmp_path)
    assert torch.equal(first.emb, plain.emb) and len(list((tmp_path / "targets").glob("custom-*.pt"))) == 1
    def no_teacher(*args, **kwargs):
        raise RuntimeError("built the teacher")

    monkeypatch.setattr(ct, "load_teacher", no_teacher)
    hit = ct.targets_for_windows(video, grid[:3], RANDOM, progress=False, cache_dir=tmp_path)
    assert torch.equal(hit.emb, first.emb) and hit.key == first.key and hit.windows == grid[:3]
    with pytest.raises(RuntimeError, match="built the teacher"):  # other windows: another key, a miss
        ct.targets_for_windows(video, grid[1:4], RANDOM, progress=False, cache_dir=tmp_path)


def test_bad_inputs_raise_value_errors(video):
    teacher = tt.load_teacher(RANDOM)
    win = [Window(0, 0, 16, 16)]
    with pytest.raises(ValueError, match="uint8"):
        ct.embed_windows(teacher, video.frames.float(), win, progress=False)
    with pytest.raises(ValueError, match="inside the 32x64 frame"):
        ct.embed_windows(teacher, video.frames, [Window(20, 0, 16, 16)], progress=False)
    with pytest.raises(ValueError, match="per-frame"):
        ct.embed_windows(teacher, video.frames, [win, win], progress=False)
    with pytest.raises(ValueError, match="non-empty"):
        ct.embed_windows(teacher, video.frames, [], progress=False)
    with pytest.raises(ValueError, match="'nope' is neither an open_clip tag for ViT-B-32 nor a file"):
        tt.TeacherSpec(pretrained="nope")
    with pytest.raises(ValueError, match="unknown open_clip model"):
        tt.TeacherSpec(model="ViT-Nope")


def test_failure_mid_extraction_leaves_no_file(tmp_path, monkeypatch):
    video = make_video(1, key="fail")
    seen = {"n": 0}
    original = ct._to_pil

    def flaky(patch):
        seen["n"] += 1
        if seen["n"] == 3:  # the first batch of 2 went through; the second breaks
            raise RuntimeError("boom")
        return original(patch)

    monkeypatch.setattr(ct, "_to_pil", flaky)
    with pytest.raises(RuntimeError, match="boom"):
        ct.clip_targets(video, GRID, RANDOM, cache_dir=tmp_path, batch_size=2, progress=False)
    assert files_under(tmp_path) == []


def test_failed_meta_write_removes_the_tensor_file(tmp_path, monkeypatch):
    video = make_video(1, key="meta-fail")
    monkeypatch.setattr(ct, "embed_windows", lambda t, f, w, **k: F.normalize(torch.ones(1, len(w), 512), dim=-1))

    def broken(obj, path):
        raise OSError("disk full")

    monkeypatch.setattr(ct.io, "save_json", broken)
    with pytest.raises(OSError, match="disk full"):
        ct.clip_targets(video, GRID, RANDOM, cache_dir=tmp_path, progress=False)
    assert files_under(tmp_path) == []


def test_corrupt_cache_raises_naming_the_file(tmp_path):
    video = make_video(1, key="corrupt")
    key = ct.targets_key(video, GRID, RANDOM)
    folder = tmp_path / "targets"
    folder.mkdir()
    (folder / f"{key}.pt").write_bytes(b"not a torch file")
    (folder / f"{key}.json").write_text("{}")
    with pytest.raises(ValueError, match=f"{key}.pt"):
        ct.clip_targets(video, GRID, RANDOM, cache_dir=tmp_path, progress=False)


def test_encode_text_unit_norm():
    emb = tt.encode_text(tt.load_teacher(RANDOM), ["a cat", "a red car"])
    assert emb.shape == (2, 512)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)


@offline_only
def test_openai_offline_fails_fast_and_suggests_random_init():
    start = time.perf_counter()
    with pytest.raises(tt.WeightsUnavailableError, match="random init") as info:
        tt.load_teacher(tt.TeacherSpec(pretrained="openai"))
    assert "pretrained=None" in str(info.value) and '"auto"' in str(info.value)
    assert time.perf_counter() - start < 10


@offline_only
def test_auto_offline_warns_and_uses_random_init(video):
    with pytest.warns(UserWarning, match="RANDOM-INIT"):
        teacher = tt.load_teacher(tt.TeacherSpec(pretrained="auto"))
    assert teacher.identity["random_init"] and teacher.identity["pretrained"] is None
    assert teacher.describe() == "ViT-B-32 / random init (seed 0) — not a trained CLIP"
    with pytest.warns(UserWarning, match="RANDOM-INIT"):
        assert ct.targets_key(video, GRID, tt.TeacherSpec(pretrained="auto")) == ct.targets_key(video, GRID, RANDOM)


def test_auto_falls_back_when_the_download_itself_fails(monkeypatch):
    original = open_clip.create_model_and_transforms

    def no_download(name, pretrained=None, **kwargs):
        if pretrained is not None:
            raise RuntimeError("connection reset")
        return original(name, pretrained=None, **kwargs)

    monkeypatch.setattr(tt, "_weights_source", lambda model, tag: (None, "hub.example"))
    monkeypatch.setattr(tt, "_reachable", lambda host: True)
    monkeypatch.setattr(tt.open_clip, "create_model_and_transforms", no_download)
    monkeypatch.setattr(tt, "_TEACHERS", {k: v for k, v in tt._TEACHERS.items() if k[1] is None})
    with pytest.warns(UserWarning, match="connection reset"):
        teacher = tt.load_teacher(tt.TeacherSpec(pretrained="auto"))
    assert teacher.identity["random_init"]
    with pytest.raises(tt.WeightsUnavailableError, match="connection reset"):
        tt.load_teacher(tt.TeacherSpec(pretrained="openai"))


def test_locally_cached_weights_load_without_network(monkeypatch):
    """A cached weights file is used with huggingface_hub forced offline and no probe."""
    from huggingface_hub import constants

    seen = {}
    built = tt.load_teacher(RANDOM)
    model, preprocess = built.model, built.preprocess

    def fake_create(name, pretrained=None, **kwargs):
        seen.update(offline=constants.HF_HUB_OFFLINE, pretrained=pretrained, kwargs=kwargs)
        return model, preprocess, preprocess

    def no_probe(host):
        raise AssertionError("a local cache hit must not probe the network")

    monkeypatch.setattr(tt, "_weights_source", lambda m, tag: ("/cache/open_clip_model.safetensors", "hub.example"))
    monkeypatch.setattr(tt, "_reachable", no_probe)
    monkeypatch.setattr(tt.open_clip, "create_model_and_transforms", fake_create)
    monkeypatch.setattr(tt, "_TEACHERS", {})
    before = constants.HF_HUB_OFFLINE
    teacher = tt.load_teacher(tt.TeacherSpec(pretrained="openai"))
    assert seen == {"offline": True, "pretrained": "openai", "kwargs": {"force_quick_gelu": True}}
    assert constants.HF_HUB_OFFLINE == before
    assert teacher.identity["pretrained"] == "openai" and teacher.describe() == "ViT-B-32 / openai"


def test_measure_extraction_speed_reports():
    out = ct.measure_extraction_speed(RANDOM, n=2, batch_size=2, patch_hw=(32, 32))
    assert out["n"] == 2 and out["patches_per_s"] > 0 and out["device"] == "cpu"
    assert "random init" in out["teacher"]
