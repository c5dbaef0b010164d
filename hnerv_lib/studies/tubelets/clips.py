"""Clip sets on disk, and the arrow-of-time task built from the embedded videos.

On-disk format (``--data_root DIR``): ``DIR/clips.pt``, a dict read with ``weights_only=True``:

* ``clips``: uint8 (N, T, 3, H, W) — N clips of T square frames,
* ``labels``: int64 (N,) — index into ``classes``,
* ``classes``: list of class names, e.g. ``["forward", "reversed"]``,
* ``origin``: int64 (N, 4) — (video index, first source frame, crop left, reversed) of each clip,
* ``meta``: JSON-able dict (videos, frame regions, the ArrowOfTime settings);

plus ``DIR/meta.json``, a human-readable twin of ``meta`` with the counts.

**Arrow of time**: is a clip played forward or reversed? One frame cannot tell, motion can. Each
video is resized to height ``size``; a clip takes ``num_frames`` frames ``frame_step`` apart and a
``size`` x ``size`` crop; every window appears once forward (label 0) and once reversed (label 1).
The split is **by time**: each video is cut into ``blocks`` equal stretches; in each, train windows
lie in the first ``train_frac`` of the frames and test windows in the rest, ``gap`` frames away from
every train frame, so no frame is in both (``blocks=1``: first part train, last part test). Windows
across a scene cut (mean absolute frame difference above ``cut_threshold``) are skipped.

**Camera pan** (issue 16): a square window slides over the video in one of 8 directions, or stays
still (9 classes), at one of several speeds. Any single frame is a crop like every other class's,
so only motion separates the classes. Train and test windows come from disjoint time stretches, as
above; a held-out video gives a harder "unseen video" split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional, Union

import torch

from hnerv_lib.data.video import DataError, VideoSpec, load_video, resolve_source
from hnerv_lib.utils import io

CLIPS_FORMAT = 1
CLASSES = ("forward", "reversed")


@dataclass
class ClipSet:
    """Labelled uint8 clips (N, T, 3, H, W) with where each came from."""

    clips: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...] = CLASSES
    origin: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 4, dtype=torch.long))
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.clips.ndim != 5 or self.clips.dtype != torch.uint8 or self.clips.shape[2] != 3:
            raise DataError(f"clips must be uint8 (N, T, 3, H, W); got {self.clips.dtype} {tuple(self.clips.shape)}")
        if self.labels.shape != (self.clips.shape[0],):
            raise DataError(f"labels {tuple(self.labels.shape)} do not match {self.clips.shape[0]} clips")

    def __len__(self) -> int:
        return self.clips.shape[0]

    @property
    def num_frames(self) -> int:
        """Frames per clip T."""
        return self.clips.shape[1]

    def pairs(self) -> torch.Tensor:
        """(N/2, 2) indices of (forward, reversed) twins; DataError unless the set is stored that way."""
        n = len(self)
        ok = n % 2 == 0 and len(self.origin) == n
        if ok:
            fwd, rev = self.origin[0::2], self.origin[1::2]
            ok = bool((fwd[:, :3] == rev[:, :3]).all() and (fwd[:, 3] == 0).all() and (rev[:, 3] == 1).all())
        if not ok:
            raise DataError("paired batches need clips stored as (forward, reversed) twins, as arrow_of_time writes them")
        return torch.arange(n).reshape(-1, 2)

    def describe(self) -> str:
        """E.g. ``240 clips of 8 x 64x64 (forward 120, reversed 120)``."""
        counts = ", ".join(f"{c} {int((self.labels == i).sum())}" for i, c in enumerate(self.classes))
        return f"{len(self)} clips of {self.num_frames} x {self.clips.shape[3]}x{self.clips.shape[4]} ({counts})"

    def save(self, root: str | Path) -> Path:
        """Write ``root/clips.pt`` (and ``root/meta.json``) atomically."""
        root = Path(root)
        payload = {"format": CLIPS_FORMAT, "clips": self.clips, "labels": self.labels, "classes": list(self.classes),
                   "origin": self.origin, "meta": self.meta}
        io.torch_save(payload, root / "clips.pt")
        io.save_json({**self.meta, "description": self.describe()}, root / "meta.json")
        return root / "clips.pt"

    @classmethod
    def load(cls, root: str | Path) -> ClipSet:
        """Read ``root/clips.pt``; a missing or foreign file is a DataError naming the path."""
        path = Path(root) / "clips.pt"
        if not path.is_file():
            raise DataError(f"no clip set at {path} (expected DIR/clips.pt; `python -m hnerv_lib.action train` writes one)")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != CLIPS_FORMAT:
            raise DataError(f"{path} is not a clip set of format {CLIPS_FORMAT}")
        return cls(payload["clips"], payload["labels"], tuple(payload["classes"]), payload["origin"], payload["meta"])


@dataclass(frozen=True)
class ArrowOfTime:
    """How arrow-of-time clips are cut from the videos."""

    task: ClassVar[str] = "arrow of time"  # the task's name in tables, captions and the verdict
    classes: ClassVar[tuple[str, ...]] = CLASSES
    videos: tuple[str, ...] = ("bunny", "bikes", "carphone")  # embedded names or video files
    num_frames: int = 8  # frames per clip
    frame_step: int = 2  # source frames between clip frames: more motion per step
    size: int = 32  # square clip side; videos are resized to this height first
    crops: int = 5  # square crops spread across each frame's width (more clips of the same motion)
    blocks: int = 3  # train/test stretches per video; 1 = first part train, last part test
    train_frac: float = 0.55  # share of each stretch holding the train windows; the rest holds the test windows
    gap: int = 2  # frames skipped on each side of a test region: no frame is in both splits
    train_stride: int = 2  # start-frame stride of train windows
    test_stride: int = 2  # start-frame stride of test windows
    cut_threshold: float = 30.0  # mean |frame difference| (0..255) above which a scene cut is assumed

    def __post_init__(self) -> None:
        object.__setattr__(self, "videos", tuple(self.videos))
        for name in ("num_frames", "frame_step", "size", "crops", "blocks", "train_stride", "test_stride"):
            if getattr(self, name) < 1:
                raise DataError(f"ArrowOfTime.{name} must be >= 1; got {getattr(self, name)!r}")
        if not 0 < self.train_frac < 1 or self.gap < 0:
            raise DataError(f"ArrowOfTime needs 0 < train_frac < 1 and gap >= 0; got {self.train_frac}, {self.gap}")

    @property
    def span(self) -> int:
        """Source frames one clip covers."""
        return (self.num_frames - 1) * self.frame_step + 1

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {**asdict(self), "videos": list(self.videos)}


def native_hw(source: str) -> tuple[int, int]:
    """(H, W) of a video's frames as stored, read from its header (nothing is decoded)."""
    import av

    kind, path = resolve_source(source)
    if kind != "video":
        raise DataError(f"arrow-of-time clips need a video file or embedded name; {source!r} is a {kind}")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.height, stream.width


def scene_cuts(frames: torch.Tensor, threshold: float) -> list[int]:
    """Indices i where a cut lies between frame i and i + 1."""
    diff = (frames[1:].float() - frames[:-1].float()).abs().mean(dim=(1, 2, 3))
    return [int(i) for i in torch.nonzero(diff > threshold).flatten()]


def window_starts(lo: int, hi: int, span: int, stride: int, cuts: list[int]) -> list[int]:
    """Starts s in [lo, hi) with s + span <= hi, at ``stride``, whose frames cross no cut."""
    return [s for s in range(lo, hi - span + 1, stride) if not any(s <= c < s + span - 1 for c in cuts)]


def time_regions(n: int, blocks: int, train_frac: float, gap: int) -> dict[str, list[tuple[int, int]]]:
    """[lo, hi) frame ranges of the train and test regions of a video of ``n`` frames."""
    bounds = [round(b * n / blocks) for b in range(blocks + 1)]
    out: dict[str, list[tuple[int, int]]] = {"train": [], "test": []}
    for b, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        split_at = lo + int(train_frac * (hi - lo))
        out["train"].append((lo, split_at))
        out["test"].append((split_at + gap, hi - (gap if b < blocks - 1 else 0)))
    return out


def crop_lefts(width: int, size: int, crops: int) -> list[int]:
    """Left edges of ``crops`` square crops spread evenly across ``width`` (one crop: the centre)."""
    if crops == 1:
        return [(width - size) // 2]
    return sorted({round(i * (width - size) / (crops - 1)) for i in range(crops)})


def _cut(frames: torch.Tensor, starts: list[int], lefts: list[int], spec: ArrowOfTime, vid: int):
    clips, labels, origin = [], [], []
    for s in starts:
        window = frames[s : s + spec.span : spec.frame_step]
        for left in lefts:
            clip = window[..., left : left + spec.size]
            for rev in (0, 1):
                clips.append(clip.flip(0) if rev else clip)
                labels.append(rev)
                origin.append((vid, s, left, rev))
    return clips, labels, origin


def arrow_of_time(spec: ArrowOfTime, cache_dir: str | Path = "data/cache") -> tuple[ClipSet, ClipSet]:
    """(train, test) clip sets split by time; test clips share no frame with train clips."""
    parts: dict[str, tuple[list, list, list]] = {"train": ([], [], []), "test": ([], [], [])}
    info: dict[str, Any] = {}
    for vid, source in enumerate(spec.videos):
        h, w = native_hw(source)
        width = max(spec.size, round(w * spec.size / h))
        frames = load_video(VideoSpec(source, size=(spec.size, width)), cache_dir).frames
        n, cuts = frames.shape[0], scene_cuts(frames, spec.cut_threshold)
        lefts = crop_lefts(width, spec.size, spec.crops)
        ranges = time_regions(n, spec.blocks, spec.train_frac, spec.gap)
        stride = {"train": spec.train_stride, "test": spec.test_stride}
        starts = {name: [s for lo, hi in rs for s in window_starts(lo, hi, spec.span, stride[name], cuts)]
                  for name, rs in ranges.items()}
        for name, st in starts.items():
            for acc, new in zip(parts[name], _cut(frames, st, lefts, spec, vid)):
                acc.extend(new)
        info[source] = {"frames": n, **ranges, "cuts": cuts,
                        "train_windows": len(starts["train"]), "test_windows": len(starts["test"])}
    out = []
    for name, (clips, labels, origin) in parts.items():
        if not clips:
            raise DataError(f"no {name} clip fits: {spec.span}-frame windows in {info}")
        meta = {"task": "arrow_of_time", "split": name, "spec": spec.to_dict(), "regions": info}
        out.append(ClipSet(torch.stack(clips).contiguous(), torch.tensor(labels), CLASSES, torch.tensor(origin), meta))
    return out[0], out[1]


# ---- Camera pan: a motion task single frames cannot solve ------------------------------------------------

# Directions of the crop window's motion in image coordinates (x right, y down), counter-clockwise from "right".
PAN_DIRECTIONS = (("right", 1, 0), ("up-right", 1, -1), ("up", 0, -1), ("up-left", -1, -1),
                  ("left", -1, 0), ("down-left", -1, 1), ("down", 0, 1), ("down-right", 1, 1))
PAN_CLASSES = ("static",) + tuple(name for name, _, _ in PAN_DIRECTIONS)
PAN_MOVES = ((0, 0),) + tuple((dx, dy) for _, dx, dy in PAN_DIRECTIONS)  # (dx, dy) of each class, by label


@dataclass(frozen=True)
class CameraPan:
    """How camera-pan clips are cut: a square window slides over the video in one of 8 directions, or stays.

    The label is the window's direction (9 classes, chance 1/9); its speed (one of ``speeds``, pixels
    per clip frame) is a nuisance the model must see through. Every window start gives, for each speed,
    one clip of every class, each at its own random position, so classes have the same content mix;
    ``draws`` > 1 repeats that for the train split at fresh positions (more distinct train clips from
    the same frames: what a 2D-patch model needs to learn the motion instead of the content).
    """

    task: ClassVar[str] = "camera pan"
    classes: ClassVar[tuple[str, ...]] = PAN_CLASSES
    videos: tuple[str, ...] = ("bunny", "bikes")  # train videos; their later time stretches are the test split
    holdout: Optional[str] = "carphone"  # a video never trained on: the harder "unseen video" split (None: none)
    num_frames: int = 8  # frames per clip
    frame_step: int = 1  # source frames between clip frames (the scene moves too: that is the nuisance)
    size: int = 32  # square clip side in pixels
    context: int = 64  # videos are resized to this height; the window moves inside it
    speeds: tuple[int, ...] = (1, 2)  # window speeds in pixels per clip frame
    blocks: int = 3  # train/test stretches per train video (as ArrowOfTime)
    train_frac: float = 0.55  # share of each stretch holding train windows
    gap: int = 2  # frames between train and test regions
    train_stride: int = 1  # start-frame stride of train windows
    test_stride: int = 2  # start-frame stride of test windows (and of the held-out video's)
    cut_threshold: float = 30.0  # mean |frame difference| above which a scene cut is assumed
    seed: int = 0  # window positions
    draws: int = 1  # train clips per (window start, speed, class), each at a fresh random position

    def __post_init__(self) -> None:
        object.__setattr__(self, "videos", tuple(self.videos))
        object.__setattr__(self, "speeds", tuple(self.speeds))
        for name in ("num_frames", "frame_step", "size", "context", "blocks", "train_stride", "test_stride", "draws"):
            if getattr(self, name) < 1:
                raise DataError(f"CameraPan.{name} must be >= 1; got {getattr(self, name)!r}")
        if not self.speeds or min(self.speeds) < 1:
            raise DataError(f"CameraPan.speeds must be pixel speeds >= 1; got {self.speeds!r}")
        if not 0 < self.train_frac < 1 or self.gap < 0:
            raise DataError(f"CameraPan needs 0 < train_frac < 1 and gap >= 0; got {self.train_frac}, {self.gap}")
        if self.size + self.travel > self.context:
            raise DataError(f"CameraPan: a {self.size}-pixel window moving {self.travel} pixels does not fit in "
                            f"context {self.context}; raise context to >= {self.size + self.travel}")
        if self.holdout is not None and self.holdout in self.videos:
            raise DataError(f"CameraPan.holdout {self.holdout!r} is also a train video {self.videos}")

    @property
    def span(self) -> int:
        """Source frames one clip covers."""
        return (self.num_frames - 1) * self.frame_step + 1

    @property
    def travel(self) -> int:
        """Pixels the fastest window moves along one axis over a clip."""
        return (self.num_frames - 1) * max(self.speeds)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {**asdict(self), "videos": list(self.videos), "speeds": list(self.speeds)}


def pan_path(num_frames: int, dx: int, dy: int, speed: int, x0: int, y0: int) -> list[tuple[int, int]]:
    """(left, top) of the window in each clip frame: a straight path at ``speed`` pixels per frame."""
    return [(x0 + k * speed * dx, y0 + k * speed * dy) for k in range(num_frames)]


def _pan_start(limit: int, size: int, shift: int, gen: torch.Generator) -> int:
    """A random first coordinate such that the window stays inside [0, limit) over a total ``shift``."""
    lo, hi = max(0, -shift), limit - size - max(0, shift)
    return lo + int(torch.randint(hi - lo + 1, (), generator=gen))


def _pan_cut(frames: torch.Tensor, starts: list[int], spec: CameraPan, vid: int, gen: torch.Generator, draws: int = 1):
    clips, labels, origin = [], [], []
    h, w = frames.shape[-2:]
    for s in starts:
        window = frames[s : s + spec.span : spec.frame_step]
        for speed in spec.speeds:
            for label, (dx, dy) in [m for _ in range(draws) for m in enumerate(PAN_MOVES)]:
                shift = (spec.num_frames - 1) * speed
                x0, y0 = _pan_start(w, spec.size, shift * dx, gen), _pan_start(h, spec.size, shift * dy, gen)
                path = pan_path(spec.num_frames, dx, dy, speed, x0, y0)
                clips.append(torch.stack([f[:, y : y + spec.size, x : x + spec.size] for f, (x, y) in zip(window, path)]))
                labels.append(label)
                origin.append((vid, s, x0, y0, speed))
    return clips, labels, origin


def camera_pan(spec: CameraPan, cache_dir: str | Path = "data/cache") -> dict[str, ClipSet]:
    """``{"train", "test"[, "unseen video"]}`` clip sets; test clips share no frame with train clips.

    ``origin`` rows are (video index, first source frame, window left, window top, speed); the held-out
    video has index ``len(spec.videos)`` and gives clips from all of its frames.
    """
    gen = torch.Generator().manual_seed(spec.seed)
    parts: dict[str, tuple[list, list, list]] = {}
    info: dict[str, Any] = {}
    sources = list(spec.videos) + ([spec.holdout] if spec.holdout else [])
    for vid, source in enumerate(sources):
        h, w = native_hw(source)
        width = max(spec.context, round(w * spec.context / h))
        frames = load_video(VideoSpec(source, size=(spec.context, width)), cache_dir).frames
        n, cuts = frames.shape[0], scene_cuts(frames, spec.cut_threshold)
        if source == spec.holdout:
            ranges = {"unseen video": [(0, n)]}
        else:
            ranges = time_regions(n, spec.blocks, spec.train_frac, spec.gap)
        stride = {"train": spec.train_stride}
        starts = {name: [s for lo, hi in rs for s in window_starts(lo, hi, spec.span, stride.get(name, spec.test_stride),
                                                                   cuts)]
                  for name, rs in ranges.items()}
        for name, st in starts.items():
            acc = parts.setdefault(name, ([], [], []))
            for lst, new in zip(acc, _pan_cut(frames, st, spec, vid, gen, spec.draws if name == "train" else 1)):
                lst.extend(new)
        info[source] = {"frames": n, **ranges, "cuts": cuts,
                        **{f"{k.replace(' ', '_')}_windows": len(v) for k, v in starts.items()}}
    out = {}
    for name in ("train", "test") + (("unseen video",) if spec.holdout else ()):
        clips, labels, origin = parts.get(name, ([], [], []))
        if not clips:
            raise DataError(f"no {name} clip fits: {spec.span}-frame windows in {info}")
        meta = {"task": "camera_pan", "split": name, "spec": spec.to_dict(), "regions": info}
        out[name] = ClipSet(torch.stack(clips).contiguous(), torch.tensor(labels), PAN_CLASSES, torch.tensor(origin), meta)
    return out


Task = Union[ArrowOfTime, CameraPan]


def cut_task(spec: Task, cache_dir: str | Path = "data/cache") -> dict[str, ClipSet]:
    """The task's clip sets by split name: ``train``, ``test`` and, for a pan with a held-out video, ``unseen video``."""
    if isinstance(spec, ArrowOfTime):
        train, test = arrow_of_time(spec, cache_dir)
        return {"train": train, "test": test}
    if isinstance(spec, CameraPan):
        return camera_pan(spec, cache_dir)
    raise TypeError(f"no clip task is described by {type(spec).__name__}; expected ArrowOfTime or CameraPan")
