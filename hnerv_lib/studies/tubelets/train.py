"""Train and evaluate the video classifier on a ClipSet (AdamW, warm-up + cosine, cross-entropy)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

from hnerv_lib.studies.tubelets.clips import ClipSet
from hnerv_lib.studies.tubelets.model import LSViTForAction
from hnerv_lib.train.schedule import Cosine, set_lr


@dataclass(frozen=True)
class TrainSpec:
    """Optimisation settings of one run."""

    epochs: int = 10  # passes over the train clips
    batch_size: int = 16  # clips per step
    lr: float = 1e-3  # peak AdamW learning rate (small ViTs from scratch tolerate 1e-3)
    weight_decay: float = 0.05  # AdamW decoupled decay, the ViT default
    warmup: float = 0.1  # fraction of steps ramping the lr up: transformers diverge on large first steps
    paired: bool = True  # each clip shares its batch with its time-reversed twin: content cancels, order remains
    flip: bool = True  # random horizontal flips: the arrow of time is mirror-invariant, so free data
    seed: int = 0  # init (when the caller seeds before building) and batch order
    device: str = "cpu"  # torch device

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def to_input(clips: torch.Tensor, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 clips -> float in [-1, 1] on ``device``."""
    return clips.to(device).float().div_(127.5).sub_(1.0)


def fit(model: LSViTForAction, data: ClipSet, spec: TrainSpec,
        on_epoch: Optional[Callable[[int, float], None]] = None) -> dict[str, Any]:
    """Train in place; returns the per-epoch loss, seconds and train clips/s (the optimiser steps only)."""
    model.to(spec.device).train()
    gen = torch.Generator().manual_seed(spec.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    schedule = Cosine(warmup=spec.warmup, power=1.0, floor=0.1)
    steps_per_epoch = -(-len(data) // spec.batch_size)
    total, step, losses, seconds = spec.epochs * steps_per_epoch, 0, [], 0.0
    pairs = data.pairs() if spec.paired else torch.arange(len(data)).reshape(-1, 1)
    for epoch in range(spec.epochs):
        order, running = pairs[torch.randperm(len(pairs), generator=gen)].flatten(), 0.0
        start = time.perf_counter()
        for idx in order.split(spec.batch_size):
            x = to_input(data.clips[idx], spec.device)
            if spec.flip and bool(torch.rand((), generator=gen) < 0.5):
                x = x.flip(-1)
            set_lr(opt, spec.lr, schedule, step / total)
            loss = F.cross_entropy(model(x), data.labels[idx].to(spec.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.item() * len(idx)
            step += 1
        seconds += time.perf_counter() - start
        losses.append(running / len(data))
        if on_epoch is not None:
            on_epoch(epoch, losses[-1])
    model.eval()
    return {"loss": losses, "train_seconds": seconds, "train_clips_per_s": spec.epochs * len(data) / max(seconds, 1e-9)}


@torch.no_grad()
def predict_proba(model: LSViTForAction, data: ClipSet, batch_size: int = 32, device: str = "cpu") -> torch.Tensor:
    """Class probabilities (N, classes) of every clip, in eval mode."""
    model.to(device).eval()
    return torch.cat([model(to_input(data.clips[i : i + batch_size], device)).softmax(dim=1).cpu()
                      for i in range(0, len(data), batch_size)])


def predict(model: LSViTForAction, data: ClipSet, batch_size: int = 32, device: str = "cpu") -> torch.Tensor:
    """Predicted class index of every clip."""
    return predict_proba(model, data, batch_size, device).argmax(dim=1)


def accuracy(preds: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of correct predictions."""
    if preds.shape != labels.shape or preds.numel() == 0:
        raise ValueError(f"accuracy needs equal, non-empty shapes; got {tuple(preds.shape)} and {tuple(labels.shape)}")
    return float((preds == labels).float().mean())
