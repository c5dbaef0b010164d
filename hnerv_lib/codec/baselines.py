"""Classical codec baselines: encode the exact frames the networks learn with x264, x265, SVT-AV1 or VP9
through PyAV, decode them again, and score them with the function that scores the networks.

Rates count the **elementary stream**: the sum of the encoder's packet sizes, with no container, and
with the SEI messages of H.264/HEVC removed (x264 writes its whole option string into one; x265's
``info`` SEI is switched off too). Parameter sets (SPS/PPS/VPS) stay: a decoder needs them. At the
smoke and quick sizes an mp4 header or x264's option string would be a large share of the bytes.

    rows = codec_sweep(video.frames, [CodecSetting("x265", "yuv444p", crf) for crf in (22, 30, 38)])
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Iterable, Optional

import av
import numpy as np
import pandas as pd
import torch

from hnerv_lib.data.split import Split
from hnerv_lib.eval.frames import score_frames, summarize
from hnerv_lib.eval.rate_distortion import bits_per_pixel

# name -> (PyAV encoder, PyAV decoder, pixel formats it encodes here, default speed preset)
CODECS: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "x264": ("libx264", "h264", ("yuv420p", "yuv444p"), "slow"),
    "x265": ("libx265", "hevc", ("yuv420p", "yuv444p"), "slow"),
    "svt-av1": ("libsvtav1", "libdav1d", ("yuv420p",), "8"),
    "vp9": ("libvpx-vp9", "vp9", ("yuv420p", "yuv444p"), "good"),
}
_SEI_TYPES = {"h264": {6}, "hevc": {39, 40}}  # NAL unit types of SEI messages


class CodecUnavailable(RuntimeError):
    """This PyAV build cannot encode or decode with the codec; the message says which and why."""


@dataclass(frozen=True)
class CodecSetting:
    """One operating point: codec name (a key of CODECS), pixel format, CRF and speed preset."""

    codec: str
    pix_fmt: str
    crf: int
    preset: Optional[str] = None  # None: the codec's default in CODECS ("slow" for x264/x265)

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"unknown codec {self.codec!r}; known: {sorted(CODECS)}")
        if self.pix_fmt not in CODECS[self.codec][2]:
            raise ValueError(f"{self.codec} encodes {CODECS[self.codec][2]} here, not {self.pix_fmt!r}")

    @property
    def label(self) -> str:
        """Curve name for figures and BD tables, e.g. ``x265 4:4:4``."""
        chroma = {"yuv420p": "4:2:0", "yuv444p": "4:4:4"}[self.pix_fmt]
        return f"{self.codec} {chroma}"

    def options(self) -> dict[str, str]:
        preset = self.preset or CODECS[self.codec][3]
        if self.codec == "x264":
            return {"crf": str(self.crf), "preset": preset}
        if self.codec == "x265":
            return {"crf": str(self.crf), "preset": preset, "x265-params": "info=0:log-level=error"}
        if self.codec == "svt-av1":
            return {"crf": str(self.crf), "preset": preset}
        return {"crf": str(self.crf), "b": "0", "deadline": preset, "cpu-used": "2"}


def _nal_units(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each Annex-B NAL unit's payload (after its start code)."""
    starts, i = [], data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = data.find(b"\x00\x00\x01", i + 3)
    out = []
    for k, s in enumerate(starts):
        end = starts[k + 1] - 3 if k + 1 < len(starts) else len(data)
        if k + 1 < len(starts) and end > s and data[end - 1] == 0:
            end -= 1  # the leading zero of the next unit's 4-byte start code
        out.append((s, end))
    return out


def sei_bytes(data: bytes, decoder: str) -> int:
    """Bytes of ``data`` (one Annex-B packet) that are SEI NAL units, start codes included."""
    types = _SEI_TYPES.get(decoder)
    if not types:
        return 0
    total = 0
    for start, end in _nal_units(data):
        if start >= len(data):
            continue
        kind = data[start] & 0x1F if decoder == "h264" else (data[start] >> 1) & 0x3F
        if kind in types:
            zero = 1 if start >= 4 and data[start - 4] == 0 else 0  # a 4-byte start code
            total += end - start + 3 + zero
    return total


def encode_decode(frames: torch.Tensor, setting: CodecSetting, fps: int = 25) -> tuple[torch.Tensor, int, int]:
    """Encode uint8 ``frames`` (T, 3, H, W) and decode them; (decoded float frames in [0, 1], stream bytes
    without SEI, SEI bytes removed)."""
    if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be uint8 (T, 3, H, W); got {frames.dtype} {tuple(frames.shape)}")
    encoder_name, decoder_name, _, _ = CODECS[setting.codec]
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration otherwise
    try:
        enc = av.CodecContext.create(encoder_name, "w")
        dec = av.CodecContext.create(decoder_name, "r")
    except (av.error.FFmpegError, ValueError) as err:
        raise CodecUnavailable(f"{setting.codec} ({encoder_name}/{decoder_name}) is not available: {err}") from None
    t, _, h, w = frames.shape
    enc.width, enc.height, enc.pix_fmt = w, h, setting.pix_fmt
    enc.time_base, enc.framerate = Fraction(1, fps), Fraction(fps, 1)
    enc.options = setting.options()
    packets = []
    try:
        for i, rgb in enumerate(frames.permute(0, 2, 3, 1).contiguous().numpy()):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=setting.pix_fmt)
            frame.pts = i
            packets += enc.encode(frame)
        packets += enc.encode(None)
    except av.error.FFmpegError as err:
        raise CodecUnavailable(f"{setting.codec} cannot encode {w}x{h} {setting.pix_fmt} here: {err}") from None
    total = sum(p.size for p in packets)
    sei = sum(sei_bytes(bytes(p), decoder_name) for p in packets)
    decoded = []
    for p in packets:
        decoded += dec.decode(p)
    decoded += dec.decode(None)
    if len(decoded) != t:
        raise RuntimeError(f"{setting.codec} decoded {len(decoded)} frames of {t}")
    out = np.stack([f.to_ndarray(format="rgb24") for f in decoded])
    return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255.0, total - sei, sei


def codec_sweep(frames: torch.Tensor, settings: Iterable[CodecSetting], fps: int = 25) -> pd.DataFrame:
    """One row per setting: codec, pix_fmt, crf, preset, label, bytes, sei_bytes, bpp and the networks' frame
    metrics (mean per-frame psnr, ssim, ms_ssim over all frames); a codec that cannot run here gets a row
    with its ``error`` instead of dropping silently."""
    t, _, h, w = frames.shape
    truth = frames.float() / 255.0
    everything = Split(1, 1, 1).indices(t)
    rows = []
    for s in settings:
        row = {**asdict(s), "preset": s.preset or CODECS[s.codec][3], "label": s.label}
        start = time.perf_counter()
        try:
            decoded, nbytes, sei = encode_decode(frames, s, fps)
        except CodecUnavailable as err:
            rows.append({**row, "error": str(err)})
            continue
        scores = score_frames(lambda ids: (decoded[ids], None), truth, None, everything)
        metrics = summarize(scores)
        rows.append({**row, "bytes": nbytes, "sei_bytes": sei, "bpp": bits_per_pixel(nbytes, t, h, w),
                     "psnr": metrics["psnr_train"], "ssim": metrics["ssim_train"], "ms_ssim": metrics["ms_ssim_train"],
                     "ms_ssim_note": scores.attrs.get("ms_ssim_note", ""),
                     "seconds": round(time.perf_counter() - start, 3), "error": ""})
    return pd.DataFrame(rows)
