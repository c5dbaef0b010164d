"""Counting and timing the classifier: tokens, parameters, FLOPs, clips/s, tensor memory, confidence intervals."""

from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

import torch

from hnerv_lib.studies.tubelets.config import ViTConfig
from hnerv_lib.studies.tubelets.model import LSViTForAction, trainable_params
from hnerv_lib.utils.flops import count_flops
from hnerv_lib.utils.memory import peak_tensor_mb
from hnerv_lib.utils.timing import time_call
from hnerv_lib.eval.verdict import t_interval  # noqa: F401  (re-exported: the study and its tests import it here)


def example_clip(model: LSViTForAction, batch: int = 1) -> torch.Tensor:
    """A zero clip batch of the model's input shape, on the model's device."""
    c = model.config
    device = next(model.parameters()).device
    return torch.zeros(batch, model.num_frames, c.in_channels, c.image_size, c.image_size, device=device)


def measured_tokens(model: LSViTForAction) -> int:
    """Token count read off the patch embedding's actual output for one clip."""
    with torch.no_grad():
        return model.embed(example_clip(model)).shape[1]


def flops_per_clip(model: LSViTForAction) -> int:
    """Forward FLOPs for one clip (2 per multiply-add), counted by torch's FlopCounterMode.

    Counted on a shape-only twin built from the model's config on the ``meta`` device, in train mode:
    there attention runs as plain batched matmuls the counter sees, while the fused attention kernels
    of a real CPU or GPU model (and eval mode's fast path) are invisible to it, which would drop the
    part of the cost that grows with the square of the token count. Nothing is computed.
    """
    with torch.device("meta"):
        twin = LSViTForAction(model.config)
    twin.train()
    return count_flops(lambda: twin(example_clip(twin)))


def scale_table(frames: int = 16, image_size: int = 224, patch_size: int = 16, tubelets: Sequence[int] = (1, 2, 4),
                **cfg: Any) -> list[dict[str, Any]]:
    """Tokens, params and GFLOPs of the ViT-B-sized model at 2D and each tubelet size, built on ``meta``."""
    rows = []
    for t in tubelets:
        config = ViTConfig(use_3d_patch_embed=t > 1, tubelet_size=t, image_size=image_size, patch_size=patch_size, **cfg)
        with torch.device("meta"):
            model = LSViTForAction(config, num_frames=frames)
        rows.append({"embedding": config.embedding, "clip": f"{frames} x {image_size}x{image_size}, P={patch_size}",
                     "tokens (model.num_tokens)": model.num_tokens, "tokens (embed output)": measured_tokens(model),
                     "params (M)": round(trainable_params(model) / 1e6, 2), "GFLOPs / clip": round(flops_per_clip(model) / 1e9, 1)})
    return rows


def train_step_memory_mb(model: LSViTForAction, batch: int) -> float:
    """Peak tensor MiB of one forward + backward on ``batch`` clips (activations and gradients)."""
    x = example_clip(model, batch)
    model.train()

    def step() -> None:
        model(x).float().logsumexp(dim=1).mean().backward()

    peak = peak_tensor_mb(step)
    model.zero_grad(set_to_none=True)
    return peak


def _median_seconds(fn: Callable[[], Any], repeats: int) -> float:
    return time_call(fn, repeats)[0].median_s  # the report's one timer: warm-up, median of the repeats


@torch.no_grad()
def inference_clips_per_s(model: LSViTForAction, batch: int = 32, repeats: int = 7) -> float:
    """Clips per second of eval-mode forward passes on one batch (median of ``repeats``)."""
    model.eval()
    x = example_clip(model, batch)
    return batch / _median_seconds(lambda: model(x), repeats)


def train_clips_per_s(model: LSViTForAction, batch: int = 16, repeats: int = 7) -> float:
    """Clips per second of AdamW steps (forward, backward, update) on a copy of ``model`` (median of ``repeats``)."""
    clone = copy.deepcopy(model).train()
    opt = torch.optim.AdamW(clone.parameters(), lr=1e-4)
    x = example_clip(clone, batch)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        clone(x).float().logsumexp(dim=1).mean().backward()
        opt.step()

    return batch / _median_seconds(step, repeats)


