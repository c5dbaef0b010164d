"""HNeRV / NeRV full-frame models and the patch model, with CLIP heads, configs, sizing and presets."""

from .blocks import (
    ConvNeXtEncoder,
    NeRVBlock,
    NeRVDecoder,
    PositionalEncoding,
    Stem,
    make_act,
)
from .config import (
    ACTIVATIONS,
    DecoderConfig,
    FullFrameConfig,
    KernelSchedule,
    ModelConfig,
    PatchConfig,
    config_from_dict,
)
from .full_frame import FullFrameModel, sample_clip
from .heads import ClipMapHead, ClipVectorHead, RGBHead
from .patch import PatchModel
from .registry import (BUNNY_FRAMES, PRESETS, build_model, decoder_params, fc_dim_for_factor, fc_dim_for_params,
                       get_preset, list_presets, patch_overrides)
from .sizing import (
    PARTS,
    count_params,
    embedding_numbers_per_frame,
    fc_dim_for_size,
    paper_size,
    param_breakdown,
)

__all__ = [
    "ACTIVATIONS", "BUNNY_FRAMES", "PARTS", "PRESETS",
    "ClipMapHead", "ClipVectorHead", "ConvNeXtEncoder", "DecoderConfig", "FullFrameConfig",
    "FullFrameModel", "KernelSchedule", "ModelConfig", "NeRVBlock", "NeRVDecoder", "PatchConfig",
    "PatchModel", "PositionalEncoding", "RGBHead", "Stem",
    "build_model", "config_from_dict", "count_params", "decoder_params", "embedding_numbers_per_frame",
    "fc_dim_for_factor", "fc_dim_for_params", "fc_dim_for_size", "patch_overrides",
    "get_preset", "list_presets", "make_act", "paper_size", "param_breakdown", "sample_clip",
]
