import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from mmgraph.metrics import (accuracy, hits_at_k, macro_f1, mean_rank, mrr, ranks,
                             summarize_ranks, target_ranks)


def random_labels(seed, n=200, num_classes=6):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, num_classes, n)
    y_pred = rng.integers(0, num_classes, n)
    # make some classes absent from one side: class 0 never predicted, class 5 never true
    y_pred[y_pred == 0] = 1
    y_true[y_true == 5] = 4
    if seed % 2:
        y_pred[:20] = y_true[:20]
    return y_true, y_pred


@pytest.mark.parametrize("seed", range(6))
def test_classification_matches_sklearn(seed):
    y_true, y_pred = random_labels(seed)
    # bit-for-bit equal, not just close
    got = accuracy(torch.from_numpy(y_true), torch.from_numpy(y_pred))
    assert got == accuracy_score(y_true, y_pred)
    expected = f1_score(y_true, y_pred, average="macro", zero_division=0)
    assert macro_f1(torch.from_numpy(y_true), torch.from_numpy(y_pred)) == expected
    assert macro_f1(y_true, y_pred, num_classes=10) == expected


@pytest.mark.parametrize("seed", range(4))
def test_macro_f1_small_and_sparse_labels(seed):
    rng = np.random.default_rng(100 + seed)
    y_true = rng.choice([0, 3, 7], 9)
    y_pred = rng.choice([1, 3, 7, 9], 9)
    assert macro_f1(y_true, y_pred) == f1_score(y_true, y_pred, average="macro", zero_division=0)


@pytest.mark.parametrize("seed", range(3))
def test_macro_f1_many_classes_exact(seed):
    rng = np.random.default_rng(200 + seed)
    y_true, y_pred = rng.integers(0, 150, 2000), rng.integers(0, 150, 2000)
    assert macro_f1(y_true, y_pred) == f1_score(y_true, y_pred, average="macro", zero_division=0)


def test_scores_input_is_argmaxed():
    scores = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    y_true = torch.tensor([1, 1, 1])
    assert accuracy(y_true, scores) == pytest.approx(2 / 3)
    # classes present: {0, 1}; F1(1) = 2*2/(3+2), F1(0) = 0
    assert macro_f1(y_true, scores) == pytest.approx(0.4)


def test_classification_input_errors():
    with pytest.raises(ValueError, match="negative"):
        accuracy(torch.tensor([0, -1]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="entries"):
        accuracy(torch.tensor([0, 1]), torch.tensor([0]))
    with pytest.raises(ValueError, match="empty"):
        macro_f1(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long))
    with pytest.raises(ValueError, match="out of range"):
        macro_f1(torch.tensor([0, 4]), torch.tensor([0, 1]), num_classes=3)
    with pytest.raises(ValueError, match="integer"):
        accuracy(torch.tensor([0.5, 1.0]), torch.tensor([0, 1]))


def brute_force_ranks(pos, neg):
    """Rank by enumerating the orderings: mean of the best and worst position among ties."""
    out = []
    for p, row in zip(pos, neg):
        better = sum(1 for s in row if s > p)
        tied = sum(1 for s in row if s == p)
        best, worst = better + 1, better + tied + 1
        out.append((best + worst) / 2)
    return np.array(out)


@pytest.mark.parametrize("seed", range(5))
def test_ranking_matches_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    pos = rng.integers(0, 5, 40).astype(np.float32)  # few distinct values -> many ties
    neg = rng.integers(0, 5, (40, 12)).astype(np.float32)
    ref = brute_force_ranks(pos, neg)
    got = ranks(torch.from_numpy(pos), torch.from_numpy(neg)).numpy()
    np.testing.assert_allclose(got, ref)
    assert mrr(pos, neg) == pytest.approx(np.mean(1 / ref))
    assert mean_rank(pos, neg) == pytest.approx(np.mean(ref))
    for k in (1, 3, 10):
        assert hits_at_k(pos, neg, k) == pytest.approx(np.mean(ref <= k))


def test_rank_edge_cases():
    pos = torch.tensor([1.0, 1.0, 5.0])
    neg = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [9.0, 9.0, 9.0]])
    # all tied: middle of 1..4; strictly best: 1; strictly worst: 4
    assert ranks(pos, neg).tolist() == [2.5, 1.0, 4.0]
    assert hits_at_k(pos, neg, 1) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match=r"\[P, K\]"):
        mrr(pos, neg[:2])
    with pytest.raises(ValueError, match="k must be"):
        hits_at_k(pos, neg, 0)


def test_target_ranks_equals_pairwise_ranks():
    rng = np.random.default_rng(7)
    scores = torch.from_numpy(rng.integers(0, 4, (30, 9)).astype(np.float64))
    target = torch.from_numpy(rng.integers(0, 9, 30))
    pos = scores[torch.arange(30), target]
    keep = torch.ones_like(scores, dtype=torch.bool)
    keep[torch.arange(30), target] = False
    neg = scores[keep].view(30, 8)
    torch.testing.assert_close(target_ranks(scores, target), ranks(pos, neg))
    out = summarize_ranks(target_ranks(scores, target), ["mrr", "mr", "hits@5"])
    assert set(out) == {"mrr", "mr", "hits@5"} and 0 < out["mrr"] <= 1
    with pytest.raises(ValueError, match="unknown ranking metric"):
        summarize_ranks(ranks(pos, neg), ["auc"])


def test_mean_std_is_numpys_with_one_degree_of_freedom_and_skips_nan():
    import math

    from mmgraph.metrics import mean_std

    values = [0.81, 0.79, float("nan"), 0.84, 0.8]
    clean = np.array([v for v in values if not math.isnan(v)])
    mu, sd = mean_std(iter(values))
    assert mu == pytest.approx(clean.mean()) and sd == pytest.approx(clean.std(ddof=1))
    assert mean_std([0.5])[0] == 0.5 and math.isnan(mean_std([0.5])[1])
    assert all(math.isnan(x) for x in mean_std([float("nan")]))
