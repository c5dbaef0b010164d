"""The Run object owns the run directory: refused resumes, clean failures, cached loads, one spelling."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import hnerv_lib.data.video as video_module
from hnerv_lib.eval.metrics import psnr
from hnerv_lib.train.cli import main as train_main
from hnerv_lib.train.config import get_train_preset
from hnerv_lib.train.run import RESULT_NEUTRAL, Run, RunMismatch
from hnerv_lib.train.trainer import train

ROOT = Path(__file__).resolve().parents[2]


def _cfg(**kw):
    return replace(get_train_preset("hnerv-tiny"), precision="fp32", channels_last=False, **kw)


def test_resume_with_another_configuration_is_refused_naming_each_key(tmp_path):
    run = Run(tmp_path / "r")
    run.begin(_cfg())
    before = run.config_path.read_bytes()
    with pytest.raises(RunMismatch, match=r"lr: stored 0\.001, requested 0\.002; video: stored 'bunny', requested 'bikes'"):
        train(_cfg(video="bikes", lr=2e-3), run.dir)
    assert run.config_path.read_bytes() == before and sorted(p.name for p in run.dir.iterdir()) == [Run.CONFIG]


def test_result_neutral_fields_may_differ_on_resume(tmp_path):
    run = Run(tmp_path / "r")
    run.begin(_cfg(eval_every=2))
    run.begin(_cfg(eval_every=3, threads=1))  # neither changes what the run computes
    assert {"eval_every", "threads"} <= RESULT_NEUTRAL and run.config.eval_every == 3


def test_cli_says_mismatch_in_one_line(tmp_path, capsys):
    Run(tmp_path / "r").begin(_cfg())
    argv = ["--preset", "hnerv-tiny", "--set", "precision=fp32", "--set", "channels_last=false", "--set", "epochs=9",
            "--run-dir", str(tmp_path / "r")]
    assert train_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m hnerv_lib.train: run directory") and "epochs: stored 4, requested 9" in err
    assert "\n" not in err


def test_validation_failure_leaves_no_directory(tmp_path):
    with pytest.raises(ValueError, match=r"outputs 32x64 frames but size is 64x128"):
        train(_cfg(size=(64, 128)), tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_failure_after_the_directory_exists_writes_error_json(tmp_path):
    (tmp_path / "noise.mp4").write_bytes(b"not a video" * 100)  # exists (passes validation), cannot be decoded
    cfg = _cfg(video=str(tmp_path / "noise.mp4"))
    run = Run(tmp_path / "r")
    with pytest.raises(Exception) as raised:
        train(cfg, run.dir, cache_dir=tmp_path / "cache", progress=False)
    assert run.failed and run.status == "failed"
    record = run.error()
    assert record["error"].startswith(type(raised.value).__name__) and "noise.mp4" in record["error"]
    assert "Traceback" in record["traceback"] and record["config"]["video"] == cfg.video
    assert not list(run.dir.glob("*.tmp*"))  # written atomically


def test_load_does_not_decode_when_the_cache_is_warm(tmp_path, smoke_cache, monkeypatch):
    cfg = _cfg(epochs=1, eval_every=1, model_overrides={"predict_clip": False})
    run = Run(tmp_path / "r")
    summary = train(cfg, run.dir, cache_dir=smoke_cache, progress=False)
    assert run.finished and run.summary() == summary and len(run.metrics()) == 1 and len(run.frames()) > 0
    calls = []
    real = video_module.decode_source
    monkeypatch.setattr(video_module, "decode_source", lambda *a, **k: calls.append(a) or real(*a, **k))
    model, stored, setup = run.load(smoke_cache)
    assert calls == [] and stored == run.config and setup.model is model
    # the trained weights: the loaded model reproduces the run's recorded per-frame PSNR
    frames = run.frames().set_index("frame")
    first = setup.split.train[0]
    with torch.no_grad():
        rgb = setup.task.reconstruct(model.eval(), torch.tensor([first]))[0]
    assert psnr(rgb, setup.task.frames[first:first + 1]).item() == pytest.approx(frames.loc[first, "psnr"], abs=1e-3)
    model2, _, _ = Run(tmp_path / "r").load(tmp_path / "cold")  # a cold cache decodes, once
    assert len(calls) == 1
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model2.state_dict().values()))


def test_run_file_names_are_spelled_only_in_the_run_module():
    names = [Run.CONFIG, Run.METRICS, Run.FRAMES, Run.CHECKPOINT, Run.SUMMARY, Run.ERROR, Run.COMPRESSED]
    pattern = re.compile("|".join(re.escape(n) for n in names))
    offenders = []
    for path in sorted((ROOT / "hnerv_lib").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        # the tubelet study keeps its own classifier runs (study.json, <variant>.pt/.json, the CLI's OUT folder)
        if rel == "hnerv_lib/train/run.py" or rel.startswith("hnerv_lib/studies/tubelets/"):
            continue
        offenders += [f"{rel}:{i}" for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for k, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "code" and pattern.search("".join(cell["source"])):
                offenders.append(f"{path.name} cell {k}")
    assert offenders == [], f"run file names spelled outside hnerv_lib/train/run.py: {offenders}"
