from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hnerv_lib.data import video as data
from hnerv_lib.data.video import DataError, VideoSpec, load_video

SMOKE = VideoSpec("bunny", crop=(640, 1280), size=(32, 64), every=11, first=12)


@pytest.fixture
def count_decodes(monkeypatch):
    calls = []
    real = data.decode_source

    def counting(kind, path):
        calls.append(path)
        return real(kind, path)

    monkeypatch.setattr(data, "decode_source", counting)
    return calls


def _cache_files(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file()]


def test_bunny_is_the_papers_video():
    kind, path = data.resolve_source("bunny")
    frames = data.decode_source(kind, path)  # native size, not cached (365 MB)
    assert (kind, path.name) == ("video", "bigbuckbunny.mp4")
    assert frames.shape == (132, 3, 720, 1280) and frames.dtype == torch.uint8


def test_crop_resize_subset_and_cache_hit(tmp_path, count_decodes):
    v1 = load_video(SMOKE, tmp_path)
    assert v1.frames.shape == (12, 3, 32, 64) and v1.frame_hw == (32, 64)
    assert v1.meta["crop"] == [640, 1280] and v1.meta["every"] == 11
    v2 = load_video(SMOKE, tmp_path)
    assert len(count_decodes) == 1  # the second load read the cache
    assert torch.equal(v1.frames, v2.frames) and v1.key == v2.key
    v3 = load_video(VideoSpec("bunny", crop=(640, 1280), size=(32, 64), every=11, first=6), tmp_path)
    assert v3.key != v1.key and len(count_decodes) == 2 and torch.equal(v3.frames, v1.frames[:6])


def test_center_crop_takes_the_middle():
    f = torch.arange(2 * 3 * 6 * 8, dtype=torch.uint8).reshape(2, 3, 6, 8)
    assert torch.equal(data.center_crop(f, (4, 4)), f[..., 1:5, 2:6])
    with pytest.raises(DataError, match="crop 8x8 is larger than the 6x8 frames"):
        data.center_crop(f, (8, 8))


def _write_images(folder: Path, sizes, names=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = []
    for i, (h, w) in enumerate(sizes):
        arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / (names[i] if names else f"f{i:03d}.png"))
        arrays.append(arr)
    return arrays


def test_image_folder_sorted_by_name(tmp_path):
    arrays = _write_images(tmp_path / "imgs", [(8, 12)] * 3, names=["b.png", "a.png", "c.png"])
    v = load_video(VideoSpec(str(tmp_path / "imgs")), tmp_path / "cache")
    assert v.frames.shape == (3, 3, 8, 12)
    assert np.array_equal(v.frames[0].permute(1, 2, 0).numpy(), arrays[1])  # a.png first


def test_any_video_file(tmp_path):
    v = load_video(VideoSpec(str(data.embedded_path("carphone"))), tmp_path)
    assert v.frames.shape == (120, 3, 144, 176)


def _truncated(tmp_path):
    p = tmp_path / "cut.mp4"
    p.write_bytes(data.embedded_path("bunny").read_bytes()[:400_000])
    return p


def _garbage(tmp_path):
    p = tmp_path / "noise.mp4"
    p.write_bytes(b"not a video" * 100)
    return p


def _empty_dir(tmp_path):
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def _dir_with_text(tmp_path):
    _write_images(tmp_path / "mixed", [(8, 8)])
    (tmp_path / "mixed" / "notes.txt").write_text("hello")
    return tmp_path / "mixed"


def _mixed_sizes(tmp_path):
    _write_images(tmp_path / "sizes", [(8, 8), (8, 8), (10, 8)])
    return tmp_path / "sizes"


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda t: t / "missing.mp4", r"neither an embedded name .* a file nor a folder"),
        (_truncated, r"cannot decode video .*cut\.mp4"),
        (_garbage, r"cannot decode video .*noise\.mp4"),
        (_empty_dir, r"image folder .*empty is empty"),
        (_dir_with_text, r"holds 'notes\.txt', which is not an image"),
        (_mixed_sizes, r"frames of mixed sizes .*f002\.png is 10x8, the first image is 8x8"),
    ],
)
def test_bad_inputs_one_clear_error_and_no_partial_cache(tmp_path, make, match):
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=match):
        load_video(VideoSpec(str(make(tmp_path))), cache)
    assert _cache_files(cache) == []


def test_bad_spec_values():
    with pytest.raises(DataError, match="unknown embedded video 'bunnny'"):
        data.embedded_path("bunnny")
    with pytest.raises(DataError, match=r"every must be >= 1 .* every=0"):
        VideoSpec("bunny", every=0)
    with pytest.raises(DataError, match=r"size must be \(height, width\)"):
        VideoSpec("bunny", size=(32,))


def test_resize_in_chunks_equals_one_pass():
    import torch.nn.functional as F

    from hnerv_lib.data.video import RESIZE_CHUNK, resize

    frames = torch.randint(0, 256, (2 * RESIZE_CHUNK + 3, 3, 24, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    one = F.interpolate(frames.float(), size=(10, 16), mode="bilinear", antialias=True, align_corners=False)
    assert torch.equal(resize(frames, (10, 16)), one.round_().clamp_(0, 255).to(torch.uint8))


def _truncate_tensor(pt: Path, js: Path):
    pt.write_bytes(pt.read_bytes()[:200])


def _garble_meta(pt: Path, js: Path):
    js.write_text('{"num_frames": 3,')


def _wrong_tensor(pt: Path, js: Path):
    torch.save(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), pt)


def _wrong_dtype(pt: Path, js: Path):
    torch.save(torch.zeros(3, 3, 8, 12), pt)


@pytest.mark.parametrize(
    "damage, match",
    [
        (_truncate_tensor, r"corrupt frame cache .*\.pt \(.*\); delete it"),
        (_garble_meta, r"corrupt frame-cache meta .*\.json \(JSONDecodeError"),
        (_wrong_tensor, r"frame cache .*\.pt holds \(\(2, 3, 4, 4\), torch\.uint8\), but its meta says .*\(3, 3, 8, 12\)"),
        (_wrong_dtype, r"frame cache .*\.pt holds \(\(3, 3, 8, 12\), torch\.float32\)"),
    ],
)
def test_damaged_frame_cache_is_named_not_returned(tmp_path, damage, match):
    """A damaged cache entry is one DataError naming the file, never a raw loader error or wrong frames."""
    _write_images(tmp_path / "imgs", [(8, 12)] * 3)
    spec, cache = VideoSpec(str(tmp_path / "imgs")), tmp_path / "cache"
    key = load_video(spec, cache).key
    pt = cache / "frames" / f"{key}.pt"
    damage(pt, pt.with_suffix(".json"))
    with pytest.raises(DataError, match=match):
        load_video(spec, cache)


def test_first_beyond_the_video_and_squashed_aspect_warn_on_decode_and_on_cache_hit(tmp_path):
    _write_images(tmp_path / "imgs", [(8, 12)] * 3)
    for _ in range(2):  # decode, then cache hit
        with pytest.warns(UserWarning, match=r"first=5 but imgs has only 3 frames \(every=1\): using all 3"):
            assert load_video(VideoSpec(str(tmp_path / "imgs"), first=5), tmp_path / "cache").num_frames == 3
        with pytest.warns(UserWarning, match=r"resizing imgs from 8x12 to 8x8 changes its aspect ratio by -33 %"):
            load_video(VideoSpec(str(tmp_path / "imgs"), size=(8, 8)), tmp_path / "cache")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # within 5 %: silent; a crop to the target's shape: silent
        load_video(VideoSpec(str(tmp_path / "imgs"), size=(4, 6)), tmp_path / "cache")
        load_video(VideoSpec(str(tmp_path / "imgs"), crop=(8, 8), size=(4, 4), first=3), tmp_path / "cache")
