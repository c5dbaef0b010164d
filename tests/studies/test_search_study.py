"""Notebook 06's study on constructed embeddings: agreement table, baseline, verdict under either teacher."""

import matplotlib
import pytest
import torch

from hnerv_lib.studies import search as study
from hnerv_lib.studies.outputs import Figure, Provenance, Text, by_name

matplotlib.use("Agg")


def _results(random_teacher=True):
    g = torch.Generator().manual_seed(0)
    targets = torch.randn(6, 4, 8, generator=g)
    text = torch.randn(2, 8, generator=g)
    embeddings = {"full": targets.clone(), "patch": -targets}  # a perfect copy, and the reversed ranking
    return study.SearchResults(queries=["a rabbit", "grass"], text=text, embeddings=embeddings, targets=targets,
                               train_frames=[0, 2, 4], top_k=3, random_teacher=random_teacher,
                               provenance=Provenance("v", "ViT-B-32"), crops=lambda f, p: torch.rand(3, 4, 4))


def test_agreement_is_perfect_for_a_copy_reversed_for_a_negation_and_has_a_baseline():
    t = study.table(_results())
    by = t.groupby("model")["spearman (all patches)"].mean()
    assert by["full"] == pytest.approx(1.0) and by["patch"] == pytest.approx(-1.0)
    assert study.BASELINE in set(t["model"]) and len(t) == 2 * 3
    assert (t.loc[t["model"] == "full", "recall@3 patches"] == 1.0).all()
    assert (t.loc[t["model"] == "patch", "recall@3 patches"] == 0.0).all()


def test_verdict_claims_no_semantics_under_a_random_teacher():
    text = study.verdict(_results(random_teacher=True))
    assert text.startswith("The teacher is random-init") and "full 1.000" in text and "patch -1.000" in text
    real = study.verdict(_results(random_teacher=False))
    assert real.startswith("Best text-to-patch similarity") and "about 0.33" in real


def test_search_results_are_shown_only_with_a_real_teacher():
    random = by_name(study.outputs(_results(random_teacher=True)))["06_search_results"]
    assert isinstance(random[0], Text) and "no search results" in random[0].text
    real = by_name(study.outputs(_results(random_teacher=False)))["06_search_results"][0]
    assert isinstance(real, Figure)
    fig = real.draw()
    assert len(fig.axes) == 2 * 3 * 3  # two queries x (teacher, full, patch) rows x top 3
