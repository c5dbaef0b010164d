"""The RD study's network side: configs, one trained-and-compressed point per width, reuse, curves."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from hnerv_lib.eval.rate_distortion import bd_rate
from hnerv_lib.studies.rate_distortion import NetworkCurve, curve_configs, curves_of, network_sweep, sized
from hnerv_lib.train.config import get_train_preset
from hnerv_lib.train.run import Run


def _bases():
    common = dict(epochs=2, eval_every=2, precision="fp32", channels_last=False)
    return {"full": replace(get_train_preset("hnerv-tiny"), **common),
            "patch": replace(get_train_preset("patch-tiny"), **common)}


def test_sized_shrinks_the_width_floor_with_the_stem():
    assert sized("hnerv-quick", 64) == {"fc_dim": 64, "lower_width": 12}
    assert sized("hnerv-quick", 16) == {"fc_dim": 16, "lower_width": 3}
    assert sized("hnerv-quick", 4) == {"fc_dim": 4, "lower_width": 2}


def test_curve_configs_train_every_frame_at_each_width():
    curve = NetworkCurve("HNeRV + CLIP head", "hnerv-tiny", (8, 16), predict_clip=True)
    cfgs = curve_configs(curve, _bases()["full"])
    assert [c.split for c in cfgs] == [(1, 1, 1)] * 2 and [c.model_config().fc_dim for c in cfgs] == [8, 16]
    assert all(c.model_config().predict_clip for c in cfgs) and curve.family == "full"
    assert NetworkCurve("patch", "patch-tiny", (8, 16)).family == "patch"


@pytest.mark.parametrize("kwargs, message", [
    (dict(widths=(8,)), ">= 2 distinct widths"), (dict(widths=(8, 8)), ">= 2 distinct widths"),
    (dict(preset="hnerv-huge"), "unknown preset 'hnerv-huge'")])
def test_bad_curves_are_named_before_training(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NetworkCurve(**{"name": "c", "preset": "hnerv-tiny", "widths": (8, 16), **kwargs})


def test_network_sweep_points_are_real_files_and_are_reused(tmp_path, smoke_cache):
    curves = [NetworkCurve("HNeRV", "hnerv-tiny", (6, 16)), NetworkCurve("NeRV", "nerv-tiny", (6, 16)),
              NetworkCurve("patch", "patch-tiny", (6, 12))]
    df = network_sweep(curves, _bases(), tmp_path, smoke_cache, progress=False)
    assert list(df["curve"]) == ["HNeRV", "HNeRV", "NeRV", "NeRV", "patch", "patch"]
    for name, part in df.groupby("curve", sort=False):
        small, big = part.iloc[0], part.iloc[1]
        assert small["params"] < big["params"] and small["bpp"] < big["bpp"], name
        assert small["bpp"] < small["bpp_file"] and 0 < small["header_bytes"] < small["bytes"]
        assert 5 < small["psnr"] < 60 and small["psnr"] <= small["psnr_float"] + 0.5  # quantisation costs a little
        assert Run.at(tmp_path, small["run_id"]).compressed_path.is_file()
    assert (df["predict_clip"] == False).all() and (df["epochs"] == 2).all()  # noqa: E712
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("checkpoint.pt")}
    again = network_sweep(curves[:1], _bases(), tmp_path, smoke_cache, progress=False)
    assert again[["bpp", "psnr"]].equals(df[df["curve"] == "HNeRV"][["bpp", "psnr"]].reset_index(drop=True))
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("checkpoint.pt")} == mtimes  # reused, not retrained
    hnerv, nerv, patch = curves_of(df, "curve")
    assert hnerv.name == "HNeRV" and len(hnerv.rate) == 2
    assert isinstance(bd_rate(hnerv, hnerv), float)


def test_matched_codec_is_nearest_on_a_log_rate_scale_and_skips_failures():
    import pandas as pd

    from hnerv_lib.studies.rate_distortion import matched_codec

    codecs = pd.DataFrame({"label": ["x265 4:4:4"] * 3 + ["x264 4:2:0"], "bpp": [0.1, 0.4, 1.6, 0.2],
                           "crf": [42, 32, 22, 30], "error": ["", "", "", ""]})
    assert matched_codec(codecs, 0.3, "x265 4:4:4")["crf"] == 32  # x1.33 below 0.4 beats x3 above 0.1
    assert matched_codec(codecs, 0.15, "x265 4:4:4")["crf"] == 42  # x1.5 above 0.1 beats x2.7 below 0.4
    codecs.loc[1, "error"] = "cannot encode"
    assert matched_codec(codecs, 0.3, "x265 4:4:4")["crf"] == 42
    assert matched_codec(codecs, 0.3, "svt-av1 4:2:0") is None


def test_worst_crop_finds_the_window_of_largest_mean_error():
    import torch

    from hnerv_lib.studies.rate_distortion import worst_crop

    err = torch.zeros(16, 32)
    err[9:13, 20:28] = 1.0
    assert worst_crop(err, 0.25) == (9, 20, 4, 8)


def test_worst_frame_decodes_the_largest_point_and_matches_x265_by_rate(tmp_path, smoke_cache):
    from hnerv_lib.codec.baselines import CodecSetting, codec_sweep
    from hnerv_lib.data.video import load_video
    from hnerv_lib.eval.metrics import psnr
    from hnerv_lib.studies.rate_distortion import worst_frame

    base = _bases()["full"]
    nets = network_sweep([NetworkCurve("HNeRV", "hnerv-tiny", (6, 16))], _bases(), tmp_path, smoke_cache, progress=False)
    video = load_video(base.video_spec(), smoke_cache)
    codecs = codec_sweep(video.frames, [CodecSetting("x265", "yuv444p", crf) for crf in (20, 45)])
    if (codecs["error"] != "").all():
        pytest.skip("x265 cannot encode here")
    W = worst_frame(nets, codecs, video.frames, tmp_path)
    big = nets.loc[nets["bpp"].idxmax()]
    assert W["network_label"] == f"HNeRV fc_dim {int(big['fc_dim'])}" and W["network_bpp"] == big["bpp"]
    ok = codecs[codecs["error"] == ""]
    nearest = ok.loc[(np.log(ok["bpp"]) - np.log(big["bpp"])).abs().idxmin()]
    assert W["codec_bpp"] == nearest["bpp"] and W["codec_label"] == f"x265 4:4:4 crf {int(nearest['crf'])}"
    truth = W["truth"][None]
    assert W["network_psnr"] == pytest.approx(psnr(W["network"][None], truth).item(), abs=1e-4)
    assert W["network_psnr"] <= W["network_mean_psnr"] + 1e-6  # the worst frame is at or below the mean
    assert torch.equal((W["truth"] * 255).round().byte(), video.frames[W["frame"]])
    top, left, h, w = W["crop"]
    assert 0 <= top <= 32 - h and 0 <= left <= 64 - w and (h, w) == (8, 16)  # a quarter of each side of 32x64
