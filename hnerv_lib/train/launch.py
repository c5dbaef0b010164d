"""Where a sweep's runs train: in this process, as local processes, or as SLURM jobs (``submitit``).

Every sweep of the report (the ablation, the seeds of notebooks 01/02/05, 06's networks, the
rate–distortion sizes) trains its configurations through :func:`train_configs`, the one way to run a
set of runs; the tubelet study sends its seeds through :func:`run_tasks`, the same machinery:

* ``inline``: one after the other in this process (the default; tests and the smoke profile);
* ``local``:  ``submitit``'s local executor, ``executor_jobs`` processes at a time (0: one per core, or
  all of them when there are fewer than twice as many as cores: :meth:`Launcher.at_once`), each with
  ``cores // jobs`` torch threads and several runs (a process start costs seconds). The driver makes
  the runs' frame and CLIP-target caches before it submits them (:func:`~hnerv_lib.train.setup.warm_caches`),
  so the teacher runs once, with every core, not inside a job. Jobs that share
  the cores slow each other, so no speed the report compares comes from a run's own epoch times: the
  studies time each design alone in the notebook's process (:mod:`hnerv_lib.train.speed`, and 03's
  ``measure_speeds``), and every run may train as a job;
* ``slurm``:  ``submitit``'s SLURM executor, one array task per run (partition, GPUs, CPUs and time
  limit per job, ``executor_jobs`` array tasks at a time).

Each run trains into ``run_root/<config hash>/`` (a shared filesystem on a cluster). Finished runs are
skipped before anything is submitted, and a run whose job (noted in the run at submission) still
runs is waited for, not submitted again: a rerun submits only what is missing. A failed run's
message and traceback land in its error record (with the job's stderr when it ran as a job) and the
others finish. A job that SLURM preempts or stops at its time limit is requeued and resumes from its
checkpoint (:class:`TrainJob` is ``submitit``-checkpointable; the trainer resumes by itself). Job logs
go to ``run_root/.submitit/``.
"""
from __future__ import annotations

import math
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
from hnerv_lib.train.run import Run, RunMismatch
from hnerv_lib.train.setup import warm_caches
from hnerv_lib.train.trainer import train as default_train
from hnerv_lib.train.trainer import validate
from hnerv_lib.utils import io
from hnerv_lib.utils.parse import ConfigError, knob
from hnerv_lib.utils.precision import adopt_probe, probe_cpu

EXECUTORS = ("inline", "local", "slurm")
LOG_DIR = ".submitit"  # job scripts, pickles and logs, under the runs root
STDERR_TAIL = 8000  # characters of a failed job's stderr kept in its run's error record


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

    def at_once(self, tasks: int, cores: Optional[int] = None) -> int:
        """Local jobs running at a time for ``tasks`` jobs: ``jobs()``, except that with one job per core (the
        default) and fewer than twice as many jobs as cores, all start together: otherwise the last ones
        would run while a core sits idle (3 quick full-frame runs on 2 cores, one thread each, train at
        98 % of the throughput of 2, and 4 at 92 %)."""
        jobs = self.jobs(cores)
        if self.executor == "local" and not self.executor_jobs and jobs < tasks < 2 * jobs:
            return tasks
        return jobs

    def threads(self, cores: Optional[int] = None, tasks: Optional[int] = None) -> int:
        """Torch threads per job: the cores shared among the local jobs running at once (at most ``tasks``
        when fewer are to run: one job alone gets every core), or the slurm job's own CPUs."""
        if self.executor == "slurm":
            return self.slurm_cpus
        cores = cores or os.cpu_count() or 1
        at_once = min(self.jobs(cores), tasks) if tasks else self.jobs(cores)
        return max(1, cores // max(1, at_once))


INLINE = Launcher()


class RunsFailed(RuntimeError):
    """Runs a study cannot do without failed; the message names each with its error and its record."""


class TrainJob(submitit.helpers.Checkpointable):
    """Runs as one job: train each of ``configs`` into its ``run_dirs`` entry with ``threads`` torch
    threads, one after the other (a local job takes several, so a process starts once for them).

    A failing run is recorded in its directory and the job goes on with the next; the job then fails,
    naming them. On preemption or at the time limit ``submitit`` calls :meth:`checkpoint`, which resubmits
    the same job: finished runs are skipped and a started one resumes from its last checkpoint.
    """

    def __init__(self, configs: list[dict], run_dirs: list[str], cache_dir: str, threads: int = 0,
                 train_fn: Optional[Callable[..., dict]] = None, probe: Optional[dict[str, float]] = None) -> None:
        self.configs, self.run_dirs, self.cache_dir = configs, run_dirs, cache_dir
        self.threads, self.train_fn, self.probe = threads, train_fn, probe

    def __call__(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)
        if self.probe:  # a local job: resolve "auto" with its driver's probe, as the run ids were
            adopt_probe(self.probe)
        failed = []
        for config, run_dir in zip(self.configs, self.run_dirs):
            cfg, run = TrainConfig.from_dict(config), Run(Path(run_dir))
            if run.finished:
                continue
            try:
                here = cfg.resolved()
                if here.run_id() != run.run_id:  # "auto" decided otherwise here than where it was submitted
                    raise RunMismatch(f"this machine resolves precision/channels_last of run {run.run_id} to "
                                      f"{here.precision}/{here.channels_last} (run id {here.run_id()}): "
                                      f"pin precision and channels_last for jobs on other hardware")
                (self.train_fn or default_train)(cfg, run.dir, cache_dir=self.cache_dir, progress=False)
            except Exception as err:  # the job's other runs still train
                if not run.error_path.is_file():
                    run.record_failure(err, cfg)  # the trainer did; a custom train_fn may not have
                failed.append(f"{run.run_id}: {type(err).__name__}: {err}")
        if failed:
            raise RunsFailed(f"{len(failed)} of {len(self.configs)} runs of this job failed: " + "; ".join(failed))


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


@dataclass(frozen=True)
class Task:
    """One unit of work for a job: ``fn()`` does it, here or in another process or node (so ``fn`` must
    pickle). ``record`` is the file a failure is written to when its directory exists, with
    ``config``; ``done`` says, on the driver's side, whether its result is on disk (default: it raised nothing)."""

    key: str
    fn: Optional[Callable[[], Any]]
    record: Optional[Path] = None
    config: Optional[dict] = None
    done: Optional[Callable[[], bool]] = None
    runs: tuple[Run, ...] = ()  # the training runs it writes: each notes the job that trains it


def train_task(configs: Sequence[TrainConfig], run_root: str | Path, cache_dir: str | Path, threads: int = 0,
               train_fn: Optional[Callable[..., dict]] = None, probe: Optional[dict[str, float]] = None) -> Task:
    """The task of training ``configs``, one after the other, into their run directories under ``run_root``
    (``probe``: this process's CPU probe, for a job on this machine)."""
    runs = tuple(Run.of(c, run_root) for c in configs)
    return Task(",".join(r.run_id for r in runs),
                TrainJob([c.to_dict() for c in configs], [str(r.dir) for r in runs], str(cache_dir), threads, train_fn,
                         probe),
                done=lambda: all(r.finished for r in runs), runs=runs)


def chunks(configs: Sequence[TrainConfig], launcher: Launcher) -> list[list[TrainConfig]]:
    """The runs of each job: one per job inline and on slurm; locally ``2 x jobs`` jobs at most, dealt
    round-robin (so large and small models mix), since a local job's process start costs seconds."""
    if launcher.executor != "local":
        return [[c] for c in configs]
    n = min(len(configs), 2 * launcher.jobs())
    return [list(configs[i::n]) for i in range(n)]


def pending(configs: Sequence[TrainConfig], run_root: str | Path) -> tuple[list[TrainConfig], list[TrainConfig]]:
    """``(finished, to_train)``: the distinct configurations (by run id, first kept) split by whether
    their run has finished."""
    by_id: dict[str, TrainConfig] = {}
    for c in configs:
        by_id.setdefault(c.run_id(), c)
    distinct = list(by_id.values())
    finished = [c for c in distinct if Run.of(c, run_root).finished]
    return finished, [c for c in distinct if not Run.of(c, run_root).finished]


def submit(launcher: Launcher, tasks: Sequence[Task], run_root: str | Path) -> list[tuple[Task, Any]]:
    """Submit ``tasks`` as jobs, one slurm array (no waiting), and note each job in the runs it trains;
    ``(task, job)`` pairs in their order."""
    ex = make_executor(launcher, run_root)
    with ex.batch():
        jobs = [ex.submit(t.fn) for t in tasks]
    folder = str(Path(run_root) / LOG_DIR / "%j")
    for t, job in zip(tasks, jobs):
        for run in t.runs:
            run.record_job({"executor": launcher.executor, "job_id": job.job_id, "folder": folder})
    return list(zip(tasks, jobs))


# SLURM states of a job that has not ended (sacct's words)
LIVE_STATES = frozenset({"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING",
                         "REQUEUE_HOLD", "REQUEUE_FED", "STAGE_OUT", "SIGNALING"})


class Attached:
    """A job an earlier sweep submitted that still runs: this sweep waits for it instead of submitting
    its runs again (a local job is a process of this machine, a slurm job is asked of ``sacct``)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info, self.job_id = info, str(info["job_id"])

    def alive(self) -> bool:
        if self.info.get("executor") == "local":  # the job id is its controller's process id (Linux: /proc)
            proc = Path(f"/proc/{self.job_id}")
            try:  # alive: not a zombie (ended, not yet reaped) and still submitit's, not a reused id
                state = (proc / "stat").read_text().rsplit(")", 1)[-1].split()[0]
                return state != "Z" and b"submitit" in (proc / "cmdline").read_bytes()
            except (OSError, IndexError):
                return False
        try:
            state = submitit.SlurmJob(folder=self.info["folder"], job_id=self.job_id).state
        except Exception:  # no sacct answer: treat it as ended (the run is then submitted again)
            return False
        return str(state).split()[0].upper() in LIVE_STATES

    def done(self) -> bool:
        return not self.alive()

    def exception(self) -> Optional[BaseException]:
        return None  # its runs' directories say whether it trained them

    def stderr(self) -> Optional[str]:
        return None


def attached(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """The runs whose noted job still runs, by that job's id."""
    out: dict[str, list[Run]] = {}
    for run in runs:
        info = run.job()
        if info is not None and Attached(info).alive():
            out.setdefault(str(info["job_id"]), []).append(run)
    return out


def train_configs(configs: Sequence[TrainConfig], run_root: str | Path, launcher: Launcher = INLINE, *,
                  cache_dir: str | Path = "data/cache", train_fn: Optional[Callable[..., dict]] = None,
                  progress: bool = True, desc: str = "runs") -> dict[str, dict]:
    """Train every configuration not finished yet; ``{run id: row}`` with ``status`` (``reused``,
    ``trained`` or ``failed``), ``wall_s`` and ``error`` where they apply.

    Runs shared by several configurations (the same hash) train once. A configuration the trainer would
    refuse is a failed row at once (nothing is submitted for it); a failure is recorded and the others go on.
    """
    done, todo = pending(configs, run_root)
    rows = {c.run_id(): {"status": "reused"} for c in done}
    valid = []
    for cfg in todo:
        try:
            validate(cfg)
            valid.append(cfg)
        except Exception as err:
            rows[cfg.run_id()] = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
    running = attached([Run.of(c, run_root) for c in valid])  # submitted by an earlier sweep, still running
    busy = {run.run_id for runs in running.values() for run in runs}
    waiting = [(Task(",".join(r.run_id for r in runs), None, done=lambda runs=runs: all(r.finished for r in runs),
                     runs=tuple(runs)), Attached(runs[0].job())) for runs in running.values()]
    if launcher.executor != "inline" and valid:
        warm_caches(valid, cache_dir, progress)  # the teacher runs here once, not in each job
    groups = chunks([c for c in valid if c.run_id() not in busy], launcher)
    threads = launcher.threads(tasks=len(groups) + len(waiting)) if launcher.executor != "inline" else 0
    # local jobs run on this machine: they resolve "auto" with this process's probe, the one the run ids used
    auto = any(c.device == "cpu" and "auto" in (c.precision, c.channels_last) for c in valid)
    probe = probe_cpu() if launcher.executor == "local" and auto else None
    tasks = [train_task(g, run_root, cache_dir, threads, train_fn, probe) for g in groups]
    done_tasks = run_tasks(tasks, run_root, launcher, progress=progress, desc=desc, waiting=waiting)
    by_id = {c.run_id(): c for c in valid}
    for task in [*tasks, *(t for t, _ in waiting)]:
        for run in task.runs:
            rows[run.run_id] = _run_row(run, by_id[run.run_id], done_tasks[task.key], len(task.runs))
    return rows


def _run_row(run: Run, cfg: TrainConfig, job: dict, runs_in_job: int) -> dict:
    """One run's row from its directory and its job's row; a failed run's record gets the job's stderr."""
    about_job = {k: job[k] for k in ("job_id",) if k in job}
    if run.finished:
        return {"status": "trained", "wall_s": job.get("wall_s", math.nan) / runs_in_job, **about_job}
    own = run.error() if run.error_path.is_file() else {}
    error = own.get("error") or job.get("error") or "the run did not finish"
    if run.exists and "stderr" in job:
        _merge_record(run.error_path, error, job.get("traceback", ""), cfg.to_dict(),
                      {**about_job, "job_traceback": job.get("traceback", ""), "stderr": job["stderr"]})
    return {"status": "failed", "error": error, **about_job}


def run_tasks(tasks: Sequence[Task], run_root: str | Path, launcher: Launcher = INLINE, *, progress: bool = True,
              desc: str = "runs", waiting: Sequence[tuple[Task, Any]] = ()) -> dict[str, dict]:
    """Do every task where ``launcher`` says (local: at most ``jobs()`` at a time), wait for all (and for
    the ``waiting`` jobs an earlier sweep submitted), and collect each: ``{key: row}`` with ``status``
    ``trained`` or ``failed``, ``wall_s``, ``error``."""
    rows: dict[str, dict] = {}
    if not tasks and not waiting:
        return rows
    bar = tqdm(total=len(tasks) + len(waiting), desc=f"{desc} ({launcher.executor})", disable=not progress)
    queue, running = list(tasks), [(t, job, time.perf_counter()) for t, job in waiting]
    if launcher.executor == "inline":
        for t in queue:
            rows[t.key] = _inline(t)
            bar.update()
        queue = []
    limit = launcher.at_once(len(tasks) + len(waiting)) if launcher.executor == "local" else len(tasks) + len(waiting)
    try:
        while queue or running:
            if queue and len(running) < limit:
                batch, queue = queue[:limit - len(running)], queue[limit - len(running):]
                running += [(t, job, time.perf_counter()) for t, job in submit(launcher, batch, run_root)]
            still = []
            for t, job, start in running:
                if job.done():
                    rows[t.key] = _collect(t, job, time.perf_counter() - start)
                    bar.update()
                else:
                    still.append((t, job, start))
            running = still
            if running:
                time.sleep(launcher.poll_s)
    except KeyboardInterrupt:  # interrupted in the notebook: this machine's jobs stop too (cluster jobs go on)
        for _, job, _ in running:
            if launcher.executor == "local" and hasattr(job, "cancel"):
                job.cancel(check=False)
        raise
    finally:
        bar.close()
    return rows


def _inline(task: Task) -> dict:
    start = time.perf_counter()
    try:
        task.fn()
        return {"status": "trained", "wall_s": time.perf_counter() - start}
    except Exception as err:  # a failing task must not stop the others
        trace = "".join(traceback.format_exception(err))
        _record(task, f"{type(err).__name__}: {err}", trace, {})
        return {"status": "failed", "error": f"{type(err).__name__}: {err}", "traceback": trace}


def _collect(task: Task, job: Any, wall_s: float) -> dict:
    """A finished job's row; a failed one's stderr and traceback go into its task's record."""
    err = job.exception()
    if err is None and (task.done is None or task.done()):
        return {"status": "trained", "wall_s": wall_s, "job_id": job.job_id}
    error, trace = job_error(err) if err is not None else (f"job {job.job_id} ended without its result", "")
    stderr = (job.stderr() or "")[-STDERR_TAIL:]
    _record(task, error, trace, {"job_id": job.job_id, "job_traceback": trace, "stderr": stderr})
    return {"status": "failed", "error": error, "job_id": job.job_id, "traceback": trace, "stderr": stderr}


def _record(task: Task, error: str, trace: str, extra: dict) -> None:
    """Write the failure into ``task.record`` when its directory exists (a failure before the run began
    leaves nothing on disk); what the task recorded there itself stays, ``extra`` is added."""
    if task.record is not None and task.record.parent.is_dir():
        _merge_record(task.record, error, trace, task.config, extra)


def _merge_record(path: Path, error: str, trace: str, config: Optional[dict], extra: dict) -> None:
    """Write a failure record at ``path``: what is there already stays, ``extra`` is added."""
    own = io.load_json(path) if path.is_file() else {}
    io.save_json({"error": error, "traceback": trace, "config": config, **own, **extra}, path)


def job_error(err: BaseException) -> tuple[str, str]:
    """``(one line, traceback)`` of a job's failure: ``submitit`` wraps the job's own traceback in a
    FailedJobError between two rules of dashes; the line is its last (the exception), else the message."""
    text = str(err)
    parts = text.split("-" * 22)
    trace = parts[1].strip() if len(parts) >= 3 else "".join(traceback.format_exception(err))
    last = next((line.strip() for line in reversed(trace.splitlines()) if line.strip()), "")
    return (last or f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"), trace


def train_first(configs: Sequence[TrainConfig], run_root: str | Path, launcher: Launcher,
                cache_dir: str | Path = "data/cache", progress: bool = True) -> None:
    """Train a study's runs as jobs before it uses them, when ``launcher`` sends runs elsewhere (inline:
    nothing here, the study trains each run as it reaches it). A failed run raises :class:`RunsFailed`."""
    if launcher.executor == "inline":
        return
    rows = train_configs(configs, run_root, launcher, cache_dir=cache_dir, progress=progress)
    records = {c.run_id(): Run.of(c, run_root).error_path for c in configs}
    raise_failed(rows, records)


def raise_failed(rows: dict[str, dict], records: dict[str, Path]) -> None:
    """Raise :class:`RunsFailed` naming every failed row (its error, and its record where it has one)."""
    failed = {key: row["error"] for key, row in rows.items() if row["status"] == "failed"}
    if failed:
        raise RunsFailed(f"{len(failed)} of {len(rows)} runs failed: " + "; ".join(
            f"{key}: {error}" + (f" (record: {records[key]})" if key in records else "")
            for key, error in failed.items()))
