"""Tests for hnerv_lib.compress: quantisation, the single-file container, decoding order, export, CLI."""

from __future__ import annotations

import copy
import json

import av
import numpy as np
import pytest
import torch
from dahuffman import HuffmanCodec
from PIL import Image

from hnerv_lib import compress as cli
from hnerv_lib.codec import bitstream, decode, quantise
from hnerv_lib.data.geometry import Grid
from hnerv_lib.eval.metrics import psnr
from hnerv_lib.models import build_model, count_params, get_preset

T, HW = 6, (32, 64)
PRESETS = {"hnerv": ("hnerv-tiny", {}), "nerv": ("hnerv-tiny", {"kind": "nerv", "fc_hw": (2, 4)}), "patch": ("patch-tiny", {})}
KINDS = tuple(PRESETS)
# Random-init RGB heads give near-constant grey frames (std ~0.02), where any quantiser looks
# perfect; x10 gives frames with std ~0.15-0.3, closer to real video contrast.
RGB_GAIN = 10.0
# 8 bits measured 64-72 dB PSNR vs the float model on these smoke models (3 seeds, all kinds);
# 6 bits gave 52-62 dB and 4 bits 42-48 dB, so 55 dB passes 8-bit and catches a coarser quantiser.
MIN_QUANT_PSNR = 55.0


def _model(kind: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    name, overrides = PRESETS[kind]
    model = build_model(get_preset(name, **overrides))
    with torch.no_grad():
        model.rgb_head.conv.weight.mul_(RGB_GAIN)
        model.rgb_head.conv.bias.mul_(RGB_GAIN)
    return model


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """kind -> (float model, frames, stats, loaded) for one compressed smoke video per kind."""
    out, torch_frames = {}, torch.Generator().manual_seed(1)
    frames = torch.rand(T, 3, *HW, generator=torch_frames)
    for kind in KINDS:
        model = _model(kind)
        path = tmp_path_factory.mktemp(kind) / f"{kind}.hnrv"
        stats = bitstream.compress(model, path, frames=frames, frame_hw=HW)
        out[kind] = (model, frames, stats, bitstream.load_compressed(path))
    return out


@torch.no_grad()
def _reference_frames(model: torch.nn.Module, frames: torch.Tensor, kind: str) -> list[torch.Tensor]:
    """Each frame i from the in-memory model after the same quantisation, decoded on its own."""
    qmodel = copy.deepcopy(model)
    qmodel.load_state_dict({k: quantise.dequantize(v) for k, v in quantise.quantize_model(model, 8).items()}, strict=False)
    emb = quantise.dequantize(quantise.quantize(model.embed(frames), 6)) if kind == "hnerv" else None
    grid = Grid(2, 4)  # 32x64 in 16x16 patches; placed by hand (row-major) rather than via stitch
    xy = torch.tensor([w.center_xy(HW) for w in grid.windows(HW)])
    out = []
    for i in range(T):
        if kind == "hnerv":
            out.append(qmodel.decode(emb[i:i + 1])["rgb"][0])
        elif kind == "nerv":
            out.append(qmodel(torch.tensor([i / T]))["rgb"][0])
        else:
            patches = qmodel(torch.cat([torch.full((len(xy), 1), i / T), xy], dim=1))["rgb"]
            out.append(torch.cat([torch.cat(list(patches[r * 4:(r + 1) * 4]), dim=-1) for r in range(2)], dim=-2))
    return out


def test_quantize_round_trip_error_is_at_most_half_a_step():
    torch.manual_seed(0)
    for bits in (2, 6, 8, 12):
        t = torch.randn(7, 9, 3) * 0.1 + 0.37
        q = quantise.quantize(t, bits)
        assert q.q.min() >= 0 and q.q.max() <= 2**bits - 1
        assert q.min.dtype == q.scale.dtype == torch.float16
        err = (quantise.dequantize(q) - t).abs()
        assert (err <= q.scale.float() / 2 + 1e-6).all(), (bits, err.max().item(), q.scale)


def test_quantize_picks_per_slice_pairs_when_rows_differ_in_scale():
    rows = torch.randn(4, 100) * torch.tensor([[1e-3], [1e-2], [1e-1], [1.0]])
    q = quantise.quantize(rows, 8)  # 4 pairs for 400 values is < 2 %: per-row min/scale is allowed and wins
    assert q.axis == 1 and q.min.shape == (4, 1)
    assert ((quantise.dequantize(q) - rows).abs() <= q.scale.float() / 2 + 1e-7).all()
    assert quantise.quantize(torch.randn(4, 40), 8).axis == -1  # 4 / 160 > 2 %: per tensor only


def test_quantize_constant_tensor_and_bad_input():
    q = quantise.quantize(torch.full((3, 3), 0.25), 8)
    assert torch.equal(quantise.dequantize(q), torch.full((3, 3), 0.25))
    for bad, bits in [(torch.randn(3), 0), (torch.randn(3), 17), (torch.tensor([1.0, float("nan")]), 8),
                      (torch.tensor([1e6]), 8), (torch.arange(3), 8), (torch.empty(0), 8)]:
        with pytest.raises(ValueError):
            quantise.quantize(bad, bits)


@pytest.mark.parametrize("kind", KINDS)
def test_every_decoded_frame_matches_the_quantised_in_memory_model(packed, kind):
    model, frames, _, loaded = packed[kind]
    decoded = decode.decode_frames(loaded, batch=4)  # batches of 4 so a batch boundary falls inside the video
    assert decoded.shape == (T, 3, *HW) and decoded.dtype == torch.float32
    for i, ref in enumerate(_reference_frames(model, frames, kind)):
        torch.testing.assert_close(decoded[i], ref, atol=1e-5, rtol=0)
    assert not torch.allclose(decoded[0], decoded[-1], atol=1e-3)  # frames differ, so order is tested


@pytest.mark.parametrize("kind", KINDS)
def test_shuffled_indices_come_back_in_the_order_asked(packed, kind):
    loaded = packed[kind][3]
    everything = decode.decode_frames(loaded)
    torch.testing.assert_close(decode.decode_frames(loaded, indices=[3, 1]), everything[[3, 1]], atol=1e-6, rtol=0)
    torch.testing.assert_close(decode.decode_frames(packed[kind][2].path, indices=[5]), everything[[5]])
    with pytest.raises(ValueError, match="frame indices"):
        decode.decode_frames(loaded, indices=[T])


@pytest.mark.parametrize("kind", KINDS)
def test_quantised_frames_are_close_to_the_float_model(packed, kind):
    model, frames, _, loaded = packed[kind]
    with torch.no_grad():
        if kind == "hnerv":
            ref = model(frames)["rgb"]
        elif kind == "nerv":
            ref = model(torch.arange(T) / T)["rgb"]
        else:
            ref = decode.decode_frames((model, None, loaded[2]))  # the float model through the same stitching
    assert ref.std() > 0.1  # the frames have contrast, so PSNR means something
    assert psnr(decode.decode_frames(loaded), ref).min() > MIN_QUANT_PSNR


@pytest.mark.parametrize("kind", KINDS)
def test_bits_per_pixel_by_hand(packed, kind):
    model, frames, stats, _ = packed[kind]
    qweights = quantise.quantize_model(model, 8)
    qembed = {"embedding": quantise.quantize(model.embed(frames), 6)} if kind == "hnerv" else {}
    everything = {**qembed, **qweights}
    symbols = torch.cat([q.q.flatten() for q in everything.values()]).tolist()
    table = HuffmanCodec.from_data(symbols).get_code_table()  # optimal codes share one total length
    coded = sum(table[s][0] for s in symbols)
    assert abs(stats.weight_bits + stats.embed_bits - coded) <= 2 * max(b for b, _ in table.values())
    assert stats.side_bits == 16 * sum(q.min.numel() + q.scale.numel() for q in everything.values())
    assert stats.total_bits == stats.weight_bits + stats.embed_bits + stats.side_bits
    pixels = T * HW[0] * HW[1]
    assert stats.bpp == pytest.approx(stats.total_bits / pixels)
    assert stats.bpp_no_clip == pytest.approx((stats.total_bits - stats.clip_head_bits) / pixels)
    assert 0 < stats.clip_head_bits < stats.total_bits
    assert stats.file_bytes == packed[kind][2].file_bytes and stats.file_bytes * 8 >= stats.weight_bits + stats.embed_bits
    assert (stats.embed_bits > 0) == (kind == "hnerv")
    assert stats.params["clip_head"] == count_params(model, "clip_head")
    stored = sum(v.numel() for k, v in model.state_dict().items() if not k.startswith("encoder."))
    assert stats.params["total"] == stored + (T * 8 * 2 * 4 if kind == "hnerv" else 0)
    assert "encoder" not in stats.params


def test_loaded_hnerv_ships_no_encoder_and_rebuilds_from_the_header(packed):
    model, emb, meta = packed["hnerv"][3]
    assert meta["kind"] == "hnerv" and meta["num_frames"] == T and emb.shape == (T, 8, 2, 4)
    assert count_params(model, "encoder") == 0 and not model.training
    with pytest.raises(ValueError, match="stores no encoder"):
        model.embed(packed["hnerv"][1][:1])
    assert packed["patch"][3][2]["geometry"] == Grid(2, 4).to_dict()


def test_export_png_frames_in_order(packed, tmp_path):
    path, out = packed["hnerv"][2].path, tmp_path / "png"
    written = decode.export_frames(path, out)
    assert [p.name for p in written] == [f"frame_{i:05d}.png" for i in range(T)]
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in written]
    expected = (decode.decode_frames(path) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for i, p in enumerate(written):
        assert np.array_equal(np.asarray(Image.open(p)), expected[i])
    with pytest.raises(ValueError, match="not an empty directory"):
        decode.export_frames(path, out)


def test_export_mp4_decodes_back_to_all_frames(packed, tmp_path):
    (video,) = decode.export_frames(packed["patch"][2].path, tmp_path / "mp4", fmt="mp4", fps=10)
    with av.open(str(video)) as box:
        frames = [f.to_ndarray(format="rgb24") for f in box.decode(video=0)]
    assert len(frames) == T and all(f.shape == (*HW, 3) for f in frames)


def test_truncated_or_corrupt_file_is_one_clear_error_and_writes_nothing(packed, tmp_path):
    data = open(packed["nerv"][2].path, "rb").read()
    for name, blob in [("cut.hnrv", data[: len(data) // 2]), ("short.hnrv", data[:10]),
                       ("flip.hnrv", data[:-5] + bytes([data[-5] ^ 0xFF]) + data[-4:])]:
        bad = tmp_path / name
        bad.write_bytes(blob)
        with pytest.raises(ValueError, match=f"{name}.*corrupt or truncated"):
            bitstream.load_compressed(bad)
        with pytest.raises(ValueError, match=name):
            decode.export_frames(bad, tmp_path / f"out_{name}")
        assert not (tmp_path / f"out_{name}").exists()
    with pytest.raises(ValueError, match="missing.hnrv does not exist"):
        bitstream.load_compressed(tmp_path / "missing.hnrv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.hnrv", "flip.hnrv", "short.hnrv"]


def test_compress_rejects_bad_input_and_leaves_no_file(tmp_path):
    hnerv, patch = _model("hnerv"), _model("patch")
    target = tmp_path / "x.hnrv"
    with pytest.raises(ValueError, match="needs frames"):
        bitstream.compress(hnerv, target)
    with pytest.raises(ValueError, match="frame_hw"):
        bitstream.compress(hnerv, target, frames=torch.rand(2, 3, 16, 32))
    with pytest.raises(ValueError, match="frame_hw"):
        bitstream.compress(patch, target, num_frames=4)
    with pytest.raises(ValueError, match="qcfg"):
        bitstream.compress(patch, target, num_frames=4, frame_hw=HW, qcfg={"model_bits": 8})
    with pytest.raises(ValueError, match="model_bits"):
        quantise.QuantConfig(model_bits=0)
    assert list(tmp_path.iterdir()) == []


def test_cli_info_and_decode(packed, tmp_path, capsys):
    path = packed["patch"][2].path
    assert cli.main(["info", path]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "patch" and info["bpp"]["bpp"] == pytest.approx(packed["patch"][2].bpp)
    assert cli.main(["decode", path, str(tmp_path / "cli")]) == 0
    assert len(list((tmp_path / "cli").iterdir())) == T
    assert cli.main(["info", str(tmp_path / "nope.hnrv")]) == 2
    assert "nope.hnrv" in capsys.readouterr().err


def test_decoding_speed_reports_a_median(packed):
    speed = decode.decoding_speed(packed["hnerv"][3], repeats=3)
    runs = speed["timing"]["runs_s"]
    assert speed["frames_per_s"] > 0 and speed["num_frames"] == T and len(runs) == 3
    assert speed["seconds"] == sorted(runs)[1] and speed["load_s"] is None
    slow, fast = speed["frames_per_s_iqr"]
    assert slow <= speed["frames_per_s"] <= fast  # the interquartile range brackets the median rate
    assert decode.decoding_speed(packed["nerv"][2].path, repeats=1)["load_s"] > 0


@pytest.mark.parametrize("preset", ["hnerv-tiny", "patch-tiny"])
def test_training_writes_the_file_when_asked_and_the_cli_compresses_a_finished_run(tmp_path, smoke_cache, capsys,
                                                                                    preset):
    from dataclasses import replace

    from hnerv_lib.train.config import get_train_preset
    from hnerv_lib.train.trainer import train

    cfg = replace(get_train_preset(preset), precision="fp32", channels_last=False, epochs=2, eval_every=2, compress=True)
    assert cfg.run_id() == replace(cfg, compress=False, model_bits=6).run_id()  # output options: the same run
    run_dir = tmp_path / "r"
    summary = train(cfg, run_dir, cache_dir=smoke_cache, progress=False)
    assert (run_dir / "video.hnerv").is_file() and summary["compressed"]["bpp"] > 0
    assert summary["compressed"]["model_bits"] == 8 and summary["compressed"]["embed_bits"] == 6
    out = tmp_path / "w6.hnerv"
    assert cli.main(["compress", str(run_dir), str(out), "--model-bits", "6", "--cache-dir", str(smoke_cache)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert cli.main(["info", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["quantisation"] == {"model_bits": 6, "embed_bits": 6 if preset == "hnerv-tiny" else None}
    assert info["bpp"]["bpp"] < summary["compressed"]["bpp"] and info["bits_by_part"]["total_bits"] > 0
    assert cli.main(["decode", str(out), str(tmp_path / "decoded")]) == 0  # compress -> info -> decode
    assert len(list((tmp_path / "decoded").glob("frame_*.png"))) == info["num_frames"] == 12
    capsys.readouterr()
    unfinished = tmp_path / "u"
    train(cfg, unfinished, cache_dir=smoke_cache, stop_after=1, progress=False)
    assert cli.main(["compress", str(unfinished), "--cache-dir", str(smoke_cache)]) == 2
    assert "has not finished" in capsys.readouterr().err and not (unfinished / "video.hnerv").exists()
    assert cli.main(["compress", str(run_dir), "--model-bits", "0"]) == 2  # bad bits: one line, before loading
    assert "model_bits" in capsys.readouterr().err
