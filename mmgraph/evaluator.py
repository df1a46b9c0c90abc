"""An OGB-style evaluator: the task, not the model, decides the metrics.

Example::

    ev = Evaluator("node_classification")
    ev.eval({"y_true": y[test], "y_pred": logits[test]})  # {"accuracy": ..., "macro_f1": ...}

A task's metrics are a :class:`MetricSpec`: the metric names in order, the primary metric
(model selection), which metrics are better when lower, a description of the input and the
compute function. The specs of the built-in tasks are in :data:`SPECS` (``Evaluator(name)``);
a task module declares its own spec next to its class and passes it: ``Evaluator(spec)``. The
trainer and the report read each metric's direction from the spec, never from a list of names.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import Tensor

from mmgraph import metrics as M
from mmgraph.errors import ConfigError

def _get(input_dict: Mapping, key: str, task: str) -> Tensor:
    if key not in input_dict:
        raise ValueError(f"{task} input is missing key {key!r}; got keys {sorted(input_dict)}")
    value = input_dict[key]
    try:
        x = value if isinstance(value, Tensor) else torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{key} must be a tensor or numeric array ({err})") from None
    if x.numel() == 0:
        raise ValueError(f"{key} is empty")
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"{key} must be numeric; got dtype {x.dtype}")
    return x


def _check_scores(x: Tensor, key: str) -> None:
    if x.is_floating_point() and bool(torch.isnan(x).any()):
        raise ValueError(f"{key} contains NaN scores")


def _check_labels(x: Tensor, key: str) -> Tensor:
    if x.dim() == 2 and x.size(1) == 1:
        x = x.view(-1)
    if x.dim() != 1:
        raise ValueError(f"{key} must be labels of shape [N]; got {tuple(x.shape)}")
    if x.is_floating_point():
        _check_scores(x, key)
        if not torch.equal(x, x.round()):
            raise ValueError(f"{key} must hold integer class labels; got non-integer values")
    if int(x.min()) < 0:
        raise ValueError(f"{key} has negative labels; drop unlabelled nodes (y < 0) first")
    return x.long()


def _node_classification(inp: Mapping, names: tuple[str, ...]) -> dict[str, float]:
    task = "node_classification"
    y_true = _check_labels(_get(inp, "y_true", task), "y_true")
    y_pred = _get(inp, "y_pred", task)
    if y_pred.dim() == 2 and y_pred.size(1) > 1:
        _check_scores(y_pred, "y_pred")
        if y_pred.size(0) != y_true.numel():
            raise ValueError(f"y_pred has {y_pred.size(0)} rows but y_true has "
                             f"{y_true.numel()} labels")
        if int(y_true.max()) >= y_pred.size(1):
            raise ValueError(f"y_true label {int(y_true.max())} is out of range for "
                             f"{y_pred.size(1)} score columns")
        num_classes = y_pred.size(1)
        y_pred = y_pred.argmax(dim=1)
    else:
        y_pred = _check_labels(y_pred, "y_pred")
        num_classes = None
        if y_pred.numel() != y_true.numel():
            raise ValueError(f"y_pred has {y_pred.numel()} labels but y_true has {y_true.numel()}")
    compute: dict[str, Callable[[], float]] = {
        "accuracy": lambda: M.accuracy(y_true, y_pred),
        "macro_f1": lambda: M.macro_f1(y_true, y_pred, num_classes=num_classes),
    }
    return {name: compute[name]() for name in names}


def _pair_ranks(inp: Mapping, task: str, ties: str = "mean") -> Tensor:
    pos = _get(inp, "y_pred_pos", task)
    neg = _get(inp, "y_pred_neg", task)
    if pos.dim() == 2 and pos.size(1) == 1:
        pos = pos.view(-1)
    if pos.dim() != 1:
        raise ValueError(f"y_pred_pos must have shape [P]; got {tuple(pos.shape)}")
    if neg.dim() != 2 or neg.size(0) != pos.numel():
        raise ValueError(f"y_pred_neg must have shape [P={pos.numel()}, K]; got {tuple(neg.shape)}")
    _check_scores(pos, "y_pred_pos")
    _check_scores(neg, "y_pred_neg")
    return M.ranks(pos, neg, ties=ties)


def _link_prediction(inp: Mapping, names: tuple[str, ...]) -> dict[str, float]:
    return M.summarize_ranks(_pair_ranks(inp, "link_prediction"), names)


def _entity_ranking(inp: Mapping, names: tuple[str, ...]) -> dict[str, float]:
    task = "entity_ranking"
    if "y_pred_pos" in inp or "y_pred_neg" in inp:
        return M.summarize_ranks(_pair_ranks(inp, task, ties="pessimistic"), names)
    target = _check_labels(_get(inp, "y_true", task), "y_true")
    scores = _get(inp, "y_pred", task)
    if scores.dim() != 2 or scores.size(0) != target.numel():
        raise ValueError(f"y_pred must be scores of shape [P={target.numel()}, E]; "
                         f"got {tuple(scores.shape)}")
    if int(target.max()) >= scores.size(1):
        raise ValueError(f"y_true entity {int(target.max())} is out of range for "
                         f"{scores.size(1)} candidates")
    _check_scores(scores, "y_pred")
    return M.summarize_ranks(M.target_ranks(scores, target, ties="pessimistic"), names)


@dataclass(frozen=True)
class MetricSpec:
    """What a task measures.

    Attributes:
        task: the task's name (``node_classification``, ...).
        metrics: metric names, in the order tables show them.
        primary: the metric that selects epochs, checkpoints and sweep trials (validation).
        expected_input: the dict :meth:`Evaluator.eval` accepts, in words.
        compute: ``compute(input_dict, metrics) -> {metric: value}``; raises ``ValueError`` on
            malformed input.
        lower_is_better: the metrics for which a smaller value is better (ranks, error rates).
    """

    task: str
    metrics: tuple[str, ...]
    primary: str
    expected_input: str
    compute: Callable[[Mapping, tuple[str, ...]], dict[str, float]]
    lower_is_better: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.primary not in self.metrics:
            raise ValueError(f"primary metric {self.primary!r} is not among {self.metrics}")
        unknown = set(self.lower_is_better) - set(self.metrics)
        if unknown:
            raise ValueError(f"lower_is_better names unknown metrics {sorted(unknown)}")

    def higher_is_better(self, metric: str) -> bool:
        return metric not in self.lower_is_better

    def better(self, metric: str, new: float, old: float) -> bool:
        """Whether ``new`` improves on ``old`` (NaN never does)."""
        if new != new:  # NaN
            return False
        if old != old:
            return True
        return new < old if metric in self.lower_is_better else new > old

    def worst(self, metric: str) -> float:
        """The value every real value improves on."""
        return float("inf") if metric in self.lower_is_better else float("-inf")

    def directions(self) -> dict[str, bool]:
        """``{metric: higher_is_better}`` for records and reports."""
        return {m: self.higher_is_better(m) for m in self.metrics}


SPECS: dict[str, MetricSpec] = {
    "node_classification": MetricSpec(
        task="node_classification",
        metrics=("accuracy", "macro_f1"),
        primary="accuracy",
        expected_input=(
            "{'y_true': labels [N] (or [N, 1]), non-negative integers, "
            "'y_pred': predicted labels [N] or class scores [N, C]}; "
            "torch tensors or numpy arrays"),
        compute=_node_classification),
    "link_prediction": MetricSpec(
        task="link_prediction",
        metrics=("mrr", "hits@1", "hits@3", "hits@10"),
        primary="mrr",
        expected_input=(
            "{'y_pred_pos': scores of the positive edges [P], "
            "'y_pred_neg': scores of each positive's negatives [P, K]}; "
            "torch tensors or numpy arrays; ties rank at the mean of optimistic and pessimistic"),
        compute=_link_prediction),
    "entity_ranking": MetricSpec(
        task="entity_ranking",
        metrics=("mr", "mrr", "hits@1", "hits@3", "hits@5", "hits@10", "hits@20"),
        primary="mrr",
        expected_input=(
            "{'y_true': correct entity id per query [P], "
            "'y_pred': scores over all entities [P, E]} "
            "or {'y_pred_pos': [P], 'y_pred_neg': [P, K]}; torch tensors or numpy arrays; "
            "a tie never favours the gold entity: it ranks below every candidate it ties with"),
        compute=_entity_ranking,
        lower_is_better=frozenset({"mr"})),
}

#: The metrics each built-in task reports, in order.
TASK_METRICS: dict[str, tuple[str, ...]] = {name: spec.metrics for name, spec in SPECS.items()}


class Evaluator:
    """Validates predictions for a task and computes that task's metrics.

    Args:
        task: the name of a built-in task (:data:`SPECS`: ``"node_classification"``,
            ``"link_prediction"``, ``"entity_ranking"``) or a task's own :class:`MetricSpec`.

    Attributes:
        task: The task name.
        spec: Its :class:`MetricSpec` (directions: :meth:`MetricSpec.higher_is_better`).
        metrics: Names of the metrics :meth:`eval` returns, in order.
        primary: The metric used for model selection.
        expected_input: A description of the dict :meth:`eval` accepts.
    """

    def __init__(self, task: str | MetricSpec):
        if isinstance(task, MetricSpec):
            spec = task
        elif task in SPECS:
            spec = SPECS[task]
        else:
            raise ConfigError(f"unknown evaluation task {task!r}; valid: {', '.join(SPECS)}")
        self.spec = spec
        self.task = spec.task
        self.metrics: tuple[str, ...] = spec.metrics
        self.primary: str = spec.primary
        self.expected_input: str = spec.expected_input
        self._compute = spec.compute

    def eval(self, input_dict: Mapping[str, Any]) -> dict[str, float]:
        """Compute every metric of the task.

        Args:
            input_dict: Predictions and targets as described by :attr:`expected_input`.

        Returns:
            ``{metric: value}`` for each name in :attr:`metrics`.

        Raises:
            ValueError: The input is malformed (one-line message says how).
        """
        if not isinstance(input_dict, Mapping):
            raise ValueError(f"Evaluator.eval expects a dict; got {type(input_dict).__name__}")
        with torch.no_grad():
            return self._compute(input_dict, self.metrics)

    def __repr__(self) -> str:
        return f"Evaluator(task={self.task!r}, metrics={self.metrics})"
