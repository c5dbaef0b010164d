"""Decoding a model into frames: the one implementation behind training-time evaluation, patch
evaluation and the codec.

* :func:`decode_frames_of` — frame indices -> whole frames (B, 3, H, W) in [0, 1] and the raw CLIP
  output, for every model kind: HNeRV from frames (through its encoder) or from stored embeddings,
  NeRV from the frame time ``t = i / T``, the patch model from (t, x, y) at each window's centre with
  the patches stitched (blended where windows overlap).
* :func:`decode_patch_frames` — its patch-model case, usable at any windows (overlapping ones too).
* :func:`decode_patches` — any (B, N, 3) patch-model coordinates -> patches and CLIP vectors.
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


@torch.no_grad()
def decode_patches(model: nn.Module, coords: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(B, N, 3) coordinates -> patches (B, N, 3, ph, pw) clamped to [0, 1] and CLIP vectors (B, N, D) or None."""
    b, n = coords.shape[:2]
    out = model(coords.reshape(b * n, 3).to(_device(model)))
    rgb = out["rgb"].float().clamp(0, 1).reshape(b, n, *out["rgb"].shape[1:])
    clip = out["clip"].float().reshape(b, n, -1) if out["clip"] is not None else None
    return rgb, clip


@torch.no_grad()
def decode_patch_frames(model: nn.Module, frame_ids: torch.Tensor, num_frames: int, windows: list[G.Window],
                        frame_hw: tuple[int, int], blend: str = "uniform") -> dict[str, Any]:
    """The patch-model case of :func:`decode_frames_of`: every window of every frame, stitched with ``blend``."""
    patches, clip = decode_patches(model, G.coords(frame_ids.long().cpu(), num_frames, windows, frame_hw))
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
