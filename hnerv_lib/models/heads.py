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
        self.stride = stride
        self.pool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.mlp = nn.Sequential(nn.Conv2d(in_ch, hidden, 1), nn.GELU(), nn.Conv2d(hidden, clip_dim, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, clip_dim, H / stride, W / stride) unit vectors."""
        return F.normalize(self.mlp(self.pool(features)), dim=1)

    def at_points(self, features: torch.Tensor, centers_xy: torch.Tensor) -> torch.Tensor:
        """The map bilinearly read at N points, (B, N, clip_dim) unit vectors, computing only what is read.

        Equal (up to float rounding) to ``sample_clip(self(features), centers_xy, "center")``: the head
        pools and runs at the four map cells around each point instead of at every cell (a 2x4 grid
        reads 32 of a 16x32 map's 512 cells), so a training step whose loss reads the map at patch
        centres skips the rest. ``centers_xy``: (B, N, 2) points (x, y) in [0, 1], pixel j's centre at
        (j + 0.5) / w; cells outside the map count as zero vectors, as grid_sample's zero padding does.
        """
        batch, channels, height, width = features.shape
        s = self.stride
        index, weight = _bilinear_cells(centers_xy, height // s, width // s)  # (B, N, 4) each
        n = index.shape[1]
        rows, cols = index // (width // s), index % (width // s)
        dy, dx = torch.meshgrid(torch.arange(s, device=index.device), torch.arange(s, device=index.device), indexing="ij")
        pixels = (rows[..., None] * s + dy.flatten()) * width + cols[..., None] * s + dx.flatten()  # (B, N, 4, s*s)
        flat = features.permute(0, 2, 3, 1).reshape(batch, height * width, channels)  # a view of a channels-last map
        picked = flat.gather(1, pixels.reshape(batch, -1, 1).expand(-1, -1, channels))
        cells = picked.view(batch, 4 * n, s * s, channels).mean(2)  # the pooled cells, (B, 4N, C)
        vectors = F.normalize(self.mlp(cells.transpose(1, 2)[..., None]), dim=1)[..., 0]  # (B, D, 4N)
        vectors = vectors.reshape(batch, -1, n, 4)
        mixed = (vectors * weight.to(vectors.dtype)[:, None]).sum(-1)  # (B, D, N)
        return F.normalize(mixed.transpose(1, 2), dim=-1)


def _bilinear_cells(centers_xy: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N, 2) points in [0, 1] -> the flat indices of their four neighbouring cells of an h x w map
    and the bilinear weights (zero for a cell outside the map; its index is clamped inside)."""
    ix = centers_xy[..., 0].float() * w - 0.5  # grid_sample, align_corners=False
    iy = centers_xy[..., 1].float() * h - 0.5
    x0, y0 = ix.floor(), iy.floor()
    fx, fy = ix - x0, iy - y0
    xs = torch.stack([x0, x0 + 1, x0, x0 + 1], -1)
    ys = torch.stack([y0, y0, y0 + 1, y0 + 1], -1)
    weight = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], -1)
    inside = (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
    index = ys.clamp(0, h - 1).long() * w + xs.clamp(0, w - 1).long()
    return index, weight * inside


class ClipVectorHead(nn.Module):
    """Global average pool -> Linear -> GELU -> Linear, unit-normalised: one CLIP vector per patch."""

    def __init__(self, in_ch: int, hidden: int, clip_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_ch, hidden), nn.GELU(), nn.Linear(hidden, clip_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, clip_dim) unit vectors."""
        return F.normalize(self.mlp(features.mean(dim=(2, 3))), dim=1)
