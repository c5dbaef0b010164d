"""The 2D-patches vs 3D-tubelets study: train every variant for every seed, measure, summarise, conclude.

One study is one clip task (the arrow of time or the camera pan, ``clips.Task``); notebook 03 runs one
study per task with the same models and reports each. Every run is scored on each of the task's
held-out splits (``test``; the pan's ``unseen video`` too) and on its test split after every epoch.

A study's runs live in ``run_root/<study id>/`` (the id is a hash of the study's config, saved there as
``study.json``); each (variant, seed) writes ``<slug>_s<seed>.pt`` and, last, ``<slug>_s<seed>.json``.
A rerun reuses every finished (variant, seed) instead of training it again.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import submitit
import torch

from hnerv_lib.eval.verdict import Estimate, judge
from hnerv_lib.studies.outputs import Figure, Output, Provenance, Table, Text
from hnerv_lib.studies.plots import legend_outside
from hnerv_lib.studies.tubelets.clips import PAN_MOVES, ClipSet, Task, cut_task
from hnerv_lib.train import launch
from hnerv_lib.studies.tubelets.config import ViTConfig
from hnerv_lib.studies.tubelets.inflate import INFLATION_MODES, inflate
from hnerv_lib.studies.tubelets.measure import (
    flops_per_clip,
    inference_clips_per_s,
    measured_tokens,
    scale_table,
    t_interval,
    train_clips_per_s,
    train_step_memory_mb,
)
from hnerv_lib.studies.tubelets.model import (
    LSViTForAction,
    trainable_params,
    load_checkpoint,
    save_checkpoint,
)
from hnerv_lib.studies.tubelets.train import TrainSpec, accuracy, fit, predict
from hnerv_lib.utils import io

STUDY_VERSION = 3  # bump when clip cutting, training or measuring changes, so earlier runs are not reused


@dataclass(frozen=True)
class EmbeddingVariant:
    """One patch-embedding choice: 2D (tubelet_size 1) or 3D tubelets, from scratch or inflated from 2D.

    ``equal_flops``: train from scratch for as many epochs as spend the 2D variant's training FLOPs (a
    tubelet clip costs fewer FLOPs, so it gets more epochs: the comparison at equal compute).
    """

    name: str  # label in tables and plots
    tubelet_size: int = 1  # 1: 2D patches per frame; > 1: Conv3d tubelets of this many frames
    inflate: Optional[str] = None  # "central" | "average": start from the same seed's trained 2D model
    equal_flops: bool = False  # epochs scaled to the 2D variant's training FLOPs

    @property
    def slug(self) -> str:
        """File-name form: ``2d``, ``t2``, ``t2-central``, ``t2-eqflops``."""
        base = "2d" if self.tubelet_size == 1 else f"t{self.tubelet_size}"
        if self.inflate:
            return f"{base}-{self.inflate}"
        return f"{base}-eqflops" if self.equal_flops else base

    def config(self, base: ViTConfig) -> ViTConfig:
        """``base`` with this variant's patch embedding."""
        if self.tubelet_size == 1:
            return replace(base, use_3d_patch_embed=False)
        return replace(base, use_3d_patch_embed=True, tubelet_size=self.tubelet_size)


VARIANTS = (
    EmbeddingVariant("2D patches", 1),
    EmbeddingVariant("tubelet 2", 2),
    EmbeddingVariant("tubelet 4", 4),
    EmbeddingVariant("tubelet 2, inflated (central)", 2, inflate="central"),  # ViViT's best initialisation
    EmbeddingVariant("tubelet 2, inflated (average)", 2, inflate="average"),  # I3D's filter inflation
    EmbeddingVariant("tubelet 2, 2D's FLOPs", 2, equal_flops=True),
    EmbeddingVariant("tubelet 4, 2D's FLOPs", 4, equal_flops=True),
)


@dataclass(frozen=True)
class Study:
    """Everything that decides the study's numbers."""

    data: Task  # the clip task: ArrowOfTime or CameraPan
    model: ViTConfig  # the 2D base; each variant swaps the patch embedding
    train: TrainSpec
    finetune_epochs: int  # epochs of the inflated variants, on top of their 2D model's
    seeds: tuple[int, ...] = (0, 1, 2)
    variants: tuple[EmbeddingVariant, ...] = VARIANTS

    def to_dict(self) -> dict[str, Any]:
        """JSON form (also hashed into the run id)."""
        return {"version": STUDY_VERSION, "task": self.data.task, "data": self.data.to_dict(), "model": self.model.to_dict(), "train": self.train.to_dict(),
                "finetune_epochs": self.finetune_epochs, "seeds": list(self.seeds),
                "variants": [asdict(v) for v in self.variants]}

    @property
    def chance(self) -> float:
        """Accuracy of guessing: the task's classes are balanced."""
        return 1.0 / len(self.data.classes)

    def run_dir(self, run_root: str | Path) -> Path:
        """``run_root/<short id>``, with the config saved as ``study.json``."""
        path = Path(run_root) / f"tubelets-{io.stable_hash(self.to_dict(), length=10)}"
        if not (path / "study.json").is_file():
            io.save_json(self.to_dict(), path / "study.json")
        return path


# Columns of the per-run table, in display order (reused runs come back from JSON with sorted keys).
# ``unseen_acc`` is NaN for tasks without an unseen-video split; ``test_curve`` is the test accuracy after each epoch.
RESULT_COLUMNS = ("variant", "slug", "seed", "embedding", "epochs", "test_acc", "unseen_acc", "train_acc", "final_loss",
                  "fit_clips_per_s", "train_seconds", "test_clips", "tokens", "params", "gflops",
                  "infer_clips_per_s", "train_clips_per_s", "train_step_mb", "test_curve")
UNSEEN = "unseen video"  # the split name of clips from a video no run trained on
SPEED_COLUMNS = ("infer_clips_per_s", "train_clips_per_s", "train_step_mb")  # measured per variant, not per run


def _measure(model: LSViTForAction) -> dict[str, Any]:
    return {"tokens": measured_tokens(model), "params": trainable_params(model), "gflops": flops_per_clip(model) / 1e9}


def measure_speeds(study: Study, num_frames: int) -> dict[str, dict[str, float]]:
    """Per variant name: inference and training clips/s and training-step MiB, measured in this process,
    one architecture after the other (the report's timer: warm-up, median of the repeats).

    Speed depends on the architecture only, not on the weights or the seed: each tubelet size is timed
    once, on a fresh model, and an inflated or equal-FLOPs variant gets its tubelet's numbers. The runs
    themselves may train as parallel jobs that share the cores, so their own timing is not used here.
    """
    batch, by_size, out = study.train.batch_size, {}, {}
    for v in study.variants:
        if v.tubelet_size not in by_size:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = LSViTForAction(v.config(study.model), num_frames=num_frames)
            by_size[v.tubelet_size] = {"infer_clips_per_s": inference_clips_per_s(model, batch=2 * batch),
                                       "train_clips_per_s": train_clips_per_s(model, batch=batch),
                                       "train_step_mb": train_step_memory_mb(model, batch)}
        out[v.name] = by_size[v.tubelet_size]
    return out


def run_one(study: Study, variant: EmbeddingVariant, seed: int, sets: dict[str, ClipSet],
            model2d: Optional[LSViTForAction] = None) -> tuple[LSViTForAction, dict[str, Any]]:
    """Train one (variant, seed) on ``sets["train"]`` and measure it; inflated variants need the seed's 2D model."""
    train_set, test_set = sets["train"], sets["test"]
    torch.manual_seed(seed)
    spec = replace(study.train, seed=seed)
    if variant.inflate:
        if model2d is None:
            raise ValueError(f"variant {variant.name!r} inflates a 2D model; train the 2D variant first")
        model = inflate(model2d, variant.tubelet_size, variant.inflate)
        spec = replace(spec, epochs=study.finetune_epochs)
    else:
        model = LSViTForAction(variant.config(study.model), num_frames=train_set.num_frames)
        if variant.equal_flops:
            spec = replace(spec, epochs=equal_flops_epochs(study, train_set.num_frames, flops_per_clip(model)))
    curve: list[float] = []

    def score(epoch: int, loss: float) -> None:
        curve.append(_score(model, test_set, spec.device))
        model.train()

    history = fit(model, train_set, spec, on_epoch=score)
    row = {"variant": variant.name, "slug": variant.slug, "seed": seed, "embedding": model.config.embedding,
           "epochs": spec.epochs + (study.train.epochs if variant.inflate else 0), "test_acc": curve[-1],
           "unseen_acc": _score(model, sets[UNSEEN], spec.device) if UNSEEN in sets else math.nan,
           "train_acc": accuracy(predict(model, train_set, device=spec.device), train_set.labels),
           "final_loss": history["loss"][-1], "fit_clips_per_s": history["train_clips_per_s"],
           "train_seconds": history["train_seconds"], "test_clips": len(test_set), **_measure(model),
           "test_curve": curve}
    return model, row


def equal_flops_epochs(study: Study, num_frames: int, flops: float) -> int:
    """Epochs of a model of ``flops`` forward FLOPs per clip that cost what the 2D variant's training costs."""
    with torch.device("meta"):  # shapes only: no weights, no draw from the seeded generator
        model2d = LSViTForAction(EmbeddingVariant("2D", 1).config(study.model), num_frames=num_frames)
    flops2d = flops_per_clip(model2d)
    return max(1, round(study.train.epochs * flops2d / flops))


def _score(model: LSViTForAction, data: ClipSet, device: str) -> float:
    return accuracy(predict(model, data, device=device), data.labels)


def run_study(study: Study, sets: dict[str, ClipSet], run_root: str | Path,
              progress: Optional[Callable[[dict[str, Any]], None]] = None,
              seeds: Optional[Sequence[int]] = None, speeds: bool = True) -> pd.DataFrame:
    """One row per (variant, seed) (``seeds``: these of the study's only), trained on ``sets["train"]`` and
    scored on the others; finished runs under ``run_root`` are read back, not retrained. ``speeds``: add
    the variants' speed and memory (:func:`measure_speeds`, in this process, after the runs)."""
    run_dir, rows = study.run_dir(run_root), []
    for seed in study.seeds if seeds is None else seeds:
        model2d = None
        for variant in study.variants:
            stem = run_dir / f"{variant.slug}_s{seed}"
            if stem.with_suffix(".json").is_file():
                row = io.load_json(stem.with_suffix(".json"))
                model = load_checkpoint(stem.with_suffix(".pt"))[0] if variant.tubelet_size == 1 else None
            else:
                model, row = run_one(study, variant, seed, sets, model2d)
                save_checkpoint(stem.with_suffix(".pt"), model, extra={"study": study.to_dict(), "result": row})
                io.save_json(row, stem.with_suffix(".json"))  # written last: the run counts as finished
            if variant.tubelet_size == 1 and not variant.inflate:
                model2d = model
            rows.append({k: v for k, v in row.items() if k not in SPEED_COLUMNS})  # runs before this one kept them
            if progress is not None:
                progress(row)
    runs = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    if speeds and len(runs):
        measured = measure_speeds(study, sets["train"].num_frames)
        for col in SPEED_COLUMNS:
            runs[col] = runs["variant"].map(lambda name: measured[name][col])
    return runs


def seed_done(study: Study, seed: int, run_root: str | Path) -> bool:
    """Whether every variant of ``seed`` has finished under ``run_root``."""
    run_dir = study.run_dir(run_root)
    return all((run_dir / f"{v.slug}_s{seed}.json").is_file() for v in study.variants)


class SeedJob(submitit.helpers.Checkpointable):
    """One seed of a study (all its variants: the inflated ones start from that seed's 2D model) as a job.
    Preempted, it is resubmitted and reads back the variants it had finished."""

    def __init__(self, study: Study, seed: int, run_root: str, cache_dir: str, threads: int = 0) -> None:
        self.study, self.seed, self.run_root, self.cache_dir, self.threads = study, seed, run_root, cache_dir, threads

    def __call__(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)
        run_study(self.study, cut_task(self.study.data, self.cache_dir), self.run_root, seeds=[self.seed], speeds=False)


def seeds_first(studies: Study | Sequence[Study], run_root: str | Path, cache_dir: str | Path,
                launcher: launch.Launcher, progress: bool = True) -> None:
    """Train the unfinished seeds of ``studies`` as jobs, one per (study, seed), all submitted together,
    when ``launcher`` sends runs elsewhere (inline: nothing here); a failed seed raises
    :class:`~hnerv_lib.train.launch.RunsFailed`. The runs' accuracies do not depend on where they train;
    their speeds are measured afterwards, in the notebook's process (:func:`measure_speeds`)."""
    if launcher.executor == "inline":
        return
    studies = [studies] if isinstance(studies, Study) else list(studies)
    todo = [(study, s) for study in studies for s in study.seeds if not seed_done(study, s, run_root)]
    threads = launcher.threads(tasks=len(todo))
    tasks = [launch.Task(f"{study.data.task}, seed {s}", SeedJob(study, s, str(run_root), str(cache_dir), threads),
                         record=study.run_dir(run_root) / f"seed{s}_error.json", config=study.to_dict(),
                         done=partial(seed_done, study, s, run_root))
             for study, s in todo]
    rows = launch.run_tasks(tasks, run_root, launcher, progress=progress, desc="tubelet seeds")
    launch.raise_failed(rows, {t.key: t.record for t in tasks})


def summarize(runs: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per variant: tokens, params, MFLOPs, speeds (median over seeds), memory, accuracy mean and t-interval
    (on the unseen video too, where the runs were scored on one)."""
    out = []
    unseen = "unseen_acc" in runs and runs["unseen_acc"].notna().any()
    for name, g in runs.groupby("variant", sort=False):
        mean, half = t_interval(g["test_acc"], level)
        extra = dict(zip(("unseen acc", "unseen ci"), t_interval(g["unseen_acc"], level))) if unseen else {}
        out.append({"variant": name, "tokens": int(g["tokens"].iloc[0]), "params": int(g["params"].iloc[0]),
                    "MFLOPs / clip": 1000 * g["gflops"].iloc[0], "train clips/s": g["train_clips_per_s"].median(),
                    "infer clips/s": g["infer_clips_per_s"].median(), "train-step MiB": g["train_step_mb"].iloc[0],
                    "epochs": int(g["epochs"].iloc[0]), "seeds": len(g), "test acc": mean, "ci": half,
                    **extra, "train acc": g["train_acc"].mean()})
    return pd.DataFrame(out)


def _acc_text(row: pd.Series, col: str = "test acc", ci: str = "ci") -> str:
    half = f" ± {row[ci]:.1%}" if not math.isnan(row[ci]) else " (one seed, no interval)"
    return f"{row[col]:.1%}{half}"


def _pct(p: float) -> str:
    """50% or 11.1%: a chance level as short as it is exact to 0.1 %."""
    return f"{p:.0%}" if abs(100 * p - round(100 * p)) < 1e-9 else f"{p:.1%}"


# What the training clips test, by task: the verdict's last sentence.
FIT_NOTE = {"arrow of time": "which only frame order can separate (each clip's reversed twin has the same frames)",
            "camera pan": "where only the window's motion separates the classes (every class has the same content mix)"}


def summary_verdict(summary: pd.DataFrame, chance: float = 0.5, level: float = 0.95, task: str = "arrow of time") -> str:
    """A short paragraph written from the summary's numbers (the first row is the 2D reference).

    Lists of variants are joined with semicolons: the names hold commas ("tubelet 2, inflated (central)").
    """
    ref, others = summary.iloc[0], summary.iloc[1:]
    parts, described = [], set()
    for _, r in others.iterrows():
        if (r["tokens"], r["MFLOPs / clip"]) in described:  # same embedding, other training: said once
            continue
        described.add((r["tokens"], r["MFLOPs / clip"]))
        parts.append(f"{r['variant']} uses {r['tokens'] / ref['tokens']:.0%} of the 2D tokens and "
                     f"{r['MFLOPs / clip'] / ref['MFLOPs / clip']:.0%} of its FLOPs, infers at "
                     f"{r['infer clips/s'] / ref['infer clips/s']:.1f}x and trains at "
                     f"{r['train clips/s'] / ref['train clips/s']:.1f}x its speed, with "
                     f"{r['train-step MiB'] / ref['train-step MiB']:.0%} of its training-step memory")
    accs = "; ".join(f"{r['variant']} {_acc_text(r)}" for _, r in summary.iterrows())
    known = summary[summary["ci"].notna()]
    above = [r["variant"] for _, r in known.iterrows() if r["test acc"] - r["ci"] > chance]
    below = [r["variant"] for _, r in known.iterrows() if r["test acc"] + r["ci"] < chance]
    if known.empty:
        acc = f"Test accuracy ({accs}) comes from one seed each, so no difference can be called."
    else:
        acc = f"Test accuracy ({level:.0%} t-intervals over seeds): {accs}."
        acc += (f" Above chance ({_pct(chance)}): {'; '.join(above)}." if above
                else f" No variant is above chance ({_pct(chance)}).")
        if below:
            acc += (f" Below chance: {'; '.join(below)} — what they learned on the training stretches runs the "
                    f"wrong way on the held-out ones (a video-specific cue, not a general {task} cue).")
    rank = ""
    if not known.empty:
        best = known.loc[known["test acc"].idxmax()]
        top = Estimate.half_width(best["test acc"], best["ci"])
        apart = [r["variant"] for _, r in known.iterrows() if judge(top, Estimate.half_width(r["test acc"], r["ci"]))]
        rank = (f" Highest mean: {best['variant']}; its interval " +
                (f"does not overlap those of {'; '.join(apart)}." if apart else "overlaps every other variant's."))
    fit_txt = "; ".join(f"{r['variant']} {r['train acc']:.0%}" for _, r in summary.iterrows())
    fitted = (f" On the training clips, {FIT_NOTE[task]}, accuracy is {fit_txt} after {int(ref['epochs'])} epochs "
              f"(inflated: in total).")
    unseen = ""
    if "unseen acc" in summary:  # a video no run trained on: does what was learned transfer?
        accs_u = "; ".join(f"{r['variant']} {_acc_text(r, 'unseen acc', 'unseen ci')}" for _, r in summary.iterrows())
        above_u = [r["variant"] for _, r in summary.iterrows() if r["unseen acc"] - r["unseen ci"] > chance]
        unseen = (f" On the unseen video: {accs_u}; above chance there: "
                  f"{'; '.join(above_u) if above_u else 'none'}.")
    return "Efficiency: " + "; ".join(parts) + ". " + acc + rank + unseen + fitted


# ---- The study of notebook 03 (plan, run, table, verdict, outputs) ----------------------------------------

PREFIX = "03"
VERDICT_WHAT = "Verdict, generated from the summary table"
SEED_SCALE = dict(frames=16, image_size=224, patch_size=16, tubelets=(1, 2, 4))  # seed 004's ViT-B/16 clips
SEED_TOKENS = [3136, 1568, 784]  # the seed's token counts at that scale: the model must reproduce them
SCALE_PROVENANCE = Provenance("none (shapes only)", "none (400-class head, random init)")


def teacher(model: ViTConfig) -> str:
    """The captions' teacher field: no CLIP teacher; the classifier's attention, which decides what it can learn."""
    return f"none (video classifier, {model.attention_name}, trained from scratch)"


# Output names of each task's tables and figures (the arrow of time keeps the names it had before the pan).
NAMES = {"arrow of time": dict(sets="03_clip_sets", split="03_clip_split", runs="03_tubelet_runs",
                               summary="03_tubelets_summary", figure="03_tubelets", curves="03_tubelets_curves"),
         "camera pan": dict(sets="03_pan_clip_sets", split="03_pan_clip_split", runs="03_pan_runs",
                            summary="03_pan_summary", figure="03_pan", curves="03_pan_curves")}


@dataclass
class TaskResults:
    """One task's study, clip sets and runs."""

    study: Study
    sets: dict[str, ClipSet]  # "train", "test"[, "unseen video"]
    runs: pd.DataFrame  # one row per (variant, seed): RESULT_COLUMNS
    provenance: Provenance

    @property
    def test_set(self) -> ClipSet:
        return self.sets["test"]


@dataclass
class TubeletResults:
    """Everything notebook 03 shows (tests build it from small clip sets)."""

    scale: pd.DataFrame  # tokens, parameters, FLOPs at the seed's scale
    tasks: dict[str, TaskResults]  # by task name, in the order the parameters list them

    @property
    def provenance(self) -> Provenance:
        """For captions of outputs that span the tasks (claims, verdict): every task's videos and splits."""
        provs = [T.provenance for T in self.tasks.values()]
        if len(provs) == 1:
            return provs[0]
        videos = list(dict.fromkeys(v for p in provs for v in p.video.split(", ")))
        epochs = {p.epochs for p in provs}
        teachers = list(dict.fromkeys(p.teacher for p in provs))
        return Provenance(", ".join(videos), " | ".join(teachers), split=" | ".join(p.split for p in provs if p.split),
                          epochs=epochs.pop() if len(epochs) == 1 else None)


def plan(params: Any) -> list[tuple[str, EmbeddingVariant, int]]:
    """Every (task, variant, seed) the study trains (runs are files under each study's run directory)."""
    return [(task, v, seed) for task in params.tube_tasks for study in [params.study(task)]
            for seed in study.seeds for v in study.variants]


def seed_scale() -> pd.DataFrame:
    """The token table at the seed's scale, checked against the seed's numbers."""
    scale = pd.DataFrame(scale_table(**SEED_SCALE))
    tokens = scale["tokens (embed output)"].tolist()
    if tokens != SEED_TOKENS or not (scale["tokens (embed output)"] == scale["tokens (model.num_tokens)"]).all():
        raise RuntimeError(f"the model's token counts {tokens} at 16 x 224 x 224 are not the seed's {SEED_TOKENS}")
    return scale


def provenance(study: Study, epochs: Optional[int] = None) -> Provenance:
    d = study.data
    split = (f"{d.task} split by time: {d.blocks} stretches per video, first {d.train_frac:.0%} train, test "
             f"{d.gap} frames away")
    videos = list(d.videos)
    if getattr(d, "holdout", None):
        split += f"; unseen video: {d.holdout}"
        videos.append(d.holdout)
    return Provenance(", ".join(videos), teacher(study.model), split=split, epochs=epochs)


def run(params: Any, progress: bool = True) -> TubeletResults:
    """For each task: cut the clips, train every (variant, seed) (finished ones are read back), measure each."""
    scale, tasks = seed_scale(), {}

    def say(r: dict[str, Any]) -> None:
        unseen = f", unseen video {r['unseen_acc']:.3f}" if r["unseen_acc"] == r["unseen_acc"] else ""
        print(f"{r['variant']:>28s} seed {r['seed']}: test {r['test_acc']:.3f}{unseen}, train {r['train_acc']:.3f}, "
              f"{r['train_seconds']:.1f} s")

    studies = {task: params.study(task) for task in params.tube_tasks}
    task_sets = {task: cut_task(study.data, params.cache_dir) for task, study in studies.items()}
    # every task's seeds as jobs, if asked; speeds are measured here afterwards, one variant at a time
    seeds_first(list(studies.values()), params.run_root, params.cache_dir, params.launcher(), progress)
    for task, study in studies.items():
        sets = task_sets[task]
        if progress:
            print(f"{task} (chance {_pct(study.chance)}):")
        runs = run_study(study, sets, params.run_root, progress=say if progress else None)
        tasks[task] = TaskResults(study, sets, runs, provenance(study, study.train.epochs))
    return TubeletResults(scale, tasks)


def table(results: TubeletResults, task: str = "arrow of time") -> pd.DataFrame:
    """The headline of one task: per variant, tokens, FLOPs, speeds, memory, accuracy with its t interval over seeds."""
    return summarize(results.tasks[task].runs)


def verdict(results: TubeletResults) -> str:
    """One paragraph per task, each written from that task's summary."""
    return "\n\n".join(f"{task[0].upper() + task[1:]} (chance {_pct(T.study.chance)}). "
                        + summary_verdict(table(results, task), T.study.chance, task=task)
                        for task, T in results.tasks.items())


SPLIT_COLORS = {"train": "tab:blue", "test": "tab:orange", UNSEEN: "tab:purple"}


# Seed 004's claims for 3D tubelets, in its words, and what tests each here.
SEED_CLAIMS = {"speed": "Fewer patches (faster)", "motion": "Better motion capture; better temporal modeling",
               "compute": "More efficient for videos", "t4": "tubelet_size=4: aggressive reduction, may lose temporal detail"}
OUTCOME = {1: "holds", -1: "contradicted", 0: "not separated (intervals overlap)", None: "no interval (one seed)"}
UNTESTED = "not tested: fewer FLOPs than 2D, and no equal-FLOPs run (tube_variants)"


def _compare(S: pd.DataFrame, a: str, b: str, col: str, ci: str) -> tuple[str, str]:
    """(evidence, outcome) of "variant ``a`` scores higher than ``b``" on one accuracy column."""
    ea, eb = (Estimate.half_width(S.loc[k, col], S.loc[k, ci]) for k in (a, b))
    text = f"{S.loc[a, 'variant']} {_acc_text(S.loc[a], col, ci)} vs {S.loc[b, 'variant']} {_acc_text(S.loc[b], col, ci)}"
    return text, OUTCOME[judge(ea, eb)]


def _fewer_flops(S: pd.DataFrame, t: str, task: str, split: str, col: str, ci: str) -> dict:
    """The compute claim without an equal-FLOPs run: a tubelet that beats 2D on fewer training FLOPs holds
    it a fortiori; otherwise it is untested (more compute could still close the gap)."""
    spent = (S.loc[t, "MFLOPs / clip"] * S.loc[t, "epochs"]) / (S.loc["2d", "MFLOPs / clip"] * S.loc["2d", "epochs"])
    evidence, outcome = _compare(S, t, "2d", col, ci)
    return {"claim": SEED_CLAIMS["compute"], "task": task,
            "test": f"{S.loc[t, 'variant']} vs 2D, {split} accuracy, on {spent:.0%} of 2D's training FLOPs",
            "evidence": evidence, "outcome": outcome if outcome == OUTCOME[1] else UNTESTED}


def claims(results: TubeletResults) -> pd.DataFrame:
    """Each seed claim, tested on each task from the summary numbers: holds, contradicted or not separated."""
    rows = []
    for task, T in results.tasks.items():
        S = summarize(T.runs).assign(slug=lambda d: d["variant"].map(dict(zip(T.runs["variant"], T.runs["slug"]))))
        S = S.set_index("slug", drop=False)
        splits = [("test acc", "ci", "test")] + ([("unseen acc", "unseen ci", UNSEEN)] if "unseen acc" in S else [])
        for t in [k for k in ("t2", "t4") if k in S.index and "2d" in S.index]:
            train, infer = (S.loc[t, c] / S.loc["2d", c] for c in ("train clips/s", "infer clips/s"))
            rows.append({"claim": SEED_CLAIMS["speed"], "task": task, "test": f"{S.loc[t, 'variant']} vs 2D, clips/s",
                         "evidence": f"{S.loc[t, 'tokens'] / S.loc['2d', 'tokens']:.0%} of the tokens; trains at {train:.1f}x, "
                                     f"infers at {infer:.1f}x (medians over seeds)",
                         "outcome": OUTCOME[1] if min(train, infer) > 1 else OUTCOME[-1]})
            for col, ci, split in splits:
                rows.append({"claim": SEED_CLAIMS["motion"], "task": task, "test": f"{S.loc[t, 'variant']} vs 2D, {split} "
                             "accuracy, same epochs", **dict(zip(("evidence", "outcome"), _compare(S, t, "2d", col, ci)))})
                if f"{t}-eqflops" in S.index:
                    rows.append({"claim": SEED_CLAIMS["compute"], "task": task, "test": f"{S.loc[t + '-eqflops', 'variant']} "
                                 f"vs 2D, {split} accuracy, equal training FLOPs",
                                 **dict(zip(("evidence", "outcome"), _compare(S, t + "-eqflops", "2d", col, ci)))})
                else:
                    rows.append(_fewer_flops(S, t, task, split, col, ci))
        if {"t2", "t4"} <= set(S.index):
            for col, ci, split in splits:
                rows.append({"claim": SEED_CLAIMS["t4"], "task": task, "test": f"tubelet 2 vs tubelet 4, {split} accuracy",
                             **dict(zip(("evidence", "outcome"), _compare(S, "t2", "t4", col, ci)))})
    return pd.DataFrame(rows, columns=["claim", "task", "test", "evidence", "outcome"])


def _split_table(regions: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for name, r in regions.items():
        row = {"video": name, "frames": r["frames"]}
        for role in SPLIT_COLORS:
            if role in r:
                row[f"{role} frames"] = str(r[role])
        row["scene cuts after"] = str(r["cuts"])
        for role in SPLIT_COLORS:
            key = f"{role.replace(' ', '_')}_windows"
            if key in r:
                row[f"{role} windows"] = r[key]
        rows.append(row)
    return pd.DataFrame(rows)


def _split_figure(regions: dict[str, dict]):
    fig, axes = plt.subplots(len(regions), 1, figsize=(11, 0.6 * len(regions) + 1.2), squeeze=False, sharex=True)
    for ax, (name, r) in zip(axes[:, 0], regions.items()):
        ax.barh(0, r["frames"], color="0.85", height=0.8)
        for role, color in SPLIT_COLORS.items():
            for lo, hi in r.get(role, []):
                ax.barh(0, max(hi - lo, 0), left=lo, color=color, height=0.8, label=role)
        for c in r["cuts"]:
            ax.axvline(c + 0.5, color="k", lw=1)
        ax.set_yticks([0], [name])
        ax.set_xlim(0, max(v["frames"] for v in regions.values()))
    seen = {label: h for ax in axes[:, 0] for h, label in zip(*ax.get_legend_handles_labels())}
    axes[0, 0].legend(list(seen.values()), list(seen), ncol=len(seen), fontsize=8, loc="lower right",
                      bbox_to_anchor=(1, 1))
    axes[-1, 0].set_xlabel("source frame (grey: gap, black line: scene cut)")
    fig.subplots_adjust(bottom=0.3)  # room for the caption under the axis label
    return fig


def moving_token(test_set: ClipSet, patch: int) -> tuple[int, int, int]:
    """(clip, row, column): the forward test clip whose pixels change most, and its most moving patch."""
    motion = (test_set.clips[:, 1:].float() - test_set.clips[:, :-1].float()).abs().mean(dim=(1, 2, 3, 4))
    forward = torch.nonzero(test_set.labels == 0).flatten()
    k = int(forward[int(motion[forward].argmax())])
    clip = test_set.clips[k]
    side = clip.shape[-1] // patch
    per_patch = (clip[1:].float() - clip[:-1].float()).abs().mean(dim=(0, 1)).reshape(side, patch, side, patch)
    row, col = divmod(int(per_patch.mean(dim=(1, 3)).argmax()), side)
    return k, row, col


def _coverage_figure(T: TaskResults, k: int, row: int, col: int):
    clip, p, frames = T.test_set.clips[k], T.study.model.patch_size, T.study.data.num_frames
    kinds = [("2D: frame 1", 1, 1)] + [(f"t={t}: frames {t}-{2 * t - 1}", t, t) for t in (2, 4)
                                      if frames % t == 0 and frames >= 2 * t]
    fig, axes = plt.subplots(len(kinds), frames, figsize=(1.3 * frames, 1.45 * len(kinds)), squeeze=False)
    for r_i, (label, start, t) in enumerate(kinds):
        for f in range(frames):
            ax = axes[r_i, f]
            inside = start <= f < start + t
            ax.imshow(clip[f].permute(1, 2, 0).numpy(), alpha=1.0 if inside else 0.3, interpolation="nearest")
            if inside:
                ax.add_patch(plt.Rectangle((col * p - 0.5, row * p - 0.5), p, p, fill=False, ec="red", lw=2))
            ax.set_xticks([])
            ax.set_yticks([])
            if r_i == 0:
                ax.set_title(f"frame {f}", fontsize=8)
        axes[r_i, 0].set_ylabel(label, fontsize=8)
    return fig


def _summary_figure(summary: pd.DataFrame, runs: pd.DataFrame, device: str, chance: float):
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    names = summary["variant"].tolist()
    xs = range(len(names))
    axes[0].bar(xs, summary["test acc"], yerr=summary["ci"].fillna(0), capsize=4, color="tab:blue", alpha=0.7,
                label="test (mean ± 95 % CI)")
    for i, name in enumerate(names):
        seeds = runs[runs["variant"] == name]
        axes[0].plot([i] * len(seeds), seeds["test_acc"], "k.", ms=5)
    axes[0].plot(xs, summary["train acc"], "o", mfc="none", mec="tab:red", label="train (mean)")
    if "unseen acc" in summary:
        axes[0].errorbar(xs, summary["unseen acc"], yerr=summary["unseen ci"].fillna(0), fmt="D", color="tab:purple",
                         capsize=3, ms=5, label="unseen video (mean ± 95 % CI)")
    axes[0].axhline(chance, color="0.4", ls="--", lw=1, label=f"chance ({_pct(chance)})")
    axes[0].set_ylim(0, 1)
    axes[0].set_ylabel("accuracy (share of test clips)")
    width = 0.4
    axes[1].bar([x - width / 2 for x in xs], summary["train clips/s"], width, label="train")
    axes[1].bar([x + width / 2 for x in xs], summary["infer clips/s"], width, label="inference")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("clips / s (log scale)")
    axes[2].bar(xs, summary["train-step MiB"], color="tab:green", alpha=0.8)
    axes[2].set_ylabel("peak tensor MiB, one train step")
    for ax, title in zip(axes, ["accuracy (dots: seeds)", f"throughput on {device}", "memory"]):
        ax.set_xticks(list(xs), names, fontsize=7, rotation=35, ha="right", rotation_mode="anchor")
        ax.set_title(title, fontsize=9)
        legend_outside(ax)  # the memory panel has no labelled artist: no legend
    fig.tight_layout()
    return fig


def _pan_classes_figure(test_set: ClipSet, frames: int = 8):
    """One test clip per class at the fastest speed, as a frame strip; the arrow is the window's motion."""
    speed = test_set.origin[:, 4]
    fast = speed == speed.max()
    shown = min(frames, test_set.num_frames)
    fig, axes = plt.subplots(len(test_set.classes), shown, figsize=(1.15 * shown + 1.2, 1.15 * len(test_set.classes)),
                             squeeze=False)
    for row, name in enumerate(test_set.classes):
        k = int(torch.nonzero(fast & (test_set.labels == row)).flatten()[0])
        clip, side = test_set.clips[k], test_set.clips.shape[-1]
        for f in range(shown):
            ax = axes[row, f]
            ax.imshow(clip[f].permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"frame {f}", fontsize=8)
        dx, dy = PAN_MOVES[row]
        c, arm = side / 2, side * 0.3
        if (dx, dy) == (0, 0):
            axes[row, 0].plot([c], [c], "o", color="yellow", mec="k", ms=7)
        else:
            axes[row, 0].annotate("", xy=(c + arm * dx, c + arm * dy), xytext=(c - arm * dx, c - arm * dy),
                                  arrowprops=dict(arrowstyle="-|>", color="yellow", lw=2.5, mutation_scale=14))
        axes[row, 0].set_ylabel(f"{name}\n{int(speed[k])} px/frame", fontsize=8)
    fig.tight_layout()
    return fig


def _curves_figure(T: TaskResults):
    """Test accuracy after every epoch, against epochs and against training compute (3x forward FLOPs per clip)."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.8), sharey=True)
    runs, n_train = T.runs, len(T.sets["train"])
    base = runs[runs["slug"] == "2d"]
    for name, g in runs.groupby("variant", sort=False):
        curves = torch.tensor([list(c) for c in g["test_curve"]], dtype=torch.float64)  # (seeds, epochs)
        mean, lo, hi = curves.mean(0), curves.min(0).values, curves.max(0).values
        epochs = torch.arange(1, curves.shape[1] + 1, dtype=torch.float64)
        gflop = 3 * g["gflops"].iloc[0] * n_train  # one training epoch, all clips, forward + backward
        start_ep, start_fl = 0.0, 0.0
        if g["slug"].iloc[0].endswith(INFLATION_MODES) and not base.empty:  # it starts from the 2D model: count that training too
            start_ep, start_fl = float(base["epochs"].iloc[0]), 3 * base["gflops"].iloc[0] * n_train * base["epochs"].iloc[0]
        for ax, x in zip(axes, (start_ep + epochs, start_fl + gflop * epochs)):
            (line,) = ax.plot(x, mean, marker=".", label=name)
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15)
    for ax in axes:
        ax.axhline(T.study.chance, color="0.4", ls="--", lw=1, label=f"chance ({_pct(T.study.chance)})")
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("test accuracy (line: mean over seeds, band: min-max)")
    axes[0].set_xlabel("training epochs (inflated: its 2D model's epochs, then fine-tuning)")
    axes[1].set_xlabel("training compute, GFLOPs (3 x forward FLOPs per clip x clips seen)")
    axes[1].set_xscale("log")
    legend_outside(axes[1])
    fig.tight_layout()
    return fig


def _task_outputs(T: TaskResults) -> list[Output]:
    """The tables and figures every task has, under the task's names."""
    names, summary, task = NAMES[T.study.data.task], summarize(T.runs), T.study.data.task
    no_epochs = replace(T.provenance, epochs=None)  # the clips and their split do not depend on training
    regions = T.test_set.meta["regions"]
    held_out = [f"{split}: {s.describe()}" for split, s in T.sets.items()]
    cols = ["test acc", "ci"] + (["unseen acc", "unseen ci"] if "unseen acc" in summary else [])
    shown = summary.assign(**{c: [f"{a:.3f} ± {h:.3f}" if h == h else f"{a:.3f}" for a, h in zip(summary[c], summary[ci])]
                              for c, ci in zip(cols[::2], cols[1::2])}).drop(columns=cols[1::2])
    shown.insert(shown.columns.get_loc("test acc"), "chance", T.study.chance)
    return [
        Text(names["sets"], "\n".join(held_out)),
        Table(names["split"], _split_table(regions), f"{task[0].upper() + task[1:]} clip regions per video "
              "([start, end) frames)", None, provenance=no_epochs),
        Figure(names["split"], f"Which frames give the {task} task's clips", lambda: _split_figure(regions),
               provenance=no_epochs),
        Table(names["runs"], T.runs.drop(columns=["slug", "test_curve"]), f"Every (variant, seed) run on the {task}: "
              "accuracy, timing, memory (fit_clips_per_s and train_seconds: as the run trained, beside another job "
              "when the runs train as local jobs; infer/train clips/s and step MiB: timed per architecture in the "
              "notebook's process, alone)", None, provenance=T.provenance),
        Table(names["summary"], shown, f"2D patches vs tubelets on the {task} ({len(T.test_set)} test clips, device "
              f"{T.study.train.device})", 3, provenance=T.provenance),
        Figure(names["figure"], f"Accuracy, speed and memory of each patch embedding on the {task}",
               lambda: _summary_figure(summary, T.runs, T.study.train.device, T.study.chance), provenance=T.provenance),
        Figure(names["curves"], f"Test accuracy of each patch embedding on the {task} as training goes on",
               lambda: _curves_figure(T), provenance=T.provenance),
    ]


def outputs(results: TubeletResults) -> list[Output]:
    """Notebook 03's tables, figures and lines, by name."""
    R = results
    out: list[Output] = [Table("03_token_counts", R.scale, "Tokens, parameters, forward GFLOPs per clip of ViT-B/16 at "
                               "16 x 224 x 224 (meta device)", None, provenance=SCALE_PROVENANCE)]
    out.append(Table("03_claims", claims(R), "Seed 004's claims for tubelets, each tested on each task (outcome "
                     "from 95 % t-intervals over seeds; 'holds' only when they separate)", None))
    for task, T in R.tasks.items():
        out += _task_outputs(T)
        no_epochs = replace(T.provenance, epochs=None)
        if task == "arrow of time":
            k, row, col = moving_token(T.test_set, T.study.model.patch_size)
            origin, p = T.test_set.origin[k].tolist(), T.study.model.patch_size
            out.append(Figure("03_tubelet_coverage", f"One token of each embedding on test clip {k} "
                              f"({T.study.data.videos[origin[0]]}, source frames from {origin[1]} step "
                              f"{T.study.data.frame_step}, crop x={origin[2]}); red: the {p}x{p} patch",
                              lambda T=T, k=k, row=row, col=col: _coverage_figure(T, k, row, col), provenance=no_epochs))
        else:
            out.append(Figure("03_pan_classes", "One test clip of each camera-pan class at the fastest speed; arrow: "
                              "the window's motion (the content moves the other way), dot: static",
                              lambda T=T: _pan_classes_figure(T.test_set), provenance=no_epochs))
    return out
