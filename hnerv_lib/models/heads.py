"""Output heads on the final decoder features: RGB, a per-location CLIP map, a per-patch CLIP vector."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RGBHead(nn.Module):
    """3x3 conv to RGB, then ``tanh(x) * 0.5 + 0.5`` (HNeRV's default ``--out_bias tanh``) into [0, 1]."""

    def __init__(self, in_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, 3, 3, padding=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) features -> (B, 3, H, W) in [0, 1]."""
        return torch.tanh(self.conv(features)) * 0.5 + 0.5


class ClipMapHead(nn.Module):
    """Average-pool by ``stride``, then 1x1 conv -> GELU -> 1x1 conv, unit-normalised per location."""

    def __init__(self, in_ch: int, hidden: int, clip_dim: int, stride: int = 1) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.mlp = nn.Sequential(nn.Conv2d(in_ch, hidden, 1), nn.GELU(), nn.Conv2d(hidden, clip_dim, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, clip_dim, H / stride, W / stride) unit vectors."""
        return F.normalize(self.mlp(self.pool(features)), dim=1)


class ClipVectorHead(nn.Module):
    """Global average pool -> Linear -> GELU -> Linear, unit-normalised: one CLIP vector per patch."""

    def __init__(self, in_ch: int, hidden: int, clip_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_ch, hidden), nn.GELU(), nn.Linear(hidden, clip_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, clip_dim) unit vectors."""
        return F.normalize(self.mlp(features.mean(dim=(2, 3))), dim=1)
