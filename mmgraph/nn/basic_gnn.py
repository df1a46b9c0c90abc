r"""GNN-as-predictor: stacks of message-passing layers with MAGB's options.

:class:`BasicGNN` writes the stacking once (input dropout, normalisation, activation, dropout
between layers); :class:`GCN`, :class:`GraphSAGE` and :class:`GAT` only choose their layer.
For a layer stack of depth :math:`L`:

.. math::
    h^{(0)} = \mathrm{drop}_{p_{in}}(x), \qquad
    h^{(l)} = \mathrm{drop}_p\big(\sigma(\mathrm{norm}(\mathrm{conv}_l(h^{(l-1)}, A)))\big),
    \qquad \hat y = \mathrm{conv}_L(h^{(L-1)}, A).

Models are configured only by constructor arguments and never read a config or a file.

Every model takes the graph either as PyG's ``edge_index`` ``[2, E]`` or as an
:class:`~mmgraph.nn.sparse.Adjacency`. GCN, GraphSAGE and GAT layers are PyG's convolutions
(same parameters, same results, usable by ``to_hetero``) with an extra path for an
``Adjacency`` that aggregates with sparse-dense products instead of per-edge feature tensors:
the tasks pass one to every model whose ``accepts_adjacency`` is true.

:class:`GNNBase` is the root of every homogeneous model (this stack and SGC, APPNP, GCNII,
JKNet, RevGAT): it owns the common arguments, their checks and ``reset_parameters()``.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GATv2Conv, GCNConv, SAGEConv

from mmgraph.errors import ConfigError
from mmgraph.nn.dropout import Dropout
from mmgraph.nn.sparse import Adjacency, SameInputs, attention, attention_logits, segment_softmax, spmm
from mmgraph.nn.trim import HopGraph

_ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "prelu": nn.PReLU,
                "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh}
_NORMS = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm}


def make_activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; choose one of: {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


def make_norm(name: str | None, channels: int) -> nn.Module:
    if name in (None, "none", False):
        return nn.Identity()
    if name not in _NORMS:
        raise ConfigError(f"unknown norm {name!r}; choose one of: none, {', '.join(_NORMS)}")
    return _NORMS[name](channels)


def _initialised(lin: nn.Module) -> bool:
    return not isinstance(getattr(lin, "weight", None), nn.parameter.UninitializedParameter)


def gcn_operator(adj: Adjacency, normalize: bool, add_self_loops: bool,
                 like: Tensor) -> tuple[Adjacency, Tensor]:
    """The graph and edge weights a GCN-style layer aggregates with, as PyG's layers choose
    them: :meth:`Adjacency.gcn_norm` (in the dtype of ``like``) when normalising, else the
    graph itself with unit weights (PyG adds self loops only when it normalises)."""
    if normalize:
        return adj.gcn_norm(add_self_loops, like.dtype)
    return adj, like.new_ones(adj.num_edges)


class GCNLayer(GCNConv):
    r"""PyG's ``GCNConv``; with an :class:`Adjacency` it computes
    :math:`\hat A (X W) + b` as one sparse product per layer (aggregating before the
    projection when that is the narrower side).

    With ``cached=True`` and an ``edge_index``, PyG's cached normalisation is only reused while
    the layer is called with the same graph (:class:`~mmgraph.nn.sparse.SameInputs`)."""

    _cached_for: SameInputs | None = None

    def forward(self, x, edge_index, edge_weight=None):  # type: ignore[override]
        if self.cached and isinstance(edge_index, Tensor) and isinstance(x, Tensor):
            graph = (edge_index, edge_weight)
            if self._cached_for is None or not self._cached_for.matches(*graph, extra=(x.size(-2),)):
                self._cached_edge_index = self._cached_adj_t = None  # another graph: renormalise
                self._cached_for = SameInputs(*graph, extra=(x.size(-2),))
        if (not isinstance(edge_index, Adjacency) or edge_weight is not None or self.improved
                or not isinstance(x, Tensor) or not _initialised(self.lin)):
            return super().forward(x, edge_index, edge_weight)
        adj, w = gcn_operator(edge_index, self.normalize, self.add_self_loops, x)
        if x.size(-1) < self.out_channels:
            out = self.lin(spmm(adj, w, x))
        else:
            out = spmm(adj, w, self.lin(x))
        return out + self.bias if self.bias is not None else out


class SAGELayer(SAGEConv):
    """PyG's ``SAGEConv``; with an :class:`Adjacency` and a mean or sum aggregation it
    aggregates with one sparse product, on the projected features when they are narrower.

    The adjacency may have fewer destinations than sources (a layer's block of a sampled
    subgraph, :mod:`mmgraph.nn.trim`): the destinations are the first ``num_dst`` sources, so
    the root term reads ``x[:num_dst]``. Other aggregations (``max``, ...) take PyG's path on
    the adjacency's edge list."""

    def forward(self, x, edge_index, size=None):  # type: ignore[override]
        if not isinstance(edge_index, Adjacency):
            return super().forward(x, edge_index, size)
        adj = edge_index
        if (not isinstance(x, Tensor) or self.project or self.aggr not in ("mean", "sum", "add")
                or not _initialised(self.lin_l)):
            x = (x, x[:adj.num_dst]) if isinstance(x, Tensor) else x
            return super().forward(x, adj.edge_index, (adj.num_src, adj.num_dst))
        w = adj.mean_weights(x.dtype) if self.aggr == "mean" else x.new_ones(adj.num_edges)
        if x.size(-1) > self.out_channels:  # mean(x) W == mean(x W): aggregate the narrower side
            out = spmm(adj, w, F.linear(x, self.lin_l.weight))
            if self.lin_l.bias is not None:
                out = out + self.lin_l.bias
        else:
            out = self.lin_l(spmm(adj, w, x))
        if self.root_weight:
            out = out + self.lin_r(x if adj.num_dst == x.size(0) else x[:adj.num_dst])
        return F.normalize(out, p=2.0, dim=-1) if self.normalize else out


class GATLayer(GATConv):
    """PyG's ``GATConv``; with an :class:`Adjacency` it computes the attention per edge
    (``[E, heads]``) and aggregates each head with a sparse product, never materialising the
    ``[E, heads, channels]`` messages: :func:`~mmgraph.nn.sparse.attention` does it in one
    autograd function that keeps only the projected features and the attention weights for
    the backward pass (with attention dropout in training, the same steps one by one). Bias and
    residual are added in place."""

    def forward(self, x, edge_index, edge_attr=None, size=None,  # type: ignore[override]
                return_attention_weights=None):
        if (not isinstance(edge_index, Adjacency) or not isinstance(x, Tensor) or self.lin is None
                or edge_attr is not None or self.lin_edge is not None or return_attention_weights
                or not _initialised(self.lin)):
            return super().forward(x, edge_index, edge_attr, size, return_attention_weights)
        heads, ch = self.heads, self.out_channels
        res = self.res(x) if self.res is not None else None
        h = self.lin(x).view(-1, heads, ch)
        adj = edge_index.with_self_loops() if self.add_self_loops else edge_index
        if self.training and self.dropout > 0:  # dropout on the attention weights: step by step
            a_src, a_dst = attention_logits(h, self.att_src, self.att_dst)
            scores = F.leaky_relu(a_src[adj.col] + a_dst[adj.row], self.negative_slope)
            alpha = F.dropout(segment_softmax(scores, adj), p=self.dropout, training=True)
            out = spmm(adj, alpha, h)
        else:
            out = attention(adj, h, self.att_src, self.att_dst, self.negative_slope)
        # out [N, heads, ch] is a new tensor: the additions below are in place
        if not self.concat:
            out = out.mean(dim=1)
        shape = (heads, ch) if self.concat else (ch,)
        if res is not None:
            out.add_(res.view(-1, *shape))
        if self.bias is not None:
            out.add_(self.bias.view(shape))
        return out.view(-1, heads * ch) if self.concat else out


class GNNBase(nn.Module):
    """The root of the homogeneous node models: common arguments, their checks, reset.

    A subclass calls ``super().__init__`` with the common arguments first (bad values raise a
    one-line :class:`~mmgraph.errors.ConfigError` that names the model), then registers its
    modules; :meth:`reset_parameters` re-initialises them in the order they were registered.

    Args:
        in_channels: input feature size.
        hidden_channels: width of the hidden layers.
        out_channels: output size (number of classes, or embedding size).
        num_layers: number of layers (at least :attr:`min_layers`).
        dropout: dropout between layers, in [0, 1).
        input_dropout: dropout on the input features, in [0, 1).
        norm: ``"batch"``, ``"layer"`` or ``None``.
        activation: ``"relu"``, ``"elu"``, ``"gelu"``, ...
    """

    #: the fewest layers the model can have
    min_layers = 1
    #: whether ``forward`` takes an :class:`~mmgraph.nn.sparse.Adjacency` as the graph
    accepts_adjacency = False
    #: whether ``forward`` takes a :class:`~mmgraph.nn.trim.HopGraph` (a sampled subgraph)
    #: and computes each layer only on the nodes later layers need
    supports_trimming = False

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int, dropout: float, input_dropout: float, norm: str | None,
                 activation: str):
        super().__init__()
        model, low = type(self).__name__, self.min_layers
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < low:
            raise ConfigError(f"{model}: num_layers must be an integer >= {low}, got {num_layers!r}")
        check_positive(model, "hidden_channels", hidden_channels)
        for name, p in (("dropout", dropout), ("input_dropout", input_dropout)):
            check_dropout(model, name, p)
        make_norm(norm, 1)  # raise now, even where no layer would use them
        make_activation(activation)
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.out_channels, self.num_layers = out_channels, num_layers
        self.dropout, self.input_dropout = dropout, input_dropout

    def reset_parameters(self) -> None:
        reset_in_order(self)

    def extra_repr(self) -> str:
        return (f"in={self.in_channels}, hidden={self.hidden_channels}, out={self.out_channels}, "
                f"layers={self.num_layers}")


def check_dropout(model: str, name: str, p: Any) -> None:
    """A dropout probability must be a number in [0, 1); the message names ``model``."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ConfigError(f"{model}: {name} must be in [0, 1), got {p!r}")


def check_positive(model: str, name: str, value: Any) -> None:
    """A width or count must be a positive integer; the message names ``model``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{model}: {name} must be a positive integer, got {value!r}")


def reset_in_order(module: nn.Module) -> None:
    """Reset each child that can be, in registration order; look inside containers."""
    for child in module.children():
        if hasattr(child, "reset_parameters"):
            child.reset_parameters()
        else:
            reset_in_order(child)


class BasicGNN(GNNBase):
    """A stack of ``num_layers`` message-passing layers; subclasses implement :meth:`init_conv`.

    Args:
        in_channels: input feature size.
        hidden_channels: width of every hidden layer.
        out_channels: output size (number of classes, or embedding size).
        num_layers: number of message-passing layers (>= 1).
        dropout: dropout after each hidden layer.
        input_dropout: dropout on the input features.
        norm: ``"batch"`` (MAGB's BatchNorm between layers), ``"layer"`` or ``None``.
        activation: ``"relu"``, ``"elu"``, ``"gelu"``, ...

    Shapes:
        - input: ``x [N, in_channels]``, ``edge_index [2, E]``
        - output: ``[N, out_channels]``
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 2, dropout: float = 0.5, input_dropout: float = 0.0,
                 norm: str | None = "batch", activation: str = "relu"):
        super().__init__(in_channels, hidden_channels, out_channels, num_layers, dropout,
                         input_dropout, norm, activation)
        dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.convs = nn.ModuleList(
            self.init_conv(dims[i], dims[i + 1], last=i == num_layers - 1) for i in range(num_layers))
        self.norms = nn.ModuleList(make_norm(norm, hidden_channels) for _ in range(num_layers - 1))
        self.act = make_activation(activation)
        # Dropout as modules, not F.dropout(training=...), so that FX tracing (to_hetero)
        # keeps the train/eval switch instead of baking it in.
        self.input_drop = Dropout(input_dropout)
        self.drop = Dropout(dropout)

    def init_conv(self, in_channels: int, out_channels: int, last: bool) -> nn.Module:
        raise NotImplementedError

    def forward(self, x: Tensor, edge_index: Tensor | Adjacency | HopGraph) -> Tensor:
        x = self.input_drop(x)
        for i, conv in enumerate(self.convs):
            graph = edge_index
            if isinstance(edge_index, HopGraph):  # layer trimming: each layer computes its block
                graph = edge_index.layer(i, self.num_layers)
                x = x[:graph.num_src] if x.size(0) > graph.num_src else x
            x = conv(x, graph)
            if i < self.num_layers - 1:
                x = self.norms[i](x)
                x = self.act(x)
                x = self.drop(x)
        return x


class GCN(BasicGNN):
    """Graph convolutional network (Kipf & Welling, ICLR 2017) on PyG's ``GCNConv``.

    Args:
        cached: cache the normalised adjacency (transductive full-batch training only).
        **kwargs: see :class:`BasicGNN`.
    """

    accepts_adjacency = True
    supports_trimming = True

    def __init__(self, *args, cached: bool = False, **kwargs):
        if not isinstance(cached, bool):
            raise ConfigError(f"{type(self).__name__}: cached must be true or false, got {cached!r}")
        self.cached = cached
        super().__init__(*args, **kwargs)

    def init_conv(self, in_channels, out_channels, last):
        return GCNLayer(in_channels, out_channels, cached=self.cached)


class GraphSAGE(BasicGNN):
    """GraphSAGE (Hamilton et al., NeurIPS 2017) on PyG's ``SAGEConv``.

    Args:
        aggr: neighbour aggregation (``"mean"``, ``"max"``, ``"sum"``).
        **kwargs: see :class:`BasicGNN`.
    """

    accepts_adjacency = True
    supports_trimming = True

    def __init__(self, *args, aggr: str = "mean", **kwargs):
        self.aggr = aggr
        super().__init__(*args, **kwargs)

    def init_conv(self, in_channels, out_channels, last):
        return SAGELayer(in_channels, out_channels, aggr=self.aggr)


class GAT(BasicGNN):
    """Graph attention network (Velickovic et al., ICLR 2018) on PyG's ``GATConv``.

    Hidden layers concatenate ``heads`` heads of ``hidden_channels // heads`` channels each,
    so ``hidden_channels`` is the total width. The output layer averages ``out_heads`` heads.

    Args:
        heads: attention heads in hidden layers; must divide ``hidden_channels``.
        out_heads: attention heads in the output layer (averaged).
        attn_dropout: dropout on the attention coefficients.
        negative_slope: LeakyReLU slope inside the attention.
        **kwargs: see :class:`BasicGNN`.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, *args,
                 heads: int = 3, out_heads: int = 1, attn_dropout: float = 0.0,
                 negative_slope: float = 0.2, **kwargs):
        model = type(self).__name__
        check_positive(model, "hidden_channels", hidden_channels)
        check_positive(model, "heads", heads)
        check_positive(model, "out_heads", out_heads)
        check_dropout(model, "attn_dropout", attn_dropout)
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)):
            raise ConfigError(f"{model}: negative_slope must be a number, got {negative_slope!r}")
        if hidden_channels % heads:
            raise ConfigError(f"{model} hidden_channels ({hidden_channels}) must be divisible by "
                              f"heads ({heads})")
        self.heads, self.out_heads = heads, out_heads
        self.attn_dropout, self.negative_slope = attn_dropout, negative_slope
        super().__init__(in_channels, hidden_channels, out_channels, *args, **kwargs)

    conv_class = GATLayer
    accepts_adjacency = True

    def init_conv(self, in_channels, out_channels, last):
        if last:
            return self.conv_class(in_channels, out_channels, heads=self.out_heads, concat=False,
                                   dropout=self.attn_dropout, negative_slope=self.negative_slope)
        return self.conv_class(in_channels, out_channels // self.heads, heads=self.heads, concat=True,
                               dropout=self.attn_dropout, negative_slope=self.negative_slope)


class GATv2(GAT):
    """GATv2 (Brody, Alon & Yahav, ICLR 2022): "dynamic" attention, on PyG's ``GATv2Conv``.

    The attention scores apply the LeakyReLU before the attention vector, so the ranking of
    neighbours can depend on the query node. Same arguments and widths as :class:`GAT`.
    """

    conv_class = GATv2Conv
    accepts_adjacency = False  # its attention needs per-edge feature vectors: edge_index path


__all__ = ["GNNBase", "BasicGNN", "GCN", "GraphSAGE", "GAT", "GATv2", "GCNLayer", "SAGELayer", "GATLayer",
           "gcn_operator", "make_activation", "make_norm", "reset_in_order"]
