"""The target nodes as a model that reads raw content sees them: texts, image references, the
homogeneous graph and the classes.

Zero-shot predictors (:mod:`mmgraph.zeroshot`) build prompts or embeddings from raw text and
images rather than from a feature matrix; their task hands them a :class:`NodeView`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData

from mmgraph.data.graph import target_type

__all__ = ["NodeView"]


@dataclass
class NodeView:
    """Raw content and graph of the target nodes (all tensors on the CPU).

    Attributes:
        name: the data set's name.
        class_names: the classes, in label order.
        texts: one text per node, ``None`` where it is missing or blank; ``None`` if the data
            set has no text.
        images: one image reference per node (:func:`mmgraph.data.images.load_image` reads it),
            ``None`` where missing; ``None`` if the data set has no images.
        image_root: the folder relative image references are resolved against.
        edge_index: ``long [2, E]`` edges of the homogeneous graph over the target nodes.
        num_nodes: the number of target nodes.
        x: ``[num_nodes, d]`` model input features (for similarity), or ``None``.
        y: ``long [num_nodes]`` labels (``-1``: unlabelled).
    """

    name: str
    class_names: list[str]
    texts: list[str | None] | None
    images: list[Any] | None
    image_root: str | None
    edge_index: Tensor
    num_nodes: int
    x: Tensor | None
    y: Tensor

    @classmethod
    def of(cls, data: HeteroData, graph: Data) -> "NodeView":
        """The view of ``data``'s target nodes over ``graph``, its homogeneous view
        (:func:`mmgraph.data.graph.homogeneous_view`)."""
        store = data[target_type(data)]
        n = int(graph.num_nodes)
        texts = None
        if "text" in store:
            texts = [t if isinstance(t, str) and t.strip() else None for t in store.text]
        images = None
        if "image" in store:
            present = store.get("image_mask", torch.ones(n, dtype=torch.bool))
            images = [ref if bool(ok) else None for ref, ok in zip(store.image, present)]
        x = graph.get("x")
        return cls(name=str(data.meta.get("name", "data")), class_names=list(data.meta["class_names"]),
                   texts=texts, images=images, image_root=data.meta.get("image_root"),
                   edge_index=graph.edge_index.cpu(), num_nodes=n,
                   x=x.cpu() if x is not None else None, y=graph.y.cpu())
