"""Building blocks shared by the full-frame and patch models: encodings, encoder, decoder.

Checked against ``model_all.py`` of github.com/haochen-rye/HNeRV: ``PositionEncoding``, ``UpConv``
('pshuffel'), ``ConvNeXt`` / ``Block`` / ``LayerNorm`` and the decoder loop in ``HNeRV.__init__``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hnerv_lib.models.config import DecoderConfig


def make_act(name: str) -> nn.Module:
    """The activation module called ``name`` (one of config.ACTIVATIONS)."""
    acts = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU, "leaky": nn.LeakyReLU}
    if name not in acts:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(acts)}")
    return acts[name]()


class PositionalEncoding(nn.Module):
    """Per coordinate: sin and cos of ``x * base**i * pi`` for ``i < levels`` (NeRV's pe_base_levels)."""

    def __init__(self, base: float, levels: int) -> None:
        super().__init__()
        if base <= 0 or levels < 1:
            raise ValueError(f"PositionalEncoding needs base > 0 and levels >= 1; got {base}, {levels}")
        self.levels = levels
        freqs = math.pi * float(base) ** torch.arange(levels, dtype=torch.float64)
        self.register_buffer("freqs", freqs.float(), persistent=False)  # derived, not a weight

    def out_dim(self, coords: int) -> int:
        """Output width for ``coords`` input coordinates."""
        return coords * 2 * self.levels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C) coordinates -> (B, C * 2 * levels): per coordinate [sin..., cos...]."""
        if x.dim() != 2:
            raise ValueError(f"PositionalEncoding expects (B, C) coordinates; got shape {tuple(x.shape)}")
        angles = x.float()[..., None] * self.freqs  # (B, C, levels)
        return torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(1)


def layout_of(x: torch.Tensor) -> str:
    """"channels_last", "contiguous" or "strided": how a 4-D tensor lies in memory. A tensor that is both
    (one channel, or 1x1 maps) counts as contiguous."""
    if x.is_contiguous():
        return "contiguous"
    return "channels_last" if x.is_contiguous(memory_format=torch.channels_last) else "strided"


def same_layout(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``y`` in the memory layout of ``like``: channels-last where ``like`` is (and is not plain contiguous
    too), else contiguous.

    A map that went through ``permute(0, 2, 3, 1)`` and back is channels-last in memory. Left so, it would
    hand every later convolution channels-last tensors whatever ``channels_last`` the run asked for:
    oneDNN then runs its NHWC kernels, which are not the ones a contiguous run should time (issue 34).
    """
    cl = layout_of(like) == "channels_last"
    return y.contiguous(memory_format=torch.channels_last if cl else torch.contiguous_format)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an (N, C, H, W) map (ConvNeXt's channels_first norm)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise each pixel's channel vector; the result keeps ``x``'s memory layout."""
        return same_layout(super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2), x)


class ConvNeXtBlock(nn.Module):
    """Depthwise 7x7 -> LayerNorm -> 4x MLP -> layer scale, added back to the input."""

    def __init__(self, dim: int, layer_scale: float = 1e-6) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))  # tiny start: blocks begin near identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual ConvNeXt update of an (N, C, H, W) map, in ``x``'s memory layout."""
        y = self.mlp(self.norm(self.dwconv(x).permute(0, 2, 3, 1))) * self.gamma
        return x + same_layout(y.permute(0, 3, 1, 2), x)


class ConvNeXtEncoder(nn.Module):
    """HNeRV's frame encoder: per stage a kernel=stride=s conv, then ConvNeXt blocks; last width = embed_ch."""

    def __init__(self, strides: tuple[int, ...], dim: int, embed_ch: int, blocks: int = 1) -> None:
        super().__init__()
        widths = [dim] * (len(strides) - 1) + [embed_ch]
        stages = []
        for i, (stride, width) in enumerate(zip(strides, widths)):
            if i == 0:  # stem: conv then norm
                down = [nn.Conv2d(3, width, stride, stride), LayerNorm2d(width, eps=1e-6)]
            else:  # later stages: norm then conv
                down = [LayerNorm2d(widths[i - 1], eps=1e-6), nn.Conv2d(widths[i - 1], width, stride, stride)]
            stages.append(nn.Sequential(*down, *[ConvNeXtBlock(width) for _ in range(blocks)]))
        self.stages = nn.Sequential(*stages)
        self.apply(_trunc_normal_init)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) frames -> (B, embed_ch, H / prod(strides), W / prod(strides))."""
        return self.stages(frames)


def _trunc_normal_init(module: nn.Module) -> None:
    """ConvNeXt's init, which HNeRV keeps for the encoder: truncated normal (std 0.02), zero bias."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)


class NeRVBlock(nn.Module):
    """Conv to ``out_ch * stride**2`` channels -> PixelShuffle(stride) -> activation."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, act: str) -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"NeRVBlock kernel must be odd to keep the size; got {kernel}")
        self.conv = nn.Conv2d(in_ch, out_ch * stride * stride, kernel, padding=kernel // 2)
        self.shuffle = nn.PixelShuffle(stride) if stride > 1 else nn.Identity()
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_ch, h, w) -> (B, out_ch, h * stride, w * stride)."""
        return self.act(self.shuffle(self.conv(x)))


class Stem(nn.Module):
    """HNeRV's first decoder layer: 1x1 conv + act to ``fc_dim * gh * gw``, unfolded into a gh x gw grid."""

    def __init__(self, in_ch: int, fc_dim: int, grid_hw: tuple[int, int], act: str) -> None:
        super().__init__()
        self.grid_hw = grid_hw
        self.fc = nn.Conv2d(in_ch, fc_dim * grid_hw[0] * grid_hw[1], 1)  # an FC applied per input pixel
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_ch, h, w) -> (B, fc_dim, h * gh, w * gw), channel layout (c, gh, gw) as in HNeRV."""
        y = self.act(self.fc(x))
        (gh, gw), (n, _, h, w) = self.grid_hw, y.shape
        y = y.view(n, -1, gh, gw, h, w).permute(0, 1, 4, 2, 5, 3)
        return y.reshape(n, -1, h * gh, w * gw)


class NeRVDecoder(nn.Module):
    """Stem + NeRV stages (widths from ``cfg.decoder_widths()``, kernels from ``cfg.ks``)."""

    def __init__(self, in_ch: int, cfg: DecoderConfig) -> None:
        super().__init__()
        widths = cfg.decoder_widths()
        self.stem = Stem(in_ch, cfg.fc_dim, cfg.grid_hw, cfg.act)
        blocks = []
        for i, stride in enumerate(cfg.dec_strides):
            for j in range(cfg.dec_blocks):  # the first block of a stage upsamples and narrows
                in_w = widths[i] if j == 0 else widths[i + 1]
                blocks.append(NeRVBlock(in_w, widths[i + 1], cfg.ks.kernel(i), stride if j == 0 else 1, cfg.act))
        self.blocks = nn.Sequential(*blocks)
        self.out_ch = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_ch, h, w) input -> final (B, out_ch, H, W) features."""
        return self.blocks(self.stem(x))
