"""Typed, frozen, dict-round-trippable configs for the full-frame (HNeRV / NeRV) and patch models.

Architecture facts follow the original HNeRV code (github.com/haochen-rye/HNeRV, ``model_all.py``
class ``HNeRV`` and ``train_nerv_all.py``): a decoder stage ``i`` uses kernel
``min(ks_min + 2 * i, ks_max)``, its width is ``int(max(round(prev / reduce), lower_width))``, and a
HNeRV decoder's feature grid is ``prod(enc_strides) // prod(dec_strides)`` on each side.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

ACTIVATIONS = ("gelu", "relu", "silu", "leaky")  # the activations blocks.make_act can build


def _int(owner: str, name: str, value: Any, low: int = 1) -> int:
    """``value`` as an int >= ``low``, or ValueError naming ``owner.name`` and the value."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{owner}.{name} must be an int >= {low}; got {value!r}")
    return value


def _ints(owner: str, name: str, value: Any, length: int | None = None) -> tuple[int, ...]:
    """``value`` (tuple or list) as a tuple of positive ints, optionally of a fixed length."""
    if isinstance(value, str) or not isinstance(value, (tuple, list)) or not value:
        raise ValueError(f"{owner}.{name} must be a non-empty tuple of ints; got {value!r}")
    if length is not None and len(value) != length:
        raise ValueError(f"{owner}.{name} must have {length} entries; got {value!r}")
    return tuple(_int(owner, name, v) for v in value)


@dataclass(frozen=True)
class KernelSchedule:
    """HNeRV's ``--ks first_min_max``: decoder stage i uses kernel ``min(min + 2 * i, max)``."""

    first: int = 0  # HNeRV's encoder-kernel slot; its ConvNeXt encoder (kernel = stride) ignores it
    min: int = 1  # kernel of decoder stage 0: small where the channel count is largest
    max: int = 5  # cap: later, narrower stages afford larger kernels, up to this

    def __post_init__(self) -> None:
        _int("KernelSchedule", "first", self.first, low=0)
        for name in ("min", "max"):
            value = _int("KernelSchedule", name, getattr(self, name))
            if value % 2 == 0:  # 'same' padding needs odd kernels, else the frame shrinks
                raise ValueError(f"KernelSchedule.{name} must be odd; got {value!r}")
        if self.max < self.min:
            raise ValueError(f"KernelSchedule.max must be >= min; got min={self.min}, max={self.max}")

    def kernel(self, stage: int) -> int:
        """Kernel size of decoder stage ``stage`` (0-based)."""
        return min(self.min + 2 * stage, self.max)

    @classmethod
    def coerce(cls, value: Any) -> KernelSchedule:
        """Accept a KernelSchedule, a 3-sequence ``(first, min, max)`` or its ``asdict`` form."""
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return cls(**value)
        if isinstance(value, (tuple, list)) and len(value) == 3:
            return cls(*value)
        raise ValueError(f"ks must be a KernelSchedule, (first, min, max) or a dict; got {value!r}")


@dataclass(frozen=True, kw_only=True)
class DecoderConfig:
    """Knobs shared by every model: the FC stem, the NeRV decoder and the heads."""

    KIND: ClassVar[tuple[str, ...]] = ()
    kind: str
    fc_dim: int = 64  # stem width; the size-targeting function solves for it (sizing.fc_dim_for_size)
    dec_strides: tuple[int, ...] = (5, 4, 4, 2, 2)  # upsampling per NeRV stage; product = output / grid
    ks: KernelSchedule = KernelSchedule(0, 1, 5)  # HNeRV's balanced "0_1_5" schedule
    reduce: float = 1.2  # width divisor per stage: later stages run at higher resolution
    lower_width: int = 12  # floor on stage widths so the last stages keep some capacity
    dec_blocks: int = 1  # NeRV blocks per stage; extras keep the width and use stride 1
    act: str = "gelu"  # HNeRV's default activation for every block
    pe_base: float = 1.25  # positional-encoding base (NeRV's pe_1.25_80); unused by "hnerv"
    pe_levels: int = 80  # frequencies per coordinate: sin and cos each, so 2 * 80 dims per coordinate
    predict_clip: bool = False  # add the CLIP-embedding head
    clip_dim: int = 512  # CLIP ViT-B/32 embedding width
    clip_hidden: int = 32  # CLIP head hidden width; the final features are only ~12-40 channels wide

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if self.kind not in self.KIND:
            raise ValueError(f"{owner}.kind must be one of {self.KIND}; got {self.kind!r}")
        object.__setattr__(self, "dec_strides", _ints(owner, "dec_strides", self.dec_strides))
        object.__setattr__(self, "ks", KernelSchedule.coerce(self.ks))
        for name in ("fc_dim", "lower_width", "dec_blocks", "pe_levels", "clip_dim", "clip_hidden"):
            _int(owner, name, getattr(self, name))
        for name in ("reduce", "pe_base"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{owner}.{name} must be a number > 0; got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.act not in ACTIVATIONS:
            raise ValueError(f"{owner}.act must be one of {ACTIVATIONS}; got {self.act!r}")
        if not isinstance(self.predict_clip, bool):
            raise ValueError(f"{owner}.predict_clip must be a bool; got {self.predict_clip!r}")

    @property
    def grid_hw(self) -> tuple[int, int]:
        """(h, w) of the feature grid the stem unfolds its channels into, per input position."""
        raise NotImplementedError

    @property
    def in_channels(self) -> int:
        """Channels of the decoder input (the embedding or the positional encoding)."""
        raise NotImplementedError

    def decoder_widths(self) -> tuple[int, ...]:
        """Stem width followed by each stage's width (HNeRV: int(max(round(w / reduce), lower)))."""
        widths = [self.fc_dim]
        for _ in self.dec_strides:
            widths.append(int(max(round(widths[-1] / self.reduce), self.lower_width)))
        return tuple(widths)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (tuples and a nested ks dict) for checkpoints and JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Inverse of ``to_dict`` (JSON lists accepted); unknown keys raise ValueError."""
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__}.from_dict needs a dict; got {data!r}")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"{cls.__name__}.from_dict got unknown keys {unknown}")
        return cls(**data)


@dataclass(frozen=True, kw_only=True)
class FullFrameConfig(DecoderConfig):
    """A whole-frame model: "hnerv" encodes the frame, "nerv" positionally encodes the frame index."""

    KIND: ClassVar[tuple[str, ...]] = ("hnerv", "nerv")
    kind: str = "hnerv"
    frame_hw: tuple[int, int] = (640, 1280)  # the paper's centre crop of Bunny
    enc_strides: tuple[int, ...] = (5, 4, 4, 2, 2)  # ConvNeXt downsampling; 640x1280 -> 2x4 embedding
    enc_dim: int = 64  # width of every encoder stage but the last (HNeRV --enc_dim 64_16)
    embed_ch: int = 16  # embedding channels (the last encoder stage), stored per frame
    enc_blocks: int = 1  # ConvNeXt blocks per encoder stage (HNeRV --num_blks 1_1)
    fc_hw: tuple[int, int] | None = None  # nerv only: stem grid; hnerv derives it from the strides
    clip_stride: int = 8  # average-pool features before the CLIP head: a 512-d map at full res is huge

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        object.__setattr__(self, "frame_hw", _ints(owner, "frame_hw", self.frame_hw, 2))
        object.__setattr__(self, "enc_strides", _ints(owner, "enc_strides", self.enc_strides))
        for name in ("enc_dim", "embed_ch", "enc_blocks", "clip_stride"):
            _int(owner, name, getattr(self, name))
        if self.kind == "nerv":
            if self.fc_hw is None:
                raise ValueError(f"{owner}.fc_hw is required for kind 'nerv' (e.g. (8, 16)); got None")
            object.__setattr__(self, "fc_hw", _ints(owner, "fc_hw", self.fc_hw, 2))
        elif self.fc_hw is not None:
            raise ValueError(f"{owner}.fc_hw must be None for 'hnerv' (set by the strides); got {self.fc_hw!r}")
        self._check_geometry(owner)

    def _check_geometry(self, owner: str) -> None:
        """The strides must turn the input into exactly ``frame_hw`` pixels."""
        h, w = self.frame_hw
        enc, dec = math.prod(self.enc_strides), math.prod(self.dec_strides)
        if self.kind == "hnerv" and (h % enc or w % enc or enc % dec):
            raise ValueError(
                f"{owner}: frame {h}x{w} and enc_strides {self.enc_strides} (product {enc}) must divide, "
                f"and dec_strides {self.dec_strides} (product {dec}) must divide {enc}"
            )
        gh, gw = self.grid_hw
        if self.kind == "nerv" and (gh * dec, gw * dec) != (h, w):
            raise ValueError(f"{owner}: fc_hw {self.fc_hw} x dec_strides product {dec} must equal frame {h}x{w}")
        if self.predict_clip and (h % self.clip_stride or w % self.clip_stride):
            raise ValueError(f"{owner}.clip_stride {self.clip_stride} must divide frame {h}x{w}")

    @property
    def grid_hw(self) -> tuple[int, int]:
        """nerv: ``fc_hw``; hnerv: (r, r) with r = prod(enc_strides) // prod(dec_strides), as in HNeRV."""
        if self.fc_hw is not None:
            return self.fc_hw
        side = math.prod(self.enc_strides) // math.prod(self.dec_strides)
        return (side, side)

    @property
    def embed_hw(self) -> tuple[int, int]:
        """Spatial size of the hnerv embedding, e.g. 2x4 at 640x1280 with strides 5,4,4,2,2."""
        enc = math.prod(self.enc_strides)
        return (self.frame_hw[0] // enc, self.frame_hw[1] // enc)

    @property
    def in_channels(self) -> int:
        """hnerv: embedding channels; nerv: 2 * pe_levels (sin and cos of the frame index)."""
        return self.embed_ch if self.kind == "hnerv" else 2 * self.pe_levels


@dataclass(frozen=True, kw_only=True)
class PatchConfig(DecoderConfig):
    """A patch model: (t, x, y) -> positional encoding -> FC grid -> NeRV decoder -> one patch."""

    KIND: ClassVar[tuple[str, ...]] = ("patch",)
    kind: str = "patch"
    patch_hw: tuple[int, int] = (80, 80)  # Bunny 160x320 in a 2x4 grid
    fc_hw: tuple[int, int] = (2, 2)  # stem grid; fc_hw x prod(dec_strides) = patch_hw
    dec_strides: tuple[int, ...] = (5, 2, 2, 2)  # 2 x 5*2*2*2 = 80
    ks: KernelSchedule = KernelSchedule(0, 3, 3)  # HNeRV's argparse default, which the CPU fork ran with
    reduce: float = 1.5  # the fork's width divisor per stage
    predict_clip: bool = True  # a patch model always learns its patch's CLIP embedding unless told not to
    xy_levels: int = 0  # positional-encoding frequencies of x and y (pe_levels stays t's); 0 = pe_levels, the fork's
    canvas: int = 1  # the decoder's output side in patches, centred on the patch (2: a 2x canvas; off-grid = a crop)

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        object.__setattr__(self, "patch_hw", _ints(owner, "patch_hw", self.patch_hw, 2))
        object.__setattr__(self, "fc_hw", _ints(owner, "fc_hw", self.fc_hw, 2))
        if isinstance(self.xy_levels, bool) or not isinstance(self.xy_levels, int) or self.xy_levels < 0:
            raise ValueError(f"{owner}.xy_levels must be an int >= 0 (0: the same as pe_levels); got {self.xy_levels!r}")
        if isinstance(self.canvas, bool) or not isinstance(self.canvas, int) or self.canvas < 1:
            raise ValueError(f"{owner}.canvas must be an int >= 1 (1: the decoder outputs the patch); got {self.canvas!r}")
        if self.canvas > 1 and any((self.canvas - 1) * side % 2 for side in self.patch_hw):
            raise ValueError(f"{owner}: a canvas of {self.canvas} patches must centre the {self.patch_hw} patch on "
                             f"whole pixels: (canvas - 1) x each patch side must be even")
        dec = math.prod(self.dec_strides)
        if (self.fc_hw[0] * dec, self.fc_hw[1] * dec) != self.canvas_hw:
            raise ValueError(
                f"{owner}: fc_hw {self.fc_hw} x dec_strides product {dec} must equal the decoder's output "
                f"{self.canvas_hw} (patch_hw {self.patch_hw} x canvas {self.canvas})"
            )

    @property
    def canvas_hw(self) -> tuple[int, int]:
        """The decoder's output size: ``canvas`` x ``patch_hw``, centred on the patch."""
        return (self.canvas * self.patch_hw[0], self.canvas * self.patch_hw[1])

    @property
    def margin_hw(self) -> tuple[int, int]:
        """Pixels of canvas on each side of the patch: (canvas - 1) x patch / 2 (0 without a canvas)."""
        return ((self.canvas - 1) * self.patch_hw[0] // 2, (self.canvas - 1) * self.patch_hw[1] // 2)

    @property
    def grid_hw(self) -> tuple[int, int]:
        """The stem grid ``fc_hw``."""
        return self.fc_hw

    @property
    def in_channels(self) -> int:
        """sin and cos of t at ``pe_levels`` frequencies and of x and y at ``spatial_levels`` each."""
        return 2 * self.pe_levels + 2 * 2 * self.spatial_levels

    @property
    def spatial_levels(self) -> int:
        """Frequencies of the x and y encodings: ``xy_levels``, or ``pe_levels`` when that is 0."""
        return self.xy_levels or self.pe_levels


ModelConfig = FullFrameConfig | PatchConfig


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild either config from its ``to_dict()`` form, dispatching on ``kind``."""
    kind = data.get("kind") if isinstance(data, dict) else None
    for cls in (FullFrameConfig, PatchConfig):
        if kind in cls.KIND:
            return cls.from_dict(data)
    raise ValueError(f"config dict needs kind in ('hnerv', 'nerv', 'patch'); got {kind!r}")
