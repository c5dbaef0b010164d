import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from hnerv_lib.train import checkpoint as ck
from hnerv_lib.train import families as tasks
from hnerv_lib.train.config import TrainConfig, apply_overrides, get_train_preset, list_presets
from hnerv_lib.train.trainer import TrainingDiverged, prepare, run, train

PRESETS = ["hnerv-tiny", "patch-tiny"]


def _cfg(name, **kw):
    """A preset in fp32 / contiguous unless asked otherwise: runs compared across processes must not
    depend on what ``precision: auto`` picks on the machine running the tests."""
    return replace(get_train_preset(name), **{"precision": "fp32", "channels_last": False, **kw})


def _metrics(run_dir):
    return pd.read_csv(Path(run_dir) / "metrics.csv").drop(columns=["seconds"])


@pytest.mark.parametrize("name", PRESETS)
def test_smoke_run_writes_its_files_and_learns(tmp_path, smoke_cache, name):
    cfg = _cfg(name, epochs=6, eval_every=3)
    summary = train(cfg, tmp_path, cache_dir=smoke_cache, progress=False)
    m = pd.read_csv(tmp_path / "metrics.csv")
    assert list(m["epoch"]) == [1, 2, 3, 4, 5, 6] and m["pixel_loss"].iloc[-1] < m["pixel_loss"].iloc[0]
    assert m["clip_active"].tolist() == [False] + [True] * 5  # one pixel-only warm-up epoch
    assert m["psnr_train"].notna().tolist() == [False, False, True, False, False, True]
    frames = pd.read_csv(tmp_path / "frames.csv")
    assert sorted(frames["split"].value_counts().items()) == [("train", 8), ("val", 4)]
    assert {"psnr", "ssim", "ms_ssim", "clip_sim"} <= set(frames.columns)
    assert summary["psnr_train"] == pytest.approx(frames[frames.split == "train"]["psnr"].mean())
    assert "random init" in summary["teacher"]
    assert TrainConfig.from_dict(json.loads((tmp_path / "config.json").read_text())) == cfg


def test_no_validation_metric_over_zero_frames(tmp_path, smoke_cache):
    summary = train(_cfg("hnerv-tiny", epochs=1, split=(9, 10, 10)), tmp_path, cache_dir=smoke_cache, progress=False)
    assert "psnr_train" in summary and not any(k.endswith("_val") for k in summary)
    assert "psnr_val" not in pd.read_csv(tmp_path / "metrics.csv").columns


@pytest.mark.parametrize("name", PRESETS)
def test_resume_matches_an_uninterrupted_run(tmp_path, smoke_cache, name):
    cfg = _cfg(name, epochs=4, eval_every=1)
    full = train(cfg, tmp_path / "full", cache_dir=smoke_cache, progress=False)
    assert train(cfg, tmp_path / "cut", cache_dir=smoke_cache, progress=False, stop_after=2) == {"stopped_after": 2}
    assert len(pd.read_csv(tmp_path / "cut" / "metrics.csv")) == 2 and not (tmp_path / "cut" / "summary.json").exists()
    resumed = train(cfg, tmp_path / "cut", cache_dir=smoke_cache, progress=False)
    pd.testing.assert_frame_equal(_metrics(tmp_path / "full"), _metrics(tmp_path / "cut"))
    drop = ("seconds_per_epoch",)
    assert {k: v for k, v in full.items() if k not in drop} == {k: v for k, v in resumed.items() if k not in drop}


def test_finished_run_is_reused_not_retrained(tmp_path, smoke_cache, monkeypatch):
    cfg = _cfg("hnerv-tiny", epochs=1)
    first = run(cfg, tmp_path, cache_dir=smoke_cache, progress=False)
    monkeypatch.setattr("hnerv_lib.train.trainer.train", lambda *a, **k: pytest.fail("retrained a finished run"))
    assert run(cfg, tmp_path) == first
    assert (tmp_path / cfg.run_id() / "summary.json").is_file()


def test_checkpoint_round_trip_rebuilds_without_flags(tmp_path, smoke_cache):
    cfg = _cfg("hnerv-tiny", epochs=2)
    train(cfg, tmp_path, cache_dir=smoke_cache, progress=False)
    model, cfg2 = ck.load_checkpoint(tmp_path / "checkpoint.pt")
    assert cfg2 == cfg and not model.training
    payload = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert payload["epoch"] == 2 and payload["hnerv_lib"] and payload["optimizer"]["state"]
    s = prepare(cfg, torch.device("cpu"), smoke_cache, progress=False)
    s.model.load_state_dict(payload["model"])
    x = s.task.frames[:2]
    torch.testing.assert_close(model(x)["rgb"], s.model.eval()(x)["rgb"], rtol=0, atol=0)


def test_wrong_checkpoint_names_both_models(tmp_path, smoke_cache):
    train(_cfg("hnerv-tiny", epochs=1), tmp_path, cache_dir=smoke_cache, progress=False)
    other = prepare(_cfg("patch-tiny"), torch.device("cpu"), smoke_cache, progress=False).model
    with pytest.raises(ck.CheckpointMismatch, match=r"holds a hnerv model .* this run builds a patch model"):
        ck.load_weights(tmp_path / "checkpoint.pt", other)
    wider = prepare(_cfg("hnerv-tiny", model_overrides={"fc_dim": 32}), torch.device("cpu"), smoke_cache, progress=False).model
    with pytest.raises(ck.CheckpointMismatch, match=r"fc_dim 24.*fc_dim 32"):
        ck.load_weights(tmp_path / "checkpoint.pt", wider)


def test_checkpoint_write_is_atomic(tmp_path, smoke_cache, monkeypatch):
    model = prepare(_cfg("hnerv-tiny"), torch.device("cpu"), smoke_cache, progress=False).model

    def broken_save(obj, f, *a, **k):
        Path(f).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        ck.save_checkpoint(tmp_path / "checkpoint.pt", model, {}, epoch=1)
    assert list(tmp_path.iterdir()) == []


def test_nan_loss_stops_with_epoch_and_step_and_keeps_last_good_checkpoint(tmp_path, smoke_cache, monkeypatch):
    cfg = _cfg("hnerv-tiny", epochs=3)  # 8 train frames, batch 2: 4 steps per epoch
    real, calls = tasks.pixel_loss, []

    def poisoned(*a, **k):
        calls.append(1)
        out = real(*a, **k)
        return out * float("nan") if len(calls) == 6 else out  # epoch 2, step 2

    monkeypatch.setattr(tasks, "pixel_loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2, step 2; last good checkpoint: .*checkpoint\.pt"):
        train(cfg, tmp_path, cache_dir=smoke_cache, progress=False)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 1


def test_same_config_same_numbers(tmp_path, smoke_cache):
    cfg = _cfg("hnerv-tiny", epochs=2)
    a = train(cfg, tmp_path / "a", cache_dir=smoke_cache, progress=False)
    b = train(cfg, tmp_path / "b", cache_dir=smoke_cache, progress=False)
    assert a["psnr_train"] == b["psnr_train"] and a["final_loss"] == b["final_loss"]


def test_overrides_and_presets():
    cfg = apply_overrides(get_train_preset("hnerv-tiny"), ["epochs=7", "model.fc_dim=32", "schedule.warmup=0.2", "loss=Fusion6"])
    assert cfg.epochs == 7 and cfg.model_config().fc_dim == 32 and cfg.schedule.warmup == 0.2 and cfg.loss == "Fusion6"
    assert cfg.run_id() != get_train_preset("hnerv-tiny").run_id()
    with pytest.raises(ValueError, match="unknown key --set epoch='3' for TrainConfig"):
        apply_overrides(cfg, ["epoch=3"])
    with pytest.raises(ValueError, match="unknown key --set model.fc_dimm='3' for"):
        apply_overrides(cfg, ["model.fc_dimm=3"])
    for name in list_presets():
        assert TrainConfig.from_dict(get_train_preset(name).to_dict()) == get_train_preset(name)


def test_model_size_must_match_the_video(tmp_path, smoke_cache):
    with pytest.raises(ValueError, match=r"outputs 160x320 frames but the video is 32x64"):
        prepare(_cfg("hnerv-tiny", model="hnerv-cpu-orig"), torch.device("cpu"), smoke_cache, progress=False)


@pytest.mark.parametrize(
    "name, overrides, match",
    [
        ("patch-tiny", dict(size=(32, 48)), r"outputs 16x16 patches but grid 2x4 cuts 16x12 patches from size 32x48"),
        ("patch-tiny", dict(grid=(2, 2)), r"outputs 16x16 patches but grid 2x2 cuts 16x32 patches"),
        ("hnerv-tiny", dict(size=(32, 48)), r"outputs 32x64 frames but size is 32x48"),
        ("hnerv-tiny", dict(size=None, crop=(64, 96)), r"outputs 32x64 frames but crop \(size unset\) is 64x96"),
        ("hnerv-tiny", dict(grid=(3, 4)), r"frame 32x64 does not divide into a 3x4 grid: 32 % 3 = 2"),
    ],
)
def test_config_mismatches_fail_before_any_decoding(tmp_path, monkeypatch, name, overrides, match):
    """What the config alone decides is checked first: no frame decoded, no CLIP target, no run directory."""
    import hnerv_lib.train.setup as setup

    monkeypatch.setattr(setup, "load_video", lambda *a, **k: pytest.fail("frames were decoded before validation"))
    with pytest.raises(ValueError, match=match):
        train(_cfg(name, **overrides), tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_dead_run_is_flagged_diverged_in_its_summary_and_the_sweep(tmp_path, smoke_cache):
    """lr=10 ends below its untrained start and a constant colour: summary, warning and sweep table say so."""
    from hnerv_lib.train.sweep import diverged, run_sweep, variant

    base = _cfg("hnerv-tiny", epochs=2, eval_every=2, model_overrides={"predict_clip": False})
    with pytest.warns(RuntimeWarning, match=r"below both its untrained start .* it diverged \(lr=10\.0\)"):
        res = run_sweep(base, [variant("lr", lr, lr=lr) for lr in (1e-3, 10.0)], tmp_path, progress=False,
                        cache_dir=smoke_cache)
    rows = res.set_index("label")
    assert rows.loc["10.0", "diverged"] and not rows.loc["0.001", "diverged"]
    assert rows.loc["10.0", "psnr_train"] < min(rows.loc["10.0", "psnr_init"], rows.loc["10.0", "psnr_mean_colour"])
    assert rows.loc["0.001", "psnr_train"] > rows.loc["0.001", "psnr_init"]  # two epochs: above where it began
    assert diverged(res)["label"].tolist() == ["10.0"]
    again = run_sweep(base, [variant("lr", 10.0, lr=10.0)], tmp_path, progress=False, cache_dir=smoke_cache)
    assert again["status"].tolist() == ["reused"] and again["diverged"].tolist() == [True]  # read from the summary


def test_two_process_ddp_matches_one_process(tmp_path, smoke_cache):
    """torchrun --nproc_per_node=2 (gloo on CPU) vs 1 process: same data, same global batch."""
    args = ["-m", "hnerv_lib.train", "--preset", "hnerv-tiny", "--set", "epochs=3", "--set", "threads=1",
            "--cache-dir", str(smoke_cache)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533"]
    subprocess.run([*torchrun, *args, "--run-dir", str(tmp_path / "ddp")], check=True, env=env, capture_output=True)
    subprocess.run([sys.executable, *args, "--run-dir", str(tmp_path / "one")], check=True, env=env, capture_output=True)
    ddp, one = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("ddp", "one"))
    assert ddp["processes"] == 2 and one["processes"] == 1
    # Gradients are averaged across processes, so only float summation order differs.
    assert ddp["psnr_train"] == pytest.approx(one["psnr_train"], abs=1e-3)
    assert ddp["final_loss"] == pytest.approx(one["final_loss"], rel=1e-3)
    pd.testing.assert_frame_equal(_metrics(tmp_path / "ddp"), _metrics(tmp_path / "one"), atol=1e-4, rtol=1e-3)


def test_compressed_file_scores_like_the_model(tmp_path, smoke_cache):
    """The compressed video decodes in frame order and scores within quantisation error of the model."""
    from hnerv_lib.codec.bitstream import compress
    from hnerv_lib.codec.decode import reconstructor
    from hnerv_lib.eval.frames import evaluate_frames, score_frames

    cfg = _cfg("hnerv-tiny", epochs=3)
    train(cfg, tmp_path, cache_dir=smoke_cache, progress=False)
    s = prepare(cfg, torch.device("cpu"), smoke_cache, progress=False)
    ck.load_weights(tmp_path / "checkpoint.pt", s.model)
    stats = compress(s.model.eval(), tmp_path / "video.hnerv", s.task.frames, grid=cfg.geometry())
    assert stats.bpp > 0 and stats.bpp_no_clip < stats.bpp
    model_df = evaluate_frames(s.task, s.model, s.split)
    file_df = score_frames(reconstructor(tmp_path / "video.hnerv"), s.task.frames, s.task.targets, s.split)
    assert (model_df["frame"] == file_df["frame"]).all()
    assert (model_df["psnr"] - file_df["psnr"]).abs().max() < 0.5  # 8-bit weights, 6-bit embeddings
    assert (model_df["clip_sim"] - file_df["clip_sim"]).abs().max() < 0.05


def test_bf16_autocast_keeps_the_ssim_loss_finite(smoke_cache):
    """Fusion6's SSIM term is computed in fp32 even under bf16 autocast (it went -inf in bf16)."""
    s = prepare(_cfg("patch-tiny", precision="bf16", loss="Fusion6"), torch.device("cpu"), smoke_cache, progress=False)
    items = torch.arange(8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = s.task.step_loss(s.model, items, 0.2)
    assert loss.total.dtype == torch.float32 and torch.isfinite(loss.total)
    f, p = s.task.train_frames[items // s.task.n], items % s.task.n
    perfect = s.task._combine(s.task.patches[f, p].bfloat16(), s.task.patches[f, p], None, None, 0.0)
    assert perfect.total.item() == pytest.approx(0.0, abs=1e-2)  # bf16-rounded input, fp32 loss


@pytest.mark.parametrize("preset", ["hnerv-tiny", "patch-tiny"])
def test_reconstruct_in_batches_equals_one_pass(preset):
    from hnerv_lib.data import geometry as G
    from hnerv_lib.models import build_model, get_preset
    from hnerv_lib.train.families import make_task

    cfg = get_preset(preset, predict_clip=False)
    frames = torch.rand(5, 3, 32, 64, generator=torch.Generator().manual_seed(0))
    task = make_task(cfg, frames, None, G.Grid(2, 4).windows((32, 64)), [0, 1, 2], "L2")
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    ids = torch.arange(5)
    whole, _ = task.reconstruct(model, ids, batch_size=5)
    chunked, clip = task.reconstruct(model, ids, batch_size=2)
    assert clip is None and chunked.shape == (5, 3, 32, 64)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["hnerv-tiny", "patch-tiny"])
def test_a_clip_head_at_lambda_0_trains_the_pixels_exactly_as_no_head(tmp_path, smoke_cache, name):
    """Why the quick profile leaves 04's head-off group to cpu/paper: it can only repeat lambda 0's pixels."""
    on = train(_cfg(name, epochs=3, eval_every=3, clip_weight=0.0), tmp_path / "on", cache_dir=smoke_cache,
               progress=False)
    off = train(_cfg(name, epochs=3, eval_every=3, model_overrides={"predict_clip": False}), tmp_path / "off",
                cache_dir=smoke_cache, progress=False)
    assert on["params"] > off["params"]
    for key in ("psnr_train", "psnr_val"):
        assert on[key] == off[key]
    cols = ["epoch", "pixel_loss", "psnr_train"]
    pd.testing.assert_frame_equal(_metrics(tmp_path / "on")[cols], _metrics(tmp_path / "off")[cols])
