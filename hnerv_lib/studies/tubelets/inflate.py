"""Inflate a trained 2D-patch model into a 3D-tubelet model (ViViT's filter inflation).

Patch embedding, ``W2`` of shape (D, C, P, P) becomes ``W3`` of shape (D, C, t, P, P):

* ``"central"``: ``W3[:, :, t // 2] = W2``, zeros elsewhere (ViViT's central-frame initialisation;
  for even t the later of the two middle frames). The tubelet sees one frame, exactly as the 2D model.
* ``"average"``: ``W3[:, :, k] = W2 / t`` for every k (ViViT's filter inflation / I3D). On frames that
  do not change within a tubelet, the tubelet's embedding equals the 2D embedding of that frame.

Position embeddings: the 2D table has T x S entries, the 3D table (T/t) x S; entry (j, s) of the 3D
table is the **mean of the 2D entries (j*t + k, s), k < t** — the t frames the tubelet covers. Every
other tensor (encoder, norm, head) is copied unchanged; it does not depend on the number of time slots,
whichever the attention (joint or divided, causal or not).

What then holds exactly (eval mode; tests/studies/test_action.py checks each):

1. t = 1 (either mode): the 3D model's logits equal the 2D model's on any clip.
2. t > 1, either mode, a clip constant within each tubelet window: the 3D logits equal those of the
   2D model with its position table replaced by the window-averaged one (``average_positions``),
   evaluated on the full T-frame clip. The 2D model then sees every 3D token t times, and softmax
   attention and mean pooling are invariant to duplicating a whole token set.
   Not under ``causal`` attention: there the first frame of a window sees one copy of its window, the
   last sees t, so the duplicated token sets differ from query to query.
3. t > 1, ``"central"``, any clip: the 3D logits equal those of a 2D model built for T/t frames with
   the window-averaged position table, evaluated on the central frames ``x[:, t // 2 :: t]``.

The unmodified 2D model does *not* reproduce the 3D logits when t > 1 (its position embeddings differ
within a window), which is why the inflated model is fine-tuned.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from hnerv_lib.studies.tubelets.config import ConfigError
from hnerv_lib.studies.tubelets.model import LSViTForAction

INFLATION_MODES = ("central", "average")
PATCH_WEIGHT = "patch_embed.proj.weight"


def inflate_patch_weight(w2: torch.Tensor, tubelet_size: int, mode: str) -> torch.Tensor:
    """(D, C, P, P) Conv2d weight -> (D, C, t, P, P) Conv3d weight by ``mode`` (central | average)."""
    if mode not in INFLATION_MODES:
        raise ConfigError(f"inflation mode must be one of {INFLATION_MODES}; got {mode!r}")
    if mode == "average":
        return w2.unsqueeze(2).repeat(1, 1, tubelet_size, 1, 1) / tubelet_size
    w3 = w2.new_zeros(w2.shape[0], w2.shape[1], tubelet_size, *w2.shape[2:])
    w3[:, :, tubelet_size // 2] = w2
    return w3


def average_positions(pos: torch.Tensor, frames: int, tubelet_size: int) -> torch.Tensor:
    """(1, frames * S, D) per-frame table -> (1, frames/t * S, D): mean over each window of t frames."""
    _, n, d = pos.shape
    if n % frames or frames % tubelet_size:
        raise ConfigError(f"a position table of {n} tokens over {frames} frames cannot be averaged in windows "
                          f"of {tubelet_size} frames")
    s = n // frames
    return pos.reshape(1, frames // tubelet_size, tubelet_size, s, d).mean(dim=2).reshape(1, -1, d)


def inflate(model2d: LSViTForAction, tubelet_size: int, mode: str = "central") -> LSViTForAction:
    """A 3D-tubelet model (same width, depth, frames) initialised from a 2D-patch model."""
    if model2d.config.use_3d_patch_embed:
        raise ConfigError(f"inflate needs a model with 2D patch embedding; got {model2d.config.embedding}")
    cfg3d = replace(model2d.config, use_3d_patch_embed=True, tubelet_size=tubelet_size)
    model3d = LSViTForAction(cfg3d)  # checks num_frames % tubelet_size
    state = dict(model2d.state_dict())
    state[PATCH_WEIGHT] = inflate_patch_weight(state[PATCH_WEIGHT], tubelet_size, mode)
    state["pos_embed"] = average_positions(state["pos_embed"], model2d.num_frames, tubelet_size)
    model3d.load_state_dict(state)
    return model3d.train(model2d.training)
