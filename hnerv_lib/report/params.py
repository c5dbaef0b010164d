"""Notebook parameters: one typed dataclass per notebook, validated from the papermill namespace.

Every notebook has exactly one cell tagged ``parameters`` holding flat literals; the next cell calls
``from_namespace(XParams, globals())``. Papermill itself only *warns* on an unknown parameter, so the
validation here fails on a name no notebook knows, and every value goes through the project's one
parser (``hnerv_lib.utils.parse``): a string (papermill ``-r``, ``-p`` words) is parsed as the field's
type, anything else is checked against it.

Profiles (``params/<profile>.yaml``) are flat too, and one file serves every notebook: a key that
belongs to another notebook is ignored here, a key that belongs to none is an error.
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

from hnerv_lib.data.geometry import Grid, Sliding
from hnerv_lib.data.split import Split
from hnerv_lib.data.teacher import TeacherSpec, check_teacher
from hnerv_lib.data.video import VideoSpec
from hnerv_lib.models import list_presets, patch_overrides
from hnerv_lib.codec.baselines import CodecSetting
from hnerv_lib.studies.ablation import Ablation
from hnerv_lib.studies.rate_distortion import NetworkCurve
from hnerv_lib.studies.tubelets.clips import ArrowOfTime, CameraPan
from hnerv_lib.studies.tubelets.config import ATTENTION, ViTConfig
from hnerv_lib.studies.tubelets.study import VARIANTS, Study
from hnerv_lib.studies.tubelets.train import TrainSpec
from hnerv_lib.train.config import TrainConfig, legacy_bf16, warmup_epochs
from hnerv_lib.train.launch import Launcher
from hnerv_lib.train.trainer import validate
from hnerv_lib.utils.parse import ConfigError, Spec, borrow, knob, parse_fields, parse_value, plain, specs
from hnerv_lib.utils.precision import check_channels_last, check_precision

# Retired parameters still accepted from old profiles and ``-p`` (each maps to its successor with a
# warning); notebooks' parameter cells no longer list them.
DEPRECATED = frozenset({"bf16"})

# Names IPython puts in a notebook's globals that are never parameters.
_IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


# Knobs the notebooks share with a training run live in TrainConfig (their one home: type, default,
# choices); the notebook dataclasses borrow them by name. The rest are notebook-only knobs.
DATA_KNOBS = ("video", "crop", "size", "every", "first_frames", "split", "grid", "teacher_model",
              "teacher_pretrained", "teacher_seed", "device")
# Where the training notebooks' runs train (hnerv_lib.train.launch.Launcher is their home).
LAUNCH_KNOBS = ("executor", "executor_jobs", "slurm_partition", "slurm_gpus", "slurm_cpus", "slurm_time_min")
TRAINING_KNOBS = ("loss", "lr", "clip_weight", "eval_every", "seed", "precision", "channels_last", "compress",
                  "tensorboard", "model_bits", "embed_bits")


@borrow(TrainConfig, *DATA_KNOBS)
class ReportParams:
    """Parameters shared by every notebook: where to read, where to write, which video and teacher.

    Borrowed from TrainConfig (see its comments): video, crop, size, every, first_frames, split, grid,
    teacher_model, teacher_pretrained, teacher_seed, device.
    """

    profile: str = "quick"  # profile name, used in captions (smoke | quick | cpu | paper)
    report_dir: str = "reports/quick"  # figures/ and tables/ go here (the runner sets reports/<profile>)
    cache_dir: str = "data/cache"  # decoded frames and CLIP targets are cached here
    run_root: str = "runs"  # training runs live in run_root/<short id>/
    clip_batch: int = 64  # patches per CLIP forward pass

    def video_spec(self) -> VideoSpec:
        """The frames this notebook works on."""
        return VideoSpec(
            source=self.video,
            crop=tuple(self.crop) if self.crop else None,
            size=tuple(self.size) if self.size else None,
            every=self.every,
            first=self.first_frames or None,
        )

    def __post_init__(self) -> None:
        check_teacher(self.teacher_spec())  # a bad name, file or uncached repo is named before any frame is decoded

    def teacher_spec(self) -> TeacherSpec:
        """The CLIP teacher whose embeddings are the targets."""
        return TeacherSpec(model=self.teacher_model, pretrained=self.teacher_pretrained, seed=self.teacher_seed)

    def geometry(self) -> Grid:
        """The patch grid supervised by CLIP targets."""
        return Grid(*self.grid)

    def split_rule(self) -> Split:
        """The typed split."""
        return Split(*self.split)

    def out(self, kind: str) -> Path:
        """``report_dir/<kind>`` (figures or tables), created on demand."""
        path = Path(self.report_dir) / kind
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass
class DataPrepParams(ReportParams):
    """Notebook 00: decode and cache, draw the geometry and split, compute and inspect CLIP targets."""

    strip_frames: int = 8  # frames shown in the frame strip
    window_frac: float = 0.5  # overlapping windows: side = frame height x this (seeds: 448 px ~ 0.7 of 640)
    window_overlap: float = 0.5  # overlapping windows: fraction of a window shared with its neighbour
    speed_patches: int = 64  # patches timed for the CLIP extraction-speed measurement

    def sliding(self) -> Sliding:
        """Overlapping windows scaled to the frame: square side = height x window_frac."""
        h = (self.size or self.crop or [0])[0]
        side = max(int(h * self.window_frac), 1)
        stride = max(int(side * (1 - self.window_overlap)), 1)
        return Sliding(size=(side, side), stride=(stride, stride))


@borrow(Launcher, *LAUNCH_KNOBS)
class LaunchParams(ReportParams):
    """Where a training notebook's runs train: in the notebook's process, as local processes, or as SLURM
    jobs (:mod:`hnerv_lib.train.launch`). Borrowed from Launcher: executor, executor_jobs, slurm_partition,
    slurm_gpus, slurm_cpus, slurm_time_min.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self.launcher()  # a bad executor or a negative count is named before anything trains

    def launcher(self) -> Launcher:
        """The typed launcher of these knobs."""
        return Launcher(**{name: getattr(self, name) for name in LAUNCH_KNOBS})


@borrow(TrainConfig, *TRAINING_KNOBS)
class TrainingParams(LaunchParams):
    """Knobs shared by the training notebooks, so the full-frame and patch models train alike.

    Borrowed from TrainConfig: loss, lr, clip_weight, eval_every, seed, precision, channels_last, compress,
    tensorboard, model_bits, embed_bits.
    """

    clip_warmup_frac: float = 0.1667  # pixel-only share of the epochs before the CLIP loss (seeds: 50/300)
    predict_clip: bool = True  # give the model its CLIP head (False: plain HNeRV, no teacher needed)
    bf16: Optional[bool] = None  # deprecated: true/false map to precision bf16/fp32 with a warning
    full_model: str = knob("hnerv-quick", choices=list_presets)  # full-frame model preset (its frame size must equal `size`)
    full_epochs: int = 60  # full-frame training epochs
    full_batch: int = 2  # frames per step (paper: 2)
    nerv_model: str = knob("nerv-quick", choices=list_presets)  # NeRV preset (frame index in, full-frame recipe); its frame size must equal `size`
    patch_model: str = knob("patch-quick", choices=list_presets)  # patch model preset (its patch size must equal size / grid)
    patch_epochs: int = 60  # patch training epochs
    patch_batch: int = 8  # patches per step (seeds: 8)
    patch_window_pool: int = 0  # patch model: training windows per frame, the grid's tiles + random positions, one drawn per item (0 = the grid only)
    patch_xy_levels: int = 0  # patch model: positional-encoding frequencies of x and y (0 = the preset's)
    patch_t_levels: int = 0  # patch model: positional-encoding frequencies of t (0 = the preset's pe_levels)
    patch_canvas: int = 1  # patch model: decoded canvas side in patches around each cell (2: off-grid queries are crops)
    seeds: int = 1  # training seeds per headline run (seed, seed + 1, ...): notebooks 01, 02, 05; intervals need at least 2

    def train_config(self, family: str, epochs: Optional[int] = None, **overrides: Any) -> TrainConfig:
        """The TrainConfig of the ``family`` ("full", "nerv" or "patch") model under these parameters.

        NeRV trains with the full-frame recipe (epochs, batch). ``epochs`` (default: the family's) also
        sets the warm-up (``clip_warmup_frac`` of it) and caps ``eval_every``: every notebook and the
        ablation derive them here and nowhere else.
        """
        models = {"full": self.full_model, "nerv": self.nerv_model, "patch": self.patch_model}
        if family not in models:
            raise ValueError(f"family must be one of {list(models)}; got {family!r}")
        full = family != "patch"
        epochs = epochs if epochs is not None else (self.full_epochs if full else self.patch_epochs)
        shared = {name: getattr(self, name) for name in (*DATA_KNOBS, *TRAINING_KNOBS)}
        base = dict(
            shared, model=models[family], epochs=epochs,
            batch_size=self.full_batch if full else self.patch_batch,
            clip_warmup_epochs=warmup_epochs(self.clip_warmup_frac, epochs), eval_every=min(self.eval_every, epochs),
            model_overrides={"predict_clip": self.predict_clip, **({} if full else self.patch_model_overrides())},
            **({} if full else {"window_pool": self.patch_window_pool}),
        )
        return TrainConfig(**{**base, **overrides})

    def patch_model_overrides(self) -> dict[str, Any]:
        """The patch model's encoding and canvas knobs as model overrides, at the preset's parameter count
        (``models.patch_overrides`` re-solves fc_dim); none when every knob keeps the preset's."""
        return patch_overrides(self.patch_model, self.patch_t_levels, self.patch_xy_levels, self.patch_canvas,
                             self.predict_clip)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bf16 is not None:  # an old profile or -p bf16=...: one warning, then precision rules
            self.precision = legacy_bf16({"bf16": self.bf16, "precision": self.precision if self.precision != "auto"
                                          else ("bf16" if self.bf16 else "fp32")})["precision"]
            self.bf16 = None
        check_precision(self.precision)
        check_channels_last(self.channels_last)
        if self.seeds < 1:
            raise ConfigError(f"seeds={self.seeds!r} must be at least 1")
        for family in ("full", "nerv", "patch"):  # model vs frame size vs grid: named before any frame is decoded
            validate(self.train_config(family))


@dataclass
class FullFrameParams(TrainingParams):
    """Notebook 01: train the full-frame HNeRV + CLIP map, inspect it, compress it."""

    show_frames: int = 4  # reconstructions shown beside the ground truth


@dataclass
class PatchParams(TrainingParams):
    """Notebook 02: train the patch dual-head model, score stitched frames and patches, seams, queries, speed."""

    show_frames: int = 3  # reconstructions shown beside the ground truth (half train, half unseen)
    seam_k: int = 2  # seam band: pixels within this many px of an inner patch border (cpu: 4 at 80 px patches)
    overlap: float = 0.5  # overlapped decoding: share of a patch side shared with each neighbour (stride = patch / 2)
    query_offsets: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])  # continuous queries, in patches
    query_frames: int = 4  # frames scored by continuous queries (their CLIP targets are computed on the fly)
    speed_repeats: int = 5  # decoding-speed repeats; the median is reported
    # a twin of the patch model, shown beside it: each twin_* knob sets the twin's patch_* knob (all off: no twin)
    twin_window_pool: int = 0  # the twin's training windows per frame (0: the grid only)
    twin_xy_levels: int = 0  # the twin's x and y positional-encoding frequencies (0: the preset's)
    twin_t_levels: int = 16  # the twin's t positional-encoding frequencies (0: the preset's)
    twin_canvas: int = 2  # the twin's decoded canvas, in patches (1: the patch alone)
    slide_windows: int = 6  # sliding-window picture: windows moved across the top row of one frame


TUBE_TASKS = ("arrow of time", "camera pan")  # the clip tasks notebook 03 can study


@dataclass
class TubeletParams(LaunchParams):
    """Notebook 03: 2D patches vs 3D tubelets in a video ViT, on the arrow of time and the camera pan (seed 004)."""

    tube_tasks: list[str] = field(default_factory=lambda: list(TUBE_TASKS))  # clip tasks studied, in this order
    tube_videos: list[str] = field(default_factory=lambda: ["bunny", "bikes", "carphone"])  # clips are cut from these
    tube_frames: int = 8  # frames per clip; tubelet 4 needs a multiple of 4
    tube_frame_step: int = 2  # source frames between clip frames: more motion per step
    tube_size: int = 16  # square clip side in pixels (= the model's image_size)
    tube_crops: int = 3  # square crops across each frame's width: more clips of the same motion
    tube_blocks: int = 3  # interleaved train/test stretches per video (split by time, 2-frame gaps)
    tube_patch: int = 4  # spatial patch side P: (16 / 4)^2 = 16 spatial tokens per frame
    tube_width: int = 32  # token dimension
    tube_depth: int = 2  # transformer layers
    tube_heads: int = 2  # attention heads
    tube_attention: str = "divided"  # joint | divided space-time attention, every variant alike (ViTConfig.attention)
    tube_causal: bool = True  # attention over time sees only earlier frames: with divided attention, what lets the
    #                           2D model learn the pan's direction (quick, 3 seeds: joint 19 %, divided 47 %, both 84 %)
    tube_epochs: int = 15  # arrow-of-time epochs from scratch (2D and tubelets alike)
    tube_finetune_epochs: int = 6  # arrow-of-time epochs of the inflated models, on top of their 2D model's
    tube_batch: int = 16  # clips per step
    tube_lr: float = 1e-3  # AdamW peak learning rate
    tube_seeds: int = 3  # seeds 0..n-1; accuracy intervals are over seeds
    tube_variants: list[str] = field(default_factory=lambda: [v.slug for v in VARIANTS])  # embeddings trained, by slug
    pan_videos: list[str] = field(default_factory=lambda: ["bunny", "bikes"])  # camera-pan train videos (later stretches: test)
    pan_holdout: Optional[str] = "carphone"  # a video no run trains on: the pan's "unseen video" split (None: none)
    pan_speeds: list[int] = field(default_factory=lambda: [1, 2])  # window speeds, pixels per clip frame
    pan_context: int = 32  # videos are resized to this height; the window moves inside it
    pan_frame_step: int = 1  # source frames between clip frames (the scene's own motion is the nuisance)
    pan_train_stride: int = 2  # start-frame stride of train windows: 2 halves the train clips
    pan_draws: int = 1  # train clips per (window start, speed, class) at fresh positions (joint attention needed 8)
    pan_epochs: int = 10  # pan epochs from scratch (an epoch holds pan_draws x the windows)
    pan_finetune_epochs: int = 3  # pan epochs of the inflated models, on top of their 2D model's

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [t for t in self.tube_tasks if t not in TUBE_TASKS]
        if unknown or not self.tube_tasks:
            raise ConfigError(f"tube_tasks={self.tube_tasks!r}: each must be one of {list(TUBE_TASKS)} (at least one)")
        if self.tube_attention not in ATTENTION:
            raise ConfigError(f"tube_attention={self.tube_attention!r}: must be one of {list(ATTENTION)}")
        slugs = [v.slug for v in VARIANTS]
        if not self.tube_variants or self.tube_variants[0] != "2d" or not set(self.tube_variants) <= set(slugs):
            raise ConfigError(f"tube_variants={self.tube_variants!r}: '2d' first (the reference, and the inflated "
                              f"models' start), then any of {slugs[1:]}")

    def arrow_spec(self):
        """How the arrow-of-time clips are cut."""

        return ArrowOfTime(videos=tuple(self.tube_videos), num_frames=self.tube_frames, frame_step=self.tube_frame_step,
                           size=self.tube_size, crops=self.tube_crops, blocks=self.tube_blocks)

    def pan_spec(self):
        """How the camera-pan clips are cut (frames per clip, clip side and time stretches as the arrow of time)."""

        return CameraPan(videos=tuple(self.pan_videos), holdout=self.pan_holdout, num_frames=self.tube_frames,
                         frame_step=self.pan_frame_step, size=self.tube_size, context=self.pan_context,
                         speeds=tuple(self.pan_speeds), blocks=self.tube_blocks, train_stride=self.pan_train_stride,
                         draws=self.pan_draws)

    def study(self, task: str = "arrow of time"):
        """The typed Study (data, 2D base model, training, seeds) of one task these parameters describe.

        The arrow of time trains each clip beside its reversed twin, with mirror flips; the pan does neither
        (a mirrored pan is another class)."""

        if task not in TUBE_TASKS:
            raise ConfigError(f"no tubelet task {task!r}; the tasks are {list(TUBE_TASKS)}")
        data = self.arrow_spec() if task == "arrow of time" else self.pan_spec()
        model = ViTConfig(image_size=self.tube_size, patch_size=self.tube_patch, width=self.tube_width,
                          depth=self.tube_depth, heads=self.tube_heads, num_classes=len(data.classes),
                          attention=self.tube_attention, causal=self.tube_causal)
        twins = task == "arrow of time"
        epochs, finetune = ((self.tube_epochs, self.tube_finetune_epochs) if twins
                            else (self.pan_epochs, self.pan_finetune_epochs))
        train = TrainSpec(epochs=epochs, batch_size=self.tube_batch, lr=self.tube_lr, paired=twins, flip=twins,
                          device=self.device)
        variants = tuple(v for v in VARIANTS if v.slug in self.tube_variants)
        return Study(data, model, train, finetune, tuple(range(self.tube_seeds)), variants)


@dataclass
class AblationParams(TrainingParams):
    """Notebook 04: the ablation sweep (lambda, warm-up, CLIP head, pixel loss, size) for both models."""

    ablate_epochs: int = 20  # epochs of every sweep run (fewer than notebooks 01/02: the sweep trains ~30 runs)
    ablate_seeds: int = 1  # training seeds of every variant except the size group (findings: t intervals over them)
    ablate_families: list[str] = field(default_factory=lambda: ["full", "patch"])  # model families swept
    ablate_groups: list[str] = field(default_factory=lambda: ["clip_weight", "warmup", "predict_clip", "loss", "size"])  # which ablations run
    clip_weights: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.2, 0.5, 1.0])  # lambda values
    warmup_fracs: list[float] = field(default_factory=lambda: [0.0, 0.1667, 0.3333])  # pixel-only share of the epochs
    losses: list[str] = field(default_factory=lambda: ["L2", "L1", "Fusion6", "Fusion4", "Fusion10"])  # pixel losses
    size_factors: list[float] = field(default_factory=lambda: [0.2333, 0.5, 1.0, 2.0])  # decoder size vs the preset (paper 0.35/0.75/1.5/3M)

    def ablation(self):
        """The typed Ablation these parameters describe."""

        return Ablation(clip_weights=tuple(float(w) for w in self.clip_weights), warmup_fracs=tuple(self.warmup_fracs),
                        losses=tuple(self.losses), size_factors=tuple(self.size_factors),
                        groups=tuple(self.ablate_groups), seeds=self.ablate_seeds)

    def base_config(self, family: str) -> TrainConfig:
        """The sweep's base TrainConfig of ``family``: the profile's recipe at ``ablate_epochs`` epochs."""
        return self.train_config(family, epochs=self.ablate_epochs)


@dataclass
class ComparisonParams(TrainingParams):
    """Notebook 05: full-frame vs patch dual-head under equal parameters, equal time and a quality target."""

    seam_k: int = 2  # seam band width in pixels, both designs measured on the same patch-grid borders
    quality_target_db: float = 0.0  # PSNR to reach; 0 picks 1 dB below the weaker model's final seen-frame PSNR


@dataclass
class SearchParams(TrainingParams):
    """Notebook 06: text -> patches search with the networks' predicted CLIP embeddings."""

    queries: list[str] = field(default_factory=lambda: ["a rabbit", "green grass", "blue sky", "a tree", "a rock"])  # text queries
    top_k: int = 5  # results per query; recall@k compares the network's top k with the teacher's


@dataclass
class RateDistortionParams(TrainingParams):
    """Notebook 07: PSNR / MS-SSIM against bits per pixel for the networks at several sizes and for codecs."""

    rd_epochs: int = 30  # epochs of every RD run (all frames trained, split 1_1_1)
    rd_hnerv_widths: list[int] = field(default_factory=lambda: [6, 10, 16, 24])  # stem widths (fc_dim) of the HNeRV points
    rd_clip: bool = True  # also train the HNeRV widths with the CLIP head (its cost in dB and bits)
    rd_nerv_widths: list[int] = field(default_factory=lambda: [8, 16, 24])  # stem widths of the NeRV points
    rd_patch_widths: list[int] = field(default_factory=lambda: [6, 10, 16])  # stem widths of the patch points
    rd_codecs: list[str] = field(default_factory=lambda: ["x264 yuv420p", "x264 yuv444p", "x265 yuv420p", "x265 yuv444p", "svt-av1 yuv420p"])  # codec and pixel format
    rd_crfs: list[int] = field(default_factory=lambda: [22, 27, 32, 37, 42, 47])  # CRF sweep of x264 / x265 / vp9
    rd_av1_crfs: list[int] = field(default_factory=lambda: [30, 38, 46, 54, 62])  # CRF sweep of SVT-AV1 (0-63 scale)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.codec_settings(), self.curves()  # a bad codec, pixel format or preset is named now, not mid-sweep

    def codec_settings(self):
        """Every (codec, pixel format, CRF) point of the sweep."""
        out = []
        for item in self.rd_codecs:
            codec, _, pix_fmt = item.partition(" ")
            crfs = self.rd_av1_crfs if codec == "svt-av1" else self.rd_crfs
            out += [CodecSetting(codec, pix_fmt or "yuv420p", crf) for crf in crfs]
        return out

    def curves(self):
        """The network RD curves these parameters ask for."""
        out = [NetworkCurve("HNeRV", self.full_model, tuple(self.rd_hnerv_widths))]
        if self.rd_clip:
            out.append(NetworkCurve("HNeRV + CLIP head", self.full_model, tuple(self.rd_hnerv_widths), predict_clip=True))
        out.append(NetworkCurve("NeRV", self.nerv_model, tuple(self.rd_nerv_widths)))
        out.append(NetworkCurve("patch", self.patch_model, tuple(self.rd_patch_widths)))
        return out

    def bases(self) -> dict[str, TrainConfig]:
        """Each family's training recipe at ``rd_epochs`` (the curves set the model and the split)."""
        return {family: self.train_config(family, epochs=self.rd_epochs) for family in ("full", "patch")}


NOTEBOOK_PARAMS: dict[str, type] = {
    "00_data_prep": DataPrepParams,
    "01_full_frame_training": FullFrameParams,
    "02_patch_training": PatchParams,
    "03_tubelet_embedding": TubeletParams,
    "04_ablations": AblationParams,
    "05_comparison": ComparisonParams,
    "06_semantic_search": SearchParams,
    "07_rate_distortion": RateDistortionParams,
}


def known_keys() -> set[str]:
    """Every parameter name some notebook accepts (a profile may set any of them)."""
    return {f.name for cls in NOTEBOOK_PARAMS.values() for f in fields(cls)}


def specs_by_name() -> dict[str, Spec]:
    """The Spec of every parameter name some notebook accepts (one type per name: a test checks it)."""
    out: dict[str, Spec] = {}
    for cls in NOTEBOOK_PARAMS.values():
        out.update(specs(cls))
    return out


def _is_candidate(name: str, value: Any) -> bool:
    if name.startswith("_") or name in _IPYTHON_NAMES:
        return False
    return not isinstance(value, (types.ModuleType, type)) and not callable(value)


def from_namespace(cls: type, namespace: Mapping[str, Any]):
    """Build ``cls`` from a notebook's globals (or any mapping) through the one parser (utils/parse.py).

    A name no notebook knows is an error, a name another notebook knows is ignored, and every value is
    parsed as its field's type: a string as the type it spells, anything else checked.
    """
    values = {k: v for k, v in namespace.items() if _is_candidate(k, v)}
    return cls(**parse_fields(cls, values, ignore=known_keys()))


class _ProfileLoader(yaml.SafeLoader):
    """YAML 1.1 without underscore integers: ``split: 9_10_10`` stays the string the user wrote."""


_ProfileLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in rules if tag != "tag:yaml.org,2002:int"]
    for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_ProfileLoader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?(0|[1-9][0-9]*)$"),
                                     list("-+0123456789"))


def load_profile(profile: str, params_dir: str | Path = "params") -> dict[str, Any]:
    """The flat parameter dict of ``params/<profile>.yaml`` (or of a yaml path), every value parsed.

    The values come back in plain YAML form (tuples as lists), ready for papermill.
    """
    path = Path(profile) if str(profile).endswith((".yaml", ".yml")) else Path(params_dir) / f"{profile}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in Path(params_dir).glob("*.yaml"))
        raise ConfigError(f"profile {profile!r} not found at {path}; available: {names}")
    data = yaml.load(path.read_text(), Loader=_ProfileLoader) or {}
    return parse_params(data, where=f"{path}: ")


def parse_params(values: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """Notebook parameters (from a profile, ``-p`` strings or a sweep) parsed by the one parser, in plain form.

    An unknown name is one ConfigError listing the known ones; so is a value its field cannot take.
    """
    known = specs_by_name()
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}unknown parameter(s) {unknown}; known: {sorted(known)}")
    return {k: plain(parse_value(k, v, known[k], where=where)) for k, v in values.items()}
