"""Training configuration: one typed dataclass, a registry of named presets, ``key=value`` overrides.

A :class:`TrainConfig` says everything a run needs (video, split, teacher, model, optimisation), so
its hash names the run directory and a finished run with the same hash is reused, not retrained.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Optional

from hnerv_lib.data.geometry import Grid, WindowPool
from hnerv_lib.data.split import Split
from hnerv_lib.data.teacher import TeacherSpec, identity
from hnerv_lib.data.video import VideoSpec
from hnerv_lib.models import ModelConfig, get_preset
from hnerv_lib.models import list_presets as model_presets
from hnerv_lib.train.losses import PIXEL_LOSSES
from hnerv_lib.train.schedule import Cosine, Schedule, schedule_from_dict
from hnerv_lib.utils import io
from hnerv_lib.utils import precision as prec
from hnerv_lib.utils.parse import assignments, knob, normalise_fields, parse_fields, parse_value

CONFIG_VERSION = 1  # bump when a field changes meaning
OUTPUT_ONLY = frozenset({"compress", "model_bits", "embed_bits", "tensorboard"})  # outside the run id: they change no trained number
DEVICE_PATTERN = r"cpu|cuda(:\d+)?|mps"  # torch devices a run may name
# Fields added after runs were made: while a field holds this value (which trains exactly as before
# the field existed) it stays out of the run id, so earlier runs keep their ids and are reused.
ID_SILENT_DEFAULTS = {"window_pool": 0}


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run depends on."""

    # --- data -------------------------------------------------------------------------------
    video: str = "bunny"  # embedded name, video file or image folder
    crop: Optional[tuple[int, int]] = (640, 1280)  # the paper's centre crop of Bunny's 720x1280
    size: Optional[tuple[int, int]] = (64, 128)  # training resolution (must match the model's frame size)
    every: int = 2  # keep every k-th frame: smoke 11, quick 2, cpu/paper 1
    first_frames: int = 0  # then the first N frames (0 = all)
    split: tuple[int, int, int] = (6, 6, 10)  # Split(train, gap, period); (6, 6, 10) = 60/40
    grid: tuple[int, int] = (2, 4)  # patch grid supervised by CLIP targets (seeds: 2x4)
    # --- CLIP teacher -------------------------------------------------------------------------
    teacher_model: str = "ViT-B-32"  # open_clip model name, or hf-hub:org/repo, local-dir:/path
    teacher_pretrained: Optional[str] = None  # None = random init (seeded); a tag ("openai"); a weights file; "auto"
    teacher_seed: int = 0  # seed of a random-init teacher
    # --- model --------------------------------------------------------------------------------
    model: str = knob("hnerv-quick", choices=model_presets)  # model preset name (hnerv_lib.models.list_presets())
    model_overrides: dict = field(default_factory=dict)  # e.g. {"predict_clip": False, "fc_dim": 64}
    # --- optimisation -------------------------------------------------------------------------
    epochs: int = 4  # passes over the training frames (paper: 300)
    batch_size: int = 2  # frames (full-frame) or patches (patch model) per step, over all processes
    lr: float = 1e-3  # Adam learning rate (paper: 1e-3)
    schedule: Schedule = Cosine()  # HNeRV's cosine_0.1_1_0.1: 10 % linear warm-up from 0.1x, then cosine
    loss: str = knob("Fusion6", choices=PIXEL_LOSSES)  # pixel loss: L1, L2, SSIM, Fusion1..Fusion12 (paper: L2; seeds: Fusion6)
    clip_weight: float = 0.2  # lambda of the CLIP loss (seeds: 0.2-0.5)
    clip_warmup_epochs: int = 1  # pixel-only epochs before the CLIP loss starts (seeds: 50 of 300)
    window_pool: int = 0  # patch model: K training windows per frame (grid tiles + random positions), one drawn per item; 0 = the grid only
    clip_sample: str = knob("center", choices=("center", "area"))  # full-frame CLIP map read at patch centres, or averaged over the "area"
    # --- evaluation and speed -----------------------------------------------------------------
    eval_every: int = 10  # evaluate seen and unseen frames every k epochs (and after the last)
    seed: int = 0  # model init and batch order
    device: str = knob("cpu", pattern=DEVICE_PATTERN)  # "cuda" on a GPU machine
    precision: str = "auto"  # auto | fp32 | bf16 autocast; auto measures this machine (utils/precision.py)
    channels_last: bool | str = knob("auto", choices=("auto",))  # NHWC convolutions: auto | true | false (auto: same probe)
    compile: bool = False  # torch.compile the model (GPU; slow to warm up on CPU)
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    # --- output (not part of the run id: they change no trained number) ------------------------
    compress: bool = False  # write the run's compressed file (quantised, entropy-coded model) when training finishes
    tensorboard: bool = False  # log losses, lr, PSNR and CLIP per epoch to the run's tb/ folder (needs the tensorboard extra)
    model_bits: int = 8  # weight quantisation of the compressed file (HNeRV: 8)
    embed_bits: int = 6  # frame-embedding quantisation (HNeRV: 6)

    def __post_init__(self) -> None:
        normalise_fields(self)  # the one parser: types, tuple lengths, choices (utils/parse.py)
        if isinstance(self.schedule, dict):
            object.__setattr__(self, "schedule", schedule_from_dict(self.schedule))
        Split(*self.split)  # validates
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "eval_every": self.eval_every}
        bad = {k: v for k, v in positive.items() if v < 1}
        if bad or self.lr <= 0 or self.clip_weight < 0 or self.clip_warmup_epochs < 0:
            raise ValueError(f"TrainConfig needs positive epochs/batch_size/eval_every/lr and non-negative "
                             f"clip_weight/clip_warmup_epochs; got {bad or ''} lr={self.lr} "
                             f"clip_weight={self.clip_weight} clip_warmup_epochs={self.clip_warmup_epochs}")
        if self.window_pool:
            self.pool()  # validates: at least the grid's tiles
        if self.clip_sample not in ("center", "area"):
            raise ValueError(f"clip_sample must be 'center' or 'area'; got {self.clip_sample!r}")
        prec.check_precision(self.precision)
        prec.check_channels_last(self.channels_last)

    # --- hardware choices ---------------------------------------------------------------------
    def hardware(self) -> prec.Resolved:
        """The concrete precision and memory format of this run on its device, with the reason (a CPU's
        probe is read from the machine's one place, :func:`~hnerv_lib.utils.precision.probe_dir`)."""
        return prec.resolve(self.precision, self.channels_last, self.device)

    def resolved(self) -> "TrainConfig":
        """This config with ``auto`` replaced by what this machine resolves it to (idempotent)."""
        if self.precision != "auto" and self.channels_last != "auto":
            return self
        hw = self.hardware()
        return replace(self, precision=hw.precision, channels_last=hw.channels_last)

    # --- derived typed views ------------------------------------------------------------------
    def video_spec(self) -> VideoSpec:
        """The frames to train on."""
        return VideoSpec(self.video, crop=self.crop, size=self.size, every=self.every, first=self.first_frames or None)

    def split_rule(self) -> Split:
        """The typed split."""
        return Split(*self.split)

    def geometry(self) -> Grid:
        """The CLIP patch grid."""
        return Grid(*self.grid)

    def pool(self) -> Optional[WindowPool]:
        """The patch model's training windows beyond the grid (``window_pool`` per frame), or None when off."""
        if self.window_pool == 0:
            return None
        if self.window_pool < 0:
            raise ValueError(f"window_pool must be 0 (off) or at least the grid's tiles; got {self.window_pool}")
        return WindowPool(*self.grid, per_frame=self.window_pool)

    def teacher_spec(self) -> TeacherSpec:
        """The CLIP teacher."""
        return TeacherSpec(self.teacher_model, self.teacher_pretrained, self.teacher_seed)

    def model_config(self) -> ModelConfig:
        """The model preset with this run's overrides."""
        return get_preset(self.model, **self.model_overrides)

    # --- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (with the config version)."""
        d = asdict(self)
        d["schedule"] = self.schedule.to_dict()
        return {"version": CONFIG_VERSION, **json.loads(json.dumps(d))}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Inverse of ``to_dict``; unknown keys are an error naming them."""
        data = legacy_bf16({k: v for k, v in data.items() if k != "version"})
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown TrainConfig keys {unknown}")
        return cls(**data)

    def run_id(self) -> str:
        """Short id of this exact configuration (the run directory name).

        The id hashes the *resolved* precision and memory format, not the word ``auto``: a bf16 run
        made on one machine is not reused as an fp32 run on another.
        """
        fields = {k: v for k, v in self.resolved().to_dict().items()
                  if k not in OUTPUT_ONLY and (k not in ID_SILENT_DEFAULTS or v != ID_SILENT_DEFAULTS[k])}
        weights = identity(self.teacher_spec())["weights"]
        if weights:  # a teacher read from a file: its contents, not its path, identify the run
            fields["teacher_weights"] = weights["sha256"]
        return io.stable_hash(fields, length=10)


def warmup_epochs(fraction: float, epochs: int) -> int:
    """Pixel-only epochs before the CLIP loss: ``fraction`` of ``epochs``, rounded (the one place it is derived)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"a warm-up fraction must lie in [0, 1]; got {fraction!r}")
    return round(fraction * epochs)


def legacy_bf16(data: dict[str, Any]) -> dict[str, Any]:
    """Map the retired ``bf16: true/false`` key to ``precision: bf16/fp32``, with a deprecation warning."""
    if "bf16" not in data:
        return data
    data = dict(data)
    old = data.pop("bf16")
    if not isinstance(old, bool):
        raise ValueError(f"bf16 (deprecated; use precision) must be true or false; got {old!r}")
    new = "bf16" if old else "fp32"
    if data.get("precision", new) != new:
        raise ValueError(f"bf16={old} contradicts precision={data['precision']!r}; set only precision")
    warnings.warn(f"bf16: {str(old).lower()} is deprecated; use precision: {new} (or auto, the default)",
                  FutureWarning, stacklevel=3)
    data["precision"] = new
    return data


_SMOKE_DATA = dict(size=(32, 64), every=11, first_frames=12)
_QUICK_DATA = dict(size=(64, 128), every=2)
_CPU_DATA = dict(size=(160, 320), every=1)
_PAPER_DATA = dict(size=(640, 1280), every=1, device="cuda")

PRESETS: dict[str, Callable[[], TrainConfig]] = {
    "hnerv-tiny": lambda: TrainConfig(model="hnerv-tiny", loss="L2", eval_every=2, **_SMOKE_DATA),
    "patch-tiny": lambda: TrainConfig(model="patch-tiny", batch_size=8, loss="Fusion6", eval_every=2, **_SMOKE_DATA),
    # the original HNeRV code's CPU measurement (anchors.md): 1.46M params, batch 2, L2, all frames train
    "hnerv-cpu-orig": lambda: TrainConfig(
        model="hnerv-cpu-orig", model_overrides={"predict_clip": False}, loss="L2", split=(1, 1, 1), epochs=30,
        eval_every=10, **_CPU_DATA),
    # the research fork's patch trainer on CPU (anchors.md): 80x80 patches, batch 8, Fusion6, lambda 0.2
    "patch-cpu-fork": lambda: TrainConfig(
        model="patch-cpu-fork", batch_size=8, loss="Fusion6", clip_weight=0.2, clip_warmup_epochs=5,
        split=(9, 10, 10), epochs=30, eval_every=10, **_CPU_DATA),
    # the HNeRV paper's Bunny run: HNeRV-1.5M, 640x1280, 300 epochs, batch 2, L2, all frames train
    "paper-hnerv-1.5m": lambda: TrainConfig(
        model="hnerv-1.5m", loss="L2", split=(1, 1, 1), epochs=300, eval_every=50,
        **_PAPER_DATA),
}


def list_presets() -> list[str]:
    """Names of the training presets."""
    return list(PRESETS)


def get_train_preset(name: str) -> TrainConfig:
    """A named training preset."""
    if name not in PRESETS:
        raise ValueError(f"unknown training preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]()


def apply_overrides(cfg: TrainConfig, items: list[str]) -> TrainConfig:
    """``["epochs=30", "model.fc_dim=64", "schedule.warmup=0.2"]`` -> a new TrainConfig.

    Every value goes through the one parser (utils/parse.py) as its field's type: ``model.<field>``
    as the model preset's field, ``schedule.<field>`` as the schedule's. A bad key or value is one
    ConfigError naming it, raised before anything is built or written.
    """
    raw = assignments(items, "--set")
    if "bf16" in raw:
        legacy = legacy_bf16({"bf16": parse_value("bf16", raw.pop("bf16"), bool, where="--set ")})
        raw.setdefault("precision", legacy["precision"])
    model_raw = {k[6:]: v for k, v in raw.items() if k.startswith("model.")}
    sched_raw = {k[9:]: v for k, v in raw.items() if k.startswith("schedule.")}
    top = {k: v for k, v in raw.items() if not k.startswith(("model.", "schedule."))}
    changes = parse_fields(TrainConfig, top, where="--set ")
    model_name = changes.get("model", cfg.model)
    model_over = {**cfg.model_overrides,
                  **parse_fields(type(get_preset(model_name)), model_raw, where="--set model.")}
    if sched_raw:
        sched = changes.get("schedule", cfg.schedule)
        changes["schedule"] = replace(sched, **parse_fields(type(sched), sched_raw, where="--set schedule."))
    out = replace(cfg, model_overrides=model_over, **changes)
    out.model_config()  # fail now, not mid-run, on a bad model override
    return out
