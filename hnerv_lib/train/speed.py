"""Training speed timed alone: seconds per epoch of a configuration, measured in this process.

A run's own epoch times say how fast it trained where it trained, which may be a local job sharing the
cores with another (one thread each). The report compares designs by their training speed, so it times
each design here instead: on a fresh model, one design after the other, with the report's one timer
(warm-up, median of >= 5 repeats, quartiles), at the precision and memory format the run resolved to and
with this process's threads. Speed depends on the architecture, the batch, the precision and the threads,
not on the seed or the weights, so one measurement serves every seed; the runs may then train anywhere.

An epoch is the trainer's own (:func:`~hnerv_lib.train.trainer.run_epoch`: every step, no evaluation, as
the runs' ``seconds`` column). Runs start with pixel-only epochs (``clip_warmup_epochs``), which skip the
CLIP head: both kinds are timed, and :meth:`EpochSpeed.epoch_seconds` gives a schedule's seconds per epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from hnerv_lib.train.config import TrainConfig
from hnerv_lib.train.setup import prepare, run_device
from hnerv_lib.train.trainer import make_optimizer, run_epoch
from hnerv_lib.utils.timing import MIN_REPEATS, Timing, time_call

__all__ = ["EpochSpeed", "measure_epoch_speed"]


@dataclass(frozen=True)
class EpochSpeed:
    """Seconds per training epoch of one configuration, timed alone.

    ``clip``: an epoch with the CLIP loss on (the bulk of a run; any epoch when the run has no CLIP loss);
    ``pixel``: a pixel-only warm-up epoch (equal to ``clip`` when there is no warm-up or no CLIP loss).
    """

    clip: Timing
    pixel: Timing
    threads: int
    precision: str
    channels_last: bool

    @property
    def s_per_epoch(self) -> float:
        """Median seconds of an epoch with the CLIP loss on: the run's typical epoch."""
        return self.clip.median_s

    def epoch_seconds(self, cfg: TrainConfig, epochs: Optional[int] = None) -> list[float]:
        """Seconds of each of the first ``epochs`` (default: all) epochs of ``cfg``'s schedule."""
        n = cfg.epochs if epochs is None else int(epochs)
        return [self.pixel.median_s if e < cfg.clip_warmup_epochs else self.clip.median_s for e in range(n)]

    def train_s(self, cfg: TrainConfig) -> float:
        """Seconds of training ``cfg`` (every epoch, no evaluation) at this speed."""
        return float(sum(self.epoch_seconds(cfg)))

    def describe(self) -> str:
        """One line: the median, its quartiles and how it was measured."""
        c = self.clip
        return (f"{c.median_s:.3f} s/epoch (quartiles {c.q1_s:.3f}-{c.q3_s:.3f}; median of {len(c.runs_s)} epochs "
                f"timed alone after {c.warmup} warm-up, {self.threads} threads, {self.precision}"
                f"{', channels_last' if self.channels_last else ''})")

    def to_dict(self) -> dict[str, Any]:
        return {"clip": self.clip.to_dict(), "pixel": self.pixel.to_dict(), "threads": self.threads,
                "precision": self.precision, "channels_last": self.channels_last}


def measure_epoch_speed(cfg: TrainConfig, cache_dir: str | Path = "data/cache", repeats: int = MIN_REPEATS,
                        warmup: int = 1) -> EpochSpeed:
    """Time ``cfg``'s training epochs in this process on a fresh model (seeded as the run's), ``warmup``
    untimed epochs then ``repeats`` timed ones, for each epoch kind the run has.

    The frames and targets come from the caches; ``precision``/``channels_last`` "auto" resolve as the
    trainer resolves them (pass a finished run's stored config to time exactly what it trained).
    The global random state is left as it was.
    """
    device = run_device(cfg, 0)
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        s = prepare(cfg, device, cache_dir, progress=False)
        model = s.model.train()
        opt = make_optimizer(model, s.cfg.lr, device)
        sync = torch.cuda.synchronize if device.type == "cuda" else None
        clip_epoch = min(s.cfg.clip_warmup_epochs, s.cfg.epochs - 1)  # the first epoch with the CLIP loss on
        clip, _ = time_call(lambda: run_epoch(s, model, opt, clip_epoch), repeats, warmup, sync)
        has_warmup = s.task.targets is not None and s.cfg.clip_weight > 0 and s.cfg.clip_warmup_epochs > 0
        pixel = time_call(lambda: run_epoch(s, model, opt, 0), repeats, warmup, sync)[0] if has_warmup else clip
    return EpochSpeed(clip, pixel, torch.get_num_threads(), s.cfg.precision, bool(s.cfg.channels_last))
