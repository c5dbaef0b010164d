"""Self-describing checkpoints: the configs and library version travel inside the file.

``load_checkpoint(path) -> (model, cfg)`` rebuilds the model with no flags. Files are written through
a temp file and a rename, and read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from hnerv_lib import __version__
from hnerv_lib.models import build_model, config_from_dict
from hnerv_lib.train.config import TrainConfig
from hnerv_lib.utils import io
from hnerv_lib.utils.cli import first_line

CHECKPOINT_FORMAT = 1


class CheckpointMismatch(ValueError):
    """A checkpoint holds another model kind or shape than the one asked for (the message names both)."""


def _describe(cfg: dict) -> str:
    size = cfg.get("frame_hw") or cfg.get("patch_hw")
    return f"{cfg.get('kind')} model (fc_dim {cfg.get('fc_dim')}, output {size}, clip head {cfg.get('predict_clip')})"


def save_checkpoint(path: str | Path, model: nn.Module, train_cfg: dict, *, epoch: int,
                    optimizer: Optional[torch.optim.Optimizer] = None, metrics: Optional[dict] = None) -> Path:
    """Write model weights, both configs, the epoch and the optimizer state atomically."""
    model = getattr(model, "module", model)  # unwrap DDP / compile wrappers
    model = getattr(model, "_orig_mod", model)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "hnerv_lib": __version__,
        "model_config": model.cfg.to_dict(),
        "train_config": train_cfg,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "metrics": metrics or {},
    }
    io.torch_save(payload, path)
    return Path(path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict (weights_only load), with a clear error for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only refused it: nothing in it was run
        raise ValueError(f"refused checkpoint {path}: it holds pickled Python objects, not only tensors and plain "
                         f"values, and is not loaded ({first_line(err)})") from err
    except Exception as err:
        raise ValueError(f"cannot read checkpoint {path} (truncated or not a checkpoint): {first_line(err)}") from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an hnerv_lib checkpoint of format {CHECKPOINT_FORMAT}")
    return payload


def check_compatible(payload: dict, model: nn.Module, path: str | Path) -> None:
    """Raise CheckpointMismatch naming both sides if the weights do not fit ``model``."""
    model = getattr(model, "module", model)
    theirs, ours = payload["model_config"], model.cfg.to_dict()
    own_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    their_shapes = {k: tuple(v.shape) for k, v in payload["model"].items()}
    if theirs.get("kind") != ours.get("kind") or own_shapes != their_shapes:
        diff = sorted(k for k in own_shapes.keys() | their_shapes.keys() if own_shapes.get(k) != their_shapes.get(k))
        raise CheckpointMismatch(f"checkpoint {path} holds a {_describe(theirs)}, but this run builds a "
                                 f"{_describe(ours)}; differing tensors: {diff[:4]}{' ...' if len(diff) > 4 else ''}")


def load_weights(path: str | Path, model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None) -> dict:
    """Load a checkpoint into an existing model (and optimizer); returns the raw payload."""
    payload = read_checkpoint(path)
    check_compatible(payload, model, path)
    getattr(model, "module", model).load_state_dict(payload["model"])
    if optimizer is not None and payload.get("optimizer") is not None:
        optimizer.load_state_dict(payload["optimizer"])
    return payload


def load_checkpoint(path: str | Path, device: str = "cpu"):
    """``(model, train_config)`` rebuilt from the file alone; the model is in eval mode."""

    payload = read_checkpoint(path)
    model = build_model(config_from_dict(payload["model_config"]))
    model.load_state_dict(payload["model"])
    return model.to(device).eval(), TrainConfig.from_dict(payload["train_config"])
