"""The benchmark's JSON carries the step's FLOPs, its achieved rate and the machine's GEMM rate beside it."""

import json

import pytest

from hnerv_lib.bench import main


def test_bench_train_reports_achieved_against_the_machines_gemm(smoke_cache, capsys):
    assert main(["train", "--model", "full", "--profile", "smoke", "--epochs", "1", "--set", "precision=fp32",
                 "--cache-dir", str(smoke_cache)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["gflop_per_step"] > 0 and out["machine_gemm_fp32_gflops"] > 0
    rate = out["gflop_per_epoch"] / out["s_per_epoch"]  # the printed numbers are rounded: compare loosely
    assert out["achieved_gflops"] == pytest.approx(rate, rel=0.15)
    assert out["achieved_over_gemm"] == pytest.approx(out["achieved_gflops"] / out["machine_gemm_fp32_gflops"], rel=0.05)
    assert out["cpu_flags"]


def test_bench_machine_prints_gemm_and_conv_rates(capsys):
    assert main(["machine", "--no-bf16", "--n", "64"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bench"] == "machine" and out["gemm_fp32_gflops"] > 0 and out["conv3x3_fp32_gflops"] > 0
