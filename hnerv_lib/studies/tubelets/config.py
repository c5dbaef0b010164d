"""The video classifier's typed config, overridable from ``APPCONFIG__<FIELD>`` environment variables.

    APPCONFIG__USE_3D_PATCH_EMBED=true APPCONFIG__TUBELET_SIZE=2 python -m hnerv_lib.action train ...

Every field of ``ViTConfig`` can be set this way; the value goes through the project's one parser
(``hnerv_lib.utils.parse``) as the field's type, and a value that does not parse, or a variable
naming no field, is one ``ConfigError`` naming both.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping, Optional

from hnerv_lib.utils.parse import ConfigError, from_environ, parse_value, specs

ENV_PREFIX = "APPCONFIG__"
ATTENTION = ("joint", "divided")  # ViTConfig.attention: ViViT's joint space-time, TimeSformer's divided


@dataclass(frozen=True)
class ViTConfig:
    """A ViT video classifier: 2D patches per frame (default) or 3D tubelets spanning frames."""

    use_3d_patch_embed: bool = False  # False: Conv2d per frame; True: Conv3d over (tubelet_size, P, P) cubes
    patch_size: int = 16  # spatial patch side P (ViT-B/16, the seed)
    tubelet_size: int = 2  # frames per tubelet (3D only); ViViT and VideoMAE use 2
    image_size: int = 224  # square frame side; must be a multiple of patch_size
    num_frames: Optional[int] = None  # frames per clip; None: the model's constructor argument decides
    in_channels: int = 3  # RGB
    width: int = 768  # token dimension (ViT-B)
    depth: int = 12  # transformer layers
    heads: int = 12  # attention heads; width must divide by it
    mlp_ratio: float = 4.0  # MLP hidden = width x this
    num_classes: int = 400  # Kinetics-400 by default; the arrow-of-time task uses 2
    dropout: float = 0.0  # dropout in the encoder layers and before the head
    attention: str = "joint"  # joint: every token attends to every token (ViViT); divided: over time at each
    #                           patch position, then over space within each frame (TimeSformer), every layer
    causal: bool = False  # attention over time sees only the token's own and earlier time slots

    def __post_init__(self) -> None:
        for name in ("patch_size", "tubelet_size", "image_size", "in_channels", "width", "depth", "heads",
                     "num_classes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"ViTConfig.{name} must be an int >= 1; got {value!r}")
        if self.num_frames is not None and (isinstance(self.num_frames, bool) or not isinstance(self.num_frames, int)
                                            or self.num_frames < 1):
            raise ConfigError(f"ViTConfig.num_frames must be None or an int >= 1; got {self.num_frames!r}")
        if self.image_size % self.patch_size:
            raise ConfigError(f"ViTConfig.image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.width % self.heads:
            raise ConfigError(f"ViTConfig.width {self.width} is not divisible by heads {self.heads}")
        if self.attention not in ATTENTION:
            raise ConfigError(f"ViTConfig.attention must be one of {list(ATTENTION)}; got {self.attention!r}")
        if not isinstance(self.causal, bool):
            raise ConfigError(f"ViTConfig.causal must be a bool; got {self.causal!r}")
        if not 0.0 <= self.dropout < 1.0 or self.mlp_ratio <= 0:
            raise ConfigError(f"ViTConfig needs 0 <= dropout < 1 and mlp_ratio > 0; got dropout={self.dropout!r}, "
                              f"mlp_ratio={self.mlp_ratio!r}")

    @property
    def embedding(self) -> str:
        """Human name of the patch embedding: ``2D patch embedding`` or ``3D tubelets (t=2)``."""
        return f"3D tubelets (t={self.tubelet_size})" if self.use_3d_patch_embed else "2D patch embedding"

    @property
    def attention_name(self) -> str:
        """Human name of the attention: ``joint space-time attention`` or ``divided space-time attention,
        causal in time``."""
        return f"{self.attention} space-time attention" + (", causal in time" if self.causal else "")

    @property
    def frames_per_token(self) -> int:
        """Frames one token spans: tubelet_size for 3D, 1 for 2D."""
        return self.tubelet_size if self.use_3d_patch_embed else 1

    def to_dict(self) -> dict[str, Any]:
        """JSON/checkpoint form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ViTConfig:
        """Rebuild from ``to_dict``; an unknown key is an error naming it."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"unknown ViTConfig keys {unknown}")
        return cls(**data)


# Named presets; a test pins each one's parameter count. Each knob's "why" is in ViTConfig above.
PRESETS: dict[str, ViTConfig] = {
    "vit-b": ViTConfig(),  # ViT-B/16 on 16 x 224 x 224 clips: the seed's and ViViT's setting
    "tiny": ViTConfig(image_size=32, patch_size=8, width=64, depth=2, heads=4, num_classes=2),  # CPU arrow of time
    "vit-tiny": ViTConfig(image_size=32, patch_size=8, width=16, depth=1, heads=2, mlp_ratio=2.0, num_classes=2),  # tests
}


def get_preset(name: str) -> ViTConfig:
    """A named ViTConfig; an unknown name lists the known ones."""
    if name not in PRESETS:
        raise ConfigError(f"unknown model preset {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[name]


def token_grid(cfg: ViTConfig, num_frames: Optional[int]) -> tuple[int, int, int]:
    """(temporal, height, width) token grid for clips of ``num_frames`` frames, or a ConfigError."""
    if num_frames is None:
        if cfg.use_3d_patch_embed:
            raise ConfigError("num_frames must be specified when using 3D patch embedding "
                              "(LSViTForAction(config, num_frames=16) or APPCONFIG__NUM_FRAMES)")
        raise ConfigError("num_frames must be specified: the learned position table has one entry per (frame, patch)")
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ConfigError(f"num_frames must be an int >= 1; got {num_frames!r}")
    t = cfg.frames_per_token
    if num_frames % t:
        raise ConfigError(f"num_frames {num_frames} is not divisible by tubelet_size {t}: "
                          f"3D tubelets must tile the clip exactly")
    side = cfg.image_size // cfg.patch_size
    return num_frames // t, side, side


def from_env(base: ViTConfig = ViTConfig(), environ: Optional[Mapping[str, str]] = None) -> ViTConfig:
    """``base`` with every ``APPCONFIG__<FIELD>`` variable of ``environ`` (default os.environ) applied."""
    raw = from_environ(ENV_PREFIX, os.environ if environ is None else environ)
    unknown = sorted(ENV_PREFIX + k.upper() for k in raw if k not in specs(ViTConfig))
    if unknown:
        raise ConfigError(f"{', '.join(unknown)} names no ViTConfig field; known: "
                          f"{sorted(ENV_PREFIX + f.name.upper() for f in fields(ViTConfig))}")
    overrides = {k: parse_value(ENV_PREFIX + k.upper(), v, specs(ViTConfig)[k]) for k, v in raw.items()}
    try:
        return replace(base, **overrides)
    except ConfigError as err:
        raise ConfigError(f"{err} (from environment: {sorted(ENV_PREFIX + k.upper() for k in overrides)})") from None
