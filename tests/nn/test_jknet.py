"""JKNet (mmgraph.nn.jknet)."""
import pytest
import torch
from torch_geometric.nn import GCNConv, SAGEConv

from mmgraph.errors import ConfigError
from mmgraph.nn import JKNet
from mmgraph.nn.basic_gnn import GCNLayer, SAGELayer
from tests.nn.common import F_IN, HIDDEN, OUT, ring_graph


@pytest.mark.parametrize("mode, width", [("cat", 3 * HIDDEN), ("max", HIDDEN), ("lstm", HIDDEN)])
def test_jknet_modes(mode, width):
    torch.manual_seed(0)
    x, ei = ring_graph()
    model = JKNet(F_IN, HIDDEN, OUT, num_layers=3, mode=mode).train()
    assert model.lin.in_features == width
    model(x, ei).sum().backward()
    if mode == "lstm":
        assert model.jk.lstm.weight_ih_l0.grad.abs().sum() > 0

    # The combination sees every layer: record them and recombine by hand.
    model.eval()
    layers = []
    hooks = [d.register_forward_hook(lambda m, i, o: layers.append(o)) for d in [model.drop]]
    out = model(x, ei)
    for h in hooks:
        h.remove()
    assert len(layers) == 3
    if mode == "cat":
        assert torch.allclose(out, model.lin(torch.cat(layers, -1)))
    elif mode == "max":
        assert torch.allclose(out, model.lin(torch.stack(layers).max(0).values))


def test_jknet_conv_choice():
    """PyG's convolutions, with the sparse path of mmgraph.nn.basic_gnn."""
    gcn, sage = JKNet(F_IN, HIDDEN, OUT).convs, JKNet(F_IN, HIDDEN, OUT, conv="sage").convs
    assert all(type(c) is GCNLayer and isinstance(c, GCNConv) and c.normalize for c in gcn)
    assert all(type(c) is SAGELayer and isinstance(c, SAGEConv) and c.aggr == "mean" for c in sage)


@pytest.mark.parametrize("kwargs, match", [
    ({"mode": "sum"}, "JKNet: unknown mode 'sum'; choose one of: cat, max, lstm"),
    ({"conv": "gin"}, "JKNet: unknown conv 'gin'; choose one of: gcn, sage"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        JKNet(F_IN, HIDDEN, OUT, **kwargs)
