"""Decoding a model into frames: the one implementation behind training-time evaluation, patch
evaluation and the codec.

* :func:`decode_frames_of` — frame indices -> whole frames (B, 3, H, W) in [0, 1] and the raw CLIP
  output, for every model kind: HNeRV from frames (through its encoder) or from stored embeddings,
  NeRV from the frame time ``t = i / T``, the patch model from (t, x, y) at each window's centre with
  the patches stitched (blended where windows overlap).
* :func:`decode_patch_frames` — its patch-model case, usable at any windows (overlapping ones too).
* :func:`decode_patches` — any (B, N, 3) patch-model coordinates -> patches and CLIP vectors; a canvas
  model (``PatchConfig.canvas`` > 1) answers each query with a crop of its nearest grid cell's canvas
  (:func:`canvas_queries`).
* :func:`clip_at_windows` — a full-frame CLIP map read at each window (centre or area), (B, N, D).

Outputs are float32 on the CPU, clamped to [0, 1]; the caller moves them where it needs them.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from hnerv_lib.data import geometry as G
from hnerv_lib.models.full_frame import sample_clip


def _device(model: nn.Module) -> torch.device:
    """Where the model's weights live (the CPU for a weightless module, e.g. a test oracle)."""
    tensor = next(model.parameters(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def canvas_queries(cfg: Any, coords: torch.Tensor, frame_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """A canvas model's answer to (M, 3) queries: the coordinates of each query's nearest grid cell, and the
    (M, 2) (top, left) of the queried window inside that cell's canvas.

    The grid is the one the model was trained on: ``frame_hw`` tiled by ``cfg.patch_hw`` from the top-left
    corner. A query's window is the patch-sized window centred on it, its corner rounded to the nearest
    pixel as ``geometry.window_at`` rounds it; the cell coordinates are the grid's own centres (bit for bit
    what training fed the model: its high encoding frequencies turn one float of difference into another patch).
    """
    (h, w), (ph, pw), (mh, mw) = frame_hw, cfg.patch_hw, cfg.margin_hw
    if h % ph or w % pw:
        raise ValueError(f"a canvas model's grid tiles the frame with {ph}x{pw} patches; a {h}x{w} frame does not "
                         f"divide into them")
    rows, cols = h // ph, w // pw
    cells = G.centers(G.Grid(rows, cols).windows(frame_hw), frame_hw).to(coords.device)  # (rows * cols, 2)
    top = torch.round(coords[:, 2].double() * h - ph / 2)
    left = torch.round(coords[:, 1].double() * w - pw / 2)
    outside = (top < 0) | (left < 0) | (top + ph > h) | (left + pw > w)
    if outside.any():
        k = int(outside.nonzero()[0])
        raise ValueError(f"a canvas model answers queries whose {ph}x{pw} window lies inside the {h}x{w} frame; "
                         f"query (x={coords[k, 1].item():.4f}, y={coords[k, 2].item():.4f}) has its corner at "
                         f"(top={int(top[k])}, left={int(left[k])})")
    i, j = (top / ph).round().clamp(0, rows - 1), (left / pw).round().clamp(0, cols - 1)
    corners = torch.stack([top - (i * ph - mh), left - (j * pw - mw)], dim=1).long().cpu()  # in [0, 2 x margin]
    snapped = torch.cat([coords[:, :1], cells[(i * cols + j).long()]], dim=1)
    return snapped, corners


@torch.no_grad()
def decode_patches(model: nn.Module, coords: torch.Tensor,
                   frame_hw: Optional[tuple[int, int]] = None) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(B, N, 3) coordinates -> patches (B, N, 3, ph, pw) clamped to [0, 1] and CLIP vectors (B, N, D) or None.

    A canvas model needs ``frame_hw`` (its grid): each query is a crop of its nearest cell's canvas.
    """
    b, n = coords.shape[:2]
    flat = coords.reshape(b * n, 3)
    if getattr(getattr(model, "cfg", None), "canvas", 1) > 1:
        if frame_hw is None:
            raise ValueError("decoding a canvas patch model needs the frame size (its grid of trained cells)")
        flat, corners = canvas_queries(model.cfg, flat, frame_hw)
        out = model(flat.to(_device(model)), corners)
    else:
        out = model(flat.to(_device(model)))
    rgb = out["rgb"].float().clamp(0, 1).reshape(b, n, *out["rgb"].shape[1:])
    clip = out["clip"].float().reshape(b, n, -1) if out["clip"] is not None else None
    return rgb, clip


@torch.no_grad()
def decode_patch_frames(model: nn.Module, frame_ids: torch.Tensor, num_frames: int, windows: list[G.Window],
                        frame_hw: tuple[int, int], blend: str = "uniform") -> dict[str, Any]:
    """The patch-model case of :func:`decode_frames_of`: every window of every frame, stitched with ``blend``."""
    patches, clip = decode_patches(model, G.coords(frame_ids.long().cpu(), num_frames, windows, frame_hw), frame_hw)
    return {"rgb": G.stitch(patches.cpu(), windows, frame_hw, blend=blend),
            "clip": clip.cpu() if clip is not None else None}


@torch.no_grad()
def decode_frames_of(model: nn.Module, frame_ids: torch.Tensor, num_frames: int, *,
                     frames: Optional[torch.Tensor] = None, embeddings: Optional[torch.Tensor] = None,
                     windows: Optional[list[G.Window]] = None, frame_hw: Optional[tuple[int, int]] = None,
                     blend: str = "uniform") -> dict[str, Any]:
    """dict(rgb=(B, 3, H, W) in [0, 1], clip=CLIP map (B, D, h, w), vectors (B, N, D) or None), on the CPU.

    ``frames`` (the video, for HNeRV's encoder) or ``embeddings`` (stored HNeRV embeddings) are indexed
    by ``frame_ids``; NeRV needs neither; the patch model needs ``windows`` and ``frame_hw``.
    """
    kind, ids, device = model.cfg.kind, frame_ids.long(), _device(model)
    if kind == "patch":
        if windows is None or frame_hw is None:
            raise ValueError("decoding a patch model needs the patch windows and the frame size")
        return decode_patch_frames(model, ids, num_frames, windows, frame_hw, blend)
    if kind == "hnerv" and embeddings is not None:
        out = model.decode(embeddings[ids.to(embeddings.device)].to(device))
    elif kind == "hnerv":
        if frames is None:
            raise ValueError("decoding an HNeRV model needs its frames (encoder input) or stored embeddings")
        out = model(frames[ids.to(frames.device)].to(device))
    else:
        out = model(G.frame_time(ids, num_frames).to(device))
    clip = out["clip"].float().cpu() if out["clip"] is not None else None
    return {"rgb": out["rgb"].float().cpu().clamp(0, 1), "clip": clip}


def clip_at_windows(clip_map: torch.Tensor, windows: list[G.Window], frame_hw: tuple[int, int],
                    how: str = "center") -> torch.Tensor:
    """A full-frame CLIP map (B, D, h, w) read at each window's centre (or averaged over its area) -> (B, N, D)."""
    h, w = frame_hw
    wh = torch.tensor([[win.width / w, win.height / h] for win in windows], device=clip_map.device)
    return sample_clip(clip_map, G.centers(windows, frame_hw).to(clip_map.device), how, wh)
