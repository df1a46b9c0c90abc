r"""GCNII: a deep GCN with initial residual and identity mapping, on PyG's ``GCN2Conv``."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import GCN2Conv

from mmgraph.errors import ConfigError
from mmgraph.nn.basic_gnn import GNNBase, gcn_operator, make_activation, make_norm
from mmgraph.nn.sparse import Adjacency, ToAdjacency, spmm


class GCN2Layer(GCN2Conv):
    r"""PyG's ``GCN2Conv``; with an :class:`~mmgraph.nn.sparse.Adjacency` it aggregates with the
    adjacency's cached normalisation and one sparse product, then mixes as ``GCN2Conv`` does:

    .. math::
        ((1-\alpha)\hat A h + \alpha h^{(0)})((1-\beta) I + \beta W_1)

    (GCNII*, ``shared_weights=False``: :math:`W_2` for the :math:`h^{(0)}` part).
    """

    def forward(self, x, x_0, edge_index, edge_weight=None):  # type: ignore[override]
        if not isinstance(edge_index, Adjacency) or edge_weight is not None:
            return super().forward(x, x_0, edge_index, edge_weight)
        adj, weight = gcn_operator(edge_index, self.normalize, self.add_self_loops, x)
        h = spmm(adj, weight, x) * (1.0 - self.alpha)
        h_0 = self.alpha * x_0[:h.size(0)]
        beta = self.beta
        if self.weight2 is None:
            h = h + h_0
            return torch.addmm(h, h, self.weight1, beta=1.0 - beta, alpha=beta)
        out = torch.addmm(h, h, self.weight1, beta=1.0 - beta, alpha=beta)
        return out + torch.addmm(h_0, h_0, self.weight2, beta=1.0 - beta, alpha=beta)


class GCNII(GNNBase):
    r"""GCN with initial residual and identity mapping (Chen et al., ICML 2020), on ``GCN2Conv``.

    A linear layer maps the input to :math:`h^{(0)}` (followed by the activation); each of the
    ``num_layers`` layers computes

    .. math::
        h^{(l)} = \sigma\Big(\mathrm{norm}\big(((1-\alpha)\hat A h^{(l-1)} + \alpha h^{(0)})
                  ((1-\beta_l) I + \beta_l W_l)\big)\Big), \quad \beta_l = \log(\theta / l + 1),

    with dropout before every layer, and a linear layer maps the last one to the output. As in
    the paper there is no normalisation by default: BatchNorm after each of many dropout-fed
    layers makes the evaluation-mode network drift far from the trained one (see
    ``models/gnn.md``); ``norm="layer"`` is safe.

    Args:
        in_channels: input feature size.
        hidden_channels: width of every ``GCN2Conv`` layer.
        out_channels: output size.
        num_layers: number of ``GCN2Conv`` layers (the two linear layers not counted).
        dropout: dropout before every ``GCN2Conv`` layer and before the output layer.
        input_dropout: dropout on the input features.
        norm: normalisation after each ``GCN2Conv`` (``None``, ``"layer"``, ``"batch"``).
        activation: activation after the input layer and after each ``GCN2Conv``.
        alpha: strength of the initial residual, in [0, 1].
        theta: controls the identity mapping strength :math:`\beta_l` (> 0; the paper's
            :math:`\lambda`).
        shared_weights: one weight for the smoothed and the initial representation (GCNII);
            ``False`` gives GCNII* with separate weights.
        cached: keep the adjacency built from an ``edge_index`` while called with the same
            graph (see :class:`~mmgraph.nn.sparse.ToAdjacency`); all layers share one per call
            anyway, and an :class:`~mmgraph.nn.sparse.Adjacency` caches its own normalisation.

    Shapes:
        - input: ``x [N, in_channels]``; graph: an :class:`~mmgraph.nn.sparse.Adjacency`,
          ``edge_index [2, E]`` or sparse ``adj_t [N, N]``
        - output: ``[N, out_channels]``
    """

    accepts_adjacency = True

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 16, dropout: float = 0.5, input_dropout: float = 0.0,
                 norm: str | None = None, activation: str = "relu", alpha: float = 0.1,
                 theta: float = 0.5, shared_weights: bool = True, cached: bool = False):
        super().__init__(in_channels, hidden_channels, out_channels, num_layers, dropout,
                         input_dropout, norm, activation)
        if not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"GCNII: alpha (initial residual) must be in [0, 1], got {alpha!r}")
        if not isinstance(theta, (int, float)) or theta <= 0:
            raise ConfigError(f"GCNII: theta must be > 0, got {theta!r}")
        self.lin_in = nn.Linear(in_channels, hidden_channels)
        self.convs = nn.ModuleList(
            GCN2Layer(hidden_channels, alpha=alpha, theta=theta, layer=i + 1,
                      shared_weights=shared_weights) for i in range(num_layers))
        self.to_adjacency = ToAdjacency(cached)  # once for all layers
        self.norms = nn.ModuleList(make_norm(norm, hidden_channels) for _ in range(num_layers))
        self.act = make_activation(activation)
        self.lin_out = nn.Linear(hidden_channels, out_channels)
        self.input_drop = nn.Dropout(input_dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, edge_index: Tensor | Adjacency) -> Tensor:
        adj = self.to_adjacency(edge_index, x.size(0))
        h = h0 = self.act(self.lin_in(self.input_drop(x)))
        for conv, norm in zip(self.convs, self.norms):
            h = self.act(norm(conv(self.drop(h), h0, adj)))
        return self.lin_out(self.drop(h))


__all__ = ["GCNII", "GCN2Layer"]
