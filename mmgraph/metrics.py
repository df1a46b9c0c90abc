r"""Functional metrics on torch tensors (no sklearn at run time).

Classification metrics take integer labels ``[N]`` (or scores ``[N, C]`` for ``y_pred``,
reduced by ``argmax``); labels must be non-negative, so drop unlabelled nodes (``y = -1``)
first. Ranking metrics score each positive against its own negatives.

**Rank with ties.** For a positive with score :math:`s` and negatives :math:`n_1..n_K`,

.. math::
    \mathrm{rank} = 1 + \tfrac12\big(|\{j : n_j > s\}| + |\{j : n_j \ge s\}|\big),

the mean of the optimistic and the pessimistic rank (as in OGB's ``ogbl-citation2``/
``ogbl-wikikg2`` evaluators). A positive tied with all its negatives thus ranks in the
middle, never first, so a constant scorer earns no credit. Ranks can be half-integers;
Hits@k counts ``rank <= k``. ``ties="pessimistic"`` ranks a positive below every candidate it
ties with (entity linking: a tie never favours the gold entity). NaN scores compare false and are not checked here (the
:class:`~mmgraph.evaluator.Evaluator` rejects them).

All metrics return Python floats.
"""
from __future__ import annotations

import math
import statistics
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor


def _tensor(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else torch.as_tensor(x)


def _labels(x: Any, name: str) -> Tensor:
    x = _tensor(x)
    if x.dim() == 2 and x.size(1) == 1:
        x = x.view(-1)
    if x.dim() != 1:
        raise ValueError(f"{name} must be labels [N]; got shape {tuple(x.shape)}")
    if x.is_floating_point():
        if not torch.equal(x, x.round()):
            raise ValueError(f"{name} must hold integer class labels; got non-integer values")
        x = x.long()
    elif x.dtype == torch.bool:
        x = x.long()
    if x.numel() and int(x.min()) < 0:
        raise ValueError(f"{name} has negative labels; drop unlabelled nodes (y < 0) first")
    return x.long()


def _label_pair(y_true: Any, y_pred: Any) -> tuple[Tensor, Tensor]:
    y_pred = _tensor(y_pred)
    if y_pred.dim() == 2 and y_pred.size(1) > 1:
        y_pred = y_pred.argmax(dim=1)
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if y_true.numel() != y_pred.numel():
        raise ValueError(f"y_true has {y_true.numel()} entries but y_pred has {y_pred.numel()}")
    if y_true.numel() == 0:
        raise ValueError("cannot compute a metric on empty input")
    return y_true, y_pred.to(y_true.device)


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of correct predictions.

    Args:
        y_true: ``[N]`` integer labels.
        y_pred: ``[N]`` predicted labels or ``[N, C]`` scores.
    """
    y_true, y_pred = _label_pair(y_true, y_pred)
    return float((y_true == y_pred).double().mean())


def macro_f1(y_true: Any, y_pred: Any, num_classes: int | None = None) -> float:
    """Unweighted mean of per-class F1 over the classes present in ``y_true`` or ``y_pred``.

    Equals ``sklearn.metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)``:
    a class that appears in neither is not averaged; a class that appears in only one of
    them has F1 = 0. Per class, ``F1 = 2 TP / (n_true + n_pred)``.

    Args:
        y_true: ``[N]`` integer labels.
        y_pred: ``[N]`` predicted labels or ``[N, C]`` scores.
        num_classes: Number of classes, if known (labels must be below it); it only sizes
            the counts and does not change which classes are averaged.
    """
    pred_arg = _tensor(y_pred)
    if num_classes is None and pred_arg.dim() == 2 and pred_arg.size(1) > 1:
        num_classes = pred_arg.size(1)
    y_true, y_pred = _label_pair(y_true, y_pred)
    top = int(torch.maximum(y_true.max(), y_pred.max()))
    n = int(num_classes) if num_classes is not None else top + 1
    if top >= n:
        raise ValueError(f"label {top} is out of range for num_classes={n}")
    true_sum = torch.bincount(y_true, minlength=n)
    pred_sum = torch.bincount(y_pred, minlength=n)
    tp = torch.bincount(y_true[y_true == y_pred], minlength=n)
    support = true_sum + pred_sum
    present = support > 0
    f1 = 2.0 * tp[present].double() / support[present].double()
    # numpy's pairwise summation over the few per-class values gives sklearn's exact float
    return float(np.mean(f1.cpu().numpy()))


def _scores(pos: Any, neg: Any) -> tuple[Tensor, Tensor]:
    pos, neg = _tensor(pos), _tensor(neg)
    if pos.dim() == 2 and pos.size(1) == 1:
        pos = pos.view(-1)
    if pos.dim() != 1 or neg.dim() != 2 or neg.size(0) != pos.size(0):
        raise ValueError(f"expected pos_scores [P] and neg_scores [P, K]; got "
                         f"{tuple(pos.shape)} and {tuple(neg.shape)}")
    if pos.numel() == 0 or neg.size(1) == 0:
        raise ValueError("cannot rank empty input (no positives or no negatives)")
    return pos, neg.to(pos.device)


def _check_ties(ties: str) -> str:
    if ties not in ("mean", "pessimistic"):
        raise ValueError(f"ties must be 'mean' or 'pessimistic'; got {ties!r}")
    return ties


def ranks(pos_scores: Any, neg_scores: Any, ties: str = "mean") -> Tensor:
    """The rank of each positive among its own negatives, ties averaged (see module doc).

    Args:
        pos_scores: ``[P]`` scores of the positives.
        neg_scores: ``[P, K]`` scores of each positive's negatives.
        ties: ``"mean"`` (of the optimistic and pessimistic rank) or ``"pessimistic"``.

    Returns:
        ``[P]`` float64 ranks, 1 = best.
    """
    _check_ties(ties)
    pos, neg = _scores(pos_scores, neg_scores)
    pos = pos.view(-1, 1)
    pessimistic = (neg >= pos).sum(dim=1)
    if ties == "pessimistic":
        return pessimistic.double() + 1.0
    optimistic = (neg > pos).sum(dim=1)
    return 0.5 * (optimistic + pessimistic).double() + 1.0


def target_ranks(scores: Any, target: Any, ties: str = "mean") -> Tensor:
    """The rank of each row's target column among all other columns, ties averaged (or
    ``ties="pessimistic"``: below every column it ties with).

    Equivalent to :func:`ranks` with the target's score as the positive and every other
    column as a negative, without building the negatives (for ranking against a whole KB).

    Args:
        scores: ``[P, E]`` scores of every candidate.
        target: ``[P]`` index of the correct candidate in each row.
        ties: ``"mean"`` or ``"pessimistic"``.

    Returns:
        ``[P]`` float64 ranks, 1 = best.
    """
    _check_ties(ties)
    scores, target = _tensor(scores), _labels(target, "target")
    if scores.dim() != 2 or scores.size(0) != target.numel():
        raise ValueError(f"expected scores [P, E] and target [P]; got "
                         f"{tuple(scores.shape)} and {tuple(target.shape)}")
    if target.numel() == 0:
        raise ValueError("cannot rank empty input")
    if int(target.max()) >= scores.size(1):
        raise ValueError(f"target {int(target.max())} is out of range for "
                         f"{scores.size(1)} candidates")
    pos = scores.gather(1, target.to(scores.device).view(-1, 1))
    pessimistic = (scores >= pos).sum(dim=1) - 1  # the target ties with itself
    if ties == "pessimistic":
        return pessimistic.double() + 1.0
    optimistic = (scores > pos).sum(dim=1)
    return 0.5 * (optimistic + pessimistic).double() + 1.0


def mean_std(values: Iterable[float]) -> tuple[float, float]:
    """Mean and unbiased (n-1) standard deviation of the values that are not NaN; the std is NaN
    for a single value, both are NaN for none."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def display_scale(metric: str) -> float:
    """How tables show a metric: mean ranks (``mr``, ``mr_<part>``) as they are, every other
    metric (fractions in 0..1) in percent."""
    return 1.0 if metric == "mr" or metric.startswith("mr_") else 100.0


def summarize_ranks(rank: Tensor, names: Sequence[str]) -> dict[str, float]:
    """Ranking metrics from ranks: ``"mrr"``, ``"mr"`` (mean rank) and ``"hits@K"``.

    Args:
        rank: ``[P]`` ranks from :func:`ranks` or :func:`target_ranks`.
        names: Metric names to compute.
    """
    if rank.numel() == 0:
        raise ValueError("cannot summarize empty ranks")
    out = {}
    for name in names:
        if name == "mrr":
            out[name] = float((1.0 / rank).mean())
        elif name == "mr":
            out[name] = float(rank.mean())
        elif name.startswith("hits@") and name[5:].isdigit():
            out[name] = float((rank <= int(name[5:])).double().mean())
        else:
            raise ValueError(f"unknown ranking metric {name!r}; valid: mrr, mr, hits@K")
    return out


def mrr(pos_scores: Any, neg_scores: Any) -> float:
    """Mean reciprocal rank of the positives (``[P]``) among their negatives (``[P, K]``)."""
    return summarize_ranks(ranks(pos_scores, neg_scores), ["mrr"])["mrr"]


def hits_at_k(pos_scores: Any, neg_scores: Any, k: int) -> float:
    """Fraction of positives (``[P]``) ranked ``<= k`` among their negatives (``[P, K]``)."""
    if int(k) < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    return summarize_ranks(ranks(pos_scores, neg_scores), [f"hits@{int(k)}"])[f"hits@{int(k)}"]


def mean_rank(pos_scores: Any, neg_scores: Any) -> float:
    """Mean rank of the positives (``[P]``) among their negatives (``[P, K]``); lower is better."""
    return summarize_ranks(ranks(pos_scores, neg_scores), ["mr"])["mr"]
