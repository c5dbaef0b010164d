"""Patch model: (t, x, y) -> positional encoding -> FC grid -> NeRV decoder -> one RGB patch + CLIP vector.

It shares the positional encoding, stem, NeRV blocks and RGB head with the full-frame models.

With ``canvas`` > 1 the decoder outputs a canvas ``canvas`` x the patch, centred on the queried patch:
the patch is its centre crop, and any patch-sized window within the canvas is a crop of it (what
continuous queries between grid cells read, ``models.decoding``). The CLIP vector pools the features of
the crop it describes.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from hnerv_lib.models.blocks import NeRVDecoder, PositionalEncoding
from hnerv_lib.models.config import PatchConfig
from hnerv_lib.models.heads import ClipVectorHead, RGBHead


class PatchModel(nn.Module):
    """Coordinates (B, 3) = (t, x, y) in [0, 1] -> dict(rgb=(B, 3, ph, pw), clip=(B, D) or None, features)."""

    def __init__(self, cfg: PatchConfig) -> None:
        super().__init__()
        if not isinstance(cfg, PatchConfig):
            raise ValueError(f"PatchModel needs a PatchConfig; got {type(cfg).__name__}")
        self.cfg = cfg
        self.encoder = PositionalEncoding(cfg.pe_base, cfg.pe_levels)
        # x and y at their own frequencies when asked; otherwise one encoding of (t, x, y), the fork's
        self.xy_encoder = PositionalEncoding(cfg.pe_base, cfg.xy_levels) if cfg.xy_levels else None
        self.decoder = NeRVDecoder(cfg.in_channels, cfg)
        self.rgb_head = RGBHead(self.decoder.out_ch)
        self.clip_head = (
            ClipVectorHead(self.decoder.out_ch, cfg.clip_hidden, cfg.clip_dim) if cfg.predict_clip else None
        )

    def embed(self, coords: torch.Tensor) -> torch.Tensor:
        """(B, 3) coordinates -> (B, in_channels, 1, 1) positional encoding: [t sin, t cos, x sin, x cos, y sin, y cos]."""
        if coords.dim() != 2 or coords.shape[1] != 3:
            raise ValueError(f"PatchModel expects (B, 3) coordinates (t, x, y); got {tuple(coords.shape)}")
        if self.xy_encoder is None:
            return self.encoder(coords)[:, :, None, None]
        return torch.cat([self.encoder(coords[:, :1]), self.xy_encoder(coords[:, 1:])], dim=1)[:, :, None, None]

    def forward(self, coords: torch.Tensor, corners: Optional[torch.Tensor] = None) -> dict[str, Any]:
        """Decode one patch per coordinate triple: dict(rgb=(B, 3, ph, pw), clip, canvas, features).

        ``corners`` (B, 2): each patch's (top, left) inside its canvas, in pixels (default: the centre,
        ``cfg.margin_hw``). ``canvas`` is the whole decoded canvas (B, 3, canvas ph, canvas pw); without a
        canvas (``cfg.canvas`` 1) it is the patch itself and corners must be zero.
        """
        features = self.decoder(self.embed(coords))
        canvas = self.rgb_head(features)
        if corners is None and self.cfg.canvas == 1:
            patch_features, rgb = features, canvas
        else:
            corners = (torch.tensor(self.cfg.margin_hw).expand(len(coords), 2) if corners is None
                       else corners.detach().long().cpu())
            patch_features, rgb = (crop(x, corners, self.cfg.patch_hw) for x in (features, canvas))
        clip = self.clip_head(patch_features) if self.clip_head is not None else None
        return {"rgb": rgb, "clip": clip, "canvas": canvas, "features": features}


def crop(x: torch.Tensor, corners: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, h, w): item i's window at ``corners[i]`` = (top, left); one slice when all agree."""
    (h, w), (H, W) = hw, x.shape[-2:]
    if len(x) == 0:
        return x[..., :h, :w]
    if corners.shape != (len(x), 2) or corners.min() < 0 or (corners[:, 0] + h).max() > H \
            or (corners[:, 1] + w).max() > W:
        raise ValueError(f"crop corners {corners.shape[0]}x{corners.shape[-1]} must place {h}x{w} windows inside "
                         f"{H}x{W} for each of {len(x)} items; got corners in "
                         f"[{corners.min().item()}, {corners.max().item()}]")
    if (corners == corners[0]).all():
        top, left = corners[0].tolist()
        return x[..., top : top + h, left : left + w]
    return torch.stack([x[i, :, top : top + h, left : left + w] for i, (top, left) in enumerate(corners.tolist())])
