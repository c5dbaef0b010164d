"""The one way to train a sweep's runs: inline, as local processes (submitit), or as SLURM jobs."""

import os
import stat
import time
from dataclasses import replace

import pandas as pd
import pytest

from hnerv_lib.train import launch, setup
from hnerv_lib.train.config import get_train_preset
from hnerv_lib.train.launch import INLINE, Launcher, TrainJob, submit, train_configs, train_task
from hnerv_lib.train.run import Run
from hnerv_lib.utils import precision as prec
from hnerv_lib.utils.parse import ConfigError

LOCAL = Launcher(executor="local", executor_jobs=2, poll_s=0.2)


def _cfg(**kw):
    """hnerv-tiny in fp32: runs compared across processes must not depend on what ``auto`` picks."""
    return replace(get_train_preset("hnerv-tiny"), **{"precision": "fp32", "channels_last": False, "epochs": 2, **kw})


def _metrics(run: Run) -> pd.DataFrame:
    return run.metrics().drop(columns=["seconds"])


def test_bad_launcher_values_are_named():
    with pytest.raises(ConfigError, match=r"executor='cluster' is not one of \['inline', 'local', 'slurm'\]"):
        Launcher(executor="cluster")
    with pytest.raises(ConfigError, match=r"executor_jobs=-1 must be >= 0"):
        Launcher(executor_jobs=-1)
    with pytest.raises(ConfigError, match=r"slurm_cpus=0"):
        Launcher(executor="slurm", slurm_cpus=0)


def test_local_jobs_share_the_cores():
    assert Launcher(executor="local").jobs(cores=8) == 8 and Launcher(executor="local").threads(cores=8) == 1
    assert Launcher(executor="local", executor_jobs=2).threads(cores=8) == 4
    assert Launcher(executor="local").threads(cores=2, tasks=1) == 2  # one job left alone gets every core
    # with one job per core, 3 jobs on 2 cores start together (no idle core at the end); 4 run two by two
    assert [Launcher(executor="local").at_once(n, cores=2) for n in (1, 2, 3, 4, 9)] == [2, 2, 3, 2, 2]
    assert Launcher(executor="local", executor_jobs=2).at_once(3, cores=2) == 2  # an explicit count is kept
    assert Launcher(executor="local").threads(cores=8, tasks=3) == 2 and Launcher(executor="local").threads(8, 20) == 1
    assert Launcher(executor="local", executor_jobs=3).threads(cores=2) == 1
    assert Launcher(executor="slurm", slurm_cpus=6).threads(cores=2) == 6  # the job's own CPUs, not this machine's
    assert Launcher(executor="slurm").jobs() == 0  # no array limit


def test_inline_trains_once_per_run_and_records_a_failure(tmp_path):
    calls = []

    def fake(cfg, run_dir, cache_dir, progress):
        calls.append(cfg.seed)
        Run(run_dir).begin(cfg)
        if cfg.seed == 2:
            raise RuntimeError("broke on purpose")
        Run(run_dir).save_summary({"psnr_train": 20.0})
        return {}

    cfgs = [_cfg(seed=s) for s in (0, 1, 2, 0)]  # seed 0 twice: one run
    rows = train_configs(cfgs, tmp_path, train_fn=fake, progress=False)
    assert calls == [0, 1, 2]
    assert {r: v["status"] for r, v in rows.items()} == {cfgs[0].run_id(): "trained", cfgs[1].run_id(): "trained",
                                                          cfgs[2].run_id(): "failed"}
    assert "broke on purpose" in rows[cfgs[2].run_id()]["error"]
    assert "Traceback" in Run.of(cfgs[2], tmp_path).error()["traceback"]
    calls.clear()
    again = train_configs(cfgs, tmp_path, train_fn=fake, progress=False)
    assert calls == [2] and again[cfgs[0].run_id()]["status"] == "reused"


def test_local_jobs_run_in_parallel_isolate_a_failure_and_are_not_resubmitted(tmp_path, smoke_cache, monkeypatch):
    good = [_cfg(seed=0), _cfg(seed=1)]
    diverging = _cfg(seed=2, lr=1e30)  # valid, so it is submitted, and fails inside its job
    refused = _cfg(seed=3, video=str(tmp_path / "missing.mp4"))  # refused before anything is submitted
    batches, real_submit = [], launch.submit
    monkeypatch.setattr(launch, "submit", lambda l, tasks, root: batches.append(len(tasks)) or real_submit(l, tasks, root))
    rows = train_configs([*good, diverging, refused], tmp_path / "runs", LOCAL, cache_dir=smoke_cache, progress=False)
    assert batches[0] == 2 and sum(batches) == 3  # two jobs at once, the third when one of them ended
    assert [rows[c.run_id()]["status"] for c in good] == ["trained", "trained"]
    runs = [Run.of(c, tmp_path / "runs") for c in good]
    assert all(r.finished and len(r.metrics()) == 2 for r in runs)
    assert rows[good[0].run_id()]["job_id"] != rows[good[1].run_id()]["job_id"]
    bad = rows[diverging.run_id()]
    assert bad["status"] == "failed" and "TrainingDiverged" in bad["error"]
    record = Run.of(diverging, tmp_path / "runs").error()
    assert "Traceback" in record["traceback"] and record["config"]["lr"] == 1e30 and "job_id" in record
    assert "stderr" in record
    assert rows[refused.run_id()]["status"] == "failed" and "missing.mp4" in rows[refused.run_id()]["error"]
    assert not Run.of(refused, tmp_path / "runs").exists

    monkeypatch.setattr(launch, "submit", lambda *a, **k: pytest.fail(f"submitted {a[1]}"))
    again = train_configs(good, tmp_path / "runs", LOCAL, cache_dir=smoke_cache, progress=False)
    assert {v["status"] for v in again.values()} == {"reused"}


def test_a_killed_job_resumes_to_the_metrics_of_an_uninterrupted_run(tmp_path, smoke_cache):
    cfg = _cfg(epochs=5, eval_every=1)
    one = Launcher(executor="local", executor_jobs=1, poll_s=0.2)
    train_configs([cfg], tmp_path / "whole", one, cache_dir=smoke_cache, progress=False)
    [(_, job)] = submit(one, [train_task([cfg], tmp_path / "cut", smoke_cache, one.threads())], tmp_path / "cut")
    run = Run.of(cfg, tmp_path / "cut")
    deadline = time.time() + 300
    while not (run.metrics_path.is_file() and len(run.metrics()) >= 2) and time.time() < deadline:
        assert not job.done(), f"the job ended before it could be killed: {job.stderr()}"
        time.sleep(0.05)
    job.cancel()  # what a node failure or scancel does to it
    while not job.done():
        time.sleep(0.1)
    assert not run.finished and run.checkpoint_path.is_file()
    rows = train_configs([cfg], tmp_path / "cut", one, cache_dir=smoke_cache, progress=False)
    assert rows[cfg.run_id()]["status"] == "trained" and run.finished
    pd.testing.assert_frame_equal(_metrics(run), _metrics(Run.of(cfg, tmp_path / "whole")))


def test_a_preempted_job_is_resubmitted_as_the_same_run(tmp_path):
    job = TrainJob([_cfg().to_dict()], [str(tmp_path / "r")], str(tmp_path / "cache"), threads=2)
    again = job.checkpoint()  # what submitit calls on SIGUSR2 (preemption, time limit) before it requeues
    assert again.function is job and again.args == () and again.kwargs == {}


def _fake_slurm(tmp_path, monkeypatch):
    """``sbatch`` and ``srun`` stand-ins on PATH: sbatch keeps its arguments and script and answers like SLURM."""
    bin_dir, log = tmp_path / "bin", tmp_path / "sbatch.log"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text('#!/bin/sh\necho "$@" >> "$FAKE_SBATCH_LOG"\n'
                                    'for a in "$@"; do [ -f "$a" ] && cat "$a" >> "$FAKE_SBATCH_LOG"; done\n'
                                    'echo "Submitted batch job 4242"\n')
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SBATCH_LOG", str(log))
    return log


def test_slurm_submits_one_array_with_the_asked_resources(tmp_path, monkeypatch):
    log = _fake_slurm(tmp_path, monkeypatch)
    slurm = Launcher(executor="slurm", slurm_partition="gpu", slurm_gpus=1, slurm_cpus=8, slurm_time_min=90,
                     executor_jobs=3)
    cfgs = [_cfg(seed=s) for s in range(4)]
    jobs = submit(slurm, [train_task([c], tmp_path / "runs", tmp_path / "cache", 8) for c in cfgs], tmp_path / "runs")
    assert [j.job_id for _, j in jobs] == [f"4242_{i}" for i in range(4)]
    script = log.read_text()
    for line in ("--array=0-3%3", "--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=8", "--time=90",
                 "--signal=USR2@"):
        assert f"#SBATCH {line}" in script, f"{line} missing from the sbatch script:\n{script}"
    assert str(tmp_path / "runs" / launch.LOG_DIR) in script
    pickled = [TrainJob.__name__ in p.read_bytes().decode("latin-1")
               for p in (tmp_path / "runs" / launch.LOG_DIR).glob("4242_*/*_submitted.pkl")]
    assert pickled == [True] * 4


def test_local_jobs_take_several_runs_each_dealt_round_robin():
    cfgs = [_cfg(seed=s) for s in range(9)]
    groups = launch.chunks(cfgs, Launcher(executor="local", executor_jobs=2))
    assert [[c.seed for c in g] for g in groups] == [[0, 4, 8], [1, 5], [2, 6], [3, 7]]
    assert launch.chunks(cfgs, Launcher(executor="slurm")) == [[c] for c in cfgs]  # a cluster job per run
    assert launch.chunks(cfgs[:1], Launcher(executor="local", executor_jobs=2)) == [cfgs[:1]]


def test_a_job_of_several_runs_trains_the_rest_after_a_failure_and_names_it(tmp_path):
    def fake(cfg, run_dir, cache_dir, progress):
        Run(run_dir).begin(cfg)
        if cfg.seed == 0:
            raise RuntimeError("broke on purpose")
        Run(run_dir).save_summary({"psnr_train": 20.0})

    cfgs = [_cfg(seed=0), _cfg(seed=1)]
    job = TrainJob([c.to_dict() for c in cfgs], [str(Run.of(c, tmp_path).dir) for c in cfgs], "cache", 0, fake)
    with pytest.raises(launch.RunsFailed, match=rf"1 of 2 runs of this job failed: {cfgs[0].run_id()}: RuntimeError"):
        job()
    assert Run.of(cfgs[1], tmp_path).finished and Run.of(cfgs[0], tmp_path).failed


def test_a_job_refuses_a_run_whose_id_its_machine_resolves_otherwise(tmp_path):
    cfg = _cfg()
    job = TrainJob([cfg.to_dict()], [str(tmp_path / "0123456789")], "cache", 0,
                   lambda *a, **k: pytest.fail("trained under another run id"))
    with pytest.raises(launch.RunsFailed, match="pin precision and channels_last"):
        job()


def test_a_rerun_waits_for_a_job_still_running_instead_of_submitting_it_again(tmp_path, smoke_cache, monkeypatch):
    cfg, root = _cfg(epochs=3), tmp_path / "runs"
    one = Launcher(executor="local", executor_jobs=1, poll_s=0.2)
    [(_, job)] = submit(one, [train_task([cfg], root, smoke_cache, one.threads())], root)  # an earlier driver's job
    assert Run.of(cfg, root).job() == {"executor": "local", "job_id": job.job_id, "folder": str(root / launch.LOG_DIR / "%j")}
    assert launch.Attached(Run.of(cfg, root).job()).alive()
    monkeypatch.setattr(launch, "submit", lambda *a, **k: pytest.fail("submitted a run whose job still runs"))
    rows = train_configs([cfg], root, one, cache_dir=smoke_cache, progress=False)
    assert rows[cfg.run_id()] == {**rows[cfg.run_id()], "status": "trained", "job_id": job.job_id}
    assert Run.of(cfg, root).finished and not launch.Attached(Run.of(cfg, root).job()).alive()


def test_an_ended_or_unknown_job_is_not_waited_for(tmp_path):
    assert not launch.Attached({"executor": "local", "job_id": "999999999"}).alive()
    assert not launch.Attached({"executor": "local", "job_id": str(os.getpid())}).alive()  # a live process, not a job
    assert not launch.Attached({"executor": "slurm", "job_id": "4242_0", "folder": str(tmp_path)}).alive()  # no sacct


def test_a_study_gets_its_runs_as_jobs_first_and_a_failed_one_stops_it_by_name(tmp_path, smoke_cache, monkeypatch):
    good, bad = _cfg(seed=0), _cfg(seed=1, lr=1e30)
    warmed = []
    monkeypatch.setattr(launch, "warm_caches", lambda cfgs, *a, **k: warmed.append([c.seed for c in cfgs]))
    launch.train_first([good], tmp_path, Launcher(), smoke_cache, progress=False)
    assert not Run.of(good, tmp_path).exists and warmed == []  # inline: the study trains each run when it reaches it
    with pytest.raises(launch.RunsFailed, match=rf"1 of 2 runs failed: {bad.run_id()}: .*TrainingDiverged.*record: "):
        launch.train_first([good, bad], tmp_path, LOCAL, smoke_cache, progress=False)
    assert Run.of(good, tmp_path).finished
    assert warmed == [[0, 1]]  # the driver made the jobs' inputs before submitting them


def test_the_driver_makes_each_distinct_input_once_and_leaves_a_bad_one_to_its_run(smoke_cache, monkeypatch):
    made, real = [], setup.inputs
    monkeypatch.setattr(setup, "inputs", lambda cfg, *a, **k: made.append(cfg.seed) or real(cfg, *a, **k))
    cfgs = [_cfg(seed=s) for s in range(3)] + [_cfg(seed=3, split=(9, 10, 10)), _cfg(seed=4, video="/no/such/video")]
    assert setup.warm_caches(cfgs, smoke_cache, progress=False) == 3  # seeds share frames and targets
    assert made == [0, 3, 4]
    assert setup.inputs(cfgs[1], smoke_cache, progress=False)[3] is not None  # cached: the targets are there


def test_interrupting_the_driver_stops_its_local_jobs(tmp_path, smoke_cache, monkeypatch):
    cfg = _cfg(epochs=50)
    submitted = []
    real_submit = launch.submit
    monkeypatch.setattr(launch, "submit", lambda *a: submitted.extend(real_submit(*a)) or submitted)

    def interrupt(_):
        raise KeyboardInterrupt  # Ctrl-C, or the notebook's stop button, while the driver waits

    monkeypatch.setattr(launch.time, "sleep", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train_configs([cfg], tmp_path, Launcher(executor="local", executor_jobs=1), cache_dir=smoke_cache, progress=False)
    [(_, job)] = submitted
    deadline = time.time() + 30
    while not job.done() and time.time() < deadline:
        pass
    assert job.done() and not Run.of(cfg, tmp_path).finished


def test_a_local_job_resolves_auto_with_its_drivers_probe(tmp_path, monkeypatch):
    """Two probes of a close call may disagree (channels_last by 1 ms under the AVX2 kernels): a local job
    takes its driver's, so it trains the run the driver named instead of refusing it."""
    driver = {"fp32": 10.0, "fp32+CL": 9.99, "bf16": 100.0, "bf16+CL": 99.0}  # channels_last: no gain
    own = {"fp32": 10.0, "fp32+CL": 8.0, "bf16": 100.0, "bf16+CL": 99.0}  # the job's own probe: channels_last
    monkeypatch.setattr(prec, "_MEMO", {})
    cfg = replace(get_train_preset("hnerv-tiny"), epochs=1)  # precision and channels_last "auto"
    prec.adopt_probe(driver)
    run = Run.of(cfg, tmp_path)
    seen = []

    def fake(c, run_dir, cache_dir, progress):
        seen.append(c.resolved().channels_last)

    prec.adopt_probe(own)  # what the job process would measure by itself
    with pytest.raises(launch.RunsFailed, match="RunMismatch"):
        TrainJob([cfg.to_dict()], [str(run.dir)], str(tmp_path / "cache"), 0, fake)()
    TrainJob([cfg.to_dict()], [str(run.dir)], str(tmp_path / "cache"), 0, fake, probe=driver)()
    assert seen == [False]
