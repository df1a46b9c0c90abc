"""Zero-shot node classification: a model that is not trained names the class of sampled nodes.

MAGB's VLM-as-predictor paradigm. The models (:mod:`mmgraph.zeroshot`: a chat language model or
VLM reading a prompt, a CLIP/SigLIP joint embedding) have no trainable parameters, so the
trainer evaluates them once. The task draws a seeded sample of each evaluated split's labelled
nodes — the same sample whatever the model or prompt, so runs compare node for node — and asks
the model for one class per node::

    pred, info = model.predict(view, nodes, seed=seed)  # long [len(nodes)], -1 = no class named

``view`` is the :class:`~mmgraph.data.node_view.NodeView` of the target nodes (raw texts, image
references, the homogeneous graph). An answer that names no class counts as wrong and as a
*mismatch*; macro-F1 counts it as one more predicted class, as MAGB's string labels do.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn
from torch_geometric.data import HeteroData

from mmgraph import metrics as M
from mmgraph.checks import integer
from mmgraph.data.graph import homogeneous_view, split_indices
from mmgraph.data.node_view import NodeView
from mmgraph.data.splits import make_split
from mmgraph.errors import ConfigError, DataError
from mmgraph.evaluator import MetricSpec
from mmgraph.tasks.base import Metrics, Task, edge_types_arg


def _zero_shot_metrics(inp: Mapping, names: tuple[str, ...]) -> dict[str, float]:
    """Accuracy, macro-F1 with "no class" (-1) as one more class, and the mismatch rate."""
    y_true = torch.as_tensor(inp["y_true"]).long().view(-1)
    y_pred = torch.as_tensor(inp["y_pred"]).long().view(-1)
    num_classes = int(inp["num_classes"])
    if y_true.numel() != y_pred.numel() or y_true.numel() == 0:
        raise ValueError(f"y_true ({y_true.numel()}) and y_pred ({y_pred.numel()}) must be "
                         f"non-empty and of equal length")
    if int(y_true.min()) < 0 or int(y_true.max()) >= num_classes:
        raise ValueError(f"y_true must hold classes 0..{num_classes - 1}")
    if int(y_pred.min()) < -1 or int(y_pred.max()) >= num_classes:
        raise ValueError(f"y_pred must hold classes 0..{num_classes - 1} or -1 (no class named)")
    unknown = y_pred < 0
    as_class = torch.where(unknown, torch.full_like(y_pred, num_classes), y_pred)
    values = {"accuracy": lambda: M.accuracy(y_true, as_class),
              "macro_f1": lambda: M.macro_f1(y_true, as_class, num_classes + 1),
              "mismatch": lambda: float(unknown.float().mean())}
    return {name: values[name]() for name in names}


SPEC = MetricSpec(
    task="zero_shot_classification",
    metrics=("accuracy", "macro_f1", "mismatch"),
    primary="accuracy",
    expected_input=("{'y_true': labels [N], 'y_pred': predicted classes [N] with -1 where the "
                    "answer named no class, 'num_classes': C}"),
    compute=_zero_shot_metrics,
    lower_is_better=frozenset({"mismatch"}),
)


def sample_nodes(index: torch.Tensor, size: int | None, seed: int) -> torch.Tensor:
    """``size`` nodes of ``index`` drawn with ``seed`` (sorted), or all of them; the same sample
    whatever the order of ``index``."""
    index = index.sort().values
    if size is None or size >= index.numel():
        return index
    gen = torch.Generator().manual_seed(int(seed))
    return index[torch.randperm(index.numel(), generator=gen)[: int(size)]].sort().values


class ZeroShotNodeClassification(Task):
    """Classify a seeded sample of nodes with a model that is not trained.

    Args:
        splits: the splits whose nodes are predicted (default: test only).
        sample: nodes per split (a seeded sample; ``None``: all labelled nodes).
        sample_seed: the seed of that sample (independent of the run's seed, which draws
            random neighbours).
        edge_types: relations merged into the homogeneous graph; all by default.
    """

    kind = "zero_shot_classification"
    spec = SPEC

    def __init__(self, splits: Sequence[str] = ("test",), sample: int | None = 300, sample_seed: int = 0,
                 edge_types: Sequence[str] | None = None):
        super().__init__()
        if isinstance(splits, str) or not isinstance(splits, Sequence) or not splits \
                or not all(isinstance(s, str) for s in splits):
            raise ConfigError(f"task.splits must be a non-empty list of splits, e.g. [test]; got {splits!r}")
        self.splits = list(splits)
        self.sample = integer("task.sample", sample, 1, optional=True)
        self.sample_seed = integer("task.sample_seed", sample_seed)
        self.edge_types = edge_types_arg(edge_types)
        self.details: dict[str, dict[str, Any]] = {}

    def setup(self, data: HeteroData, device: torch.device, split: dict | None = None) -> None:
        self.device = device
        if split:
            make_split(data, **split)
        graph = homogeneous_view(data, self.edge_types)
        self.view = NodeView.of(data, graph)
        index = split_indices(graph)
        unknown = [s for s in self.splits if s not in index]
        if unknown:
            raise ConfigError(f"task.splits: unknown split {unknown[0]!r}; choose from {', '.join(index)}")
        self.nodes = {}
        for s in self.splits:
            nodes = sample_nodes(index[s], self.sample, self.sample_seed)
            nodes = nodes[graph.y[nodes] >= 0]
            if nodes.numel() == 0:
                raise DataError(f"the {s} split has no labelled nodes to predict")
            self.nodes[s] = nodes
        self.split_meta = data.meta.get("split", {})

    def model_kwargs(self) -> dict[str, Any]:
        return {"class_names": list(self.view.class_names), "device": str(self.device),
                "image_root": self.view.image_root}

    def train_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> float:
        raise ConfigError(f"task {self.kind} evaluates models that are not trained, but "
                          f"{type(model).__name__} has trainable parameters; use "
                          f"task=node_classification for it")

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> Metrics:
        out: Metrics = {}
        self.details = {}
        for s, nodes in self.nodes.items():
            pred, info = model.predict(self.view, nodes, seed=self.seed if self.seed is not None else 0)
            out[s] = self.evaluator.eval({"y_true": self.view.y[nodes], "y_pred": pred,
                                          "num_classes": len(self.view.class_names)})
            self.details[s] = {"nodes": int(nodes.numel()), **info}
        return out

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "split": self.split_meta, "splits": self.splits, "sample": self.sample,
                "sample_seed": self.sample_seed, "edge_types": self.edge_types,
                "num_edges": int(self.view.edge_index.size(1))}

    def run_record(self, model: nn.Module) -> dict[str, Any]:
        return {"zero_shot": self.details, "generator": model.describe()}

    def summary_row(self, model: nn.Module) -> dict[str, Any]:
        last = self.details.get(self.splits[-1], {})
        return {"modalities": model.input_label,
                "zero_shot": {**model.settings(), "nodes": last.get("nodes"),
                              **({"tokens_per_second": last["tokens_per_second"]}
                                 if "tokens_per_second" in last else {})}}
