"""The graph-free baseline: an MLP on node features."""
from __future__ import annotations

from torch import Tensor, nn

from mmgraph.nn.basic_gnn import BasicGNN


class MLP(BasicGNN):
    """A multi-layer perceptron on node features alone (the graph-free baseline).

    Shares the stacking of :class:`BasicGNN`; ``edge_index`` is accepted and ignored so that
    every node model has the same call signature.
    """

    accepts_adjacency = True

    def init_conv(self, in_channels, out_channels, last):
        return _IgnoreGraph(nn.Linear(in_channels, out_channels))


class _IgnoreGraph(nn.Module):
    def __init__(self, lin: nn.Linear):
        super().__init__()
        self.lin = lin

    def reset_parameters(self):
        self.lin.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor | None = None) -> Tensor:
        return self.lin(x)
