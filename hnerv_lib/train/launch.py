"""Where a sweep's runs train: in this process, as local processes, or as SLURM jobs (``submitit``).

Every sweep of the report (the ablation, the seeds of notebooks 01/02/05, the rate–distortion sizes)
trains its configurations through :func:`train_configs`, the one way to run a set of runs:

* ``inline``: one after the other in this process (the default; tests and the smoke profile);
* ``local``:  ``submitit``'s local executor, ``executor_jobs`` processes at a time, each with
  ``cores // jobs`` torch threads;
* ``slurm``:  ``submitit``'s SLURM executor, one array task per run (partition, GPUs, CPUs and time
  limit per job, ``executor_jobs`` array tasks at a time).

Each run trains into ``run_root/<config hash>/`` (a shared filesystem on a cluster). Finished runs are
skipped before anything is submitted, so a rerun submits only what is missing. A failed run's
message and traceback land in its ``error.json`` (with the job's stderr when it ran as a job) and the
others finish. A job that SLURM preempts or stops at its time limit is requeued and resumes from its
checkpoint (:class:`TrainJob` is ``submitit``-checkpointable; the trainer resumes by itself). Job logs
go to ``run_root/.submitit/``.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import submitit
import torch
from tqdm.auto import tqdm

from hnerv_lib.train.config import TrainConfig
from hnerv_lib.train.run import Run
from hnerv_lib.train.trainer import train as default_train
from hnerv_lib.train.trainer import validate
from hnerv_lib.utils import io
from hnerv_lib.utils.parse import ConfigError, knob

EXECUTORS = ("inline", "local", "slurm")
LOG_DIR = ".submitit"  # job scripts, pickles and logs, under the runs root
STDERR_TAIL = 8000  # characters of a failed job's stderr kept in its error.json


@dataclass(frozen=True)
class Launcher:
    """How a sweep's runs are trained: the one home of the executor knobs (notebooks borrow them)."""

    executor: str = knob("inline", choices=EXECUTORS)  # inline (this process) | local (parallel processes) | slurm (cluster jobs)
    executor_jobs: int = 0  # runs at a time: local processes (0: one per core), slurm array tasks (0: no limit)
    slurm_partition: str = ""  # slurm: partition to submit to ("" lets the cluster choose)
    slurm_gpus: int = 0  # slurm: GPUs per job
    slurm_cpus: int = 4  # slurm: CPU cores per job (torch threads in the job)
    slurm_time_min: int = 240  # slurm: time limit per job in minutes; a job that hits it is requeued and resumes
    poll_s: float = field(default=1.0, repr=False)  # seconds between two looks at the running jobs

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ConfigError(f"executor={self.executor!r} is not one of {list(EXECUTORS)}")
        for name in ("executor_jobs", "slurm_gpus", "slurm_cpus", "slurm_time_min"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be >= 0")
        if self.executor == "slurm" and (self.slurm_cpus < 1 or self.slurm_time_min < 1):
            raise ConfigError(f"slurm jobs need slurm_cpus >= 1 and slurm_time_min >= 1; got "
                              f"slurm_cpus={self.slurm_cpus}, slurm_time_min={self.slurm_time_min}")

    def jobs(self, cores: Optional[int] = None) -> int:
        """Runs at a time: ``executor_jobs``, else (local) one per core, else (slurm) every run at once (0)."""
        if self.executor_jobs:
            return self.executor_jobs
        return max(1, cores or os.cpu_count() or 1) if self.executor == "local" else 0

    def threads(self, cores: Optional[int] = None) -> int:
        """Torch threads per job: the cores shared among the local jobs, or the slurm job's own CPUs."""
        if self.executor == "slurm":
            return self.slurm_cpus
        cores = cores or os.cpu_count() or 1
        return max(1, cores // max(1, self.jobs(cores)))


INLINE = Launcher()


class TrainJob(submitit.helpers.Checkpointable):
    """One run as a job: train ``config`` into ``run_dir`` with ``threads`` torch threads.

    On preemption or at the time limit ``submitit`` calls :meth:`checkpoint`, which resubmits the same
    job; it then resumes from the run's last checkpoint (the trainer does that for a started run).
    """

    def __init__(self, config: dict, run_dir: str, cache_dir: str, threads: int = 0,
                 train_fn: Optional[Callable[..., dict]] = None) -> None:
        self.config, self.run_dir, self.cache_dir = config, run_dir, cache_dir
        self.threads, self.train_fn = threads, train_fn

    def __call__(self) -> dict:
        if self.threads:
            torch.set_num_threads(self.threads)
        cfg = TrainConfig.from_dict(self.config)
        return (self.train_fn or default_train)(cfg, self.run_dir, cache_dir=self.cache_dir, progress=False)


def make_executor(launcher: Launcher, run_root: str | Path) -> submitit.Executor:
    """The ``submitit`` executor of ``launcher`` (local or slurm), its logs under ``run_root/.submitit``."""
    folder = Path(run_root) / LOG_DIR / "%j"
    if launcher.executor == "local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=max(launcher.slurm_time_min, 24 * 60))
        return ex
    if launcher.executor == "slurm":
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
        params: dict[str, Any] = dict(timeout_min=launcher.slurm_time_min, cpus_per_task=launcher.slurm_cpus,
                                      gpus_per_node=launcher.slurm_gpus, nodes=1, tasks_per_node=1,
                                      name="hnerv-run")
        if launcher.slurm_partition:
            params["slurm_partition"] = launcher.slurm_partition
        if launcher.jobs():
            params["slurm_array_parallelism"] = launcher.jobs()
        ex.update_parameters(**params)
        return ex
    raise ConfigError(f"executor={launcher.executor!r} runs in this process and has no submitit executor")


def pending(configs: Sequence[TrainConfig], run_root: str | Path) -> tuple[list[TrainConfig], list[TrainConfig]]:
    """``(finished, to_train)``: the distinct configurations (by run id, first kept) split by whether
    their run has finished."""
    by_id: dict[str, TrainConfig] = {}
    for c in configs:
        by_id.setdefault(c.run_id(), c)
    distinct = list(by_id.values())
    finished = [c for c in distinct if Run.of(c, run_root).finished]
    return finished, [c for c in distinct if not Run.of(c, run_root).finished]


def submit(launcher: Launcher, configs: Sequence[TrainConfig], run_root: str | Path, cache_dir: str | Path,
           train_fn: Optional[Callable[..., dict]] = None) -> list[tuple[TrainConfig, Any]]:
    """Submit ``configs`` as one slurm array (no waiting); ``(config, job)`` pairs in their order."""
    ex = make_executor(launcher, run_root)
    threads = launcher.threads()
    with ex.batch():
        jobs = [ex.submit(TrainJob(c.to_dict(), str(Run.of(c, run_root).dir), str(cache_dir), threads, train_fn))
                for c in configs]
    return list(zip(configs, jobs))


def train_configs(configs: Sequence[TrainConfig], run_root: str | Path, launcher: Launcher = INLINE, *,
                  cache_dir: str | Path = "data/cache", train_fn: Optional[Callable[..., dict]] = None,
                  progress: bool = True, desc: str = "runs") -> dict[str, dict]:
    """Train every configuration not finished yet; ``{run id: row}`` with ``status`` (``reused``,
    ``trained`` or ``failed``), ``wall_s`` and ``error`` where they apply.

    Runs shared by several configurations (the same hash) train once. A failure is recorded and the
    others go on.
    """
    done, todo = pending(configs, run_root)
    rows = {c.run_id(): {"status": "reused"} for c in done}
    if not todo:
        return rows
    bar = tqdm(total=len(todo), desc=f"{desc} ({launcher.executor})", disable=not progress)
    if launcher.executor == "inline":
        for cfg in todo:
            rows[cfg.run_id()] = _inline(cfg, run_root, cache_dir, train_fn)
            bar.update()
    else:
        rows.update(_as_jobs(launcher, todo, run_root, cache_dir, train_fn, bar))
    bar.close()
    return rows


def _inline(cfg: TrainConfig, run_root, cache_dir, train_fn) -> dict:
    run, start = Run.of(cfg, run_root), time.perf_counter()
    try:
        (train_fn or default_train)(cfg, run.dir, cache_dir=cache_dir, progress=False)
        return {"status": "trained", "wall_s": time.perf_counter() - start}
    except Exception as err:  # a failing configuration must not stop the sweep
        run.record_failure(err, cfg)  # the trainer did too; a custom train_fn may not have
        return {"status": "failed", "error": f"{type(err).__name__}: {err}"}


def _as_jobs(launcher: Launcher, todo: list[TrainConfig], run_root, cache_dir, train_fn, bar) -> dict[str, dict]:
    """Submit the runs as jobs (local: at most ``jobs()`` at a time), wait for all, collect each. A
    configuration the trainer would refuse is a failed row at once: nothing is submitted for it."""
    queue, running, rows = [], [], {}
    for cfg in todo:
        try:
            validate(cfg)
            queue.append(cfg)
        except Exception as err:
            rows[cfg.run_id()] = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
            bar.update()
    limit = launcher.jobs() if launcher.executor == "local" else len(todo)
    while queue or running:
        if queue and len(running) < limit:
            batch, queue = queue[:limit - len(running)], queue[limit - len(running):]
            running += [(c, job, time.perf_counter()) for c, job in submit(launcher, batch, run_root, cache_dir,
                                                                            train_fn)]
        still = []
        for cfg, job, start in running:
            if job.done():
                rows[cfg.run_id()] = _collect(cfg, job, run_root, time.perf_counter() - start)
                bar.update()
            else:
                still.append((cfg, job, start))
        running = still
        if running:
            time.sleep(launcher.poll_s)
    return rows


def _collect(cfg: TrainConfig, job: Any, run_root, wall_s: float) -> dict:
    """A finished job's row; a failed one's stderr and traceback go into its run's ``error.json``."""
    run = Run.of(cfg, run_root)
    err = job.exception()
    if err is None and run.finished:
        return {"status": "trained", "wall_s": wall_s, "job_id": job.job_id}
    error, trace = job_error(err) if err is not None else (f"job {job.job_id} ended without a summary", "")
    stderr = (job.stderr() or "")[-STDERR_TAIL:]
    if run.exists:  # the trainer recorded what failed inside the run; add what the job saw
        record = io.load_json(run.error_path) if run.error_path.is_file() else {
            "error": error, "traceback": trace, "config": cfg.to_dict()}
        io.save_json({**record, "job_id": job.job_id, "job_traceback": trace, "stderr": stderr}, run.error_path)
    return {"status": "failed", "error": error, "job_id": job.job_id}


def job_error(err: BaseException) -> tuple[str, str]:
    """``(one line, traceback)`` of a job's failure: ``submitit`` wraps the job's own traceback in a
    FailedJobError between two rules of dashes; the line is its last (the exception), else the message."""
    text = str(err)
    parts = text.split("-" * 22)
    trace = parts[1].strip() if len(parts) >= 3 else "".join(traceback.format_exception(err))
    last = next((line.strip() for line in reversed(trace.splitlines()) if line.strip()), "")
    return (last or f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"), trace


class RunsFailed(RuntimeError):
    """Runs a study cannot do without failed; the message names each with its error and its record."""


def train_first(configs: Sequence[TrainConfig], run_root: str | Path, launcher: Launcher,
                cache_dir: str | Path = "data/cache", progress: bool = True) -> None:
    """Train a study's runs as jobs before it uses them, when ``launcher`` sends runs elsewhere (inline:
    nothing here, the study trains each run as it reaches it). A failed run raises :class:`RunsFailed`."""
    if launcher.executor == "inline":
        return
    rows = train_configs(configs, run_root, launcher, cache_dir=cache_dir, progress=progress)
    failed = {run_id: row["error"] for run_id, row in rows.items() if row["status"] == "failed"}
    if failed:
        where = Path(run_root)
        raise RunsFailed(f"{len(failed)} of {len(rows)} runs failed: " + "; ".join(
            f"{run_id}: {error} (record: {where / run_id / Run.ERROR})" for run_id, error in failed.items()))
