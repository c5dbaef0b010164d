"""CLIP targets: one embedding per training patch, from exactly that patch's pixels.

A target is the teacher's embedding of ``window.slice(frame)`` of the already cropped/resized frame,
through the teacher's own preprocess. (The research code embedded patches of the uncropped source,
so a target and the pixels it supervised were different regions.)

The teacher is a :class:`TeacherSpec` (data/teacher.py): a tag ("openai") = real weights, read from
the local cache without any network call, else downloaded after a ~3 s reachability probe; a local
weights file; an ``hf-hub:`` or ``local-dir:`` name; None = seeded random init; "auto" = "openai" when
cached or the host answers, else random init with a warning. Cache keys come from the teacher's
identity without building it (a weights file counts by its sha256), so a cache hit builds no teacher.

Cache: ``<cache_dir>/targets/<key>.pt`` + ``<key>.json`` (``custom-<key>`` for the ad hoc windows of
:func:`targets_for_windows`), written atomically; a hit needs both. A
corrupt or mismatched entry raises a ValueError naming the file (recomputing silently would hide a
disk or format problem).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Union

import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from hnerv_lib.data.geometry import Geometry, Window, WindowPool
from hnerv_lib.data.teacher import (
    Device,
    Teacher,
    TeacherSpec,
    describe_identity,
    identity,
    load_teacher,
    resolve_spec,
)
from hnerv_lib.data.video import Video
from hnerv_lib.utils import io

TARGETS_FORMAT = 1  # bump when the cached tensor layout or the way targets are computed changes


WindowList = Union[list[Window], list[list[Window]]]


@dataclass(frozen=True)
class Targets:
    """Unit-norm targets emb (T, N, D) for windows, with geometry, teacher identity, cache key, meta."""

    emb: torch.Tensor
    windows: WindowList  # shared list, or one list per frame for targets_for_windows
    geometry: dict
    teacher: dict
    key: str
    meta: dict

    def describe_teacher(self) -> str:
        """Caption of the teacher that produced these targets."""
        return describe_identity(self.teacher)




def _per_frame(windows: WindowList, frame_hw: tuple[int, int], num_frames: int) -> list[list[Window]]:
    """Validate windows (one shared list, or one list per frame) against the frames; one list per frame."""
    shared = all(isinstance(w, Window) for w in windows)
    try:
        per_frame = [list(windows)] * num_frames if shared else [list(ws) for ws in windows]
    except TypeError:  # neither Windows nor lists of them
        per_frame = []
    counts = sorted({len(ws) for ws in per_frame}) or [0]
    if len(per_frame) != num_frames or counts[0] == 0 or len(counts) != 1:
        raise ValueError(f"windows must be a non-empty list of Window or {num_frames} equal-length per-frame "
                         f"lists; got {len(windows)} entries with per-frame counts {counts}")
    h, w = frame_hw
    for win in {win for ws in per_frame for win in ws}:
        if not isinstance(win, Window) or min(win.top, win.left) < 0 or min(win.height, win.width) < 1 \
                or win.top + win.height > h or win.left + win.width > w:
            raise ValueError(f"window {win} is not a Window inside the {h}x{w} frame")
    return per_frame


def _to_pil(patch: torch.Tensor) -> Image.Image:
    """(3, h, w) uint8 tensor -> RGB PIL image with exactly those pixels."""
    return Image.fromarray(patch.permute(1, 2, 0).contiguous().cpu().numpy(), mode="RGB")


def embed_windows(teacher: Teacher, frames_uint8: torch.Tensor, windows: WindowList, batch_size: int = 64,
                  progress: bool = True) -> torch.Tensor:
    """Unit-norm float32 (T, N, D) CPU embeddings of each window's exact pixels via the teacher's preprocess."""
    frames = frames_uint8
    if not isinstance(frames, torch.Tensor) or frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[1] != 3:
        shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise ValueError(f"frames must be a uint8 tensor (T, 3, H, W), got {shape} {getattr(frames, 'dtype', '')}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    per_frame = _per_frame(windows, tuple(frames.shape[-2:]), frames.shape[0])
    jobs = [(t, win) for t, ws in enumerate(per_frame) for win in ws]
    out = torch.empty(len(jobs), teacher.embed_dim, dtype=torch.float32)
    with torch.no_grad(), tqdm(total=len(jobs), desc="CLIP targets", unit="patch", disable=not progress) as bar:
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start : start + batch_size]
            batch = torch.stack([teacher.preprocess(_to_pil(win.slice(frames[t]))) for t, win in chunk])
            feats = teacher.model.encode_image(batch.to(teacher.device)).float()
            out[start : start + len(chunk)] = F.normalize(feats, dim=-1).cpu()
            bar.update(len(chunk))
    return out.view(len(per_frame), len(per_frame[0]), teacher.embed_dim)


def _key(video_key: str, geometry: Any, frame_hw: tuple[int, int], teacher: dict) -> str:
    """Cache key of targets from the teacher's identity: the seed counts only for random init, and a
    weights file's sha256 prefix is part of the key (two files never share an entry)."""
    fields = {"video": video_key, "geometry": geometry, "frame_hw": list(frame_hw), "model": teacher["model"],
              "pretrained": teacher["pretrained"], "seed": teacher["seed"] if teacher["random_init"] else None,
              "format": TARGETS_FORMAT}
    if teacher.get("weights"):
        fields["weights"] = teacher["weights"]["sha256"]
    return io.stable_hash(fields)


def _windows(geometry: Geometry | WindowPool, video: "Video") -> WindowList:
    """The windows a geometry asks targets for: one shared list, or one list per frame for a pool."""
    if isinstance(geometry, WindowPool):
        return geometry.windows_per_frame(video.frame_hw, video.num_frames)
    return geometry.windows(video.frame_hw)


def targets_key(video: "Video", geometry: Geometry | WindowPool, spec: TeacherSpec = TeacherSpec()) -> str:
    """Cache key clip_targets would use (resolves "auto" cheaply; builds no teacher, reads no weights but a file's hash)."""
    return _key(video.key, geometry.to_dict(), video.frame_hw, identity(resolve_spec(spec)))


def _window_of(stored: Union[dict, list]) -> Union[Window, list[Window]]:
    """A stored window (a dict), or a frame's list of them (a pool's entry)."""
    return Window(**stored) if isinstance(stored, dict) else [Window(**w) for w in stored]


def _as_json(windows: WindowList) -> list:
    """Windows (shared, or per frame) as plain dicts."""
    return [asdict(w) if isinstance(w, Window) else [asdict(v) for v in w] for w in windows]


def _load_cached(pt: Path, js: Path, key: str, shape: tuple[int, int]) -> Targets:
    """Read a cache entry; anything unreadable or inconsistent is a ValueError naming the file."""
    try:
        payload = torch.load(pt, map_location="cpu", weights_only=True)
        meta = io.load_json(js)
        emb, windows = payload["emb"], [_window_of(w) for w in payload["windows"]]
        good = payload["key"] == key and isinstance(emb, torch.Tensor) and tuple(emb.shape[:2]) == shape
    except Exception as err:
        raise ValueError(f"corrupt CLIP-target cache {pt} ({type(err).__name__}: {err}); delete it to recompute") from err
    if not good:
        raise ValueError(f"CLIP-target cache {pt} does not hold key {key} with (T, N) = {shape}; delete it to recompute")
    return Targets(emb, windows, payload["geometry"], payload["teacher"], key, meta)


def _write_cache(pt: Path, js: Path, payload: dict, meta: dict) -> None:
    """Write .pt then .json atomically; if the .json fails, remove the .pt so no half entry is left."""
    io.torch_save(payload, pt)
    try:
        io.save_json(meta, js)
    except BaseException:
        pt.unlink(missing_ok=True)
        raise


def _pool_embeddings(teacher: Teacher, frames: torch.Tensor, windows: list[list[Window]], grid: Targets,
                     batch_size: int, progress: bool) -> tuple[torch.Tensor, int]:
    """(T, K, D) embeddings of a pool's windows, and how many the teacher embedded: the grid's tiles (and a
    frame's repeats of them) come from the grid's targets, the teacher sees only frames with windows off the grid."""
    n = grid.emb.shape[1]
    out = grid.emb.new_empty(len(windows), len(windows[0]), grid.emb.shape[2])
    out[:, :n] = grid.emb
    drawn = [f for f, ws in enumerate(windows) if any(w not in ws[:n] for w in ws[n:])]
    for f in sorted(set(range(len(windows))) - set(drawn)):
        out[f, n:] = grid.emb[f, [windows[f].index(w) for w in windows[f][n:]]]
    if drawn and len(windows[0]) > n:
        out[drawn, n:] = embed_windows(teacher, frames[drawn], [windows[f][n:] for f in drawn],
                                       batch_size=batch_size, progress=progress)
    return out, len(drawn) * (len(windows[0]) - n)


def clip_targets(video: "Video", geometry: Geometry | WindowPool, spec: TeacherSpec = TeacherSpec(),
                 cache_dir: Union[str, os.PathLike] = "data/cache", device: Device = "cpu",
                 batch_size: int = 64, progress: bool = True) -> Targets:
    """Targets (T, N, D) for the geometry's windows of video (N = K for a pool's K windows per frame),
    cached under cache_dir/targets/<key>.pt; the key holds the geometry (a pool's size and seed too)."""
    windows, gdict = _windows(geometry, video), geometry.to_dict()
    per_frame = isinstance(geometry, WindowPool)
    shape = (video.num_frames, len(windows[0]) if per_frame else len(windows))
    key, folder = targets_key(video, geometry, spec), Path(cache_dir) / "targets"
    pt, js = folder / f"{key}.pt", folder / f"{key}.json"
    if pt.is_file() and js.is_file():
        return _load_cached(pt, js, key, shape)
    grid = (clip_targets(video, geometry.grid(), spec, cache_dir, device, batch_size, progress)
            if per_frame else None)  # a pool's tiles: the grid's entry (cached once, shared with the grid's runs)
    teacher = load_teacher(spec, device)
    ident = teacher.identity  # differs from the cheap resolution only if an "auto" download failed
    key = _key(video.key, gdict, video.frame_hw, ident)
    pt, js = folder / f"{key}.pt", folder / f"{key}.json"
    if pt.is_file() and js.is_file():
        return _load_cached(pt, js, key, shape)
    start = time.perf_counter()
    if grid is None:
        emb = embed_windows(teacher, video.frames, windows, batch_size=batch_size, progress=progress)
        count = shape[0] * shape[1]
    else:
        emb, count = _pool_embeddings(teacher, video.frames, windows, grid, batch_size, progress)
    seconds = time.perf_counter() - start
    meta = {"key": key, "format": TARGETS_FORMAT, "video_key": video.key, "geometry": gdict, "teacher": ident,
            "teacher_caption": teacher.describe(), "count": count, "shape": list(emb.shape),
            "frame_hw": list(video.frame_hw), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "device": str(teacher.device), "seconds": round(seconds, 3),
            "patches_per_s": round(count / max(seconds, 1e-9), 2)}
    payload = {"key": key, "emb": emb, "windows": _as_json(windows), "geometry": gdict, "teacher": ident}
    _write_cache(pt, js, payload, meta)
    return Targets(emb, windows, gdict, ident, key, meta)


def targets_for_windows(video: "Video", windows_per_frame: WindowList, spec: TeacherSpec = TeacherSpec(),
                        device: Device = "cpu", batch_size: int = 64, progress: bool = True,
                        cache_dir: Union[str, os.PathLike, None] = None) -> Targets:
    """Targets for arbitrary windows (shared or one list per frame), e.g. continuous queries.

    With ``cache_dir`` they are cached as ``clip_targets`` caches a grid's (``<cache_dir>/targets/<key>``,
    the key from the video, the windows and the teacher): notebook 02 asks for the same query windows
    for the patch model and its twin, and again on every rerun. Without it nothing is written.
    """
    shape = (video.num_frames, len(_per_frame(windows_per_frame, video.frame_hw, video.num_frames)[0]))

    def key_of(ident: dict) -> str:
        return io.stable_hash({"video": video.key, "windows": _as_json(windows_per_frame), "teacher": ident,
                               "format": TARGETS_FORMAT})

    def files(key: str) -> tuple[Path, Path]:
        folder = Path(cache_dir) / "targets"
        return folder / f"custom-{key}.pt", folder / f"custom-{key}.json"

    if cache_dir is not None:
        key = key_of(identity(resolve_spec(spec)))  # builds no teacher
        pt, js = files(key)
        if pt.is_file() and js.is_file():
            return _load_cached(pt, js, key, shape)
    teacher = load_teacher(spec, device)
    start = time.perf_counter()
    emb = embed_windows(teacher, video.frames, windows_per_frame, batch_size=batch_size, progress=progress)
    ident = teacher.identity  # differs from the cheap resolution only if an "auto" download failed
    key, gdict = key_of(ident), {"kind": "custom", "num_windows": emb.shape[1]}
    meta = {"key": key, "format": TARGETS_FORMAT, "video_key": video.key, "teacher": ident, "shape": list(emb.shape),
            "cached": cache_dir is not None, "seconds": round(time.perf_counter() - start, 3)}
    if cache_dir is not None:
        _write_cache(*files(key), {"key": key, "emb": emb, "windows": _as_json(windows_per_frame), "geometry": gdict,
                                   "teacher": ident}, meta)
    return Targets(emb, windows_per_frame, gdict, ident, key, meta)


def measure_extraction_speed(spec: TeacherSpec, n: int = 64, batch_size: int = 32, device: Device = "cpu",
                             patch_hw: tuple[int, int] = (320, 320)) -> dict:
    """Patches/s of embed_windows on n random patch_hw patches (teacher build and a warm-up excluded)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    # patch_hw default: the seeds' 2x4 grid tile at 640x1280 (the PIL resize cost scales with it).
    teacher = load_teacher(spec, device)
    frames = torch.randint(0, 256, (n, 3, *patch_hw), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    windows = [Window(0, 0, *patch_hw)]
    embed_windows(teacher, frames[:1], windows, batch_size=1, progress=False)  # warm-up: first-call overheads
    start = time.perf_counter()
    embed_windows(teacher, frames, windows, batch_size=batch_size, progress=False)
    seconds = time.perf_counter() - start
    return {"patches_per_s": n / seconds, "seconds": seconds, "n": n, "batch_size": batch_size,
            "patch_hw": list(patch_hw), "device": str(teacher.device), "teacher": teacher.describe()}
