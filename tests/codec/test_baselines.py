import pytest
import torch

from hnerv_lib.codec.baselines import CodecSetting, codec_sweep, encode_decode, sei_bytes


def _frames(t=6, h=32, w=64):
    """A moving colour gradient: compressible, but not trivially."""
    x = torch.linspace(0, 1, w).view(1, 1, 1, w)
    y = torch.linspace(0, 1, h).view(1, 1, h, 1)
    k = torch.arange(t).view(t, 1, 1, 1).float()
    shape = (t, 1, h, w)
    rgb = torch.cat([((x + 0.05 * k) % 1).expand(shape), ((y + 0.03 * k) % 1).expand(shape),
                     (0.5 + 0.4 * torch.sin(6 * x + k) * y).expand(shape)], dim=1)
    return (rgb.clamp(0, 1) * 255).round().to(torch.uint8)


def test_sei_bytes_counts_only_sei_nal_units():
    sps = b"\x00\x00\x00\x01" + bytes([0x67]) + b"\x11" * 9
    sei = b"\x00\x00\x01" + bytes([0x06]) + b"\x22" * 20
    idr = b"\x00\x00\x00\x01" + bytes([0x65]) + b"\x33" * 30
    assert sei_bytes(sps + sei + idr, "h264") == 24
    assert sei_bytes(sps + idr, "h264") == 0
    hevc_sei = b"\x00\x00\x00\x01" + bytes([39 << 1, 1]) + b"\x44" * 10
    assert sei_bytes(hevc_sei + idr, "hevc") == 16
    assert sei_bytes(sps + sei, "vp9") == 0


def test_x264_round_trip_counts_the_stream_without_its_option_string():
    frames = _frames()
    decoded, nbytes, sei = encode_decode(frames, CodecSetting("x264", "yuv420p", 18))
    assert decoded.shape == frames.shape and decoded.dtype == torch.float32 and 0 <= decoded.min() <= decoded.max() <= 1
    assert sei > 300 and nbytes > 0  # x264 writes its option string (hundreds of bytes) into an SEI


def test_sweep_rows_fall_with_crf_and_x265_writes_no_sei():
    frames = _frames()
    df = codec_sweep(frames, [CodecSetting("x265", "yuv444p", crf) for crf in (16, 40)])
    assert list(df["crf"]) == [16, 40] and (df["error"] == "").all() and (df["sei_bytes"] == 0).all()
    hi, lo = df.iloc[0], df.iloc[1]
    assert hi["bytes"] > lo["bytes"] and hi["psnr"] > lo["psnr"] > 15 and hi["bpp"] == pytest.approx(
        8 * hi["bytes"] / (6 * 32 * 64))
    assert df["label"].iloc[0] == "x265 4:4:4" and df["preset"].iloc[0] == "slow"
    assert "SSIM" in df["ms_ssim_note"].iloc[0]  # 32x64 is too small for MS-SSIM: the note says so


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="unknown codec 'x266'"):
        CodecSetting("x266", "yuv420p", 30)
    with pytest.raises(ValueError, match=r"svt-av1 encodes \('yuv420p',\) here, not 'yuv444p'"):
        CodecSetting("svt-av1", "yuv444p", 30)
    with pytest.raises(ValueError, match="uint8"):
        encode_decode(_frames().float(), CodecSetting("x264", "yuv420p", 30))
