r"""JKNet: a GCN (or GraphSAGE) stack whose layer outputs are combined by jumping knowledge."""
from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import JumpingKnowledge

from mmgraph.errors import ConfigError
from mmgraph.nn.basic_gnn import GCNLayer, GNNBase, SAGELayer, make_activation, make_norm
from mmgraph.nn.sparse import Adjacency, ToAdjacency

_JK_MODES = ("cat", "max", "lstm")
_JK_CONVS = ("gcn", "sage")


class JKNet(GNNBase):
    r"""Jumping knowledge network (Xu et al., ICML 2018).

    ``num_layers`` graph convolutions of width ``hidden_channels``, each followed by ``norm``,
    ``activation`` and ``dropout``; the outputs of *all* layers are combined per node by
    ``mode`` and a linear layer maps the combination to the output. Each node thus chooses
    its own effective neighbourhood range.

    Args:
        in_channels: input feature size.
        hidden_channels: width of every convolution.
        out_channels: output size.
        num_layers: number of graph convolutions (>= 1).
        dropout: dropout after each convolution.
        input_dropout: dropout on the input features.
        norm: normalisation after each convolution.
        activation: activation after each convolution.
        mode: layer aggregation: ``"cat"`` (concatenation), ``"max"`` (element-wise max
            pooling) or ``"lstm"`` (bi-LSTM attention over the layers).
        conv: the convolution, ``"gcn"`` (``GCNConv``) or ``"sage"`` (``SAGEConv``, mean), as
            :class:`~mmgraph.nn.basic_gnn.GCNLayer` / :class:`~mmgraph.nn.basic_gnn.SAGELayer`.
        cached: keep the adjacency built from an ``edge_index`` while called with the same
            graph (see :class:`~mmgraph.nn.sparse.ToAdjacency`).

    Shapes:
        - input: ``x [N, in_channels]``; graph: an :class:`~mmgraph.nn.sparse.Adjacency`,
          ``edge_index [2, E]`` or sparse ``adj_t [N, N]``
        - output: ``[N, out_channels]``
    """

    accepts_adjacency = True

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 4, dropout: float = 0.5, input_dropout: float = 0.0,
                 norm: str | None = "batch", activation: str = "relu", mode: str = "cat",
                 conv: str = "gcn", cached: bool = False):
        super().__init__(in_channels, hidden_channels, out_channels, num_layers, dropout,
                         input_dropout, norm, activation)
        if mode not in _JK_MODES:
            raise ConfigError(f"JKNet: unknown mode {mode!r}; choose one of: {', '.join(_JK_MODES)}")
        if conv not in _JK_CONVS:
            raise ConfigError(f"JKNet: unknown conv {conv!r}; choose one of: {', '.join(_JK_CONVS)}")
        self.mode = mode

        def make_conv(c_in: int) -> nn.Module:
            if conv == "gcn":
                return GCNLayer(c_in, hidden_channels)
            return SAGELayer(c_in, hidden_channels, aggr="mean")

        self.convs = nn.ModuleList(
            make_conv(in_channels if i == 0 else hidden_channels) for i in range(num_layers))
        self.norms = nn.ModuleList(make_norm(norm, hidden_channels) for _ in range(num_layers))
        self.act = make_activation(activation)
        self.to_adjacency = ToAdjacency(cached)  # once for all layers
        self.jk = (JumpingKnowledge("lstm", channels=hidden_channels, num_layers=num_layers)
                   if mode == "lstm" else JumpingKnowledge(mode))
        self.lin = nn.Linear(hidden_channels * (num_layers if mode == "cat" else 1), out_channels)
        self.input_drop = nn.Dropout(input_dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, edge_index: Tensor | Adjacency) -> Tensor:
        adj = self.to_adjacency(edge_index, x.size(0))
        h = self.input_drop(x)
        layers = []
        for conv, norm in zip(self.convs, self.norms):
            h = self.drop(self.act(norm(conv(h, adj))))
            layers.append(h)
        return self.lin(self.jk(layers))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mode={self.mode}"


__all__ = ["JKNet"]
