r"""APPNP: an MLP, then ``K`` steps of personalised-PageRank propagation."""
from __future__ import annotations

from torch import Tensor

from mmgraph.errors import ConfigError
from mmgraph.nn.basic_gnn import GNNBase
from mmgraph.nn.mlp import MLP
from mmgraph.nn.propagation import PPRPropagation, check_hops
from mmgraph.nn.sparse import Adjacency


class APPNP(GNNBase):
    r"""Predict, then propagate (Gasteiger, Bojchevski & Günnemann, ICLR 2019).

    An MLP computes :math:`H = f_\theta(X)` without the graph; then ``K`` steps of
    approximate personalised PageRank, :math:`Z \leftarrow (1-\alpha)\hat A Z + \alpha H`,
    spread the predictions (:class:`~mmgraph.nn.propagation.PPRPropagation`). ``alpha=1``
    returns the MLP's output.

    Args:
        in_channels, hidden_channels, out_channels, num_layers, dropout, input_dropout, norm,
            activation: of the MLP, as in :class:`~mmgraph.nn.basic_gnn.BasicGNN`.
        K: propagation steps (>= 0).
        alpha: teleport (restart) probability, in [0, 1].
        edge_dropout: dropout on the normalised edge weights during propagation (training only).
        cached: keep the adjacency built from an ``edge_index`` while called with the same
            graph (see :class:`~mmgraph.nn.sparse.ToAdjacency`).

    Shapes:
        - input: ``x [N, in_channels]``; graph: an :class:`~mmgraph.nn.sparse.Adjacency`,
          ``edge_index [2, E]`` or sparse ``adj_t [N, N]``
        - output: ``[N, out_channels]``
    """

    accepts_adjacency = True

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 2, dropout: float = 0.5, input_dropout: float = 0.0,
                 norm: str | None = "batch", activation: str = "relu", K: int = 10,
                 alpha: float = 0.1, edge_dropout: float = 0.0, cached: bool = False):
        super().__init__(in_channels, hidden_channels, out_channels, num_layers, dropout,
                         input_dropout, norm, activation)
        check_hops(type(self).__name__, K)
        if not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"APPNP: alpha (teleport probability) must be in [0, 1], got {alpha!r}")
        if not isinstance(edge_dropout, (int, float)) or not 0.0 <= edge_dropout < 1.0:
            raise ConfigError(f"APPNP: edge_dropout must be in [0, 1), got {edge_dropout!r}")
        self.K, self.alpha = K, alpha
        self.mlp = MLP(in_channels, hidden_channels, out_channels, num_layers=num_layers,
                       dropout=dropout, input_dropout=input_dropout, norm=norm, activation=activation)
        self.prop = PPRPropagation(K, alpha, edge_dropout=edge_dropout, cached=cached)

    def forward(self, x: Tensor, edge_index: Tensor | Adjacency) -> Tensor:
        return self.prop(self.mlp(x, edge_index), edge_index)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, K={self.K}, alpha={self.alpha}"


__all__ = ["APPNP"]
