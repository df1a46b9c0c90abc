import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from mmgraph.errors import ConfigError
from mmgraph.evaluator import TASK_METRICS, Evaluator


def test_tasks_metrics_and_primary():
    tasks = ("node_classification", "link_prediction", "entity_ranking")
    nc, lp, er = (Evaluator(t) for t in tasks)
    assert nc.metrics == ("accuracy", "macro_f1") and nc.primary == "accuracy"
    assert lp.metrics == ("mrr", "hits@1", "hits@3", "hits@10") and lp.primary == "mrr"
    assert er.metrics == ("mr", "mrr", "hits@1", "hits@3", "hits@5", "hits@10", "hits@20")
    for ev in (nc, lp, er):
        assert ev.primary in ev.metrics and ev.metrics == TASK_METRICS[ev.task]
        assert "y_" in ev.expected_input


def test_unknown_task_lists_valid_names():
    with pytest.raises(ConfigError, match="node_classification, link_prediction"):
        Evaluator("graph_regression")


@pytest.mark.parametrize("as_numpy", [False, True])
def test_node_classification_labels_and_scores(as_numpy):
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, 100)
    scores = rng.normal(size=(100, 5)).astype(np.float32)
    y_pred = scores.argmax(1)
    ref = {"accuracy": accuracy_score(y_true, y_pred),
           "macro_f1": f1_score(y_true, y_pred, average="macro", zero_division=0)}
    conv = (lambda a: a) if as_numpy else torch.from_numpy
    ev = Evaluator("node_classification")
    for pred in (y_pred, scores):
        out = ev.eval({"y_true": conv(y_true), "y_pred": conv(pred)})
        assert list(out) == ["accuracy", "macro_f1"]
        assert all(isinstance(v, float) for v in out.values())
        assert out == pytest.approx(ref, abs=1e-12)
    # OGB's [N, 1] label layout is accepted too
    out = ev.eval({"y_true": conv(y_true.reshape(-1, 1)), "y_pred": conv(y_pred.reshape(-1, 1))})
    assert out == pytest.approx(ref, abs=1e-12)


def test_link_prediction_values():
    ev = Evaluator("link_prediction")
    pos = np.array([3.0, 0.5, 2.0])
    neg = np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 2.0]])  # ranks 1, 3, 2 (tied)
    out = ev.eval({"y_pred_pos": pos, "y_pred_neg": torch.from_numpy(neg)})
    assert out["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 2) / 3)
    assert out["hits@1"] == pytest.approx(1 / 3)
    assert out["hits@3"] == out["hits@10"] == 1.0


def test_entity_ranking_both_formats_agree():
    rng = np.random.default_rng(1)
    scores = torch.from_numpy(rng.normal(size=(20, 30)))
    target = torch.from_numpy(rng.integers(0, 30, 20))
    ev = Evaluator("entity_ranking")
    full = ev.eval({"y_true": target, "y_pred": scores})
    pos = scores[torch.arange(20), target]
    keep = torch.ones_like(scores, dtype=torch.bool)
    keep[torch.arange(20), target] = False
    pairs = ev.eval({"y_pred_pos": pos, "y_pred_neg": scores[keep].view(20, 29)})
    assert full == pytest.approx(pairs)
    assert 1 <= full["mr"] <= 30 and full["hits@1"] <= full["hits@20"]


@pytest.mark.parametrize("task,inp,msg", [
    ("node_classification", {"y_true": [0, 1]}, "missing key 'y_pred'"),
    ("node_classification", {"y_true": [0, 1, 1], "y_pred": [0, 1]}, "y_pred has 2 labels"),
    ("node_classification", {"y_true": [], "y_pred": []}, "empty"),
    ("node_classification", {"y_true": [0.5, 1.0], "y_pred": [0, 1]}, "integer"),
    ("node_classification", {"y_true": [0, -1], "y_pred": [0, 1]}, "negative"),
    ("node_classification", {"y_true": [0, 1], "y_pred": [[0.1, np.nan], [0.3, 0.2]]}, "NaN"),
    ("node_classification", {"y_true": [0, 2], "y_pred": [[0.1, 0.2], [0.3, 0.2]]}, "out of range"),
    ("node_classification", {"y_true": ["a", "b"], "y_pred": [0, 1]}, "numeric"),
    ("link_prediction", {"y_pred_pos": [1.0, 2.0]}, "missing key 'y_pred_neg'"),
    ("link_prediction", {"y_pred_pos": [1.0, 2.0], "y_pred_neg": [[1.0], [2.0], [3.0]]},
     r"\[P=2, K\]"),
    ("link_prediction", {"y_pred_pos": [1.0, 2.0], "y_pred_neg": [1.0, 2.0]}, r"\[P=2, K\]"),
    ("link_prediction", {"y_pred_pos": [np.nan], "y_pred_neg": [[1.0]]}, "NaN"),
    ("link_prediction", {"y_pred_pos": [], "y_pred_neg": [[]]}, "empty"),
    ("entity_ranking", {"y_true": [0, 5], "y_pred": [[0.1, 0.2], [0.3, 0.2]]}, "out of range"),
])
def test_validation_errors_are_one_line(task, inp, msg):
    with pytest.raises(ValueError, match=msg) as err:
        Evaluator(task).eval(inp)
    assert "\n" not in str(err.value)


def test_eval_requires_a_dict():
    with pytest.raises(ValueError, match="dict"):
        Evaluator("link_prediction").eval([1.0, 2.0])
