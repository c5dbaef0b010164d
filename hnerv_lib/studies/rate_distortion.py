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
from typing import Iterable, Optional

import pandas as pd
from tqdm.auto import tqdm

from hnerv_lib.codec.bitstream import compress, file_layout
from hnerv_lib.codec.decode import reconstructor
from hnerv_lib.codec.quantise import QuantConfig
from hnerv_lib.eval.frames import score_frames, summarize
from hnerv_lib.eval.rate_distortion import Curve
from hnerv_lib.models import count_params, get_preset
from hnerv_lib.train.config import TrainConfig
from hnerv_lib.train.run import Run
from hnerv_lib.train.trainer import run

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
    summary = run(cfg, run_root, cache_dir=cache_dir, progress=progress)
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


def verdict(bd: pd.DataFrame, cost: pd.DataFrame) -> str:
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
