"""Semantic search with the networks' CLIP heads (notebook 06): text -> patches, network vs teacher.

A text query goes through the teacher's text tower; patches are ranked by the cosine of that text
embedding with the networks' *predicted* CLIP embeddings (no decoded pixel is passed through CLIP), and
by the teacher's own targets. Spearman over all patches and recall@k say how faithfully each network
stores the teacher's embedding space, beside a baseline that knows only each grid position's mean
training target. With a random-init teacher no ranking means anything semantically: the study then
reports agreement only and shows no search results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import matplotlib.pyplot as plt
import pandas as pd
import torch

from hnerv_lib.data.teacher import encode_text, load_teacher
from hnerv_lib.eval.clip_metrics import position_means
from hnerv_lib.eval.search import ranking_agreement, recall_at_k, top_patches
from hnerv_lib.studies.outputs import Figure, Output, Provenance, Table, Text
from hnerv_lib.studies.plots import legend_outside
from hnerv_lib.train import trainer
from hnerv_lib.train.config import TrainConfig
from hnerv_lib.train.launch import train_first
from hnerv_lib.train.run import Run

PREFIX = "06"
VERDICT_WHAT = "Semantic-search verdict (generated from the agreement table)"
FAMILIES = ("full", "patch")
BASELINE = "position mean (baseline)"
FORK_BEST_SCORE = 0.33  # the research fork's best text-to-patch similarity with real weights (anchors.md)
SHOWN_QUERIES = 3  # queries whose top patches the results figure shows


@dataclass
class SearchResults:
    """Everything notebook 06 shows (tests build it from small tensors)."""

    queries: list[str]
    text: torch.Tensor  # (Q, D) the queries' text embeddings
    embeddings: dict[str, torch.Tensor]  # family -> (T, N, D) predicted patch embeddings
    targets: torch.Tensor  # (T, N, D) the teacher's patch embeddings
    train_frames: torch.Tensor  # indices of the training frames (the baseline's position means come from these)
    top_k: int
    random_teacher: bool
    provenance: Provenance
    crops: Optional[Any] = None  # (frame, patch) -> (3, h, w) image, for the results figure


def plan(params: Any) -> list[TrainConfig]:
    """The two networks of notebooks 01 and 02 (a finished run with the same configuration is reused)."""
    return [params.train_config(family) for family in FAMILIES]


def run(params: Any) -> SearchResults:
    """Train (or reuse) both networks, read their CLIP heads on every frame, encode the queries."""
    P, embeddings, setup, summary = params, {}, None, None
    train_first(plan(P), P.run_root, P.launcher(), P.cache_dir)  # as jobs, if asked
    for family, cfg in zip(FAMILIES, plan(P)):
        done = trainer.run(cfg, P.run_root, cache_dir=P.cache_dir)
        model, _, s = Run.of(cfg, P.run_root).load(P.cache_dir, P.device)  # caches + trained weights
        _, emb = s.task.reconstruct(model.eval(), torch.arange(s.task.num_frames))
        embeddings[family] = emb.cpu()
        setup, summary = setup or s, summary or done
    teacher = load_teacher(P.teacher_spec())
    windows, frames = P.geometry().windows(setup.task.frame_hw), setup.task.frames

    def crop(frame: int, patch: int) -> torch.Tensor:
        return windows[patch].slice(frames[frame].cpu())

    return SearchResults(queries=list(P.queries), text=encode_text(teacher, P.queries), embeddings=embeddings,
                         targets=setup.task.targets.cpu(), train_frames=setup.split.train, top_k=P.top_k,
                         random_teacher=teacher.identity["random_init"],
                         provenance=Provenance.of_summary(summary, epochs=P.full_epochs), crops=crop)


def table(results: SearchResults) -> pd.DataFrame:
    """Per query and ranking (each network, the position-mean baseline): agreement with the teacher's ranking."""
    R, k = results, results.top_k
    baseline = position_means(R.targets, R.train_frames).expand_as(R.targets)  # the same for every frame
    rows = []
    for query, vec in zip(R.queries, R.text):
        teacher_best = top_patches(vec, R.targets, 1).loc[0, "score"]
        for name, emb in [*R.embeddings.items(), (BASELINE, baseline)]:
            a = ranking_agreement(vec, emb, R.targets, k)
            rows.append({"query": query, "model": name, "spearman (all patches)": a["spearman"],
                         f"recall@{k} patches": a[f"recall@{k}"],
                         f"recall@{k} frames": recall_at_k(vec, emb, R.targets, k, "frame"),
                         "best score (network)": top_patches(vec, emb, 1).loc[0, "score"],
                         "best score (teacher)": teacher_best})
    return pd.DataFrame(rows)


def means(agreement: pd.DataFrame, k: int) -> pd.DataFrame:
    """The agreement table averaged over queries, per ranking."""
    return agreement.groupby("model")[["spearman (all patches)", f"recall@{k} patches", f"recall@{k} frames"]].mean()


def verdict(results: SearchResults) -> str:
    """Agreement only under a random teacher; best similarities (against the fork's) under real weights."""
    agreement = table(results)
    if results.random_teacher:
        spear = agreement.groupby("model")["spearman (all patches)"].mean()
        versus = "; ".join(f"{m} {v:.3f}" for m, v in spear.items())
        return ("The teacher is random-init, so the rankings carry no semantics. Mean Spearman agreement with the "
                f"teacher's ranking: {versus} (the baseline knows only each position's mean target).")
    return (f"Best text-to-patch similarity: {agreement['best score (teacher)'].max():.3f} with the teacher's targets, "
            f"{agreement['best score (network)'].max():.3f} with the networks' predictions (the fork reported about "
            f"{FORK_BEST_SCORE}).")


def _agreement_figure(agreement: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(7, 3.2))
    agreement.pivot_table(index="query", columns="model", values="spearman (all patches)").plot.bar(ax=ax, rot=0)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_ylabel("Spearman with the teacher's ranking")
    legend_outside(ax, title="ranking")
    ax.set_title("Ranking agreement per query (1 = the teacher's ranking)", fontsize=9)
    fig.tight_layout()
    return fig


def _results_figure(R: SearchResults):
    shown, k = R.queries[:SHOWN_QUERIES], R.top_k
    rankings = [("teacher", R.targets), *R.embeddings.items()]
    fig, axes = plt.subplots(len(shown) * len(rankings), k, figsize=(1.8 * k, 1.9 * len(rankings) * len(shown)),
                             squeeze=False)
    for qi, query in enumerate(shown):
        for ri, (who, emb) in enumerate(rankings):
            ax_row = axes[qi * len(rankings) + ri]
            for ax, (_, hit) in zip(ax_row, top_patches(R.text[qi], emb, k).iterrows()):
                ax.imshow(R.crops(int(hit.frame), int(hit.patch)).permute(1, 2, 0).numpy())
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(f"f{int(hit.frame)} p{int(hit.patch)} {hit.score:.3f}", fontsize=7)
            ax_row[0].set_ylabel(f"'{query}'\n{who}", fontsize=8)
    return fig


def outputs(results: SearchResults) -> list[Output]:
    """Notebook 06's tables, figures and lines, by name."""
    R, agreement = results, table(results)
    found = [Text("06_search_results", "random-init teacher: no search results are shown, only the agreement above")
             ] if R.random_teacher or R.crops is None else [
        Figure("06_search_results", "Top patches per query: teacher targets vs each network's predictions",
               lambda: _results_figure(R))]
    return [
        Text("06_teacher", f"teacher: {R.provenance.teacher}" + (
            "\nRANDOM-INIT TEACHER: rankings below carry no semantics; only network-vs-teacher agreement is meaningful."
            if R.random_teacher else "")),
        Table("06_search_agreement", agreement, "Text-to-patch search: agreement of each ranking with the teacher's "
              f"(Spearman over all patches, recall@{R.top_k}), beside the per-position-mean baseline"),
        Figure("06_ranking_agreement", "Ranking agreement with the teacher per query: networks vs the "
               "per-position-mean baseline", lambda: _agreement_figure(agreement)),
        Table("06_agreement_means", means(agreement, R.top_k), "", None, save=False),
        *found,
    ]
