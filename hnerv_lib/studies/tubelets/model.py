"""LSViTForAction: a ViT video classifier with 2D per-frame patches or 3D tubelets, and its checkpoints.

Input clips are ``(B, T, C, H, W)``. Tokens are ordered time-major, then row-major in space, so token
``j * S + s`` is temporal slot ``j`` (one frame for 2D, ``tubelet_size`` frames for 3D) at spatial
patch ``s`` of ``S = (H/P) * (W/P)``. Learned joint space-time position embeddings (ViViT), a pre-norm
transformer encoder, then **mean pooling** over all tokens (no cls token, as VideoMAE's fine-tuning
head: the sequence length is exactly the patch count) and a linear head.

The encoder's attention (``ViTConfig.attention``):

* ``joint``: every token attends to every token (ViViT's model 1), ``nn.TransformerEncoder``;
* ``divided``: each layer attends over time among the tokens of one patch position, then over space
  among the tokens of one time slot, then applies its MLP (TimeSformer's divided space-time attention).

``causal``: attention over time reaches only the token's own and earlier time slots (joint: a
block-causal mask; divided: a causal mask in the attention over time), so that the order of frames is
built into the model instead of being learned from the position table alone.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from hnerv_lib import __version__
from hnerv_lib.studies.tubelets.config import ConfigError, ViTConfig, token_grid
from hnerv_lib.train.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointMismatch,
    read_checkpoint,
)
from hnerv_lib.utils import io

CHECKPOINT_KIND = "lsvit-action"  # tells these files apart from the HNeRV checkpoints of the same format


class PatchEmbed(nn.Module):
    """Conv2d(k=s=P) on every frame, or Conv3d(k=s=(t, P, P)) on the clip; returns (B, N, D) tokens."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        p, t = cfg.patch_size, cfg.tubelet_size
        self.is_3d = cfg.use_3d_patch_embed
        if self.is_3d:
            self.proj = nn.Conv3d(cfg.in_channels, cfg.width, kernel_size=(t, p, p), stride=(t, p, p))
        else:
            self.proj = nn.Conv2d(cfg.in_channels, cfg.width, kernel_size=p, stride=p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = x.shape
        if self.is_3d:
            y = self.proj(x.transpose(1, 2))  # (B, D, T/t, H/P, W/P)
            return y.flatten(2).transpose(1, 2)
        y = self.proj(x.reshape(b * t, c, h, w))  # (B*T, D, H/P, W/P)
        return y.flatten(2).transpose(1, 2).reshape(b, -1, y.shape[1])  # (B, T * S, D), time-major


def causal_mask(slots: int, per_slot: int = 1) -> torch.Tensor:
    """(n, n) bool mask, n = slots x per_slot tokens in time-major order: True where a token's key lies in a
    later time slot than its query (attention there is blocked)."""
    slot = torch.arange(slots).repeat_interleave(per_slot)
    return slot[None, :] > slot[:, None]


class DividedBlock(nn.Module):
    """One pre-norm layer of divided space-time attention: over time, then over space, then the MLP."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        d, drop = cfg.width, cfg.dropout
        self.time_norm, self.space_norm, self.mlp_norm = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.time_attn = nn.MultiheadAttention(d, cfg.heads, dropout=drop, batch_first=True)
        self.space_attn = nn.MultiheadAttention(d, cfg.heads, dropout=drop, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, int(d * cfg.mlp_ratio)), nn.GELU(), nn.Dropout(drop),
                                 nn.Linear(int(d * cfg.mlp_ratio), d))
        self.drop = nn.Dropout(drop)

    @staticmethod
    def _attend(attn: nn.MultiheadAttention, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        return attn(x, x, x, need_weights=False, attn_mask=mask)[0]

    def forward(self, z: torch.Tensor, grid: tuple[int, int, int], time_mask: Optional[torch.Tensor]) -> torch.Tensor:
        b, n, d = z.shape
        t, s = grid[0], grid[1] * grid[2]
        by_place = z.reshape(b, t, s, d).transpose(1, 2).reshape(b * s, t, d)  # one sequence per patch position
        by_place = by_place + self.drop(self._attend(self.time_attn, self.time_norm(by_place), time_mask))
        by_slot = by_place.reshape(b, s, t, d).transpose(1, 2).reshape(b * t, s, d)  # one sequence per time slot
        by_slot = by_slot + self.drop(self._attend(self.space_attn, self.space_norm(by_slot), None))
        z = by_slot.reshape(b, n, d)
        return z + self.drop(self.mlp(self.mlp_norm(z)))


class DividedEncoder(nn.Module):
    """``depth`` divided blocks and a final LayerNorm, over the (T', H/P, W/P) token grid."""

    def __init__(self, cfg: ViTConfig, grid: tuple[int, int, int]) -> None:
        super().__init__()
        self.grid = grid
        self.layers = nn.ModuleList(DividedBlock(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width)

    def forward(self, z: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        for layer in self.layers:
            z = layer(z, self.grid, mask)
        return self.norm(z)


class LSViTForAction(nn.Module):
    """Video ViT classifier; ``num_frames`` (or ``config.num_frames``) sizes its position table."""

    def __init__(self, config: ViTConfig, num_frames: Optional[int] = None) -> None:
        super().__init__()
        if num_frames is not None and config.num_frames is not None and num_frames != config.num_frames:
            raise ConfigError(f"num_frames={num_frames} contradicts config.num_frames={config.num_frames}")
        frames = num_frames if num_frames is not None else config.num_frames
        self.grid = token_grid(config, frames)  # raises the seed's errors (missing / indivisible num_frames)
        self.config = replace(config, num_frames=frames)
        d = config.width
        self.patch_embed = PatchEmbed(config)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_tokens, d))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if config.attention == "joint":
            layer = nn.TransformerEncoderLayer(d, config.heads, dim_feedforward=int(d * config.mlp_ratio),
                                               dropout=config.dropout, activation="gelu", batch_first=True,
                                               norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, config.depth, norm=nn.LayerNorm(d), enable_nested_tensor=False)
        else:
            self.encoder = DividedEncoder(config, self.grid)
        slots, per_slot = self.grid[0], self.grid[1] * self.grid[2]
        mask = causal_mask(slots, per_slot if config.attention == "joint" else 1) if config.causal else None
        self.register_buffer("time_mask", mask, persistent=False)  # not in checkpoints: the config rebuilds it
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(d, config.num_classes))

    @property
    def num_tokens(self) -> int:
        """Tokens per clip: (T / frames per token) x (H/P) x (W/P); ``embed`` returns exactly this many."""
        return math.prod(self.grid)

    @property
    def num_frames(self) -> int:
        """Frames per clip the model was built for."""
        return self.config.num_frames

    def check_input(self, x: torch.Tensor) -> None:
        """ValueError naming the expected and the given clip shape if ``x`` does not fit."""
        c = self.config
        want = (self.num_frames, c.in_channels, c.image_size, c.image_size)
        if x.ndim != 5 or tuple(x.shape[1:]) != want:
            raise ValueError(f"expected clips (B, T, C, H, W) = (B, {', '.join(map(str, want))}); got {tuple(x.shape)}")

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens (B, num_tokens, width), before position embeddings."""
        self.check_input(x)
        return self.patch_embed(x)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder output (B, num_tokens, width), time-major as ``embed``."""
        z = self.embed(x) + self.pos_embed
        if isinstance(self.encoder, DividedEncoder):
            return self.encoder(z, mask=self.time_mask)
        return self.encoder(z, mask=self.time_mask, is_causal=False)  # block-causal, not token-causal: say so

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Mean-pooled encoder output (B, width)."""
        return self.tokens(x).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, num_classes) for clips (B, T, C, H, W)."""
        return self.head(self.features(x))


def trainable_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def check_compatible(theirs: ViTConfig, ours: ViTConfig, path: str | Path) -> None:
    """CheckpointMismatch naming both sides if a checkpoint's config cannot load into ``ours``."""
    if theirs.embedding != ours.embedding:
        raise CheckpointMismatch(f"checkpoint {path} has {theirs.embedding}, model expects {ours.embedding}")
    ignored = {"dropout"}  # training-only: the same weights serve any dropout
    diff = [f.name for f in fields(ViTConfig) if f.name not in ignored and getattr(theirs, f.name) != getattr(ours, f.name)]
    if diff:
        pairs = ", ".join(f"{n}: checkpoint {getattr(theirs, n)!r} vs model {getattr(ours, n)!r}" for n in diff)
        raise CheckpointMismatch(f"checkpoint {path} does not fit the model ({pairs})")


def save_checkpoint(path: str | Path, model: LSViTForAction, extra: Optional[dict[str, Any]] = None) -> Path:
    """Write weights plus the full config (self-describing) atomically."""
    payload = {"format": CHECKPOINT_FORMAT, "kind": CHECKPOINT_KIND, "hnerv_lib": __version__,
               "model_config": model.config.to_dict(), "model": model.state_dict(), "extra": extra or {}}
    io.torch_save(payload, path)
    return Path(path)


def read_config(path: str | Path) -> tuple[ViTConfig, dict[str, Any]]:
    """(config, raw payload) of an action checkpoint (weights_only load)."""
    payload = read_checkpoint(path)
    if payload.get("kind") != CHECKPOINT_KIND:
        raise CheckpointMismatch(f"{path} is not an action-model checkpoint (kind {payload.get('kind')!r}, "
                                 f"expected {CHECKPOINT_KIND!r})")
    return ViTConfig.from_dict(payload["model_config"]), payload


def load_checkpoint(path: str | Path, expect: Optional[ViTConfig] = None) -> tuple[LSViTForAction, dict[str, Any]]:
    """(model in eval mode, extra) rebuilt from the file alone; ``expect`` must then match its config."""
    cfg, payload = read_config(path)
    if expect is not None:
        check_compatible(cfg, expect, path)
    model = LSViTForAction(cfg)
    model.load_state_dict(payload["model"])
    return model.eval(), payload.get("extra", {})


def load_weights(path: str | Path, model: LSViTForAction) -> dict[str, Any]:
    """Load a checkpoint into an existing model after checking it fits; returns the checkpoint's extra."""
    cfg, payload = read_config(path)
    check_compatible(cfg, model.config, path)
    model.load_state_dict(payload["model"])
    return payload.get("extra", {})
