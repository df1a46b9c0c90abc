import math

import pytest
import torch

from mmgraph.errors import ConfigError
from mmgraph.nn import GCN, MLP
from mmgraph.tasks import NodeClassification
from mmgraph.tasks.base import Task
from mmgraph.train import TrainerConfig, fit, seed_everything


class ScriptedTask(Task):
    """A task whose validation/test metrics follow a script, to test selection and stopping."""

    kind = "node_classification"

    def __init__(self, val, test):
        super().__init__()
        self.val, self.test, self.epoch = val, test, 0

    def setup(self, data, device, split=None):
        pass

    def model_kwargs(self):
        return {}

    def train_epoch(self, model, optimizer):
        self.epoch += 1
        optimizer.zero_grad()
        loss = model.weight.sum() * 0
        loss.backward()
        optimizer.step()
        return 1.0

    def evaluate(self, model):
        i = self.epoch - 1
        return {"train": {"accuracy": 1.0, "macro_f1": 1.0},
                "val": {"accuracy": self.val[i][0], "macro_f1": self.val[i][1]},
                "test": {"accuracy": self.test[i], "macro_f1": -self.test[i]}}


def _cfg(**kw):
    return TrainerConfig(**{"progress": False, "lr_patience": None, **kw})


def test_selection_is_per_metric_on_validation_and_reports_test_there():
    val = [(0.1, 0.5), (0.3, 0.2), (0.3, 0.9), (0.2, 0.1)]
    test = [0.9, 0.4, 0.7, 1.0]  # the best test value must never be chosen by itself
    res = fit(ScriptedTask(val, test), torch.nn.Linear(1, 1), _cfg(max_epochs=4, patience=None))
    assert res.selected["accuracy"]["epoch"] == 2  # first epoch reaching the best val accuracy
    assert res.selected["accuracy"]["test"] == 0.4
    assert res.selected["macro_f1"]["epoch"] == 3 and res.selected["macro_f1"]["test"] == -0.7
    assert res.epochs == 4 and not res.stopped_early and len(res.history) == 4


def test_early_stopping_counts_epochs_without_improvement():
    val = [(0.5, 0.5)] + [(0.4, 0.4)] * 20
    res = fit(ScriptedTask(val, [0.0] * 21), torch.nn.Linear(1, 1), _cfg(max_epochs=21, patience=5))
    assert res.stopped_early and res.epochs == 6
    res = fit(ScriptedTask(val, [0.0] * 21), torch.nn.Linear(1, 1),
              _cfg(max_epochs=21, patience=5, min_epochs=10))
    assert res.epochs == 10


def test_warmup_raises_lr_linearly():
    task = ScriptedTask([(0.1, 0.1)] * 5, [0.0] * 5)
    res = fit(task, torch.nn.Linear(1, 1), _cfg(max_epochs=5, patience=None, warmup_epochs=4, lr=0.4))
    assert [round(r["lr"], 6) for r in res.history] == [0.1, 0.2, 0.3, 0.4, 0.4]


def test_plateau_schedule_halves_lr():
    task = ScriptedTask([(0.5, 0.5)] + [(0.1, 0.1)] * 9, [0.0] * 10)
    res = fit(task, torch.nn.Linear(1, 1), _cfg(max_epochs=10, patience=None, lr=0.1, lr_patience=2))
    assert res.history[0]["lr"] == 0.1 and math.isclose(res.history[-1]["lr"], 0.025)


def test_unknown_optimizer_and_bad_epochs():
    with pytest.raises(ConfigError, match="unknown optimizer 'sgdx'"):
        fit(ScriptedTask([], []), torch.nn.Linear(1, 1), _cfg(optimizer="sgdx"))
    with pytest.raises(ConfigError, match="max_epochs"):
        fit(ScriptedTask([], []), torch.nn.Linear(1, 1), _cfg(max_epochs=0))


def test_same_seed_same_result_on_a_real_graph(graph):
    task = NodeClassification()
    task.setup(graph, torch.device("cpu"))
    model = GCN(**task.model_kwargs(), hidden_channels=16)
    results = []
    for seed in (3, 3, 4):
        seed_everything(seed)
        model.reset_parameters()
        results.append(fit(task, model, _cfg(max_epochs=15, patience=None)).history)
    assert results[0] == results[1]
    assert results[0] != results[2]


def test_training_learns_separable_features(graph):
    task = NodeClassification()
    task.setup(graph, torch.device("cpu"))
    seed_everything(0)
    model = MLP(**task.model_kwargs(), hidden_channels=32, dropout=0.0)
    res = fit(task, model, _cfg(max_epochs=100, patience=None, lr=0.02))
    assert res.selected["accuracy"]["train"] == 1.0
    assert res.history[-1]["loss"] < res.history[0]["loss"] / 2
