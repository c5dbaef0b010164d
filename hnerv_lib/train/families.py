"""What a training step sees for each model family, behind one small interface.

* :class:`FullFrameTask` — an item is a frame: the model gets the frame (HNeRV) or its index (NeRV),
  returns the whole frame and a CLIP map read at the patch centres.
* :class:`PatchTask` — an item is a (frame, patch) pair: the model gets (t, x, y), returns one patch
  and one CLIP vector. Whole frames are rebuilt by decoding every patch and stitching.

Everything a step needs (frames, patches, targets, coordinates) is a tensor on the training device,
built once: no decoding and no CLIP work happens inside the training loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from hnerv_lib.data import geometry as G
from hnerv_lib.models import FullFrameConfig, PatchConfig
from hnerv_lib.models.decoding import clip_at_windows, decode_frames_of, decode_patches
from hnerv_lib.train.losses import clip_loss, pixel_loss


@dataclass
class StepLoss:
    """The loss of one step and its parts (for logging)."""

    total: torch.Tensor
    pixel: torch.Tensor
    clip: Optional[torch.Tensor]


class _Task:
    """Shared state: frames (T, 3, H, W) float in [0, 1], targets (T, N, D) or None, the patch windows."""

    def __init__(self, frames: torch.Tensor, targets: Optional[torch.Tensor], windows: list[G.Window],
                 train_frames: list[int], loss: str, clip_sample: str = "center") -> None:
        self.frames, self.targets, self.windows = frames, targets, windows
        self.train_frames = torch.as_tensor(train_frames, dtype=torch.long)
        self.loss_kind, self.clip_sample = loss, clip_sample
        self.num_frames, self.frame_hw = frames.shape[0], tuple(frames.shape[-2:])

    @torch.no_grad()
    def reconstruct(self, model: nn.Module, frame_ids: torch.Tensor,
                    batch_size: int = 8) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Frames (B, 3, H, W) (stitched for patch models) and per-patch CLIP vectors (B, N, D) or None.

        Decoded ``batch_size`` frames at a time: a whole video's decoder activations at once would take
        gigabytes at 160x320 and above.
        """
        if len(frame_ids) == 0:
            raise ValueError("reconstruct needs at least one frame id; got none")
        parts = [self._reconstruct_batch(model, frame_ids[i : i + batch_size])
                 for i in range(0, len(frame_ids), batch_size)]
        rgb = torch.cat([p[0] for p in parts])
        clip = torch.cat([p[1] for p in parts]) if parts and parts[0][1] is not None else None
        return rgb, clip

    def _reconstruct_batch(self, model: nn.Module, frame_ids: torch.Tensor):
        raise NotImplementedError

    def _combine(self, pred_rgb, true_rgb, pred_clip, true_clip, clip_weight: float) -> StepLoss:
        # Losses always in fp32, even under bf16 autocast: SSIM's Gaussian filter is a conv, which
        # autocast would run in bf16, and 1 - SSIM near a perfect fit then rounds to garbage or -inf.
        with torch.autocast(pred_rgb.device.type, enabled=False):
            pix = pixel_loss(pred_rgb.float(), true_rgb.float(), self.loss_kind)
            if pred_clip is None or true_clip is None or clip_weight == 0:
                return StepLoss(pix, pix.detach(), None)
            cl = clip_loss(pred_clip.float(), true_clip.float())
        return StepLoss(pix + clip_weight * cl, pix.detach(), cl.detach())


class FullFrameTask(_Task):
    """Items are training frame indices."""

    def __init__(self, cfg: FullFrameConfig, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cfg = cfg
        self.centers = G.centers(self.windows, self.frame_hw).to(self.frames.device)  # (N, 2), x and y in [0, 1]
        self.whole_map = False  # True: the step computes the whole CLIP map, then samples it (same numbers, slower; the bench's A/B)

    def num_items(self) -> int:
        """Items per epoch."""
        return len(self.train_frames)

    def items_per_epoch(self) -> int:
        """How many of the ``num_items()`` items an epoch draws (all, but for a patch model's window pool)."""
        return self.num_items()

    def _inputs(self, frame_ids: torch.Tensor) -> torch.Tensor:
        return self.frames[frame_ids] if self.cfg.kind == "hnerv" else G.frame_time(frame_ids, self.num_frames)

    def _clip(self, out: dict) -> Optional[torch.Tensor]:
        if out["clip"] is None:
            return None
        return clip_at_windows(out["clip"].float(), self.windows, self.frame_hw, self.clip_sample)

    def step_loss(self, model: nn.Module, items: torch.Tensor, clip_weight: float) -> StepLoss:
        """Loss of a batch of item positions (into ``train_frames``)."""
        ids = self.train_frames[items]
        true_clip = self.targets[ids] if self.targets is not None else None
        if true_clip is None or clip_weight == 0:  # pixels only: the CLIP head is not run
            out = model(self._inputs(ids), with_clip=False)
            return self._combine(out["rgb"], self.frames[ids], None, None, clip_weight)
        if self.clip_sample == "center" and not self.whole_map:  # the head runs only where the loss reads its map
            out = model(self._inputs(ids), clip_at=self.centers)
            pred_clip = out.get("clip_points")
        else:
            out = model(self._inputs(ids))
            pred_clip = self._clip(out)
        return self._combine(out["rgb"], self.frames[ids], pred_clip, true_clip, clip_weight)

    def _reconstruct_batch(self, model: nn.Module, frame_ids: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        out = decode_frames_of(model, frame_ids, self.num_frames, frames=self.frames)
        return out["rgb"].to(self.frames.device), self._clip(out)


class PatchTask(_Task):
    """Items are (training frame, patch) pairs, flattened to frame_pos * N + patch.

    With a window pool (``pool``: one list of K windows per frame, the grid's N tiles first) the items
    are (training frame, pool window) pairs, frame_pos * K + window, and an epoch draws as many of them
    as the grid has items (``items_per_epoch``), so epochs cost the same with or without the pool.
    ``targets`` are then the pool's (T, K, D); evaluation keeps reading the grid's first N.

    A canvas model (``cfg.canvas`` > 1) learns each cell's whole canvas: the frame reflect-padded by the
    canvas margin, sliced around the cell (reflect padding, not a mask, so Fusion6's SSIM term applies
    unchanged). Its CLIP target stays the tile's.
    """

    def __init__(self, cfg: PatchConfig, *args, pool: Optional[list[list[G.Window]]] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cfg = cfg
        ph, pw = self.windows[0].height, self.windows[0].width
        if (ph, pw) != cfg.patch_hw:
            raise ValueError(f"patch model outputs {cfg.patch_hw[0]}x{cfg.patch_hw[1]} patches but the grid "
                             f"cuts {ph}x{pw} patches from {self.frame_hw[0]}x{self.frame_hw[1]} frames")
        self.patches = G.extract(self.frames, self.windows)  # (T, N, 3, ph, pw), sliced once
        all_frames = torch.arange(self.num_frames, device=self.frames.device)
        self.coords = G.coords(all_frames, self.num_frames, self.windows, self.frame_hw).to(self.frames.device)
        self.n = len(self.windows)
        self.pool, self.pool_targets, self.padded = None, None, None
        if pool is not None and cfg.canvas > 1:
            raise ValueError(f"a window pool and a canvas model (canvas {cfg.canvas}) do not combine: the canvas "
                             f"already covers the positions between grid cells")
        if pool is not None:
            self._use_pool(pool)
        if cfg.canvas > 1:
            (mh, mw), (h, w) = cfg.margin_hw, self.frame_hw
            if mh >= h or mw >= w:
                raise ValueError(f"a canvas of {cfg.canvas} patches reaches {mh}x{mw} px beyond the {h}x{w} frame; "
                                 f"reflect padding needs less than the frame's side")
            self.padded = torch.nn.functional.pad(self.frames, (mw, mw, mh, mh), mode="reflect")

    def _use_pool(self, pool: list[list[G.Window]]) -> None:
        if len(pool) != self.num_frames or any(ws[: self.n] != self.windows for ws in pool):
            raise ValueError(f"a window pool needs one list per frame ({self.num_frames}) that starts with the "
                             f"grid's {self.n} tiles; got {len(pool)} lists")
        self.pool, self.k = pool, len(pool[0])
        self.pool_coords = G.pool_coords(pool, self.frame_hw).to(self.frames.device)  # (T, K, 3)
        self.pool_corners = torch.tensor([[(w.top, w.left) for w in ws] for ws in pool])  # (T, K, 2), on the CPU
        if self.targets is not None:
            if tuple(self.targets.shape[:2]) != (self.num_frames, self.k):
                raise ValueError(f"pool targets must be (T, K) = ({self.num_frames}, {self.k}) embeddings; "
                                 f"got {tuple(self.targets.shape[:2])}")
            self.pool_targets, self.targets = self.targets, self.targets[:, : self.n]

    def num_items(self) -> int:
        """Items to draw from: training frames x patches (x pool windows with a pool)."""
        return len(self.train_frames) * (self.k if self.pool is not None else self.n)

    def items_per_epoch(self) -> int:
        """Items an epoch trains on: training frames x grid patches, with or without a pool."""
        return len(self.train_frames) * self.n

    def step_loss(self, model: nn.Module, items: torch.Tensor, clip_weight: float) -> StepLoss:
        """Loss of a batch of (frame, patch) items, or (frame, pool window) items with a pool."""
        if self.pool is not None:
            return self._pool_loss(model, items, clip_weight)
        f, p = self.train_frames[items // self.n], items % self.n
        out = model(self.coords[f, p])
        true_clip = self.targets[f, p] if self.targets is not None else None
        pred_clip = out["clip"] if clip_weight > 0 else None
        if self.padded is None:
            return self._combine(out["rgb"], self.patches[f, p], pred_clip, true_clip, clip_weight)
        ch, cw = self.cfg.canvas_hw  # a cell's canvas in padded coordinates starts at the tile's own corner
        wins = [self.windows[k] for k in p.tolist()]
        canvases = torch.stack([self.padded[fi, :, w.top : w.top + ch, w.left : w.left + cw]
                                for fi, w in zip(f.tolist(), wins)])
        return self._combine(out["canvas"], canvases, pred_clip, true_clip, clip_weight)

    def _pool_loss(self, model: nn.Module, items: torch.Tensor, clip_weight: float) -> StepLoss:
        f, k = self.train_frames[items.cpu() // self.k], items.cpu() % self.k
        ph, pw = self.cfg.patch_hw
        corners = self.pool_corners[f, k].tolist()
        pixels = torch.stack([self.frames[fi, :, top : top + ph, left : left + pw]
                              for fi, (top, left) in zip(f.tolist(), corners)])
        f, k = f.to(self.frames.device), k.to(self.frames.device)
        out = model(self.pool_coords[f, k])
        true_clip = self.pool_targets[f, k] if self.pool_targets is not None else None
        pred_clip = out["clip"] if clip_weight > 0 else None
        return self._combine(out["rgb"], pixels, pred_clip, true_clip, clip_weight)

    def decode_patches(self, model: nn.Module, coords: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Any (B, N, 3) coordinates -> patches (B, N, 3, ph, pw) and CLIP vectors (B, N, D) or None."""
        return decode_patches(model, coords, self.frame_hw)

    def _reconstruct_batch(self, model: nn.Module, frame_ids: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        out = decode_frames_of(model, frame_ids, self.num_frames, windows=self.windows, frame_hw=self.frame_hw)
        clip = out["clip"].to(self.frames.device) if out["clip"] is not None else None
        return out["rgb"].to(self.frames.device), clip


def make_task(model_cfg: FullFrameConfig | PatchConfig, *args, **kwargs) -> FullFrameTask | PatchTask:
    """The task for a model config."""
    return (PatchTask if isinstance(model_cfg, PatchConfig) else FullFrameTask)(model_cfg, *args, **kwargs)
