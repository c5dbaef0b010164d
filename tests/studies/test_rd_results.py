"""Notebook 07's study on constructed results: BD-rate against the x265 anchors, the verdict, the outputs."""

import pandas as pd
import pytest

from hnerv_lib.studies import rate_distortion as study
from hnerv_lib.studies.outputs import Figure, Provenance, Table, Text, by_name


def _codecs(error_label=None):
    rows = [{"label": "x265 4:4:4", "crf": c, "bytes": 100 * i, "sei_bytes": 0, "bpp": b, "psnr": q, "ms_ssim": 0.9,
             "ms_ssim_note": "", "error": ""}
            for i, (c, b, q) in enumerate([(42, 0.1, 25.0), (37, 0.2, 28.0), (32, 0.4, 31.0), (27, 0.8, 34.0)])]
    if error_label:
        rows.append({"label": error_label, "crf": 30, "bytes": 0, "sei_bytes": 0, "bpp": float("nan"),
                     "psnr": float("nan"), "ms_ssim": float("nan"), "ms_ssim_note": "", "error": "encoder missing"})
    return pd.DataFrame(rows)


def _networks():
    """HNeRV at twice x265's rate for 0.5 dB more, on x265's log-linear line; and the same with a CLIP head
    that costs 0.05 bpp and 0.5 dB."""
    rows = []
    for curve, extra_bpp, db in (("HNeRV", 0.0, 0.0), ("HNeRV + CLIP head", 0.05, 0.5)):
        for fc, (b, q) in zip((6, 10, 16), [(0.2, 25.5), (0.4, 28.5), (0.8, 31.5)]):
            rate = b
            rows.append({"curve": curve, "model": "hnerv", "fc_dim": fc, "lower_width": 2, "params": 1000 * fc,
                         "bytes": 10 * fc, "header_bytes": 5, "bpp": rate + extra_bpp, "bpp_no_clip": rate,
                         "bpp_file": rate + 0.01, "psnr": q - db, "psnr_float": q - db + 0.1, "ms_ssim": 0.9,
                         "seconds_per_epoch": 1.0, "predict_clip": curve != "HNeRV", "teacher": "t"})
    return pd.DataFrame(rows)


def _results(**kw):
    base = dict(networks=_networks(), codecs=_codecs(), model_bits=8, embed_bits=6,
                provenance=Provenance("bunny", "ViT-B-32 (random init)", split="all frames trained (1_1_1)", epochs=3))
    return study.RateDistortionResults(**{**base, **kw})


def test_bd_rate_against_the_anchor_the_sweep_has():
    bd = study.table(_results())
    assert list(bd["anchor"]) == ["x265 4:4:4", "x265 4:4:4"]  # no 4:2:0 curve in this sweep: no row against it
    hnerv = bd[bd["curve"] == "HNeRV"].iloc[0]
    # x265: psnr = 25 + 3 log2(bpp / 0.1); HNeRV's points sit 0.5 dB above x265 at 2x its rate, i.e. at
    # 2 * 2^(-0.5/3) = 1.78x the rate for equal quality: +78 %
    assert hnerv["bd_rate_pct"] == pytest.approx((2 * 2 ** (-0.5 / 3) - 1) * 100, abs=0.5)


def test_verdict_says_bits_and_the_clip_head_cost():
    text = study.verdict(_results())
    assert "HNeRV needs 78 % more bits than x265 4:4:4 for the same PSNR" in text
    assert "The CLIP head adds 0.050 bpp on average and changes decoded PSNR by -0.50 dB at equal width (3 widths)" in text


def test_failed_codecs_are_named_and_left_out_of_tables_and_curves():
    R = _results(codecs=_codecs(error_label="svt-av1 4:2:0"))
    named = by_name(study.outputs(R))
    assert "svt-av1 4:2:0" in named["07_codec_failures"][0].text and "encoder missing" in named["07_codec_failures"][0].text
    codecs = next(o for o in named["07_codecs"] if isinstance(o, Table)).frame
    assert set(codecs["label"]) == {"x265 4:4:4"}
    assert by_name(study.outputs(_results()))["07_codec_failures"][0].text == ""  # nothing failed: nothing said
    assert isinstance(named["07_rate_distortion"][0], Figure) and isinstance(named["07_codec_failures"][0], Text)


def test_worst_frame_figure_shows_full_frames_and_the_zoomed_crop():
    import torch

    frame = torch.rand(3, 32, 64, generator=torch.Generator().manual_seed(0))
    worst = {"frame": 7, "truth": frame, "network": frame * 0.9, "codec": frame * 0.95, "network_label": "HNeRV fc_dim 16",
             "codec_label": "x265 4:4:4 crf 32", "network_bpp": 0.8, "codec_bpp": 0.4, "network_psnr": 21.5,
             "codec_psnr": 30.25, "network_mean_psnr": 24.0, "crop": (4, 40, 8, 16)}
    named = by_name(study.outputs(_results(worst=worst)))
    fig = next(o for o in named["07_worst_frame"] if isinstance(o, Figure)).draw()
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 6 and titles[:3] == ["ground truth", "HNeRV fc_dim 16: 0.800 bpp, 21.50 dB",
                                                 "x265 4:4:4 crf 32: 0.400 bpp, 30.25 dB"]
    assert all(t == "zoom: rows 4-12, columns 40-56" for t in titles[3:])
    assert fig.axes[3].images[0].get_array().shape[:2] == (8, 16)  # the crop itself, at its own pixels
    assert [type(o) for o in by_name(study.outputs(_results()))["07_worst_frame"]] == [Text]  # none: one line
