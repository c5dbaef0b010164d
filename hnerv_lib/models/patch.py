"""Patch model: (t, x, y) -> positional encoding -> FC grid -> NeRV decoder -> one RGB patch + CLIP vector.

It shares the positional encoding, stem, NeRV blocks and RGB head with the full-frame models.
"""

from __future__ import annotations

from typing import Any

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

    def forward(self, coords: torch.Tensor) -> dict[str, Any]:
        """Decode one patch per coordinate triple."""
        features = self.decoder(self.embed(coords))
        clip = self.clip_head(features) if self.clip_head is not None else None
        return {"rgb": self.rgb_head(features), "clip": clip, "features": features}
