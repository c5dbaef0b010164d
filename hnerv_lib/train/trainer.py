"""The one trainer for every model: ``train(cfg, run_dir) -> summary``, plus a thin CLI.

    python -m hnerv_lib.train --preset hnerv-tiny --set epochs=8 --set clip_weight=0.5
    torchrun --nproc_per_node=2 -m hnerv_lib.train --preset hnerv-tiny # DDP (gloo on CPU, NCCL on GPU)

The run directory and its files belong to :class:`hnerv_lib.train.run.Run`. Rerunning a finished run
returns its summary; an interrupted one resumes from its checkpoint (only with the same configuration)
and ends with the metrics of an uninterrupted run.
"""

from __future__ import annotations

import importlib.util
import math
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import pandas as pd
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from hnerv_lib import __version__
from hnerv_lib.codec.bitstream import compress
from hnerv_lib.codec.quantise import QuantConfig
from hnerv_lib.data.teacher import check_teacher
from hnerv_lib.data.video import resolve_source
from hnerv_lib.eval.frames import evaluate_frames, summarize
from hnerv_lib.eval.metrics import psnr
from hnerv_lib.models import FullFrameConfig, PatchConfig, build_model, count_params
from hnerv_lib.train.checkpoint import load_weights, save_checkpoint
from hnerv_lib.train.config import TrainConfig
from hnerv_lib.train.run import Run
from hnerv_lib.train.schedule import set_lr
from hnerv_lib.train.setup import Setup, autocast, dist_env, prepare, resolve_hardware, run_device

__all__ = ["TrainingDiverged", "Setup", "make_optimizer", "prepare", "run", "run_epoch", "train", "validate"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch, the step and the last good checkpoint."""


def _epoch_items(cfg: TrainConfig, n: int, epoch: int) -> torch.Tensor:
    """The epoch's item order: a function of (seed, epoch) only, so resumed runs see the same batches."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch))


def run_epoch(s: Setup, model, opt, epoch: int, rank: int = 0, world: int = 1, ckpt: Optional[Path] = None) -> dict[str, float]:
    """One training epoch of ``model`` (the CLIP loss on from epoch ``clip_warmup_epochs``); its mean losses."""
    cfg, task = s.cfg, s.task
    clip_weight = cfg.clip_weight if (task.targets is not None and epoch >= cfg.clip_warmup_epochs) else 0.0
    order = _epoch_items(cfg, task.num_items(), epoch)[: task.items_per_epoch()]
    steps = math.ceil(len(order) / cfg.batch_size)
    sums = {"loss": 0.0, "pixel_loss": 0.0, "clip_loss": 0.0}
    for step in range(steps):
        batch = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        if world > 1 and len(batch) % world:  # wrap-pad so every process gets the same count
            batch = torch.cat([batch, order[: world - len(batch) % world]])
        lr = set_lr(opt, cfg.lr, cfg.schedule, (epoch + step / steps) / cfg.epochs)
        with autocast(cfg, s.device):
            loss = task.step_loss(model, batch[rank::world].to(s.device), clip_weight)
        if not torch.isfinite(loss.total):
            raise TrainingDiverged(f"loss became {loss.total.item()} at epoch {epoch + 1}, step {step + 1}; "
                                   f"last good checkpoint: {ckpt if ckpt is not None and ckpt.is_file() else 'none yet'}")
        opt.zero_grad(set_to_none=True)
        loss.total.backward()
        opt.step()
        sums["loss"] += loss.total.item()
        sums["pixel_loss"] += loss.pixel.item()
        sums["clip_loss"] += loss.clip.item() if loss.clip is not None else 0.0
    if world > 1:  # log the loss of the whole batch, not only this process's share
        total = torch.tensor(list(sums.values()), dtype=torch.float64)
        dist.all_reduce(total)
        sums = dict(zip(sums, (total / world).tolist()))
    row = {k: v / steps for k, v in sums.items()}
    return {"epoch": epoch + 1, "lr": lr, "clip_active": clip_weight > 0, **row}


def make_optimizer(model: torch.nn.Module, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """The training optimiser: Adam, fused (one kernel for all parameters, about 1 s/epoch less on the
    cpu-profile patch model) on the CPU and CUDA."""
    return torch.optim.Adam(model.parameters(), lr=lr, fused=device.type in ("cpu", "cuda"))


def _restore(run: Run, model, opt) -> tuple[int, list[dict]]:
    if not run.checkpoint_path.is_file():
        return 0, []
    epoch = load_weights(run.checkpoint_path, model, opt)["epoch"]
    rows = run.metrics().to_dict("records") if run.metrics_path.is_file() else []
    return epoch, [r for r in rows if r["epoch"] <= epoch]


def validate(cfg: TrainConfig) -> None:
    """What the config alone decides, checked before any frame is decoded or the run directory exists:
    the model builds, its frame or patch size matches the training frames (``size``, else ``crop``) and
    the CLIP grid that tiles them, and the CLIP teacher can be loaded (names, files, caches)."""
    model_cfg = cfg.model_config()
    resolve_source(cfg.video)  # an unknown name or a missing path
    frame_hw = cfg.size or cfg.crop  # None: the native size, known only once the video is read
    if frame_hw is not None:
        what = "size" if cfg.size is not None else "crop (size unset)"
        if isinstance(model_cfg, FullFrameConfig) and tuple(model_cfg.frame_hw) != tuple(frame_hw):
            raise ValueError(f"model {cfg.model!r} outputs {model_cfg.frame_hw[0]}x{model_cfg.frame_hw[1]} frames "
                             f"but {what} is {frame_hw[0]}x{frame_hw[1]}: set size or pick a matching preset")
        patch_hw = cfg.geometry().patch_hw(tuple(frame_hw))  # raises when the grid does not divide the frame
        if isinstance(model_cfg, PatchConfig) and tuple(model_cfg.patch_hw) != patch_hw:
            raise ValueError(f"model {cfg.model!r} outputs {model_cfg.patch_hw[0]}x{model_cfg.patch_hw[1]} patches "
                             f"but grid {cfg.grid[0]}x{cfg.grid[1]} cuts {patch_hw[0]}x{patch_hw[1]} patches from "
                             f"{what} {frame_hw[0]}x{frame_hw[1]}: set size or grid, or pick a matching preset")
    if cfg.window_pool and not isinstance(model_cfg, PatchConfig):
        raise ValueError(f"window_pool={cfg.window_pool} draws patch-model training windows, but model "
                         f"{cfg.model!r} is a {model_cfg.kind} model: set window_pool=0")
    if cfg.window_pool and getattr(model_cfg, "canvas", 1) > 1:
        raise ValueError(f"window_pool={cfg.window_pool} and a canvas of {model_cfg.canvas} patches do not combine: "
                         f"the canvas already covers the positions between grid cells; set one of them off")
    if model_cfg.predict_clip:
        check_teacher(cfg.teacher_spec())
    if cfg.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ValueError("tensorboard=true needs the tensorboard package: pip install -e '.[tensorboard]'")


def train(cfg: TrainConfig, run_dir: str | Path, *, cache_dir: str | Path = "data/cache",
          stop_after: Optional[int] = None, progress: bool = True) -> dict[str, Any]:
    """Train (or resume) ``cfg`` in ``run_dir``; returns the summary (also kept in the run directory).

    Nothing is written when the configuration is invalid or the directory holds another configuration;
    a failure after the directory exists is recorded in it (:meth:`Run.record_failure`) and is re-raised.
    """
    run = Run(Path(run_dir))
    rank, world, local_rank = dist_env()
    device = run_device(cfg, local_rank)
    validate(cfg)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    hw = resolve_hardware(cfg)  # the run is identified by what "auto" resolved to here
    cfg = replace(cfg, precision=hw.precision, channels_last=hw.channels_last)
    if rank == 0:
        run.begin(cfg)  # refuses another configuration's directory before touching it
    try:
        return _train(run, cfg, hw, device, rank, world, local_rank, cache_dir, stop_after, progress)
    except Exception as err:
        if rank == 0:
            run.record_failure(err, cfg)
        raise


def _train(run: Run, cfg: TrainConfig, hw, device: torch.device, rank: int, world: int, local_rank: int,
           cache_dir: str | Path, stop_after: Optional[int], progress: bool) -> dict[str, Any]:
    if world > 1 and rank != 0:
        dist.barrier()  # rank 0 builds the caches first; the others then read them
    s = prepare(cfg, device, cache_dir, progress=progress and rank == 0)
    s.hardware = hw  # keep the probe's reason, not the "set explicitly" of the resolved config
    if world > 1 and rank == 0:
        dist.barrier()
    opt = make_optimizer(s.model, cfg.lr, device)
    start, rows = _restore(run, s.model, opt)
    model = s.model
    if world > 1:
        # The CLIP head gets no gradient during the pixel-only warm-up epochs: let DDP allow that.
        unused = s.task.targets is not None and cfg.clip_warmup_epochs > 0
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None, find_unused_parameters=unused)
    if cfg.compile:
        model = torch.compile(model)
    ckpt, frames = run.checkpoint_path, None
    board = _board(run, cfg) if rank == 0 else None
    bar = tqdm(range(start, cfg.epochs), desc=f"train {cfg.model}", disable=not progress or rank != 0,
               initial=start, total=cfg.epochs)
    for epoch in bar:
        t0 = time.perf_counter()
        row = run_epoch(s, model, opt, epoch, rank, world, ckpt)
        row["seconds"] = time.perf_counter() - t0
        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
            frames = evaluate_frames(s.task, s.model, s.split)
            row.update(summarize(frames))
        rows.append(row)
        bar.set_postfix({k: f"{v:.4g}" for k, v in row.items() if k in ("loss", "psnr_train", "psnr_val", "clip_train")})
        if rank == 0:
            run.save_metrics(rows)
            save_checkpoint(ckpt, s.model, cfg.to_dict(), epoch=epoch + 1, optimizer=opt, metrics=row)
            _log(board, row, epoch + 1)
        if stop_after is not None and epoch + 1 >= stop_after and epoch + 1 < cfg.epochs:
            _close(board)
            return {"stopped_after": epoch + 1}
    _close(board)
    return _finish(s, run, rows, frames, rank, world)


# TensorBoard scalar tag of each metrics column (the rest, e.g. clip_active, are not plotted)
BOARD_TAGS = {"loss": "loss/total", "pixel_loss": "loss/pixel", "clip_loss": "loss/clip", "lr": "lr",
              "seconds": "time/seconds_per_epoch", "psnr_train": "psnr/train", "psnr_val": "psnr/val",
              "ms_ssim_train": "ms_ssim/train", "ms_ssim_val": "ms_ssim/val", "clip_train": "clip/train",
              "clip_val": "clip/val"}


def _board(run: Run, cfg: TrainConfig):
    """A SummaryWriter on the run's tb/ folder when the config asks for one (tensorboard is an optional extra)."""
    if not cfg.tensorboard:
        return None
    from torch.utils.tensorboard import SummaryWriter  # the optional extra (validate() checked it is installed)

    return SummaryWriter(log_dir=str(run.tensorboard_dir))


def _log(board, row: dict, epoch: int) -> None:
    if board is None:
        return
    for key, tag in BOARD_TAGS.items():
        value = row.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            board.add_scalar(tag, value, epoch)
    board.flush()


def _close(board) -> None:
    if board is not None:
        board.close()


def _finish(s: Setup, run: Run, rows: list[dict], frames, rank: int, world: int) -> dict[str, Any]:
    if frames is None:  # resumed a run whose last epoch was already done
        frames = evaluate_frames(s.task, s.model, s.split)
    last = {k: v for k, v in rows[-1].items() if not (isinstance(v, float) and math.isnan(v))}
    summary = {
        "run_id": s.cfg.run_id(), "hnerv_lib": __version__, "model": s.cfg.model, "kind": s.model.cfg.kind,
        "params": count_params(s.model), "params_decoder": count_params(s.model, "decoder"),
        "video": s.video_caption, "split": s.split.describe(), "teacher": s.teacher, "epochs": s.cfg.epochs,
        "precision": s.cfg.precision, "channels_last": s.cfg.channels_last, "precision_reason": s.hardware.reason,
        "processes": world, "seconds_per_epoch": float(pd.Series([r["seconds"] for r in rows]).median()),
        "ms_ssim_note": frames.attrs.get("ms_ssim_note", ""), **summarize(frames),
        "final_loss": last["loss"],
    }
    summary.update(divergence_check(s, summary.get("psnr_train")))
    if summary["diverged"] and rank == 0:
        warnings.warn(f"run {summary['run_id']} finished at {summary['psnr_train']:.2f} dB on its training frames, "
                      f"below both its untrained start ({summary['psnr_init']:.2f} dB) and painting them in their mean "
                      f"colour ({summary['psnr_mean_colour']:.2f} dB): it diverged (lr={s.cfg.lr}); its summary says "
                      "diverged: true", RuntimeWarning, stacklevel=2)
    if rank == 0:
        run.save_frames(frames)
        if s.cfg.compress:
            summary["compressed"] = _compressed(run, s)
        run.save_summary(summary)  # last: marks the run finished
    return summary


def divergence_check(s: Setup, psnr_train: Optional[float]) -> dict[str, Any]:
    """Whether a finished run diverged: it ended below both the untrained model and a constant colour.

    ``psnr_init``: the training frames' mean PSNR under the same seeded initialisation the run started
    from (rebuilt here, so a resumed run gets the same number); ``psnr_mean_colour``: painting every
    training frame in their mean colour. ``diverged`` when ``psnr_train`` is below both: the run got
    worse than it began and is beaten by a constant (``lr=10`` on smoke ends at 6.1 dB against 12.8 dB
    for the colour), while a short healthy run (one smoke epoch: 12.2 dB) stays above its start.
    """
    train_ids = s.task.train_frames.to(s.task.frames.device)
    truth = s.task.frames[train_ids].float()
    colour = truth.mean(dim=(0, 2, 3), keepdim=True).expand_as(truth)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s.cfg.seed)  # as setup.prepare seeds the model it trains
        fresh = build_model(s.model.cfg).to(s.task.frames.device).eval()
    start = s.task.reconstruct(fresh, train_ids)[0].float().clamp(0, 1)
    out = {"psnr_init": float(psnr(start, truth).clamp(max=100.0).mean()),
           "psnr_mean_colour": float(psnr(colour, truth).clamp(max=100.0).mean())}
    out["diverged"] = bool(psnr_train is not None and psnr_train < min(out.values()))
    return out


def _compressed(run: Run, s: Setup) -> dict[str, Any]:
    """Write the run's compressed file at its model_bits / embed_bits; the summary's record of it."""
    qcfg = QuantConfig(model_bits=s.cfg.model_bits, embed_bits=s.cfg.embed_bits)
    stats = compress(s.model.eval(), run.compressed_path, s.task.frames.cpu(), grid=s.cfg.geometry(), qcfg=qcfg)
    return {"file": run.compressed_path.name, "bytes": stats.file_bytes, "bpp": stats.bpp, "bpp_no_clip": stats.bpp_no_clip,
            "model_bits": qcfg.model_bits, "embed_bits": qcfg.embed_bits}


def run(cfg: TrainConfig, run_root: str | Path = "runs", **kwargs) -> dict[str, Any]:
    """Train ``cfg`` in ``run_root/<run id>``, or return the summary of a finished run with that id
    (compressing it first when ``cfg.compress`` asks for a file it does not have yet)."""
    r = Run.of(cfg, run_root)
    if not r.finished:
        return train(cfg, r.dir, **kwargs)
    if cfg.compress and not r.compressed_path.is_file():
        r.compress(cache_dir=kwargs.get("cache_dir", "data/cache"))
    return r.summary()
