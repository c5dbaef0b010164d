import pytest
import torch
import torch.nn.functional as F

from hnerv_lib.eval.search import patch_scores, recall_at_k, top_frames, top_patches


def _emb(seed=0):
    return F.normalize(torch.randn(6, 4, 16, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_top_patch_is_the_query_itself():
    emb = _emb()
    best = top_patches(emb[3, 2], emb, k=3)
    assert (best.loc[0, "frame"], best.loc[0, "patch"]) == (3, 2) and best.loc[0, "score"] == pytest.approx(1.0)
    assert best["score"].is_monotonic_decreasing and list(best["rank"]) == [1, 2, 3]
    assert top_frames(emb[5, 0], emb, k=2).loc[0, "frame"] == 5


def test_recall_of_identical_and_unrelated_rankings():
    emb, q = _emb(), _emb(1)[0, 0]
    assert recall_at_k(q, emb, emb, k=5) == 1.0 and recall_at_k(q, emb, emb, k=3, unit="frame") == 1.0
    flipped = -emb  # exactly reversed ranking
    assert recall_at_k(q, flipped, emb, k=5) == 0.0


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"\(D,\) query and \(T, N, D\)"):
        patch_scores(torch.zeros(8), _emb())
    with pytest.raises(ValueError, match="unit must be"):
        recall_at_k(_emb()[0, 0], _emb(), _emb(), unit="pixel")


def test_spearman_and_ranking_agreement():
    import torch

    from hnerv_lib.eval.search import ranking_agreement, spearman

    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert spearman(x, x * 10) == pytest.approx(1.0) and spearman(x, -x) == pytest.approx(-1.0)
    assert spearman(torch.tensor([1.0, 1.0, 2.0, 2.0]), x) == pytest.approx(0.894427, abs=1e-5)  # ties: average ranks
    assert spearman(torch.ones(4), x) != spearman(torch.ones(4), x)  # NaN: a constant ranking says nothing
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(6, 4, 16, generator=g)
    query = torch.randn(16, generator=g)
    same = ranking_agreement(query, teacher, teacher, k=3)
    assert same == {"spearman": pytest.approx(1.0), "recall@3": 1.0}
    other = ranking_agreement(query, torch.randn(6, 4, 16, generator=g), teacher, k=3)
    assert abs(other["spearman"]) < 0.5
