"""APPNP with PyG 2.8's ``APPNP`` propagation layer in place of mmgraph's ``PPRPropagation``.

Why mmgraph does not use PyG's layer (models/gnn.md, APPNP): with edge dropout, PyG's layer
feeds each step's dropped weights into the next step. ``PyGLayerAPPNP`` is mmgraph's
``APPNP`` (same MLP, same arguments) whose propagation is ``torch_geometric.nn.APPNP(K, alpha,
dropout=edge_dropout)`` on ``edge_index``. Compare both through the runner on the small synthetic
task of ``tests/nn/test_zoo.py``:

    .venv/bin/python benchmarks/runner_tables.py --env PYTHONPATH=benchmarks \\
        --title "APPNP: mmgraph's propagation vs PyG's APPNP layer" --out benchmarks/results/appnp_pyg_layer.md \\
        "model=appnp $SMALL" "model=appnp model.module._target_=appnp_pyg_layer.PyGLayerAPPNP $SMALL"

with SMALL = the overrides of ``tests/nn/test_zoo.py`` (see the results file).
"""
from __future__ import annotations

from torch import Tensor
from torch_geometric.nn import APPNP as PyGAPPNP

from mmgraph.nn import APPNP


class PyGLayerAPPNP(APPNP):
    """mmgraph's APPNP with PyG's propagation layer (called with ``edge_index``)."""

    accepts_adjacency = False

    def __init__(self, *args, edge_dropout: float = 0.0, **kwargs):
        super().__init__(*args, edge_dropout=edge_dropout, **kwargs)
        self.prop = PyGAPPNP(K=self.K, alpha=self.alpha, dropout=edge_dropout, cached=False)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.prop(self.mlp(x, edge_index), edge_index)
