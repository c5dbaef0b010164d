"""Patch geometry: where the patches of a frame are, their normalized centres, and stitching.

A geometry turns a frame size (H, W) into a list of :class:`Window` s. Two kinds exist:

* :class:`Grid` — non-overlapping rows x cols tiles (the seeds' 2x4 grid of 320x320 at 640x1280).
* :class:`Sliding` — overlapping windows of a fixed size moved by a stride (the seeds' 448/224).

A grid must tile the frame exactly (a size that does not divide raises one error naming the numbers);
sliding windows cover it, the last one flush against the edge where the strides fall short.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Union

import torch


@dataclass(frozen=True)
class Window:
    """A rectangle of pixels: rows ``top:top+height``, columns ``left:left+width``."""

    top: int
    left: int
    height: int
    width: int

    def center_xy(self, frame_hw: tuple[int, int]) -> tuple[float, float]:
        """Centre as (x, y) normalized to [0, 1] by the frame width and height."""
        h, w = frame_hw
        return ((self.left + self.width / 2) / w, (self.top + self.height / 2) / h)

    def slice(self, frames: torch.Tensor) -> torch.Tensor:
        """The window's pixels of a (..., H, W) tensor."""
        return frames[..., self.top : self.top + self.height, self.left : self.left + self.width]


@dataclass(frozen=True)
class Grid:
    """rows x cols non-overlapping tiles covering the frame exactly."""

    rows: int = 2  # seeds: 2 rows of 320 px at 640x1280
    cols: int = 4  # seeds: 4 columns of 320 px -> 8 square patches

    def __post_init__(self) -> None:
        if self.rows < 1 or self.cols < 1:
            raise ValueError(f"Grid needs rows >= 1 and cols >= 1, got rows={self.rows}, cols={self.cols}")

    def patch_hw(self, frame_hw: tuple[int, int]) -> tuple[int, int]:
        """Tile size for a frame size; raises if the frame does not divide evenly."""
        h, w = frame_hw
        if h % self.rows or w % self.cols:
            raise ValueError(
                f"frame {h}x{w} does not divide into a {self.rows}x{self.cols} grid: "
                f"{h} % {self.rows} = {h % self.rows}, {w} % {self.cols} = {w % self.cols}"
            )
        return h // self.rows, w // self.cols

    def windows(self, frame_hw: tuple[int, int]) -> list[Window]:
        """Tiles in row-major order (patch index = row * cols + col, as in the seeds)."""
        ph, pw = self.patch_hw(frame_hw)
        return [Window(r * ph, c * pw, ph, pw) for r in range(self.rows) for c in range(self.cols)]

    def to_dict(self) -> dict:
        """JSON form with a kind tag (used in cache keys and configs)."""
        return {"kind": "grid", **asdict(self)}


SLIDING_EDGES = ("flush", "exact")


@dataclass(frozen=True)
class Sliding:
    """Overlapping windows of ``size`` pixels moved by ``stride`` pixels, covering the whole frame.

    ``edge="flush"`` (default) adds, on an axis the strides do not end on, one last window placed flush
    against the far edge (it overlaps its neighbour by more than the others), so any frame at least one
    window large is covered: the seeds' 448/224 at 640x1280 gives tops (0, 192) and lefts
    (0, 224, 448, 672, 832). ``edge="exact"`` instead requires the strides to tile the frame exactly.
    """

    size: tuple[int, int] = (448, 448)  # seeds: 448 px windows ...
    stride: tuple[int, int] = (224, 224)  # ... with 50 % overlap
    edge: str = "flush"  # "flush": a last window against the far edge when the strides fall short; "exact": refuse

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", tuple(int(v) for v in self.size))
        object.__setattr__(self, "stride", tuple(int(v) for v in self.stride))
        if min(self.size) < 1 or min(self.stride) < 1:
            raise ValueError(f"Sliding needs positive size and stride, got size={self.size}, stride={self.stride}")
        if self.edge not in SLIDING_EDGES:
            raise ValueError(f"Sliding edge must be one of {SLIDING_EDGES}, got {self.edge!r}")

    def _starts(self, extent: int, size: int, stride: int, axis: str) -> list[int]:
        if size > extent:
            raise ValueError(f"{axis}: windows of {size} px do not fit in {extent} px")
        starts = list(range(0, extent - size + 1, stride))
        if starts[-1] + size == extent:
            return starts
        if self.edge == "exact":
            raise ValueError(
                f"{axis}: windows of {size} px with stride {stride} do not tile {extent} px exactly "
                f"(({extent} - {size}) % {stride} = {(extent - size) % stride}); use edge='flush' to add a last "
                f"window against the edge"
            )
        return [*starts, extent - size]

    def windows(self, frame_hw: tuple[int, int]) -> list[Window]:
        """Windows in row-major order."""
        h, w = frame_hw
        tops = self._starts(h, self.size[0], self.stride[0], "height")
        lefts = self._starts(w, self.size[1], self.stride[1], "width")
        return [Window(t, l, self.size[0], self.size[1]) for t in tops for l in lefts]

    def to_dict(self) -> dict:
        """JSON form with a kind tag (used in cache keys and configs)."""
        return {"kind": "sliding", "size": list(self.size), "stride": list(self.stride), "edge": self.edge}


@dataclass(frozen=True)
class WindowPool:
    """Training windows of the patch model that go beyond the grid: ``per_frame`` windows per frame.

    Each frame's pool holds the grid's ``rows`` x ``cols`` tiles first (so the on-grid positions stay
    trained), then ``per_frame - rows * cols`` windows of the tile size whose top-left corners are drawn
    uniformly over every integer position where a window fits. Integer, not sub-pixel: a window's
    pixel target is then the frame's own pixels (a bilinear crop would blur it) and the CLIP teacher sees
    real pixels; one pixel is 1/80 of a quick-profile patch, finer than any offset the evaluation asks.
    The draw uses a generator seeded with ``seed``, so the pool is a function of its fields, the frame
    size and the frame count alone: it can name a cache entry of teacher embeddings.

    ``frames`` (the training frames) limits the random windows to those frames; every other frame
    repeats its grid tiles instead, which the teacher has embedded already (the grid's cache entry), so
    it costs nothing. A training frame's windows do not depend on ``frames``.
    """

    rows: int = 2
    cols: int = 4
    per_frame: int = 32
    seed: int = 0
    frames: Optional[tuple[int, ...]] = None  # frames that get random windows (None: all)

    def __post_init__(self) -> None:
        grid = self.grid()  # validates rows and cols
        if self.per_frame < grid.rows * grid.cols:
            raise ValueError(f"a window pool holds the {self.rows}x{self.cols} grid's {self.rows * self.cols} tiles "
                             f"and more: per_frame must be >= {self.rows * self.cols}; got {self.per_frame}")
        if self.frames is not None:
            frames = tuple(sorted({int(f) for f in self.frames}))
            if not frames or frames[0] < 0:
                raise ValueError(f"a window pool's frames must be frame indices (>= 0), at least one; got {self.frames!r}")
            object.__setattr__(self, "frames", frames)

    def grid(self) -> Grid:
        """The grid whose tiles open every frame's pool (and whose tile size every window has)."""
        return Grid(self.rows, self.cols)

    def patch_hw(self, frame_hw: tuple[int, int]) -> tuple[int, int]:
        """The windows' size: the grid's tile."""
        return self.grid().patch_hw(frame_hw)

    def windows_per_frame(self, frame_hw: tuple[int, int], num_frames: int) -> list[list[Window]]:
        """One list of ``per_frame`` windows per frame: the grid's tiles, then the random positions."""
        if num_frames < 1:
            raise ValueError(f"a window pool needs at least one frame; got num_frames={num_frames}")
        tiles, (ph, pw), (h, w) = self.grid().windows(frame_hw), self.patch_hw(frame_hw), frame_hw
        extra = self.per_frame - len(tiles)
        gen = torch.Generator().manual_seed(self.seed)
        if self.frames is not None and self.frames[-1] >= num_frames:
            raise ValueError(f"a window pool's frames go up to {self.frames[-1]} but the video has {num_frames} frames")
        tops = torch.randint(0, h - ph + 1, (num_frames, extra), generator=gen).tolist()
        lefts = torch.randint(0, w - pw + 1, (num_frames, extra), generator=gen).tolist()
        drawn = set(range(num_frames) if self.frames is None else self.frames)
        return [tiles + ([Window(t, l, ph, pw) for t, l in zip(tops[f], lefts[f])] if f in drawn
                         else [tiles[i % len(tiles)] for i in range(extra)]) for f in range(num_frames)]

    def to_dict(self) -> dict:
        """JSON form with a kind tag (used in cache keys; ``frames`` only when set, so older keys hold)."""
        d = {"kind": "pool", **asdict(self)}
        if self.frames is None:
            del d["frames"]
        else:
            d["frames"] = list(self.frames)
        return d


Geometry = Union[Grid, Sliding]  # a frame's windows, one list for every frame


def geometry_from_dict(d: dict) -> Geometry:
    """Inverse of ``to_dict``."""
    d = dict(d)
    kind = d.pop("kind", None)
    if kind == "grid":
        return Grid(**d)
    if kind == "sliding":
        return Sliding(size=tuple(d["size"]), stride=tuple(d["stride"]), edge=d.get("edge", "exact"))  # older files: exact
    if kind == "pool":
        return WindowPool(**d)
    raise ValueError(f"unknown geometry kind {kind!r}; expected 'grid', 'sliding' or 'pool'")


def centers(windows: list[Window], frame_hw: tuple[int, int]) -> torch.Tensor:
    """(N, 2) tensor of normalized (x, y) window centres."""
    return torch.tensor([win.center_xy(frame_hw) for win in windows], dtype=torch.float32)


def frame_time(frame_ids: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Normalised time of each frame, ``t = index / num_frames`` in [0, 1) (HNeRV's ``norm_idx``; the seeds' t).

    The one definition used by the NeRV and patch models' inputs, in training, evaluation and the codec.
    """
    return frame_ids.float() / num_frames


def coords_at(frame_ids: torch.Tensor, num_frames: int, centres_xy: torch.Tensor) -> torch.Tensor:
    """(T, N, 3) patch-model inputs (t, x, y): every frame of ``frame_ids`` at every (N, 2) centre."""
    t = frame_time(frame_ids, num_frames)[:, None, None].expand(-1, len(centres_xy), 1)
    return torch.cat([t, centres_xy.to(t.device)[None].expand(len(frame_ids), -1, -1)], dim=-1)


def coords(frame_ids: torch.Tensor, num_frames: int, windows: list[Window], frame_hw: tuple[int, int]) -> torch.Tensor:
    """(T, N, 3) normalized (t, x, y) inputs of the patch model at the centres of ``windows``."""
    return coords_at(frame_ids, num_frames, centers(windows, frame_hw))


def pool_coords(windows_per_frame: list[list[Window]], frame_hw: tuple[int, int]) -> torch.Tensor:
    """(T, K, 3) patch-model inputs (t, x, y) of every frame's own windows (frame f's time, its K centres)."""
    num_frames = len(windows_per_frame)
    return torch.stack([coords_at(torch.tensor([f]), num_frames, centers(ws, frame_hw))[0]
                        for f, ws in enumerate(windows_per_frame)])


def extract(frames: torch.Tensor, windows: list[Window]) -> torch.Tensor:
    """(T, C, H, W) -> (T, N, C, h, w) patches; all windows must have the same size."""
    if len({(win.height, win.width) for win in windows}) != 1:
        raise ValueError("extract needs windows of one size; got several sizes")
    return torch.stack([win.slice(frames) for win in windows], dim=1)


def window_at(center_xy: tuple[float, float], patch_hw: tuple[int, int], frame_hw: tuple[int, int]) -> Window:
    """The patch_hw window whose centre is the normalized ``center_xy`` (for continuous queries).

    The top-left corner is rounded to the nearest pixel; a window falling outside the frame is an error.
    """
    (x, y), (ph, pw), (h, w) = center_xy, patch_hw, frame_hw
    top, left = round(y * h - ph / 2), round(x * w - pw / 2)
    if top < 0 or left < 0 or top + ph > h or left + pw > w:
        raise ValueError(
            f"a {ph}x{pw} window centred at (x={x:.4f}, y={y:.4f}) leaves the {h}x{w} frame "
            f"(top={top}, left={left})"
        )
    return Window(top, left, ph, pw)


def blend_weights(height: int, width: int, kind: str = "uniform") -> torch.Tensor:
    """Per-pixel blending weight of one window: 'uniform' (plain average) or 'hann' (soft edges)."""
    if kind == "uniform":
        return torch.ones(height, width)
    if kind == "hann":
        # periodic=False keeps the weight symmetric; +eps so border pixels covered once still count.
        wy = torch.hann_window(height + 2, periodic=False)[1:-1]
        wx = torch.hann_window(width + 2, periodic=False)[1:-1]
        return torch.outer(wy, wx) + 1e-3
    raise ValueError(f"unknown blend kind {kind!r}; expected 'uniform' or 'hann'")


def stitch(patches: torch.Tensor, windows: list[Window], frame_hw: tuple[int, int], blend: str = "uniform") -> torch.Tensor:
    """(T, N, C, h, w) patches -> (T, C, H, W) frames; overlaps are blended by weighted average.

    For a :class:`Grid` every pixel is covered exactly once, so ``stitch(extract(x)) == x`` exactly.
    """
    t, n, c = patches.shape[:3]
    if n != len(windows):
        raise ValueError(f"stitch got {n} patches per frame for {len(windows)} windows")
    h, w = frame_hw
    out = torch.zeros(t, c, h, w, dtype=torch.float32)
    weight = torch.zeros(h, w)
    for i, win in enumerate(windows):
        wgt = blend_weights(win.height, win.width, blend)
        win.slice(out).add_(patches[:, i].float() * wgt)
        win.slice(weight).add_(wgt)
    if (weight == 0).any():
        raise ValueError("stitch: the windows leave some pixels of the frame uncovered")
    return (out / weight).to(patches.dtype) if patches.dtype.is_floating_point else (out / weight).round().to(patches.dtype)


def border_mask(windows: list[Window], frame_hw: tuple[int, int], k: int) -> torch.Tensor:
    """(H, W) bool mask of pixels within ``k`` px of an inner patch border (frame edges excluded)."""
    h, w = frame_hw
    mask = torch.zeros(h, w, dtype=torch.bool)
    for win in windows:
        for edge in (win.top, win.top + win.height):
            if 0 < edge < h:
                mask[max(edge - k, 0) : min(edge + k, h), win.left : win.left + win.width] = True
        for edge in (win.left, win.left + win.width):
            if 0 < edge < w:
                mask[win.top : win.top + win.height, max(edge - k, 0) : min(edge + k, w)] = True
    return mask
