r"""RevGAT: a GAT whose middle layers are grouped reversible blocks.

The activations of those layers need not be stored for the backward pass: it recomputes them
from the layer outputs (PyG's ``GroupAddRev``).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import Tensor, nn
from torch_geometric.nn import GroupAddRev

from mmgraph.errors import ConfigError
from mmgraph.nn.basic_gnn import GATLayer, GNNBase, reset_in_order, make_activation, make_norm
from mmgraph.nn.sparse import Adjacency, ToAdjacency


@contextlib.contextmanager
def _frozen_running_stats(module: nn.Module) -> Iterator[None]:
    """Batch statistics as usual, but leave BatchNorm running statistics untouched."""
    norms = [m for m in module.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for m in norms:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in norms:
            m.track_running_stats = True


class _RevGATBlock(nn.Module):
    """One group of a reversible layer: norm -> activation -> shared dropout mask -> GATConv."""

    def __init__(self, channels: int, heads: int, norm: str | None, activation: str,
                 negative_slope: float, residual: bool):
        super().__init__()
        self.norm = make_norm(norm, channels)
        self.act = make_activation(activation)
        # No attention dropout here: the block is recomputed in the backward pass and must
        # give the same result every time, so its only randomness is the shared mask.
        self.conv = GATLayer(channels, channels // heads, heads=heads, concat=True,
                             negative_slope=negative_slope, residual=residual)

    def reset_parameters(self) -> None:
        reset_in_order(self)

    def forward(self, x: Tensor, edge_index: Tensor | Adjacency, mask: Tensor) -> Tensor:
        return self.conv(self.act(self.norm(x)) * mask, edge_index)


class _ReversibleLayer(GroupAddRev):
    """PyG's grouped additive coupling whose recomputations leave BatchNorm statistics alone.

    With memory savings the blocks run three times per training step (forward, inverse and
    recomputation in the backward pass); only the first run updates the running statistics,
    so they match those of the same network run without memory savings.
    """

    def _fn_apply(self, args, fn, fn_inverse):
        if self.disable or not self.training:
            return super()._fn_apply(args, fn, fn_inverse)
        first = True

        def forward_updating_once(*inputs):
            nonlocal first
            if first:
                first = False
                return fn(*inputs)
            with _frozen_running_stats(self):
                return fn(*inputs)

        def inverse_frozen(*inputs):
            with _frozen_running_stats(self):
                return fn_inverse(*inputs)

        return super()._fn_apply(args, forward_updating_once, inverse_frozen)


class RevGAT(GNNBase):
    r"""Reversible GAT (Li, Müller, Ghanem & Koltun, ICML 2021), as in MAGB and ogbn-arxiv.

    Layer 1 is a ``GATConv`` with ``heads`` concatenated heads; layers 2 .. L-1 are grouped
    reversible layers: the hidden channels are split into ``num_groups`` groups and group
    :math:`i` computes :math:`y_i = x_i + f_i(y_{i-1})` (with :math:`y_0 = \sum_{j\ge2} x_j`),
    where :math:`f_i` = norm -> activation -> dropout -> ``GATConv``. One dropout mask is
    drawn per forward pass and shared by all reversible layers, so the inverse
    :math:`x_i = y_i - f_i(y_{i-1})` recovers the inputs exactly and the inputs' memory is
    freed; the backward pass recomputes them (PyG's ``GroupAddRev``). Then norm ->
    activation -> dropout -> an output ``GATConv`` averaging ``out_heads`` heads.

    Every ``GATConv`` is a :class:`~mmgraph.nn.basic_gnn.GATLayer`: the graph is turned into
    one :class:`~mmgraph.nn.sparse.Adjacency` per call (or taken as given), and each layer
    computes its attention on ``[E, heads]`` and aggregates with sparse products.

    Differences from the DGL original used by MAGB: PyG's ``GATConv`` (attention on both
    endpoints, no symmetric degree normalisation, no edge dropout).

    Args:
        in_channels: input feature size.
        hidden_channels: total hidden width (``heads`` x per-head width); must be divisible
            by ``heads * num_groups``.
        out_channels: output size.
        num_layers: GAT layers in all, >= 2 (``num_layers - 2`` of them reversible).
        dropout: the shared dropout of the reversible layers and the dropout before the output.
        input_dropout: dropout on the input features.
        norm: normalisation inside each reversible block and before the output layer.
        activation: activation inside each reversible block and before the output layer.
        heads: attention heads of the input layer and of every reversible block.
        out_heads: attention heads of the output layer (averaged).
        num_groups: groups of a reversible layer (>= 2).
        attn_dropout: dropout on the attention coefficients of the input and output layers
            (not inside reversible blocks, which must recompute identically).
        negative_slope: LeakyReLU slope inside the attention.
        residual: linear residual connection inside every ``GATConv`` (as in RevGAT).
        reversible: ``True`` frees and recomputes the reversible layers' inputs (less memory,
            about twice the compute of those layers in the backward pass); ``False`` runs the
            same network with ordinary autograd.

    Shapes:
        - input: ``x [N, in_channels]``; graph: an :class:`~mmgraph.nn.sparse.Adjacency`,
          ``edge_index [2, E]`` or sparse ``adj_t [N, N]``
        - output: ``[N, out_channels]``
    """

    min_layers = 2
    accepts_adjacency = True

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 3, dropout: float = 0.5, input_dropout: float = 0.0,
                 norm: str | None = "batch", activation: str = "relu", heads: int = 3,
                 out_heads: int = 1, num_groups: int = 2, attn_dropout: float = 0.0,
                 negative_slope: float = 0.2, residual: bool = True, reversible: bool = True):
        super().__init__(in_channels, hidden_channels, out_channels, num_layers, dropout,
                         input_dropout, norm, activation)
        for name, value, low in (("heads", heads, 1), ("out_heads", out_heads, 1),
                                 ("num_groups", num_groups, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"RevGAT: {name} must be an integer >= {low}, got {value!r}")
        if hidden_channels % (heads * num_groups):
            raise ConfigError(f"RevGAT: hidden_channels ({hidden_channels}) must be divisible by "
                              f"heads * num_groups ({heads} * {num_groups} = {heads * num_groups})")
        if not isinstance(attn_dropout, (int, float)) or not 0.0 <= attn_dropout < 1.0:
            raise ConfigError(f"RevGAT: attn_dropout must be in [0, 1), got {attn_dropout!r}")
        self.num_groups, self.reversible = num_groups, reversible
        self.to_adjacency = ToAdjacency()  # once per call, self loops included, for all layers
        self.conv_in = GATLayer(in_channels, hidden_channels // heads, heads=heads, concat=True,
                                dropout=attn_dropout, negative_slope=negative_slope,
                                residual=residual)
        group = hidden_channels // num_groups
        self.rev_layers = nn.ModuleList(
            _ReversibleLayer(nn.ModuleList(
                _RevGATBlock(group, heads, norm, activation, negative_slope, residual)
                for _ in range(num_groups)), disable=not reversible)
            for _ in range(num_layers - 2))
        self.norm = make_norm(norm, hidden_channels)
        self.act = make_activation(activation)
        self.conv_out = GATLayer(hidden_channels, out_channels, heads=out_heads, concat=False,
                                 dropout=attn_dropout, negative_slope=negative_slope,
                                 residual=residual)
        self.input_drop = nn.Dropout(input_dropout)
        # Applied to a tensor of ones, this module draws the shared mask (scaled by
        # 1 / (1 - p) in training, all ones in evaluation).
        self.mask_drop = nn.Dropout(dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, edge_index: Tensor | Adjacency) -> Tensor:
        adj = self.to_adjacency(edge_index, x.size(0))
        h = self.conv_in(self.input_drop(x), adj)
        if self.rev_layers:
            mask = self.mask_drop(torch.ones_like(h))
            for layer in self.rev_layers:
                h = layer(h, adj, mask)
        return self.conv_out(self.drop(self.act(self.norm(h))), adj)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, groups={self.num_groups}, reversible={self.reversible}"


__all__ = ["RevGAT"]
