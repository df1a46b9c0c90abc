r"""SGC: parameter-free smoothing :math:`\hat A^K X`, then an MLP."""
from __future__ import annotations

from torch import Tensor

from mmgraph.nn.basic_gnn import GNNBase
from mmgraph.nn.mlp import MLP
from mmgraph.nn.propagation import SymmetricPropagation, check_hops
from mmgraph.nn.sparse import Adjacency


class SGC(GNNBase):
    r"""Simplified graph convolution (Wu et al., ICML 2019): :math:`\hat y = \mathrm{MLP}(\hat A^K X)`.

    The ``K``-step smoothing has no parameters, so with ``cached=True`` it is computed once and
    training costs no more than the MLP. With ``num_layers=1`` (the paper's model) the MLP is
    one ``Linear`` layer and the whole model is linear in ``X``; more layers add hidden layers
    of width ``hidden_channels`` with ``norm``, ``activation`` and ``dropout``.

    Args:
        in_channels: input feature size.
        hidden_channels: width of the MLP's hidden layers (unused when ``num_layers=1``).
        out_channels: output size.
        num_layers: layers of the MLP after the propagation (>= 1).
        dropout: dropout after each hidden MLP layer.
        input_dropout: dropout on the *propagated* features (so that the cache stays valid).
        norm: normalisation between MLP layers (``"batch"``, ``"layer"``, ``None``).
        activation: activation between MLP layers.
        K: propagation steps (>= 0; 0 gives a plain MLP).
        cached: compute :math:`\hat A^K X` once and reuse it while called with the same ``x``
            and graph (full-batch training; see
            :class:`~mmgraph.nn.propagation.SymmetricPropagation`).

    Shapes:
        - input: ``x [N, in_channels]``; graph: an :class:`~mmgraph.nn.sparse.Adjacency`,
          ``edge_index [2, E]`` or sparse ``adj_t [N, N]``
        - output: ``[N, out_channels]``
    """

    accepts_adjacency = True

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 1, dropout: float = 0.5, input_dropout: float = 0.0,
                 norm: str | None = "batch", activation: str = "relu", K: int = 2,
                 cached: bool = False):
        super().__init__(in_channels, hidden_channels, out_channels, num_layers, dropout,
                         input_dropout, norm, activation)
        check_hops(type(self).__name__, K)
        self.K = K
        self.prop = SymmetricPropagation(K, cached=cached)
        self.mlp = MLP(in_channels, hidden_channels, out_channels, num_layers=num_layers,
                       dropout=dropout, input_dropout=input_dropout, norm=norm, activation=activation)

    def forward(self, x: Tensor, edge_index: Tensor | Adjacency) -> Tensor:
        return self.mlp(self.prop(x, edge_index), edge_index)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, K={self.K}"


__all__ = ["SGC"]
