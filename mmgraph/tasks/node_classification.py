"""Transductive node classification, full batch."""
from __future__ import annotations

import warnings
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import HeteroData

from mmgraph.data.graph import homogeneous_view, split_indices
from mmgraph.data.splits import make_split
from mmgraph.errors import DataError
from mmgraph.tasks.base import Metrics, Task


class NodeClassification(Task):
    """Predict the class of every target node from its features and the graph.

    Args:
        label_smoothing: label smoothing of the cross-entropy loss (MAGB uses 0.1).
        edge_types: relations (names or triples) merged into the homogeneous graph; all by default.
    """

    kind = "node_classification"

    def __init__(self, label_smoothing: float = 0.0, edge_types: Sequence[str] | None = None):
        super().__init__()
        self.label_smoothing = label_smoothing
        self.edge_types = list(edge_types) if edge_types else None

    def setup(self, data: HeteroData, device: torch.device, split: dict | None = None) -> None:
        self.device = device
        if split:
            make_split(data, **split)
        graph = homogeneous_view(data, self.edge_types)
        if getattr(graph, "x", None) is None:
            raise DataError("the graph has no model input 'x'; choose modalities with "
                            "features.modalities=[...] (mmgraph.data.set_model_input)")
        self.num_classes = len(data.meta["class_names"])
        self.x = graph.x.to(device)
        self.edge_index = graph.edge_index.to(device)
        self.y = graph.y.to(device)
        self.index = {}
        for split, idx in split_indices(graph).items():
            labelled = idx[graph.y[idx] >= 0]
            if labelled.numel() < idx.numel():
                warnings.warn(f"{idx.numel() - labelled.numel()} unlabelled nodes (y = -1) left out "
                              f"of the {split} split", stacklevel=2)
            if labelled.numel() == 0:
                raise DataError(f"the {split} split has no labelled nodes")
            self.index[split] = labelled.to(device)
        self.split_meta = data.meta.get("split", {})

    def model_kwargs(self) -> dict[str, Any]:
        return {"in_channels": self.x.size(1), "out_channels": self.num_classes}

    def train_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> float:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        out = model(self.x, self.edge_index)
        idx = self.index["train"]
        loss = F.cross_entropy(out[idx], self.y[idx], label_smoothing=self.label_smoothing)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> Metrics:
        model.eval()
        pred = model(self.x, self.edge_index).argmax(dim=-1)
        return {split: self.evaluator.eval({"y_true": self.y[idx], "y_pred": pred[idx]})
                for split, idx in self.index.items()}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "label_smoothing": self.label_smoothing,
                "edge_types": self.edge_types, "num_edges": int(self.edge_index.size(1)),
                "split": self.split_meta}
