"""Training speed timed alone: seconds per epoch of a configuration, measured in this process.

A run's own epoch times say how fast it trained where it trained, which may be a local job sharing the
cores with another (one thread each). The report compares designs by their training speed, so it times
each design here instead: on a fresh model, designs that are compared round-robin (a drift of the
machine's speed then hits each alike), with the report's one timer
(warm-up, median of >= 5 repeats, quartiles), at the precision and memory format the run resolved to and
with this process's threads. Speed depends on the architecture, the batch, the precision and the threads,
not on the seed or the weights, so one measurement serves every seed; the runs may then train anywhere.

An epoch is the trainer's own (:func:`~hnerv_lib.train.trainer.run_epoch`: every step, no evaluation, as
the runs' ``seconds`` column). Runs start with pixel-only epochs (``clip_warmup_epochs``), which skip the
CLIP head: both kinds are timed, and :meth:`EpochSpeed.epoch_seconds` gives a schedule's seconds per epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch

from hnerv_lib.train.config import TrainConfig
from hnerv_lib.train.setup import prepare, run_device
from hnerv_lib.train.trainer import make_optimizer, run_epoch
from hnerv_lib.utils.timing import MIN_REPEATS, Timing, check_counts, time_call

__all__ = ["EpochSpeed", "measure_epoch_speed", "measure_epoch_speeds"]


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


def measure_epoch_speeds(cfgs: Mapping[str, TrainConfig], cache_dir: str | Path = "data/cache",
                         repeats: int = MIN_REPEATS, warmup: int = 1) -> dict[str, EpochSpeed]:
    """Time the training epochs of several configurations side by side, in this process, each on a fresh
    model (seeded as its run's): ``warmup`` untimed epochs of each kind first, then ``repeats`` rounds in
    which every configuration's epochs are timed once each, round-robin.

    A comparison reads the ratio of these speeds (notebook 05's equal-training-time epochs). Timed one
    design after the other, a change in the machine's speed between the two blocks moves the ratio:
    three whole quick reports of the same code gave full frame / patch 1.18, 1.42 and 1.44, the two
    designs' medians not moving together. Round-robin, such a drift hits every configuration alike, as in
    the precision probe.

    The frames and targets come from the caches; ``precision``/``channels_last`` "auto" resolve as the
    trainer resolves them (pass a finished run's stored config to time exactly what it trained). Each
    configuration's epoch kinds: with the CLIP loss on, and, when its schedule has them, pixel-only
    warm-up epochs. The global random state is left as it was.
    """
    check_counts(repeats, warmup)
    calls: dict[tuple[str, str], Callable[[], Any]] = {}
    setups = {}
    devices = {run_device(c, 0) for c in cfgs.values()}
    sync = torch.cuda.synchronize if any(d.type == "cuda" for d in devices) else None
    forked = sorted({d.index or 0 for d in devices if d.type == "cuda"})
    with torch.random.fork_rng(devices=forked):
        for name, cfg in cfgs.items():
            s = setups[name] = prepare(cfg, run_device(cfg, 0), cache_dir, progress=False)
            model = s.model.train()
            opt = make_optimizer(model, s.cfg.lr, s.device)
            clip_epoch = min(s.cfg.clip_warmup_epochs, s.cfg.epochs - 1)  # the first epoch with the CLIP loss on
            calls[name, "clip"] = partial(run_epoch, s, model, opt, clip_epoch)
            if s.task.targets is not None and s.cfg.clip_weight > 0 and s.cfg.clip_warmup_epochs > 0:
                calls[name, "pixel"] = partial(run_epoch, s, model, opt, 0)
        for _ in range(warmup):  # first calls pay for allocation and kernel selection
            for fn in calls.values():
                fn()
        runs: dict[tuple[str, str], list[float]] = {key: [] for key in calls}
        for _ in range(repeats):
            for key, fn in calls.items():
                runs[key].append(time_call(fn, repeats=1, warmup=0, sync=sync)[0].median_s)
    out = {}
    for name, s in setups.items():
        clip = Timing.of(runs[name, "clip"], warmup)
        pixel = Timing.of(runs[name, "pixel"], warmup) if (name, "pixel") in runs else clip
        out[name] = EpochSpeed(clip, pixel, torch.get_num_threads(), s.cfg.precision, bool(s.cfg.channels_last))
    return out


def measure_epoch_speed(cfg: TrainConfig, cache_dir: str | Path = "data/cache", repeats: int = MIN_REPEATS,
                        warmup: int = 1) -> EpochSpeed:
    """One configuration's :func:`measure_epoch_speeds`."""
    return measure_epoch_speeds({"cfg": cfg}, cache_dir, repeats, warmup)["cfg"]
