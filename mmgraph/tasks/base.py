"""The task interface: what the one training loop asks of every kind of prediction problem.

A :class:`Task` owns the data tensors a problem needs, the loss, and how predictions become
metrics (always through :class:`mmgraph.evaluator.Evaluator`, so no model picks its own
metric). The trainer (:func:`mmgraph.train.fit`) owns everything else: seeds, optimiser,
schedule, early stopping and model selection on the validation split.

The interface is shaped so that node classification, link prediction, zero-shot prediction
by language models, entity ranking over a knowledge base (``evaluate`` ranks every mention
against the KB), text generation from neighbour context (``train_epoch`` runs teacher-forced
batches, ``evaluate`` decodes and scores) and graph-level prediction (``setup`` builds loaders
of per-patient graphs) are all a ``setup`` / ``model_kwargs`` / ``wrap`` / ``train_epoch`` /
``evaluate`` quintet. The runner walks the same path for every task and model:

1. ``task = instantiate(cfg.task)``; ``task.setup(data, device, split)``;
2. ``model = task.wrap(instantiate(cfg.model.module, **task.model_kwargs()))``;
3. per seed: ``task.start_run(seed)``, seed everything, ``model.reset_parameters()``,
   :func:`mmgraph.train.fit` (a model without trainable parameters is evaluated once);
4. the seed's record gets ``task.run_record(model)``, the summary row ``task.summary_row(model)``.

Adding a task kind is one module here (a :class:`Task` subclass with its
:class:`~mmgraph.evaluator.MetricSpec`) and one ``configs/task/<kind>.yaml``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Sequence

import torch
from torch import nn
from torch_geometric.data import HeteroData

from mmgraph.distributed import unwrap
from mmgraph.errors import ConfigError
from mmgraph.evaluator import SPECS, Evaluator, MetricSpec
from mmgraph.nn.sparse import Adjacency

Metrics = dict[str, dict[str, float]]  # split -> metric name -> value


def edge_types_arg(edge_types: Any) -> list[str | list[str]] | None:
    """``task.edge_types`` checked: ``None`` or an empty list (every relation), else a list of
    relation names or ``[source, relation, target]`` triples."""
    if edge_types is None:
        return None
    if isinstance(edge_types, (str, bytes)) or not isinstance(edge_types, Sequence) \
            or not all(map(_is_relation, edge_types)):
        raise ConfigError(f"task.edge_types must be a list of relation names or [source, relation, "
                          f"target] triples, e.g. task.edge_types=[cites]; got {edge_types!r}")
    return [e if isinstance(e, str) else [str(p) for p in e] for e in edge_types] or None


def _is_relation(e: Any) -> bool:
    """A relation name, or a ``[source, relation, target]`` triple of names."""
    if isinstance(e, str):
        return True
    return isinstance(e, Sequence) and len(e) == 3 and all(isinstance(p, str) for p in e)


def graph_input(model: nn.Module, edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor | Adjacency:
    """The graph argument a model is called with: an :class:`~mmgraph.nn.sparse.Adjacency`
    (built once here) for models whose ``accepts_adjacency`` is true, else ``edge_index``."""
    if getattr(unwrap(model), "accepts_adjacency", False):  # unwrap: a DDP wrapper hides the flag
        return Adjacency.from_edge_index(edge_index, num_nodes)
    return edge_index


class Task(ABC):
    """One kind of prediction problem on a multimodal graph.

    Subclasses set :attr:`kind` and either name a built-in metric spec by it
    (:data:`mmgraph.evaluator.SPECS`) or set :attr:`spec` to their own
    :class:`~mmgraph.evaluator.MetricSpec`.
    """

    kind: str = ""
    spec: MetricSpec | None = None
    #: whether ``model_kwargs(hetero=True)`` can build a heterogeneous model's arguments
    supports_hetero: bool = False

    def __init__(self) -> None:
        self.evaluator = Evaluator(self.spec if self.spec is not None else SPECS[self.kind])
        self.device = torch.device("cpu")
        self.seed: int | None = None

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self.evaluator.metrics)

    @property
    def primary(self) -> str:
        """The validation metric that drives early stopping and the LR schedule."""
        return self.evaluator.primary

    @abstractmethod
    def setup(self, data: HeteroData, device: torch.device, split: dict | None = None) -> None:
        """Prepare tensors (on ``device``) and splits from the graph; called once per run set."""

    @abstractmethod
    def model_kwargs(self) -> dict[str, Any]:
        """Constructor arguments the task imposes on the model (``in_channels``, ...). Tasks
        with :attr:`supports_hetero` also take ``hetero=True``: a heterogeneous model's."""

    def start_run(self, seed: int) -> None:
        """Called before each seed's run (after setup); tasks that draw per seed (negatives,
        neighbours of a prompt) use :attr:`seed`."""
        self.seed = int(seed)

    def run_record(self, model: nn.Module) -> dict[str, Any]:
        """Entries the task adds to a seed's record after its run (e.g. generation statistics)."""
        return {}

    def summary_row(self, model: nn.Module) -> dict[str, Any]:
        """Entries the task adds to (or replaces in) the summary row of a run set."""
        return {}

    def wrap(self, model: nn.Module) -> nn.Module:
        """Attach task-specific heads (decoders, pooling) to a backbone; identity by default."""
        return model

    @abstractmethod
    def train_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> float:
        """One pass over the training data; returns the mean training loss."""

    @abstractmethod
    def evaluate(self, model: nn.Module) -> Metrics:
        """Metrics for the ``train``, ``val`` and ``test`` splits."""

    def describe(self) -> dict[str, Any]:
        """What to record about the task (split sizes, negatives, ...) with every result."""
        return {"kind": self.kind}

    @staticmethod
    def input_modality_mask(data: HeteroData, graph, device: torch.device) -> torch.Tensor | None:
        """``bool [N, M]`` presence of the input modalities (``data.meta["input"]``) on the nodes of
        ``graph`` (e.g. the homogeneous view), on ``device``; ``None`` when the input is unknown."""
        from mmgraph.data.graph import modality_mask

        mods = getattr(data, "meta", {}).get("input", {}).get("modalities")
        return modality_mask(graph, mods).to(device) if mods else None

    @staticmethod
    def _forward(model: nn.Module, x: torch.Tensor, edge_index: torch.Tensor,
                 modality_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Call a node model; models with ``wants_modality_mask`` (fusion) also get the mask
        (rows aligned with ``x``: slice it with the same node index as ``x`` in mini-batches)."""
        if modality_mask is not None and getattr(unwrap(model), "wants_modality_mask", False):
            return model(x, edge_index, modality_mask=modality_mask)
        return model(x, edge_index)
