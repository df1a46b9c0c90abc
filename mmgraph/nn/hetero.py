r"""Heterogeneous GNNs: several node types and relations (RGCN, HGT, ``to_hetero``).

All three models share one contract, so the task and the runner treat them alike:

- constructor: ``metadata`` (``(node_types, edge_types)`` as from ``HeteroData.metadata()``),
  ``in_channels`` (node type -> feature size, or ``None`` for a node type without features),
  ``num_nodes`` (node type -> count; needed for featureless types), ``out_channels``, ``target``
  (the node type to predict), then the model's own options;
- ``forward(x_dict, edge_index_dict) -> Tensor [num_target_nodes, out_channels]``: the logits
  of the target nodes only (featureless types may be absent from ``x_dict``; relations absent
  from ``edge_index_dict`` have no edges);
- ``reset_parameters()``; class attribute ``is_hetero = True`` (the node task then calls the
  model with dictionaries, see :func:`mmgraph.data.hetero.hetero_view`).

**Inputs.** Every node type first goes to the common width ``hidden_channels``: a linear map of
its features (after ``input_dropout``), or, for a type without features, a learned embedding
per node (transductive: the node set is fixed).

**Models.**

- :class:`RGCN` (Schlichtkrull et al., ESWC 2018) on PyG's ``RGCNConv``:
  :math:`h_i' = W_0 h_i + \sum_r \frac{1}{|N_r(i)|}\sum_{j \in N_r(i)} W_r h_j`, with the basis
  (``num_bases``) or block-diagonal (``num_blocks``) decomposition of the :math:`W_r`.
- :class:`HGT` (Hu et al., WWW 2020) on PyG's ``HGTConv``: type-specific keys, queries, values
  and relation-specific attention and messages, ``heads`` heads; a linear head on the target.
- :class:`ToHetero`: any homogeneous mmgraph model (GraphSAGE, GAT, GATv2, ...) converted by
  :func:`torch_geometric.nn.to_hetero`: one copy of each layer per relation, the relations'
  outputs summed (``aggr``) per destination type; one copy of norms/activations per node type.
  GCN cannot be converted: its symmetric normalisation needs one node set (``ConfigError``).
  Layers that add self loops (GAT) keep them on relations within one node type only.

Between layers: norm (per node type) -> activation -> dropout, as in :class:`~mmgraph.nn.BasicGNN`.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn
from torch_geometric.nn import HGTConv, MessagePassing, RGCNConv

from mmgraph.errors import ConfigError, first_line
from mmgraph.nn.basic_gnn import make_activation, make_norm

EdgeType = tuple[str, str, str]
Metadata = tuple[list[str], list[EdgeType]]

__all__ = ["HeteroGNN", "RGCN", "HGT", "ToHetero"]

# Layers that normalise with the degrees of one node set, or otherwise take a single node
# feature matrix: they cannot pass messages between two node types.
_NOT_BIPARTITE = ("GCNConv", "ChebConv", "SGConv", "SSGConv", "TAGConv", "ARMAConv", "GCN2Conv",
                  "ClusterGCNConv", "LGConv", "APPNP", "FAConv", "DNAConv", "SuperGATConv")


def parse_metadata(metadata: Any) -> Metadata:
    """``(node_types, edge_types)`` from tuples, lists or OmegaConf containers (Hydra)."""
    try:
        node_types, edge_types = metadata
        node_types = [str(nt) for nt in node_types]
        edge_types = [tuple(str(p) for p in et) for et in edge_types]
    except (TypeError, ValueError):
        raise ConfigError("metadata must be (node_types, edge_types) as from "
                          "HeteroData.metadata()") from None
    if not node_types or not edge_types:
        raise ConfigError("metadata needs at least one node type and one edge type")
    bad = [et for et in edge_types if len(et) != 3 or et[0] not in node_types
           or et[2] not in node_types]
    if bad:
        raise ConfigError(f"edge type {bad[0]!r} is not (src, relation, dst) over the node types "
                          f"{node_types}")
    for name in node_types + [et[1] for et in edge_types]:
        if not name.isidentifier():
            raise ConfigError(f"node and relation names must be identifiers (letters, digits, "
                              f"'_'); got {name!r}")
    return node_types, edge_types


def _ekey(edge_type: EdgeType) -> str:
    return "__".join(edge_type)


class HeteroGNN(nn.Module):
    """Base class: per-type input encoders, the common constructor and the output contract.

    Args:
        metadata: ``(node_types, edge_types)``.
        in_channels: feature size per node type; ``None`` (or missing) = no features.
        out_channels: output size (number of classes).
        target: the node type whose logits :meth:`forward` returns.
        num_nodes: nodes per type; required for types without features.
        hidden_channels: common width of all node types.
        num_layers: message-passing layers (>= 1).
        dropout: dropout after each hidden layer.
        input_dropout: dropout on the input features.
        norm: ``"batch"``, ``"layer"`` or ``None``, one per node type and hidden layer.
        activation: ``"relu"``, ``"elu"``, ``"gelu"``, ...
    """

    is_hetero = True

    def __init__(self, metadata: Any, in_channels: Mapping[str, int | None], out_channels: int,
                 target: str, num_nodes: Mapping[str, int] | None = None,
                 hidden_channels: int = 256, num_layers: int = 2, dropout: float = 0.5,
                 input_dropout: float = 0.0, norm: str | None = "batch",
                 activation: str = "relu"):
        super().__init__()
        self.node_types, self.edge_types = parse_metadata(metadata)
        if target not in self.node_types:
            raise ConfigError(f"target node type {target!r} is not among {self.node_types}")
        if num_layers < 1:
            raise ConfigError(f"num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0 or not 0.0 <= input_dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1); got dropout={dropout}, "
                              f"input_dropout={input_dropout}")
        in_channels = dict(in_channels or {})
        num_nodes = dict(num_nodes or {})
        self.target, self.out_channels = str(target), int(out_channels)
        self.hidden_channels, self.num_layers = int(hidden_channels), int(num_layers)
        self.in_channels = {nt: (int(in_channels[nt]) if in_channels.get(nt) else None)
                            for nt in self.node_types}
        self.encoders = nn.ModuleDict()
        for nt in self.node_types:
            if self.in_channels[nt] is not None:
                self.encoders[nt] = nn.Linear(self.in_channels[nt], self.hidden_channels)
            else:
                if not num_nodes.get(nt):
                    raise ConfigError(f"node type {nt!r} has no features: its embedding needs "
                                      f"num_nodes[{nt!r}]")
                self.encoders[nt] = nn.Embedding(int(num_nodes[nt]), self.hidden_channels)
        self.input_drop = nn.Dropout(input_dropout)
        self.drop = nn.Dropout(dropout)
        self._norm, self._activation = norm, activation

    def _norms(self, count: int) -> nn.ModuleList:
        """``count`` ModuleDicts (node type -> norm), one per hidden layer."""
        return nn.ModuleList(
            nn.ModuleDict({nt: make_norm(self._norm, self.hidden_channels) for nt in self.node_types})
            for _ in range(count))

    def encode(self, x_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Every node type at width ``hidden_channels``."""
        out = {}
        for nt in self.node_types:
            enc = self.encoders[nt]
            if isinstance(enc, nn.Embedding):
                out[nt] = enc.weight
            else:
                if nt not in x_dict:
                    raise ConfigError(f"x_dict has no features for node type {nt!r}")
                out[nt] = enc(self.input_drop(x_dict[nt]))
        return out

    def edges(self, edge_index_dict: Mapping[EdgeType, Tensor], device) -> dict[EdgeType, Tensor]:
        """The relations of ``metadata`` in order; missing ones as empty ``edge_index``."""
        empty = torch.empty(2, 0, dtype=torch.long, device=device)
        return {et: edge_index_dict.get(et, empty) for et in self.edge_types}

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and callable(getattr(module, "reset_parameters", None)):
                module.reset_parameters()

    def forward(self, x_dict: Mapping[str, Tensor], edge_index_dict: Mapping[EdgeType, Tensor]) -> Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (f"target={self.target}, node_types={self.node_types}, "
                f"relations={len(self.edge_types)}, hidden={self.hidden_channels}, "
                f"out={self.out_channels}, layers={self.num_layers}")


class RGCN(HeteroGNN):
    """Relational GCN on PyG's ``RGCNConv`` (mean per relation, self weight, sum over relations).

    Args:
        num_bases: basis decomposition: every :math:`W_r` a combination of this many bases.
        num_blocks: block-diagonal decomposition of the hidden layers (must divide
            ``hidden_channels``; the output layer is then full, or uses ``num_bases``).
        aggr: aggregation within one relation (``"mean"``: the paper's :math:`1/|N_r(i)|`).
        **kwargs: see :class:`HeteroGNN`.
    """

    def __init__(self, *args, num_bases: int | None = None, num_blocks: int | None = None,
                 aggr: str = "mean", **kwargs):
        super().__init__(*args, **kwargs)
        if num_bases is not None and num_blocks is not None:
            raise ConfigError("RGCN: choose num_bases or num_blocks, not both")
        if num_blocks is not None and self.hidden_channels % int(num_blocks):
            raise ConfigError(f"RGCN num_blocks ({num_blocks}) must divide hidden_channels "
                              f"({self.hidden_channels})")
        self.num_bases, self.num_blocks = num_bases, num_blocks
        r = len(self.edge_types)
        h = self.hidden_channels
        convs = []
        for i in range(self.num_layers):
            last = i == self.num_layers - 1
            blocks = None if last else num_blocks
            convs.append(RGCNConv(h, self.out_channels if last else h, r, num_bases=num_bases,
                                  num_blocks=blocks, aggr=aggr))
        self.convs = nn.ModuleList(convs)
        self.norms = self._norms(self.num_layers - 1)
        self.act = make_activation(self._activation)

    def forward(self, x_dict, edge_index_dict):
        h_dict = self.encode(x_dict)
        x = torch.cat([h_dict[nt] for nt in self.node_types], dim=0)
        offset, start = {}, 0
        for nt in self.node_types:
            offset[nt] = (start, start + h_dict[nt].size(0))
            start += h_dict[nt].size(0)
        edges = self.edges(edge_index_dict, x.device)
        shift = [torch.tensor([[offset[s][0]], [offset[d][0]]], device=x.device)
                 for s, _, d in self.edge_types]
        edge_index = torch.cat([ei + sh for ei, sh in zip(edges.values(), shift)], dim=1)
        edge_type = torch.cat([torch.full((ei.size(1),), r, dtype=torch.long, device=x.device)
                               for r, ei in enumerate(edges.values())])
        for i, conv in enumerate(self.convs):
            x = conv(x, edge_index, edge_type)
            if i < self.num_layers - 1:
                x = torch.cat([self.norms[i][nt](x[a:b]) for nt, (a, b) in offset.items()], dim=0)
                x = self.drop(self.act(x))
        a, b = offset[self.target]
        return x[a:b]


class HGT(HeteroGNN):
    """Heterogeneous Graph Transformer on PyG's ``HGTConv``, then a linear head on the target.

    Args:
        heads: attention heads (must divide ``hidden_channels``).
        **kwargs: see :class:`HeteroGNN`; here ``num_layers`` counts the HGT layers, each
            followed by norm, activation and dropout, before the linear output head.
    """

    def __init__(self, *args, heads: int = 4, **kwargs):
        super().__init__(*args, **kwargs)
        if self.hidden_channels % int(heads):
            raise ConfigError(f"HGT hidden_channels ({self.hidden_channels}) must be divisible "
                              f"by heads ({heads})")
        self.heads = int(heads)
        meta = (self.node_types, self.edge_types)
        self.convs = nn.ModuleList(HGTConv(self.hidden_channels, self.hidden_channels, meta,
                                           heads=self.heads) for _ in range(self.num_layers))
        self.norms = self._norms(self.num_layers)  # every HGT layer, the head follows
        self.act = make_activation(self._activation)
        self.head = nn.Linear(self.hidden_channels, self.out_channels)

    def forward(self, x_dict, edge_index_dict):
        h = self.encode(x_dict)
        edges = self.edges(edge_index_dict, h[self.target].device)
        for i, conv in enumerate(self.convs):
            out = conv(h, edges)
            h = {nt: self.drop(self.act(self.norms[i][nt](out[nt]))) if out.get(nt) is not None
                 else h[nt] for nt in self.node_types}
        return self.head(h[self.target])


class ToHetero(HeteroGNN):
    """A homogeneous mmgraph model made heterogeneous with PyG's ``to_hetero``.

    Args:
        model: the homogeneous model: a class or ``functools.partial`` (a Hydra node with
            ``_partial_: true``) that takes ``in_channels``, ``hidden_channels`` and
            ``out_channels`` (set here) plus its own options, and ``forward(x, edge_index)``.
        aggr: how the relations' outputs for one destination type combine (``"sum"``,
            ``"mean"``, ``"max"``, ``"min"``, ``"mul"``).
        **kwargs: see :class:`HeteroGNN`; ``num_layers``, ``dropout``, ``norm`` and
            ``activation`` belong to ``model``, only ``hidden_channels`` and
            ``input_dropout`` (the input encoders) are used here.

    Raises:
        ConfigError: the model has no message-passing layer, or one that cannot pass messages
            between two node types (GCN), or ``to_hetero`` cannot trace it.
    """

    def __init__(self, metadata: Any, in_channels: Mapping[str, int | None], out_channels: int,
                 target: str, model: Callable[..., nn.Module], num_nodes: Mapping[str, int] | None = None,
                 hidden_channels: int = 256, input_dropout: float = 0.0, aggr: str = "sum"):
        super().__init__(metadata, in_channels, out_channels, target, num_nodes=num_nodes,
                         hidden_channels=hidden_channels, num_layers=1, input_dropout=input_dropout)
        from torch_geometric.nn import to_hetero

        if not callable(model):
            raise ConfigError(f"ToHetero model must be a model class or partial; got {model!r}")
        name = getattr(getattr(model, "func", model), "__name__", type(model).__name__)
        if aggr not in ("sum", "mean", "max", "min", "mul"):
            raise ConfigError(f"ToHetero aggr must be sum, mean, max, min or mul; got {aggr!r}")
        h = self.hidden_channels
        base = model(in_channels=h, hidden_channels=h, out_channels=self.out_channels)
        if not isinstance(base, nn.Module):
            raise ConfigError(f"ToHetero model {name} did not build an nn.Module")
        convs = [m for m in base.modules() if isinstance(m, MessagePassing)]
        if not convs:
            raise ConfigError(f"{name} has no message-passing layer, so to_hetero would only copy "
                              f"it per node type; use it as a homogeneous model instead")
        bad = [m for m in convs if type(m).__name__ in _NOT_BIPARTITE
               or any(c.__name__ in _NOT_BIPARTITE for c in type(m).__mro__)]
        if bad:
            raise ConfigError(f"to_hetero cannot convert {name}: its {type(bad[0]).__name__} "
                              f"normalises with the degrees of one node set and cannot pass messages "
                              f"between two node types; use GraphSAGE, GAT or GATv2")
        for conv in convs:  # self loops only where source and destination are one type (below)
            if getattr(conv, "add_self_loops", False):
                conv.add_self_loops = False
                conv._mmgraph_self_loops = True
        try:
            self.gnn = to_hetero(base, (self.node_types, self.edge_types), aggr=aggr)
        except Exception as exc:  # tracing errors: one line for the user
            msg = first_line(exc)
            raise ConfigError(f"to_hetero cannot convert {name}: {msg}") from exc
        for module in self.gnn.modules():
            if isinstance(module, nn.ModuleDict):
                for et in self.edge_types:
                    conv = module[_ekey(et)] if _ekey(et) in module else None
                    if getattr(conv, "_mmgraph_self_loops", False) and et[0] == et[2]:
                        conv.add_self_loops = True
        self.model_name = name
        self._check(name)

    @torch.no_grad()
    def _check(self, name: str) -> None:
        """One forward on a two-node graph per type: fails here, not in the first epoch."""
        was = self.gnn.training
        self.gnn.eval()
        try:
            h = {nt: torch.zeros(2, self.hidden_channels) for nt in self.node_types}
            ei = {et: torch.tensor([[0, 1], [1, 0]]) for et in self.edge_types}
            out = self.gnn(h, ei)
            if out[self.target].shape != (2, self.out_channels):
                raise ValueError(f"output of shape {tuple(out[self.target].shape)} for 2 nodes")
        except Exception as exc:
            msg = first_line(exc)
            raise ConfigError(f"{name} does not run heterogeneously: {msg}") from exc
        finally:
            self.gnn.train(was)

    def forward(self, x_dict, edge_index_dict):
        h = self.encode(x_dict)
        out = self.gnn(h, self.edges(edge_index_dict, h[self.target].device))
        return out[self.target]

    def extra_repr(self) -> str:
        return f"model={self.model_name}, " + super().extra_repr()
