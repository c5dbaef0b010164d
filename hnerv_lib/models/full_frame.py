"""Whole-frame models: HNeRV (frame -> ConvNeXt embedding -> decoder) and NeRV (t -> PE -> decoder).

Both optionally predict a CLIP map from the final decoder features; ``sample_clip`` reads that map
at patch centres (or averages it over patch windows) to compare with per-patch CLIP targets.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from hnerv_lib.models.blocks import ConvNeXtEncoder, NeRVDecoder, PositionalEncoding
from hnerv_lib.models.config import FullFrameConfig
from hnerv_lib.models.heads import ClipMapHead, RGBHead


class FullFrameModel(nn.Module):
    """HNeRV or NeRV per ``cfg.kind``; forward returns dict(rgb, clip, features, embedding)."""

    def __init__(self, cfg: FullFrameConfig) -> None:
        super().__init__()
        if not isinstance(cfg, FullFrameConfig):
            raise ValueError(f"FullFrameModel needs a FullFrameConfig; got {type(cfg).__name__}")
        self.cfg = cfg
        if cfg.kind == "hnerv":
            self.encoder: nn.Module = ConvNeXtEncoder(cfg.enc_strides, cfg.enc_dim, cfg.embed_ch, cfg.enc_blocks)
        else:
            self.encoder = PositionalEncoding(cfg.pe_base, cfg.pe_levels)
        self.decoder = NeRVDecoder(cfg.in_channels, cfg)
        self.rgb_head = RGBHead(self.decoder.out_ch)
        self.clip_head = (
            ClipMapHead(self.decoder.out_ch, cfg.clip_hidden, cfg.clip_dim, cfg.clip_stride)
            if cfg.predict_clip
            else None
        )

    def embed(self, inputs: torch.Tensor) -> torch.Tensor:
        """hnerv: (B, 3, H, W) frames in [0, 1] -> (B, embed_ch, h, w); nerv: (B,) t in [0, 1] -> (B, 2L, 1, 1)."""
        if self.cfg.kind == "hnerv":
            expected = (3, *self.cfg.frame_hw)
            if inputs.dim() != 4 or tuple(inputs.shape[1:]) != expected:
                raise ValueError(f"hnerv expects frames of shape (B, {', '.join(map(str, expected))}); "
                                 f"got {tuple(inputs.shape)}")
            return self.encoder(inputs)
        if inputs.dim() != 1:
            raise ValueError(f"nerv expects normalised frame indices t of shape (B,); got {tuple(inputs.shape)}")
        return self.encoder(inputs[:, None])[:, :, None, None]

    def decode(self, embedding: torch.Tensor, clip_at: Optional[torch.Tensor] = None,
               with_clip: bool = True) -> dict[str, Any]:
        """Embedding (possibly dequantised) -> dict(rgb=(B,3,H,W), clip=(B,D,h,w) or None, features, embedding).

        What a training step needs of the CLIP head, and no more: ``clip_at`` ((N, 2) or (B, N, 2) patch
        centres) adds ``clip_points``, the (B, N, D) vectors ``sample_clip`` would read there, computed
        at those points only, and leaves ``clip`` None; ``with_clip=False`` skips the head (pixel-only
        epochs). Without a CLIP head both stay None.
        """
        expected = self.cfg.in_channels
        if embedding.dim() != 4 or embedding.shape[1] != expected:
            raise ValueError(f"decode expects a (B, {expected}, h, w) embedding; got {tuple(embedding.shape)}")
        features = self.decoder(embedding)
        out = {"rgb": self.rgb_head(features), "clip": None, "features": features, "embedding": embedding}
        if self.clip_head is None or not with_clip:
            return out
        if clip_at is None:
            out["clip"] = self.clip_head(features)
        else:
            out["clip_points"] = self.clip_head.at_points(features, _per_batch(clip_at, len(features), "clip_at"))
        return out

    def forward(self, inputs: torch.Tensor, clip_at: Optional[torch.Tensor] = None,
                with_clip: bool = True) -> dict[str, Any]:
        """``decode(embed(inputs), clip_at, with_clip)``: frames (hnerv) or t (nerv) in, dict of outputs out."""
        return self.decode(self.embed(inputs), clip_at, with_clip)


def _per_batch(points: torch.Tensor, batch: int, name: str) -> torch.Tensor:
    """(N, 2) or (B, N, 2) normalised pairs -> (B, N, 2), checked to lie in [0, 1]."""
    if points.dim() == 2:
        points = points.expand(batch, *points.shape)
    if points.dim() != 3 or points.shape[0] != batch or points.shape[-1] != 2:
        raise ValueError(f"{name} must be (N, 2) or ({batch}, N, 2); got {tuple(points.shape)}")
    if points.numel() and (points.min() < 0 or points.max() > 1):
        raise ValueError(f"{name} must be normalised to [0, 1]; got range "
                         f"[{points.min().item():.4g}, {points.max().item():.4g}]")
    return points


def _overlap(lo: torch.Tensor, hi: torch.Tensor, size: int) -> torch.Tensor:
    """(B, N) intervals in [0, 1] -> (B, N, size) overlap length with each of ``size`` equal pixels."""
    edges = torch.arange(size + 1, device=lo.device, dtype=lo.dtype) / size
    left = torch.maximum(lo[..., None], edges[:-1])
    right = torch.minimum(hi[..., None], edges[1:])
    return (right - left).clamp(min=0)


def sample_clip(clip_map: torch.Tensor, centers_xy: torch.Tensor, mode: str = "center",
                windows: torch.Tensor | None = None) -> torch.Tensor:
    """Read a (B, D, h, w) CLIP map at N patches -> (B, N, D) unit vectors.

    ``centers_xy``: (N, 2) or (B, N, 2) patch centres (x, y) normalised to [0, 1] by width and height.
    ``mode="center"``: bilinear sample at the centres (grid_sample, align_corners=False, so pixel j's
    centre sits at (j + 0.5) / w). ``mode="area"``: average the map over each patch's window, given by
    ``windows`` (N, 2) or (B, N, 2) = (width, height) normalised, weighting pixels by their overlap.
    """
    if clip_map.dim() != 4:
        raise ValueError(f"clip_map must be (B, D, h, w); got {tuple(clip_map.shape)}")
    batch, _, h, w = clip_map.shape
    centers = _per_batch(centers_xy.to(clip_map), batch, "centers_xy")
    if mode == "center":
        grid = (centers * 2 - 1)[:, None]  # (B, 1, N, 2) in grid_sample's [-1, 1]
        picked = F.grid_sample(clip_map, grid, mode="bilinear", align_corners=False)[:, :, 0]
        return F.normalize(picked.transpose(1, 2), dim=-1)
    if mode != "area":
        raise ValueError(f"sample_clip mode must be 'center' or 'area'; got {mode!r}")
    if windows is None:
        raise ValueError("sample_clip mode='area' needs windows=(width, height) per patch; got None")
    size = _per_batch(windows.to(clip_map), batch, "windows")
    if size.numel() and size.min() <= 0:
        raise ValueError(f"windows must have positive width and height; got min {size.min().item():.4g}")
    lo, hi = centers - size / 2, centers + size / 2
    wx, wy = _overlap(lo[..., 0], hi[..., 0], w), _overlap(lo[..., 1], hi[..., 1], h)
    total = torch.einsum("bny,bdyx,bnx->bnd", wy, clip_map, wx)
    return F.normalize(total / (wy.sum(-1) * wx.sum(-1))[..., None], dim=-1)
