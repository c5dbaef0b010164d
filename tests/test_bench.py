"""The benchmark's JSON carries the step's FLOPs, its achieved rate and the machine's GEMM rate beside it."""

import json

import pytest

from hnerv_lib.bench import main


@pytest.mark.parametrize("channels_last", ["false", "true"])
def test_bench_train_reports_achieved_against_the_machines_gemm(smoke_cache, capsys, channels_last):
    assert main(["train", "--model", "full", "--profile", "smoke", "--epochs", "1", "--set", "precision=fp32",
                 "--set", f"channels_last={channels_last}", "--cache-dir", str(smoke_cache)]) == 0
    out = json.loads(capsys.readouterr().out)
    # the layout the decoder really ran in follows the setting (before 6f34e80 it was NHWC either way)
    assert out["features_layout"] == ("channels_last" if channels_last == "true" else "contiguous")
    assert out["gflop_per_step"] > 0 and out["machine_gemm_fp32_gflops"] > 0
    rate = out["gflop_per_epoch"] / out["s_per_epoch"]  # the printed numbers are rounded: compare loosely
    assert out["achieved_gflops"] == pytest.approx(rate, rel=0.15)
    assert out["achieved_over_gemm"] == pytest.approx(out["achieved_gflops"] / out["machine_gemm_fp32_gflops"], rel=0.05)
    assert out["cpu_flags"]


def test_bench_machine_prints_gemm_and_conv_rates(capsys):
    assert main(["machine", "--no-bf16", "--n", "64"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bench"] == "machine" and out["gemm_fp32_gflops"] > 0 and out["conv3x3_fp32_gflops"] > 0


def test_bench_profile_splits_the_step_into_convolutions_and_the_rest(smoke_cache, capsys):
    assert main(["profile", "--model", "full", "--profile", "smoke", "--steps", "2", "--top", "6", "--set",
                 "precision=fp32", "--set", "channels_last=false", "--cache-dir", str(smoke_cache)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bench"] == "profile" and (out["precision"], out["channels_last"]) == ("fp32", False)
    assert out["conv_forward_ms"] > 0 and out["conv_backward_ms"] > 0 and out["other_ms"] >= 0
    parts = out["conv_forward_ms"] + out["conv_backward_ms"] + out["other_ms"]
    assert parts == pytest.approx(out["ms_per_step_profiled_ops"], abs=0.5)
    rows = out["top_ops"]
    assert len(rows) == 6 and [r["ms_per_step"] for r in rows] == sorted((r["ms_per_step"] for r in rows), reverse=True)
    convs = [r for r in rows if r["op"] == "aten::convolution_backward"]
    assert convs and all(r["gflops"] > 0 and "x" in r["shapes"] for r in convs)


def test_bench_profile_refuses_zero_steps_before_any_work(capsys):
    assert main(["profile", "--model", "full", "--profile", "smoke", "--steps", "0"]) != 0
    assert "steps must be >= 1; got 0" in capsys.readouterr().err


def test_bench_clip_head_times_the_three_steps_and_their_losses_agree(smoke_cache, capsys):
    assert main(["clip-head", "--profile", "smoke", "--rounds", "1", "--repeats", "1", "--cache-dir", str(smoke_cache)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["ms_per_step"]) == {"whole map, sampled", "cells read only", "no head"}
    assert all(ms > 0 for ms in out["ms_per_step"].values())
    assert out["loss_cells_read"] == pytest.approx(out["loss_whole_map"], rel=1e-3)  # the same loss, another path
    assert main(["clip-head", "--profile", "smoke", "--rounds", "0"]) != 0
    assert "rounds and repeats must be >= 1; got 0, 5" in capsys.readouterr().err
