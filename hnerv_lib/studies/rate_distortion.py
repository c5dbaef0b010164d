"""Rate–distortion study (notebook 07): the networks at several sizes against classical codecs.

Every network point is a training run with all frames trained (split 1_1_1, as in the compression
tables of the HNeRV paper), compressed to the project's ``.hnerv`` file (quantised weights and
embeddings, Huffman coded) and scored on the frames decoded *from that file* with the function that
scores the codecs (``eval.frames.score_frames``: mean of per-frame PSNR, SSIM, MS-SSIM).

Rates: ``bpp`` is HNeRV's own count (Huffman bits of weights and embeddings plus 16 bits per
quantisation range; no file header), ``bpp_file`` the whole file on disk. ``header_bytes`` says what
the JSON header (config, code table, ranges) costs; the codecs' rate is their elementary stream.

A network's size is its stem width ``fc_dim``; the stage-width floor ``lower_width`` shrinks with it
(in the preset's proportion, at least 2), since at these frame sizes the floor, not the stem, decides
how small a decoder can get.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Optional

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle
from tqdm.auto import tqdm

from hnerv_lib.codec.baselines import CodecSetting, codec_sweep, encode_decode
from hnerv_lib.codec.bitstream import compress, file_layout
from hnerv_lib.codec.decode import reconstructor
from hnerv_lib.codec.quantise import QuantConfig
from hnerv_lib.eval.frames import score_frames, summarize
from hnerv_lib.eval.metrics import psnr
from hnerv_lib.data.video import load_video
from hnerv_lib.eval.rate_distortion import Curve, bd_table
from hnerv_lib.models import count_params, get_preset
from hnerv_lib.studies.outputs import Figure, Output, Provenance, Table, Text
from hnerv_lib.studies.plots import legend_outside
from hnerv_lib.train.config import TrainConfig
from hnerv_lib.train.launch import train_first
from hnerv_lib.train.run import Run
from hnerv_lib.train import trainer

ALL_FRAMES = (1, 1, 1)  # split 1_1_1: every frame is trained, as in the paper's compression tables


@dataclass(frozen=True)
class NetworkCurve:
    """One network RD curve: a model preset at several stem widths, with or without the CLIP head."""

    name: str  # legend label, e.g. "HNeRV", "HNeRV + CLIP head", "NeRV", "patch"
    preset: str  # model preset (hnerv_lib.models.list_presets())
    widths: tuple[int, ...]  # fc_dim of each point
    predict_clip: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if len(self.widths) < 2 or min(self.widths) < 1 or len(set(self.widths)) != len(self.widths):
            raise ValueError(f"curve {self.name!r} needs >= 2 distinct widths >= 1; got {self.widths}")
        get_preset(self.preset)  # an unknown preset is named now, before any training

    @property
    def family(self) -> str:
        """Which training recipe it takes: "patch" for patch models, "full" otherwise."""
        return "patch" if get_preset(self.preset).kind == "patch" else "full"


def sized(preset: str, width: int) -> dict[str, int]:
    """Model overrides for stem width ``width``: ``fc_dim`` and a ``lower_width`` floor scaled with it."""
    base = get_preset(preset)
    floor = max(2, min(base.lower_width, round(width * base.lower_width / base.fc_dim)))
    return {"fc_dim": width, "lower_width": floor}


def curve_configs(curve: NetworkCurve, base: TrainConfig) -> list[TrainConfig]:
    """The training configs of a curve's points: ``base`` (the family's recipe) with all frames trained."""
    return [replace(base, model=curve.preset, split=ALL_FRAMES,
                    model_overrides={**sized(curve.preset, w), "predict_clip": curve.predict_clip})
            for w in curve.widths]


def measure_network(cfg: TrainConfig, run_root: str | Path, cache_dir: str | Path, device: str = "cpu",
                    qcfg: QuantConfig = QuantConfig(), progress: bool = False) -> dict:
    """Train ``cfg`` (or reuse its finished run), compress it, and score the decoded file: one RD point."""
    summary = trainer.run(cfg, run_root, cache_dir=cache_dir, progress=progress)
    r = Run.of(cfg, run_root)
    model, stored, s = r.load(cache_dir, device)
    frames = s.task.frames.cpu()
    stats = compress(model.eval(), r.compressed_path, frames, grid=stored.geometry(), qcfg=qcfg)
    scores = score_frames(reconstructor(r.compressed_path, stored.clip_sample), frames, None, s.split)
    decoded = summarize(scores)
    model_cfg = stored.model_config()
    return {"model": stored.model, "fc_dim": model_cfg.fc_dim, "lower_width": model_cfg.lower_width,
            "predict_clip": model_cfg.predict_clip, "params": count_params(model), "epochs": stored.epochs,
            "bytes": stats.file_bytes, "header_bytes": file_layout(r.compressed_path)["header"],
            "bpp": stats.bpp, "bpp_no_clip": stats.bpp_no_clip, "bpp_file": stats.bpp_file,
            "psnr": decoded["psnr_train"], "ssim": decoded["ssim_train"], "ms_ssim": decoded["ms_ssim_train"],
            "ms_ssim_note": scores.attrs.get("ms_ssim_note", ""), "psnr_float": summary["psnr_train"],
            "seconds_per_epoch": summary["seconds_per_epoch"], "teacher": summary["teacher"], "run_id": r.run_id}


def network_sweep(curves: Iterable[NetworkCurve], bases: dict[str, TrainConfig], run_root: str | Path,
                  cache_dir: str | Path, device: str = "cpu", qcfg: QuantConfig = QuantConfig(),
                  progress: bool = True) -> pd.DataFrame:
    """One row per (curve, width): ``curve`` and everything :func:`measure_network` returns.

    ``bases`` maps each family ("full", "patch") to its training recipe (epochs, batch, loss, ...).
    """
    points = [(c, cfg) for c in curves for cfg in curve_configs(c, bases[c.family])]
    rows = []
    for curve, cfg in tqdm(points, desc="RD networks", disable=not progress):
        rows.append({"curve": curve.name, **measure_network(cfg, run_root, cache_dir, device, qcfg)})
    return pd.DataFrame(rows)


def curves_of(table: pd.DataFrame, name_col: str, rate: str = "bpp", quality: str = "psnr",
              names: Optional[Iterable[str]] = None) -> list[Curve]:
    """The RD curves of a sweep table (networks: ``curve``; codecs: ``label``), skipping failed rows."""
    ok = table[table["error"].fillna("") == ""] if "error" in table else table
    wanted = list(names) if names is not None else list(dict.fromkeys(ok[name_col]))
    parts = {n: ok[ok[name_col] == n] for n in wanted}
    return [Curve(n, tuple(p[rate]), tuple(p[quality])) for n, p in parts.items() if len(p) >= 2]


# The HNeRV paper's Bunny PSNRs (anchors.md): 640x1280, 132 frames, 300 epochs on a GPU. Rates are the
# paper's size x 8 bits / pixels, i.e. 8-bit weights before entropy coding (the paper does not list bytes).
PAPER_BUNNY_PSNR = {"HNeRV": {0.35: 30.15, 0.75: 32.81, 1.5: 35.57, 3.0: 37.43},
                    "NeRV": {0.35: 26.99, 0.75: 28.46, 1.5: 30.87, 3.0: 33.21}}
PAPER_PIXELS = 132 * 640 * 1280


def paper_points() -> pd.DataFrame:
    """The paper's Bunny points as rows: curve ("paper: HNeRV"), size_m, bpp (8-bit, before coding), psnr."""
    return pd.DataFrame([{"curve": f"paper: {name}", "size_m": size, "bpp": size * 1e6 * 8 / PAPER_PIXELS, "psnr": psnr}
                         for name, points in PAPER_BUNNY_PSNR.items() for size, psnr in points.items()])


def clip_head_cost(networks: pd.DataFrame, plain: str = "HNeRV", with_clip: str = "HNeRV + CLIP head") -> pd.DataFrame:
    """Per width: what adding the CLIP head costs in bits (bpp) and in decoded PSNR (dB)."""
    a = networks[networks["curve"] == plain].set_index("fc_dim")
    b = networks[networks["curve"] == with_clip].set_index("fc_dim")
    common = a.index.intersection(b.index)
    return pd.DataFrame({"fc_dim": common, "bpp_without": a.loc[common, "bpp"].values,
                         "bpp_with": b.loc[common, "bpp"].values,
                         "clip_head_bpp": (b.loc[common, "bpp"] - b.loc[common, "bpp_no_clip"]).values,
                         "psnr_without": a.loc[common, "psnr"].values, "psnr_with": b.loc[common, "psnr"].values,
                         "psnr_cost_db": (a.loc[common, "psnr"] - b.loc[common, "psnr"]).values})


def table_verdict(bd: pd.DataFrame, cost: pd.DataFrame) -> str:
    """Plain words from the BD-rate table (rows: curve, anchor, bd_rate_pct, overlap, note) and the CLIP cost."""
    parts = []
    for _, r in bd.iterrows():
        if r["note"]:
            parts.append(f"{r['curve']} vs {r['anchor']}: no BD-rate ({r['note'].split(': ', 1)[-1]}).")
            continue
        pct = r["bd_rate_pct"]
        words = f"{abs(pct):.0f} % {'more' if pct > 0 else 'fewer'} bits than"
        parts.append(f"{r['curve']} needs {words} {r['anchor']} for the same PSNR (over {r['overlap']} dB).")
    if len(cost):
        parts.append(f"The CLIP head adds {cost['clip_head_bpp'].mean():.3f} bpp on average and changes decoded PSNR by "
                     f"{-cost['psnr_cost_db'].mean():+.2f} dB at equal width ({len(cost)} widths).")
    return " ".join(parts)


# ---- The study of notebook 07 (plan, run, table, verdict, outputs) ----------------------------------------

PREFIX = "07"
VERDICT_WHAT = "Rate-distortion verdict (generated from the tables above)"
ANCHORS = ("x265 4:4:4", "x265 4:2:0")  # the BD-rate references: the networks output RGB, no chroma subsampling
NETWORK_COLUMNS = ["curve", "model", "fc_dim", "lower_width", "params", "bytes", "header_bytes", "bpp", "bpp_file",
                   "psnr", "psnr_float", "ms_ssim", "seconds_per_epoch"]
CODEC_COLUMNS = ["label", "crf", "bytes", "sei_bytes", "bpp", "psnr", "ms_ssim"]


@dataclass
class RateDistortionResults:
    """Everything notebook 07 shows, as plain frames (tests build them by hand)."""

    networks: pd.DataFrame  # network_sweep's rows
    codecs: pd.DataFrame  # codec_sweep's rows, failed settings included (column error)
    model_bits: int
    embed_bits: int
    provenance: Provenance
    worst: Optional[dict] = None  # worst_frame(): the largest HNeRV point's worst frame beside x265 at its bpp

    @property
    def codecs_ok(self) -> pd.DataFrame:
        return self.codecs[self.codecs["error"] == ""]


def plan(params: Any) -> list[TrainConfig]:
    """One run per network point: every curve at every width, all frames trained."""
    bases = params.bases()
    return [cfg for c in params.curves() for cfg in curve_configs(c, bases[c.family])]


def matched_codec(codecs: pd.DataFrame, bpp: float, label: str) -> Optional[pd.Series]:
    """The ``label`` codec row (without error) whose bpp is nearest ``bpp`` on a log scale, or None."""
    rows = codecs[(codecs["label"] == label) & (codecs["error"] == "")]
    if rows.empty:
        return None
    return rows.loc[(np.log(rows["bpp"].astype(float)) - np.log(bpp)).abs().idxmin()]


def worst_crop(error: torch.Tensor, frac: float = 0.25) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the ``frac``-of-a-side window with the largest mean error in an (H, W) map."""
    h, w = error.shape
    ch, cw = max(1, round(h * frac)), max(1, round(w * frac))
    means = F.avg_pool2d(error[None, None].float(), (ch, cw), stride=1)[0, 0]
    top, left = divmod(int(means.argmax()), means.shape[1])
    return top, left, ch, cw


def worst_frame(networks: pd.DataFrame, codecs: pd.DataFrame, frames: torch.Tensor, run_root: str | Path,
                curve: str = "HNeRV") -> Optional[dict]:
    """The frame where ``curve``'s largest point decodes worst (from its compressed file), beside the x265
    encoding nearest its bpp: truth, both decodes, their bpp and PSNR, and the crop where the network errs most.
    None when the curve or every x265 anchor is missing."""
    points = networks[networks["curve"] == curve]
    if points.empty:
        return None
    net = points.loc[points["bpp"].idxmax()]
    anchor = next((a for a in ANCHORS if matched_codec(codecs, float(net["bpp"]), a) is not None), None)
    if anchor is None:
        return None
    row = matched_codec(codecs, float(net["bpp"]), anchor)
    truth = frames.float() / 255.0
    decode = reconstructor(Run.at(run_root, net["run_id"]).compressed_path)
    ids = torch.arange(len(frames))
    decoded = torch.cat([decode(ids[i : i + 8])[0].float().clamp(0, 1) for i in range(0, len(ids), 8)])
    per_frame = psnr(decoded, truth)
    f = int(per_frame.argmin())
    setting = CodecSetting(row["codec"], row["pix_fmt"], int(row["crf"]), row["preset"])
    codec_frames, _, _ = encode_decode(frames, setting)
    error = (decoded[f] - truth[f]).pow(2).mean(0)
    return {"frame": f, "truth": truth[f], "network": decoded[f], "codec": codec_frames[f],
            "network_label": f"{curve} fc_dim {int(net['fc_dim'])}", "codec_label": f"{anchor} crf {int(row['crf'])}",
            "network_bpp": float(net["bpp"]), "codec_bpp": float(row["bpp"]),
            "network_psnr": float(per_frame[f]), "codec_psnr": float(psnr(codec_frames[f:f + 1], truth[f:f + 1])),
            "network_mean_psnr": float(per_frame.mean()), "crop": worst_crop(error)}


def run(params: Any) -> RateDistortionResults:
    """Train (or reuse), compress and score every network point; encode the same frames with every codec."""
    P = params
    qcfg = QuantConfig(model_bits=P.model_bits, embed_bits=P.embed_bits)
    train_first(plan(P), P.run_root, P.launcher(), P.cache_dir)  # as jobs, if asked
    nets = network_sweep(P.curves(), P.bases(), P.run_root, P.cache_dir, P.device, qcfg)
    video = load_video(P.video_spec(), P.cache_dir)  # uint8 frames: exactly those every network trains on
    codecs = codec_sweep(video.frames, P.codec_settings())
    teacher = (nets.loc[nets["predict_clip"], "teacher"].iloc[0] if nets["predict_clip"].any()
               else "none (no CLIP head trained)")
    return RateDistortionResults(nets, codecs, P.model_bits, P.embed_bits, Provenance(
        video.describe(), teacher, split="all frames trained (1_1_1)", epochs=P.rd_epochs),
        worst=worst_frame(nets, codecs, video.frames, P.run_root))


def bd(results: RateDistortionResults) -> pd.DataFrame:
    """BD-rate of every network curve against each x265 anchor the sweep has (positive: more bits)."""
    codec_curves = {c.name: c for c in curves_of(results.codecs_ok, "label")}
    net_curves = curves_of(results.networks, "curve")
    return pd.DataFrame([row for a in ANCHORS if a in codec_curves for row in bd_table(codec_curves[a], net_curves)])


def table(results: RateDistortionResults) -> pd.DataFrame:
    """The headline: the BD-rate table."""
    return bd(results)


def verdict(results: RateDistortionResults) -> str:
    """BD-rates in words, then the CLIP head's cost."""
    return table_verdict(bd(results), clip_head_cost(results.networks))


def _quality2(codecs: pd.DataFrame) -> str:
    """The second quality axis's name: MS-SSIM, or SSIM where the frames are too small for MS-SSIM."""
    note = codecs["ms_ssim_note"].iloc[0] if len(codecs) else ""
    return "SSIM (frames below 161 px: MS-SSIM falls back to SSIM)" if note else "MS-SSIM"


def _curves_figure(results: RateDistortionResults):
    ok, nets, paper = results.codecs_ok, results.networks, paper_points()
    q2_name = _quality2(ok)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for frame, key, style in ((ok, "label", dict(fmt="s--", lw=1, ms=4)), (nets, "curve", dict(fmt="o-", lw=2, ms=6))):
        for name, part in frame.groupby(key, sort=False):
            for ax, q in zip(axes, ("psnr", "ms_ssim")):
                ax.plot(part["bpp"], part[q], style["fmt"], lw=style["lw"], ms=style["ms"], label=name)
    for name, part in paper.groupby("curve", sort=False):
        axes[0].plot(part["bpp"], part["psnr"], "x:", color="0.4", label=f"{name} (640x1280, 300 epochs, GPU)")
    for ax, ylabel in zip(axes, ("PSNR (dB), mean of frames", q2_name)):
        ax.set(xscale="log", xlabel="bits per pixel (log)", ylabel=ylabel)
        ax.grid(alpha=0.3, which="both")
    legend_outside(axes[1], source=axes[0])  # one legend for both panels; the left one also has the paper's points
    axes[0].set_title("PSNR against rate")
    axes[1].set_title(q2_name.split(" (")[0] + " against rate")
    fig.tight_layout()
    return fig


def _worst_figure(W: dict):
    """Full frames at their own pixels (top) and the worst crop zoomed (bottom): truth, network, codec."""
    h, w = W["truth"].shape[-2:]
    top, left, ch, cw = W["crop"]
    panels = [("ground truth", W["truth"]),
              (f"{W['network_label']}: {W['network_bpp']:.3f} bpp, {W['network_psnr']:.2f} dB", W["network"]),
              (f"{W['codec_label']}: {W['codec_bpp']:.3f} bpp, {W['codec_psnr']:.2f} dB", W["codec"])]
    scale = max(1.0, 4.0 / (w / 100))  # small frames are enlarged whole pixels at a time (nearest)
    fig, axes = plt.subplots(2, 3, figsize=(3 * w / 100 * scale + 1, (h + ch * w / cw) / 100 * scale + 1.2),
                             gridspec_kw={"height_ratios": [h, ch * w / cw]}, squeeze=False)
    for c, (title, img) in enumerate(panels):
        full, crop = axes[0, c], axes[1, c]
        full.imshow(img.clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
        full.add_patch(Rectangle((left - 0.5, top - 0.5), cw, ch, fill=False, edgecolor="cyan", lw=1.2))
        full.set_title(title, fontsize=8)
        crop.imshow(img[:, top:top + ch, left:left + cw].clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
        crop.set_title(f"zoom: rows {top}-{top + ch}, columns {left}-{left + cw}", fontsize=7)
        for ax in (full, crop):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"Frame {W['frame']}, the worst of the network (its mean over frames: {W['network_mean_psnr']:.2f} dB), "
                 f"beside the codec at the nearest rate", fontsize=9)
    fig.tight_layout()
    return fig


def _worst_output(R: RateDistortionResults) -> Output:
    if R.worst is None:
        return Text("07_worst_frame", "no worst-frame comparison: the HNeRV curve or every x265 anchor is missing")
    return Figure("07_worst_frame", f"The largest HNeRV point's worst frame at full resolution and its worst "
                  f"{R.worst['crop'][2]}x{R.worst['crop'][3]} crop, beside {R.worst['codec_label']} at the nearest bpp "
                  "(cyan: the crop)", lambda: _worst_figure(R.worst))


def outputs(results: RateDistortionResults) -> list[Output]:
    """Notebook 07's tables, figure and lines, by name."""
    R, ok = results, results.codecs_ok
    failed = R.codecs[R.codecs["error"] != ""].drop_duplicates("label")
    cant = ("codecs that cannot run here: " + failed[["label", "error"]].to_string(index=False)) if len(failed) else ""
    note = ok["ms_ssim_note"].iloc[0] if len(ok) else ""
    return [
        Table("07_networks", R.networks[NETWORK_COLUMNS], f"Network operating points ({R.model_bits}-bit weights, "
              f"{R.embed_bits}-bit embeddings): bpp is HNeRV's count, bpp_file the whole file; psnr after decoding "
              "the file, psnr_float before quantisation"),
        Text("07_codec_failures", cant),
        Table("07_codecs", ok[CODEC_COLUMNS], "Codec operating points: elementary-stream bytes without SEI "
              f"(sei_bytes removed), {note or 'MS-SSIM'}"),
        Figure("07_rate_distortion", "Rate-distortion: networks (solid) vs codecs (dashed) on the same frames; grey: "
               "the paper's Bunny points for reference", lambda: _curves_figure(R)),
        Table("07_bd_rate", bd(R), "BD-rate of each network curve against x265 (positive: the network needs more bits "
              "for the same PSNR)", 2),
        Table("07_clip_cost", clip_head_cost(R.networks), "What the CLIP head costs per width: bits and decoded PSNR"),
        _worst_output(R),
    ]
