"""A training run's directory, owned by one class: :class:`Run`. No other module spells its file names.

A run directory (``runs/<config hash>/`` by default) holds

* ``config.json``   the resolved TrainConfig, written when the run begins;
* ``metrics.csv``   one row per epoch (loss, lr, seconds, and the metrics of evaluated epochs);
* ``frames.csv``    per-frame metrics of the last evaluation;
* ``checkpoint.pt`` the latest resumable checkpoint (self-describing);
* ``summary.json``  written last: its presence means the run finished;
* ``error.json``    message, traceback and config of a failure after the directory existed;
* ``video.hnerv``   the compressed model, when a notebook or study compresses the run;
* ``job.json``      the job that trains it, when a sweep submitted it (executor, job id, log folder).

Resuming compares the stored configuration with the requested one and refuses a mismatch, naming each
differing key with both values; only the fields in :data:`RESULT_NEUTRAL` may differ.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pandas as pd
import torch

from hnerv_lib.codec.bitstream import CompressStats
from hnerv_lib.codec.bitstream import compress as compress_model
from hnerv_lib.codec.quantise import QuantConfig
from hnerv_lib.train.checkpoint import load_weights
from hnerv_lib.train.config import OUTPUT_ONLY, TrainConfig
from hnerv_lib.train.setup import Setup, prepare
from hnerv_lib.utils import io

# Fields that cannot change what a run computes: a resumed run may ask for other values of these.
RESULT_NEUTRAL = frozenset({"eval_every", "threads", "compile", *OUTPUT_ONLY})


class RunMismatch(ValueError):
    """The directory holds a run of another configuration; the message names every differing key."""


@dataclass(frozen=True)
class Run:
    """One training run's directory: its files, its state, and loading what it trained."""

    dir: Path

    CONFIG = "config.json"
    METRICS = "metrics.csv"
    FRAMES = "frames.csv"
    CHECKPOINT = "checkpoint.pt"
    SUMMARY = "summary.json"
    ERROR = "error.json"
    COMPRESSED = "video.hnerv"
    JOB = "job.json"
    TENSORBOARD = "tb"  # folder of TensorBoard event files (tensorboard: true)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dir", Path(self.dir))

    @classmethod
    def of(cls, cfg: TrainConfig, run_root: str | Path = "runs") -> Run:
        """The run of ``cfg`` under ``run_root``: ``run_root/<cfg.run_id()>``."""
        return cls(Path(run_root) / cfg.run_id())

    @classmethod
    def at(cls, run_root: str | Path, run_id: str) -> Run:
        """The run with id ``run_id`` under ``run_root`` (e.g. from a sweep table)."""
        return cls(Path(run_root) / run_id)

    # --- paths ----------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.dir / self.CONFIG

    @property
    def metrics_path(self) -> Path:
        return self.dir / self.METRICS

    @property
    def frames_path(self) -> Path:
        return self.dir / self.FRAMES

    @property
    def checkpoint_path(self) -> Path:
        return self.dir / self.CHECKPOINT

    @property
    def summary_path(self) -> Path:
        return self.dir / self.SUMMARY

    @property
    def error_path(self) -> Path:
        return self.dir / self.ERROR

    @property
    def job_path(self) -> Path:
        """Where the submitted job of this run is noted (``job.json``)."""
        return self.dir / self.JOB

    @property
    def compressed_path(self) -> Path:
        """Where the compressed model (``video.hnerv``) of this run goes."""
        return self.dir / self.COMPRESSED

    # --- state ----------------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.dir.name

    @property
    def exists(self) -> bool:
        return self.dir.is_dir()

    @property
    def finished(self) -> bool:
        return self.summary_path.is_file()

    @property
    def failed(self) -> bool:
        """A failure was recorded and the run has not finished since."""
        return self.error_path.is_file() and not self.finished

    @property
    def status(self) -> str:
        """``finished``, ``failed``, ``started`` (config or checkpoint, no summary) or ``new``."""
        if self.finished:
            return "finished"
        if self.failed:
            return "failed"
        return "started" if self.exists and any(self.dir.iterdir()) else "new"

    # --- reading --------------------------------------------------------------------------------
    @property
    def config(self) -> TrainConfig:
        """The stored (resolved) configuration."""
        self._need(self.config_path, "config")
        return TrainConfig.from_dict(io.load_json(self.config_path))

    def metrics(self) -> pd.DataFrame:
        """One row per trained epoch."""
        self._need(self.metrics_path, "per-epoch metrics")
        return pd.read_csv(self.metrics_path)

    def frames(self) -> pd.DataFrame:
        """Per-frame metrics of the last evaluation."""
        self._need(self.frames_path, "per-frame metrics")
        return pd.read_csv(self.frames_path)

    def summary(self) -> dict[str, Any]:
        """The finished run's summary."""
        self._need(self.summary_path, "summary (the run has not finished)")
        return io.load_json(self.summary_path)

    def error(self) -> dict[str, Any]:
        """The recorded failure: ``error``, ``traceback``, ``config``."""
        self._need(self.error_path, "error record")
        return io.load_json(self.error_path)

    def load(self, cache_dir: str | Path = "data/cache", device: str | torch.device = "cpu",
             progress: bool = False) -> tuple[torch.nn.Module, TrainConfig, Setup]:
        """``(model, config, setup)`` of the trained run: frames and CLIP targets come from the caches (the
        video is decoded only when its frame cache is cold) and the weights from the checkpoint."""
        cfg = self.config
        self._need(self.checkpoint_path, "checkpoint")
        setup = prepare(cfg, torch.device(device), cache_dir, progress=progress)
        load_weights(self.checkpoint_path, setup.model)
        return setup.model, setup.cfg, setup

    @property
    def tensorboard_dir(self) -> Path:
        """Where a run with ``tensorboard: true`` writes its event files (``tensorboard --logdir runs``)."""
        return self.dir / self.TENSORBOARD

    def evaluation_path(self, name: str = "model") -> Path:
        """Where ``python -m hnerv_lib.evaluate`` writes its per-frame table of ``name`` (the float model or a file)."""
        return self.dir / f"evaluation_{name}.csv"

    def compress(self, out: Optional[str | Path] = None, qcfg: Optional[QuantConfig] = None,
                 cache_dir: str | Path = "data/cache", device: str | torch.device = "cpu") -> CompressStats:
        """Quantise and entropy-code the finished run's model into one file (default ``video.hnerv`` in the
        run directory) at ``qcfg`` (default: the run's model_bits / embed_bits); returns its sizes. An unfinished run is one FileNotFoundError naming what is missing."""
        self._need(self.summary_path, "summary (the run has not finished; compress a finished run)")
        model, cfg, setup = self.load(cache_dir, device)
        qcfg = qcfg or QuantConfig(model_bits=cfg.model_bits, embed_bits=cfg.embed_bits)
        return compress_model(model.eval(), Path(out) if out else self.compressed_path, setup.task.frames.cpu(),
                        grid=cfg.geometry(), qcfg=qcfg)

    def _need(self, path: Path, what: str) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"run {self.dir} has no {what} ({path.name} is missing; status: {self.status})")

    # --- writing --------------------------------------------------------------------------------
    def begin(self, cfg: TrainConfig) -> None:
        """Create the directory for ``cfg`` or check that it holds ``cfg``'s run; drop a stale error record."""
        if self.config_path.is_file():
            check_same_run(TrainConfig.from_dict(io.load_json(self.config_path)), cfg, self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        io.save_json(cfg.to_dict(), self.config_path)
        self.error_path.unlink(missing_ok=True)  # a new attempt: the old failure no longer describes it

    def record_job(self, info: dict[str, Any]) -> None:
        """Note the job that trains this run (at submission): a later sweep waits for it, if it still
        runs, instead of submitting the run again."""
        self.dir.mkdir(parents=True, exist_ok=True)
        io.save_json(info, self.job_path)

    def job(self) -> Optional[dict[str, Any]]:
        """The noted job (executor, job_id, folder), or None."""
        return io.load_json(self.job_path) if self.job_path.is_file() else None

    def save_metrics(self, rows: list[dict]) -> None:
        with io.atomic_path(self.metrics_path) as tmp:
            pd.DataFrame(rows).to_csv(tmp, index=False)

    def save_frames(self, frames: pd.DataFrame) -> None:
        with io.atomic_path(self.frames_path) as tmp:
            frames.to_csv(tmp, index=False)

    def save_summary(self, summary: dict[str, Any]) -> None:
        """Written last: marks the run finished."""
        io.save_json(summary, self.summary_path)

    def record_failure(self, err: BaseException, cfg: Optional[TrainConfig] = None) -> Optional[Path]:
        """Write ``error.json`` (message, traceback, config) atomically, if the directory exists; its path."""
        if not self.exists:
            return None  # nothing was created: a failure before the directory leaves no trace on disk
        record = {"error": f"{type(err).__name__}: {err}",
                  "traceback": "".join(traceback.format_exception(type(err), err, err.__traceback__)),
                  "config": cfg.to_dict() if cfg is not None else None}
        io.save_json(record, self.error_path)
        return self.error_path


def check_same_run(stored: TrainConfig, requested: TrainConfig, where: str | Path = "") -> None:
    """Refuse to resume ``stored`` as ``requested`` unless they differ only in :data:`RESULT_NEUTRAL` fields."""
    a, b = stored.to_dict(), requested.to_dict()
    differ = sorted(k for k in set(a) | set(b) if k not in RESULT_NEUTRAL and a.get(k) != b.get(k))
    if differ:
        detail = "; ".join(f"{k}: stored {a.get(k)!r}, requested {b.get(k)!r}" for k in differ)
        raise RunMismatch(f"run directory {where} holds another configuration ({detail}); "
                          f"use another --run-dir, or delete it to start over")
