"""Named model presets (paper sizes, the CPU reference runs, patch-model variants), a model factory,
and scaling a preset to a size.

Two ways to solve for the stem width ``fc_dim``, for two questions: :func:`sizing.fc_dim_for_size`
is HNeRV's closed form (it reproduces the paper's fc_dims for its Bunny sizes, so the paper presets
use it); :func:`fc_dim_for_factor` bisects on the built model, for any family, and is what scales a
preset by a factor (the ablation's size axis).
"""

from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import Any, Callable

from torch import nn

from hnerv_lib.models.config import (
    FullFrameConfig,
    KernelSchedule,
    ModelConfig,
    PatchConfig,
)
from hnerv_lib.models.full_frame import FullFrameModel
from hnerv_lib.models.patch import PatchModel
from hnerv_lib.models.sizing import count_params, fc_dim_for_size

BUNNY_FRAMES = 132  # the paper sizes every Bunny model for all 132 frames
PAPER_PATCH = dict(patch_hw=(320, 320), dec_strides=(5, 4, 4, 2))  # 640x1280 in a 2x4 grid: 2 x 160 = 320


def _sized(cfg: FullFrameConfig, target_params: float) -> FullFrameConfig:
    """``cfg`` with fc_dim solved by HNeRV's size targeting for Bunny's 132 frames."""
    return replace(cfg, fc_dim=fc_dim_for_size(cfg, target_params, BUNNY_FRAMES))


def _hnerv_paper(size_m: float) -> Callable[[], FullFrameConfig]:
    """The paper's HNeRV at 640x1280 (FullFrameConfig defaults) sized to ``size_m`` million."""
    return lambda: _sized(FullFrameConfig(kind="hnerv"), size_m * 1e6)


def _hnerv_tiny() -> FullFrameConfig:
    """Tiny HNeRV on 32x64 frames (2x4 embedding) with the CLIP head: seconds on a CPU."""
    return FullFrameConfig(
        kind="hnerv", frame_hw=(32, 64), enc_strides=(4, 2, 2), enc_dim=16, embed_ch=8,
        dec_strides=(4, 2, 2), fc_dim=24, lower_width=8, predict_clip=True, clip_stride=4,
    )


def _hnerv_quick() -> FullFrameConfig:
    """HNeRV for the quick profile: 64x128 frames, 2x4 embedding, about 0.2M parameters."""
    return FullFrameConfig(
        kind="hnerv", frame_hw=(64, 128), enc_strides=(4, 2, 2, 2), enc_dim=32, embed_ch=16,
        dec_strides=(4, 2, 2, 2), fc_dim=64, predict_clip=True, clip_stride=4,
    )


def _nerv_paper() -> FullFrameConfig:
    """HNeRV README's NeRV baseline: pe_1.25_80, fc 8x16, strides 5,4,2,2, ks 0_3_3, reduce 2."""
    cfg = FullFrameConfig(
        kind="nerv", fc_hw=(8, 16), dec_strides=(5, 4, 2, 2), ks=KernelSchedule(0, 3, 3), reduce=2.0,
    )
    return _sized(cfg, 1.5e6)


def _nerv_small(frame_hw: tuple[int, int], dec_strides: tuple[int, ...], fc_dim: int, lower_width: int) -> Callable[[], FullFrameConfig]:
    """NeRV (frame index in, whole frame out) at the smoke/quick sizes, with the NeRV baseline's kernels and
    reduce; a 2x4 stem grid like the HNeRV presets of the same size. No CLIP head: the RD study's baseline."""
    grid = (frame_hw[0] // math.prod(dec_strides), frame_hw[1] // math.prod(dec_strides))
    return lambda: FullFrameConfig(kind="nerv", frame_hw=frame_hw, fc_hw=grid, dec_strides=dec_strides,
                                   ks=KernelSchedule(0, 3, 3), reduce=2.0, fc_dim=fc_dim, lower_width=lower_width)


def _hnerv_cpu_orig() -> FullFrameConfig:
    """The original code's CPU run: Bunny 160x320, encoder and decoder strides 5,2,2,2,2, size 1.5."""
    cfg = FullFrameConfig(kind="hnerv", frame_hw=(160, 320), enc_strides=(5, 2, 2, 2, 2), dec_strides=(5, 2, 2, 2, 2))
    return _sized(cfg, 1.5e6)


def _patch(fc_dim: int, **kw: Any) -> Callable[[], PatchConfig]:
    """A PatchConfig (the fork's recipe: ks 0_3_3, reduce 1.5, 2x2 grid) with ``fc_dim`` and overrides."""
    return lambda: PatchConfig(fc_dim=fc_dim, **kw)


PRESETS: dict[str, Callable[[], ModelConfig]] = {
    "hnerv-tiny": _hnerv_tiny,
    "hnerv-0.35m": _hnerv_paper(0.35),
    "hnerv-0.75m": _hnerv_paper(0.75),
    "hnerv-1.5m": _hnerv_paper(1.5),
    "hnerv-3m": _hnerv_paper(3.0),
    "nerv-1.5m": _nerv_paper,
    "hnerv-cpu-orig": _hnerv_cpu_orig,
    "hnerv-quick": _hnerv_quick,
    "nerv-tiny": _nerv_small((32, 64), (4, 2, 2), fc_dim=24, lower_width=8),
    "nerv-quick": _nerv_small((64, 128), (4, 2, 2, 2), fc_dim=64, lower_width=12),
    "nerv-cpu": _nerv_small((160, 320), (5, 2, 2, 2, 2), fc_dim=64, lower_width=12),
    # patch models; patch-tiny at the smoke profile (32x64 -> 16x16 patches), the series at 640x1280
    "patch-tiny": _patch(16, patch_hw=(16, 16), dec_strides=(2, 2, 2), lower_width=4),
    # 64x128 in 2x4 -> 32x32 patches; fc_dim 56 gives ~0.47M params, the size of hnerv-quick (0.48M)
    "patch-quick": _patch(56, patch_hw=(32, 32), dec_strides=(4, 2, 2)),
    "patch-comparable": _patch(96, **PAPER_PATCH),
    "patch-balanced": _patch(192, **PAPER_PATCH),
    "patch-standard": _patch(256, **PAPER_PATCH),
    "patch-hq": _patch(384, dec_blocks=2, **PAPER_PATCH),  # two NeRV blocks per stage
    "patch-cpu-fork": _patch(96),  # PatchConfig defaults = the fork: 160x320 in 2x4 -> 80x80 patches
}


def list_presets() -> list[str]:
    """Names of all presets, in registry order."""
    return list(PRESETS)


def get_preset(name: str, **overrides: Any) -> ModelConfig:
    """The config of preset ``name`` with ``overrides`` applied (fc_dim is not re-solved)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    cfg = PRESETS[name]()
    unknown = sorted(set(overrides) - {f.name for f in fields(cfg)})
    if unknown:
        raise ValueError(f"unknown override keys {unknown} for {type(cfg).__name__} preset {name!r}")
    return replace(cfg, **overrides)


def build_model(cfg: ModelConfig | str) -> nn.Module:
    """The model for a config (or a preset name): FullFrameModel or PatchModel."""
    cfg = get_preset(cfg) if isinstance(cfg, str) else cfg
    if isinstance(cfg, FullFrameConfig):
        return FullFrameModel(cfg)
    if isinstance(cfg, PatchConfig):
        return PatchModel(cfg)
    raise ValueError(f"build_model needs a FullFrameConfig, PatchConfig or preset name; got {cfg!r}")


def decoder_params(cfg: ModelConfig) -> int:
    """Numbers the video is stored in apart from frame embeddings: stem + NeRV blocks + RGB head (no CLIP head)."""
    model = build_model(replace(cfg, predict_clip=False))
    return count_params(model, "decoder") + count_params(model, "rgb_head")


def fc_dim_for_factor(preset: str, factor: float, **overrides: Any) -> int:
    """The stem width ``fc_dim`` whose decoder has about ``factor`` x the decoder parameters of ``preset``."""
    if not factor > 0:
        raise ValueError(f"size factor must be > 0; got {factor!r}")
    return fc_dim_for_count(preset, factor * decoder_params(get_preset(preset, **overrides)), decoder_params, **overrides)


def fc_dim_for_params(preset: str, target: int, **overrides: Any) -> int:
    """The stem width ``fc_dim`` whose whole model (CLIP head included) has about ``target`` parameters:
    how two families are compared at equal parameters."""
    return fc_dim_for_count(preset, target, lambda cfg: count_params(build_model(cfg)), **overrides)


def fc_dim_for_count(preset: str, target: float, count_of: Callable[[ModelConfig], int], **overrides: Any) -> int:
    """The ``fc_dim`` of ``preset`` whose ``count_of(config)`` is nearest ``target``.

    Found by bisection on the built model (the count grows with fc_dim), so it holds for every model
    family, including the patch model that HNeRV's closed-form size formula does not describe.
    """
    if not target > 0:
        raise ValueError(f"target parameter count must be > 0; got {target!r}")
    base = get_preset(preset, **overrides)

    def count(fc: int) -> int:
        return count_of(get_preset(preset, **{**overrides, "fc_dim": fc}))

    lo, hi = 1, max(2, base.fc_dim)
    while count(hi) < target:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) < target else (lo, mid)
    return hi if abs(count(hi) - target) <= abs(count(lo) - target) else lo


def patch_overrides(preset: str, t_levels: int = 0, xy_levels: int = 0, canvas: int = 1,
                  predict_clip: bool = True) -> dict[str, Any]:
    """Model overrides of a patch ``preset`` with its encoding or output changed, at the preset's size.

    ``t_levels`` (0: the preset's ``pe_levels``) and ``xy_levels`` (0: as t) set the positional encoding's
    frequencies; ``canvas`` > 1 adds one NeRV stage of that stride, so the decoder outputs a canvas that
    many patches wide around each cell. Each changes the parameter count (a narrower stem input, one more
    stage), so ``fc_dim`` is re-solved for the preset's whole-model count (:func:`fc_dim_for_params`): the
    variants compare at equal parameters. No change gives no overrides (the preset's own run).
    """
    base = get_preset(preset, predict_clip=predict_clip)
    if not isinstance(base, PatchConfig):
        raise ValueError(f"patch_overrides needs a patch-model preset; {preset!r} is a {base.kind} model")
    changes: dict[str, Any] = {}
    if t_levels:  # x and y keep the preset's frequencies unless told (its xy_levels 0 would follow t)
        changes.update(pe_levels=t_levels, xy_levels=xy_levels or base.spatial_levels)
    elif xy_levels:
        changes["xy_levels"] = xy_levels
    if canvas != 1:
        changes.update(canvas=canvas, dec_strides=(*base.dec_strides, canvas))
    if not changes:
        return {}
    get_preset(preset, predict_clip=predict_clip, **changes)  # a bad level or canvas is named here
    fc = fc_dim_for_params(preset, count_params(build_model(base)), predict_clip=predict_clip, **changes)
    return {**changes, "fc_dim": fc}
