"""Benchmarks: speed and memory targets are measured here, never in timed tests.

    python -m hnerv_lib.bench train --model full --profile cpu --epochs 3 --repeats 3
    python -m hnerv_lib.bench train --model patch --profile cpu --epochs 2 --set precision=bf16
    python -m hnerv_lib.bench precision --profile quick      # ms/step of each precision vs auto's pick
    python -m hnerv_lib.bench machine                        # GEMM and 3x3-conv GFLOP/s, CPU flags
    python -m hnerv_lib.bench profile --model full --profile cpu --set precision=fp32   # where a step's time goes
    python -m hnerv_lib.bench clip-head --profile quick      # the CLIP map head: whole map vs the cells read

Prints one JSON object: params, seconds per epoch (median over epochs of the median run), ms per
step, frames/s (and patches/s for the patch model), peak RSS, final PSNR, every run's numbers, and
the precision and memory format the runs used with the reason (``precision=auto``, the default, is
decided by a probe of this machine: utils/precision.py), and the layout the decoder's features really
had in a step (``features_layout``). ``train`` also gives the FLOPs of a step
(forward and backward, counted), the GFLOP/s it achieved, this process's GEMM GFLOP/s at the same
precision, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from dataclasses import replace
from typing import Any, Optional

import torch

from hnerv_lib.models.blocks import layout_of
from hnerv_lib.report.params import TrainingParams, from_namespace, load_profile
from hnerv_lib.train.config import apply_overrides, get_train_preset
from hnerv_lib.train.trainer import make_optimizer, prepare, train
from hnerv_lib.utils.cli import add_debug_flag, guarded
from hnerv_lib.utils.flops import count_flops, gemm_gflops, machine_peak
from hnerv_lib.utils.memory import peak_rss_mb
from hnerv_lib.utils.timing import Timing, time_call
from hnerv_lib.utils.precision import cpu_flags, cpu_model

# (model, profile) -> training preset; the cpu pair are the configurations measured with the
# original HNeRV code and the research fork's patch trainer on this machine kind (anchors.md).
BENCH_PRESETS = {
    ("full", "smoke"): "hnerv-tiny",
    ("patch", "smoke"): "patch-tiny",
    ("full", "cpu"): "hnerv-cpu-orig",
    ("patch", "cpu"): "patch-cpu-fork",
    ("full", "paper"): "paper-hnerv-1.5m",
}


def bench_train(model: str, profile: str, epochs: int, repeats: int = 1, overrides: Optional[list[str]] = None,
                cache_dir: str = "data/cache") -> dict[str, Any]:
    """Train the benchmark preset ``repeats`` times for ``epochs`` epochs; timing statistics as a dict."""
    if (model, profile) not in BENCH_PRESETS:
        raise ValueError(f"no benchmark for model {model!r} at profile {profile!r}; known: {sorted(BENCH_PRESETS)}")
    preset = BENCH_PRESETS[(model, profile)]
    cfg = apply_overrides(get_train_preset(preset), [f"epochs={epochs}", f"eval_every={epochs}", *(overrides or [])])
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            summary = train(cfg, tmp, cache_dir=cache_dir, progress=False)
        runs.append(summary)
    best = sorted(runs, key=lambda r: r["seconds_per_epoch"])[len(runs) // 2]  # the median run
    train_frames = int(best["split"].split(":")[1].split("train")[0].strip())
    items = train_frames * (cfg.grid[0] * cfg.grid[1] if model == "patch" else 1)
    steps = math.ceil(items / cfg.batch_size)
    s_epoch = best["seconds_per_epoch"]
    item_flops, layout = flops_per_item(replace(cfg, precision=best["precision"], channels_last=best["channels_last"]),
                                        cache_dir)
    gflop_epoch = item_flops * items / 1e9
    gemm = gemm_gflops(precision=best["precision"])  # this process, these threads: the step's yardstick
    out = {
        "bench": "train", "model": model, "profile": profile, "preset": preset, "overrides": overrides or [],
        "params": best["params"], "epochs": epochs, "repeats": repeats,
        "s_per_epoch": round(s_epoch, 3), "s_per_epoch_runs": [round(r["seconds_per_epoch"], 3) for r in runs],
        "steps_per_epoch": steps, "ms_per_step": round(1e3 * s_epoch / steps, 1),
        "frames_per_s": round(train_frames / s_epoch, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1), "final_psnr": round(best.get("psnr_train", float("nan")), 3),
        "final_psnr_runs": [round(r.get("psnr_train", float("nan")), 3) for r in runs],
        "threads": torch.get_num_threads(), "torch": torch.__version__, "cpu": cpu_model(),
        "device": cfg.device, "precision_asked": cfg.precision, "channels_last_asked": cfg.channels_last,
        "precision": best["precision"], "channels_last": best["channels_last"],
        "precision_reason": best["precision_reason"], "features_layout": layout,
        "gflop_per_step": round(gflop_epoch / items * cfg.batch_size, 2), "gflop_per_epoch": round(gflop_epoch, 1),
        "achieved_gflops": round(gflop_epoch / s_epoch, 1), f"machine_gemm_{best['precision']}_gflops": round(gemm, 1),
        "achieved_over_gemm": round(gflop_epoch / s_epoch / gemm, 3), "cpu_flags": cpu_flags(),
    }
    if model == "patch":
        out["patches_per_s"] = round(train_frames * cfg.grid[0] * cfg.grid[1] / s_epoch, 1)
    return out


SETTINGS = ("fp32", "fp32+CL", "bf16", "bf16+CL")


def _training_step(cfg, cache_dir: str):
    """(one optimiser step of ``cfg`` on its first batch: forward, loss, backward, Adam; the batch size;
    the run's Setup). The step runs at the precision and memory format the run resolves to."""
    s = prepare(cfg, torch.device(cfg.device), cache_dir, progress=False)
    model, items = s.model.train(), torch.arange(min(cfg.batch_size, s.task.num_items()), device=s.device)
    opt = make_optimizer(model, cfg.lr, s.device)

    def step() -> None:
        with s.hardware.autocast(s.device):
            loss = s.task.step_loss(model, items, cfg.clip_weight)
        opt.zero_grad(set_to_none=True)
        loss.total.backward()
        opt.step()

    return step, len(items), s


def _step_ms(cfg, steps: int, warmup: int, cache_dir: str) -> float:
    """Median ms of ``steps`` optimiser steps after ``warmup`` untimed ones."""
    step, _, s = _training_step(cfg, cache_dir)
    sync = torch.cuda.synchronize if s.device.type == "cuda" else None
    return time_call(step, steps, warmup, sync)[0].median_s * 1e3


def flops_per_item(cfg, cache_dir: str) -> tuple[float, str]:
    """FLOPs of one training item (a frame, or a patch) in a training step, forward and backward; and the
    memory layout the RGB head's input had in that step (``layout_of``): what the kernels were given."""
    step, batch, s = _training_step(cfg, cache_dir)
    seen: list[torch.Tensor] = []
    hook = s.model.rgb_head.register_forward_hook(lambda module, inputs, out: seen.append(inputs[0]))
    try:
        flops = count_flops(step)
    finally:
        hook.remove()
    return flops / batch, layout_of(seen[0])


# the profiler's ops that do a convolution's arithmetic (their self time is the kernel's time)
CONV_FORWARD = ("aten::mkldnn_convolution", "aten::_slow_conv2d_forward", "aten::thnn_conv2d", "aten::_nnpack_spatial_convolution")
CONV_BACKWARD = ("aten::convolution_backward",)


def _conv_gflop(event, out_numel: dict[tuple, int]) -> Optional[float]:
    """GFLOP of one call of a profiled convolution op (both gradients for a backward), from its shapes."""
    shapes = event.input_shapes
    if event.key in CONV_BACKWARD and len(shapes) > 2 and len(shapes[2]) == 4:
        grad_out, weight = shapes[0], shapes[2]
        return 2 * 2 * math.prod(grad_out) * math.prod(weight[1:]) / 1e9
    if event.key in CONV_FORWARD and len(shapes) > 1 and tuple(shapes[1]) in out_numel:
        return 2 * out_numel[tuple(shapes[1])] * math.prod(shapes[1][1:]) / 1e9
    return None


def bench_profile(model: str, profile: str, steps: int = 4, warmup: int = 3, top: int = 15,
                  overrides: Optional[list[str]] = None, cache_dir: str = "data/cache") -> dict[str, Any]:
    """Where one training step of the benchmark preset spends its time: torch.profiler's self CPU time per
    op and input shape (ms per step, share of the step), summed into convolution forward, convolution
    backward and the rest, with each convolution's achieved GFLOP/s."""
    if (model, profile) not in BENCH_PRESETS:
        raise ValueError(f"no benchmark for model {model!r} at profile {profile!r}; known: {sorted(BENCH_PRESETS)}")
    for name, value in (("steps", steps), ("top", top)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1; got {value}")
    cfg = apply_overrides(get_train_preset(BENCH_PRESETS[(model, profile)]), overrides or [])
    step, batch, s = _training_step(cfg, cache_dir)
    wall, _ = time_call(step, max(steps, 5), warmup)  # the unprofiled step, for the profiler's overhead
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            step()
    events = [e for e in prof.key_averages(group_by_input_shape=True) if e.self_cpu_time_total > 0]
    total_ms = sum(e.self_cpu_time_total for e in events) / 1e3 / steps
    out_numel = {tuple(e.input_shapes[2]): math.prod(e.input_shapes[0]) for e in events
                 if e.key in CONV_BACKWARD and len(e.input_shapes) > 2}

    def ms(e) -> float:
        return e.self_cpu_time_total / 1e3 / steps

    def group(keys) -> float:
        return round(sum(ms(e) for e in events if e.key in keys), 1)

    rows = []
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]:
        gflop = _conv_gflop(e, out_numel)
        rows.append({"op": e.key, "shapes": ", ".join("x".join(map(str, x)) for x in e.input_shapes[:3] if x), "ms_per_step": round(ms(e), 2),
                     "calls_per_step": e.count // steps, "share": round(ms(e) / total_ms, 3),
                     "gflops": round(gflop * e.count / steps / (ms(e) / 1e3), 1) if gflop else None})
    conv_fwd, conv_bwd = group(CONV_FORWARD), group(CONV_BACKWARD)
    return {
        "bench": "profile", "model": model, "profile": profile, "overrides": overrides or [], "batch": batch,
        "precision": s.hardware.precision, "channels_last": s.hardware.channels_last,
        "ms_per_step_unprofiled": round(wall.median_s * 1e3, 1), "ms_per_step_profiled_ops": round(total_ms, 1),
        "conv_forward_ms": conv_fwd, "conv_backward_ms": conv_bwd,
        "other_ms": round(total_ms - conv_fwd - conv_bwd, 1), "conv_share": round((conv_fwd + conv_bwd) / total_ms, 3),
        "backward_over_forward": round(conv_bwd / conv_fwd, 2) if conv_fwd else None,
        "top_ops": rows, "threads": torch.get_num_threads(), "torch": torch.__version__, "cpu": cpu_model(),
        "cpu_flags": cpu_flags(), "device": str(s.device),
    }


def bench_precision(profile: str, steps: int = 10, warmup: int = 3, params_dir: str = "params",
                    cache_dir: str = "data/cache") -> dict[str, Any]:
    """For each model family of a profile: ms/step in fp32 / bf16, contiguous / channels-last, and what auto picks.

    Says, on this machine, how far ``precision: auto`` (one probe network for every model) is from the
    fastest setting of the profile's own models.
    """
    tp = from_namespace(TrainingParams, load_profile(profile, params_dir))
    rows = []
    for family in ("full", "patch"):
        base = tp.train_config(family)
        ms = {name: _step_ms(replace(base, precision=name.split("+")[0], channels_last=name.endswith("+CL")),
                             steps, warmup, cache_dir) for name in SETTINGS}
        auto = base.hardware()
        best = min(ms, key=ms.get)
        rows.append({"family": family, "model": base.model, "batch": base.batch_size,
                     "ms_per_step": {k: round(v, 1) for k, v in ms.items()}, "fastest": best, "auto": auto.label(),
                     "auto_vs_fastest_pct": round(100 * (ms[auto.label()] / ms[best] - 1), 1),
                     "auto_reason": auto.reason})
    return {"bench": "precision", "profile": profile, "steps": steps, "warmup": warmup, "rows": rows,
            "threads": torch.get_num_threads(), "torch": torch.__version__, "cpu": cpu_model()}


def bench_clip_head(profile: str, rounds: int = 5, repeats: int = 5, params_dir: str = "params",
                    cache_dir: str = "data/cache") -> dict[str, Any]:
    """ms per training step of a profile's full-frame model with its CLIP head computed over the whole
    map and then sampled at the patch centres, computed only at the cells read there, and off
    (pixel-only epochs). The three steps take turns, ``rounds`` times ``repeats`` timed steps each, so
    a drift in the machine's speed hits them alike; the losses of the first two must agree."""
    if rounds < 1 or repeats < 1:
        raise ValueError(f"rounds and repeats must be >= 1; got {rounds}, {repeats}")
    cfg = from_namespace(TrainingParams, load_profile(profile, params_dir)).train_config("full")
    if not cfg.model_config().predict_clip:
        raise ValueError(f"profile {profile!r} trains {cfg.model!r} without a CLIP head: nothing to compare")
    s = prepare(cfg, torch.device(cfg.device), cache_dir, progress=False)
    model, task = s.model.train(), s.task
    items = torch.arange(min(cfg.batch_size, task.num_items()), device=s.device)
    opt = make_optimizer(model, cfg.lr, s.device)
    weight = cfg.clip_weight or 0.2
    sync = torch.cuda.synchronize if s.device.type == "cuda" else None

    def step(whole_map: bool, clip_weight: float):
        def run() -> float:
            task.whole_map = whole_map
            with s.hardware.autocast(s.device):
                loss = task.step_loss(model, items, clip_weight)
            opt.zero_grad(set_to_none=True)
            loss.total.backward()
            opt.step()
            return float(loss.total.detach())
        return run

    steps = {"whole map, sampled": step(True, weight), "cells read only": step(False, weight), "no head": step(False, 0.0)}
    with torch.no_grad(), s.hardware.autocast(s.device):
        task.whole_map = True
        whole = float(task.step_loss(model, items, weight).total)
        task.whole_map = False
        cells = float(task.step_loss(model, items, weight).total)
    runs: dict[str, list[float]] = {name: [] for name in steps}
    for name, fn in steps.items():
        time_call(fn, 1, 2, sync)  # warm-up: kernel selection for each path
    for _ in range(rounds):
        for name, fn in steps.items():
            runs[name].extend(time_call(fn, repeats, 0, sync)[0].runs_s)
    timings = {name: Timing.of(r) for name, r in runs.items()}
    return {"bench": "clip-head", "profile": profile, "model": cfg.model, "batch": len(items),
            "frame_hw": list(cfg.size or cfg.crop), "precision": s.hardware.precision,
            "channels_last": s.hardware.channels_last, "rounds": rounds, "repeats": repeats,
            "ms_per_step": {k: round(t.median_s * 1e3, 2) for k, t in timings.items()},
            "ms_q1_q3": {k: [round(t.q1_s * 1e3, 2), round(t.q3_s * 1e3, 2)] for k, t in timings.items()},
            "loss_whole_map": whole, "loss_cells_read": cells,
            "threads": torch.get_num_threads(), "torch": torch.__version__, "cpu": cpu_model(), "cpu_flags": cpu_flags(),
            "device": str(s.device)}


def main(argv: Optional[list[str]] = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(prog="python -m hnerv_lib.bench", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    tr = sub.add_parser("train", help="training throughput of a model family at a profile")
    tr.add_argument("--model", choices=["full", "patch"], default="full")
    tr.add_argument("--profile", choices=["smoke", "cpu", "paper"], default="cpu")
    tr.add_argument("--epochs", type=int, default=3)
    tr.add_argument("--repeats", type=int, default=1, help="independent runs; the median run is reported")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    tr.add_argument("--cache-dir", default="data/cache")
    pr = sub.add_parser("precision", help="ms/step of each precision for a profile's models, and auto's pick")
    pr.add_argument("--profile", default="quick", help="params/<profile>.yaml")
    pr.add_argument("--steps", type=int, default=10, help="timed steps per setting (median reported)")
    pr.add_argument("--warmup", type=int, default=3)
    pr.add_argument("--cache-dir", default="data/cache")
    ma = sub.add_parser("machine", help="this machine's measured GEMM and 3x3-conv GFLOP/s and its CPU flags")
    ma.add_argument("--no-bf16", action="store_true", help="fp32 only")
    ma.add_argument("--n", type=int, default=2048, help="GEMM size n (n x n by n x n)")
    po = sub.add_parser("profile", help="where a training step's time goes: self time per op, convolutions summed")
    po.add_argument("--model", choices=["full", "patch"], default="full")
    po.add_argument("--profile", choices=["smoke", "cpu", "paper"], default="cpu")
    po.add_argument("--steps", type=int, default=4, help="profiled steps (times are per step)")
    po.add_argument("--top", type=int, default=15, help="how many ops to list, by self time")
    po.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    po.add_argument("--cache-dir", default="data/cache")
    ch = sub.add_parser("clip-head", help="ms/step of the full-frame CLIP head: whole map vs the cells read vs off")
    ch.add_argument("--profile", default="quick", help="params/<profile>.yaml")
    ch.add_argument("--rounds", type=int, default=5, help="turns of the three steps")
    ch.add_argument("--repeats", type=int, default=5, help="timed steps per turn")
    ch.add_argument("--cache-dir", default="data/cache")
    for command in (tr, pr, ma, po, ch):
        add_debug_flag(command)
    args = ap.parse_args(argv)
    return guarded("python -m hnerv_lib.bench", lambda: _run(args), args)


def _run(args: argparse.Namespace) -> int:
    if args.what == "precision":
        result = bench_precision(args.profile, args.steps, args.warmup, cache_dir=args.cache_dir)
    elif args.what == "profile":
        result = bench_profile(args.model, args.profile, args.steps, top=args.top, overrides=args.set,
                               cache_dir=args.cache_dir)
    elif args.what == "clip-head":
        result = bench_clip_head(args.profile, args.rounds, args.repeats, cache_dir=args.cache_dir)
    elif args.what == "machine":
        result = {"bench": "machine", **machine_peak(bf16=not args.no_bf16, n=args.n)}
    else:
        result = bench_train(args.model, args.profile, args.epochs, args.repeats, args.set, args.cache_dir)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
