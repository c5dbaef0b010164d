"""What a run builds before its first step: frames, CLIP targets, the task and the seeded model.

``prepare(cfg, device)`` is shared by the trainer and by :meth:`hnerv_lib.train.run.Run.load`, which
rebuilds a finished run from the frame and target caches without decoding the video again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from hnerv_lib.data.targets import clip_targets
from hnerv_lib.data.video import load_video
from hnerv_lib.models import FullFrameConfig, build_model
from hnerv_lib.train.config import TrainConfig
from hnerv_lib.train.families import make_task


@dataclass
class Setup:
    """Everything built before the first step."""

    cfg: TrainConfig
    task: Any
    model: torch.nn.Module
    split: Any
    video_caption: str
    teacher: str
    device: torch.device
    hardware: Any = None  # utils.precision.Resolved: the precision and memory format, and why


def dist_env() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def run_device(cfg: TrainConfig, local_rank: int) -> torch.device:
    if cfg.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {cfg.device!r} requested but no CUDA device is available")
        return torch.device("cuda", local_rank)
    return torch.device(cfg.device)


def resolve_hardware(cfg: TrainConfig):
    """``cfg.hardware()``, decided once by rank 0 and shared, so every DDP process trains alike."""
    hw = cfg.hardware() if not dist.is_initialized() or dist.get_rank() == 0 else None
    if dist.is_initialized() and dist.get_world_size() > 1:
        box = [hw]
        dist.broadcast_object_list(box, src=0)
        hw = box[0]
    return hw


def inputs(cfg: TrainConfig, cache_dir: str | Path = "data/cache", progress: bool = True):
    """``(video, split, pool, targets, teacher)``: the frames, the split, the window pool (None without
    one) and the CLIP targets (None without a head) a run of ``cfg`` trains on, from the caches (made on a
    miss), and the teacher in words."""
    model_cfg = cfg.model_config()
    video = load_video(cfg.video_spec(), cache_dir)
    if isinstance(model_cfg, FullFrameConfig) and tuple(model_cfg.frame_hw) != video.frame_hw:
        raise ValueError(f"model {cfg.model!r} outputs {model_cfg.frame_hw[0]}x{model_cfg.frame_hw[1]} frames but the "
                         f"video is {video.frame_hw[0]}x{video.frame_hw[1]}: set size or pick a matching preset")
    split = cfg.split_rule().indices(video.num_frames)
    pool = cfg.pool()
    if pool is not None:  # random windows on the training frames only: the others are never drawn
        pool = replace(pool, frames=tuple(int(f) for f in split.train))
    targets, teacher = None, "none (no CLIP head)"
    if model_cfg.predict_clip:  # with a window pool: every pool window's embedding, the grid's among them
        t = clip_targets(video, pool or cfg.geometry(), cfg.teacher_spec(), cache_dir=cache_dir, progress=progress)
        targets, teacher = t.emb, t.describe_teacher()
    return video, split, pool, targets, teacher


def warm_caches(configs, cache_dir: str | Path = "data/cache", progress: bool = True) -> int:
    """Make the frame and CLIP-target caches the runs of ``configs`` read, here, once per distinct input
    (video, split, grid or pool, teacher); returns how many distinct inputs there were.

    Runs sent to jobs then find their inputs cached: the teacher runs once with this process's threads
    instead of inside a job that shares the cores (or in several jobs at once). An input that cannot be
    made is left to its runs, which fail on it and record why.
    """
    seen = set()
    for cfg in configs:
        clip = cfg.model_config().predict_clip
        key = repr((cfg.video_spec(), cfg.split_rule(), cfg.geometry(), cfg.pool(), clip, clip and cfg.teacher_spec()))
        if key not in seen:
            seen.add(key)
            try:
                inputs(cfg, cache_dir, progress)
            except Exception:  # noqa: BLE001 - the run's own prepare() raises it again, into its record
                pass
    return len(seen)


def prepare(cfg: TrainConfig, device: torch.device, cache_dir: str | Path = "data/cache", progress: bool = True) -> Setup:
    """Load frames and CLIP targets (cached), build the task and the seeded model.

    ``precision`` / ``channels_last`` "auto" are resolved here; the returned ``Setup.cfg`` holds the
    concrete values and ``Setup.hardware`` the reason.
    """
    hw = cfg.hardware()  # no collective here: DDP ranks reach prepare() at different times
    cfg = replace(cfg, precision=hw.precision, channels_last=hw.channels_last)
    model_cfg = cfg.model_config()
    video, split, pool, targets, teacher = inputs(cfg, cache_dir, progress)
    if targets is not None:
        targets = targets.to(device)
    windows = cfg.geometry().windows(video.frame_hw)
    extra = {"pool": pool.windows_per_frame(video.frame_hw, video.num_frames)} if pool else {}
    task = make_task(model_cfg, video.float_frames().to(device), targets, windows, split.train, cfg.loss,
                     cfg.clip_sample, **extra)
    torch.manual_seed(cfg.seed)  # the same init in every process and every resume
    model = build_model(model_cfg).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return Setup(cfg, task, model, split, video.describe(), teacher, device, hw)


def autocast(cfg: TrainConfig, device: torch.device):
    """bf16 autocast when the run's (resolved) precision is bf16; a disabled context otherwise."""
    return cfg.hardware().autocast(device)
