"""GCNII and its layer (mmgraph.nn.gcnii)."""
import pytest
import torch
from torch import nn
from torch_geometric.nn import GCN2Conv

from mmgraph.errors import ConfigError
from mmgraph.nn import GCNII
from mmgraph.nn.gcnii import GCN2Layer
from mmgraph.nn.sparse import Adjacency
from tests.nn.common import F_IN, HIDDEN, OUT, random_graph, ring_graph


def test_gcnii_layers_and_identity_mapping():
    model = GCNII(F_IN, HIDDEN, OUT, num_layers=3, theta=0.5, alpha=0.2, shared_weights=False)
    assert all(isinstance(c, GCN2Conv) for c in model.convs) and len(model.convs) == 3
    assert [c.beta for c in model.convs] == pytest.approx([torch.log(torch.tensor(0.5 / l + 1)).item()
                                                          for l in (1, 2, 3)])
    assert all(c.weight2 is not None and c.alpha == 0.2 for c in model.convs)  # GCNII*
    assert isinstance(GCNII(F_IN, HIDDEN, OUT, norm=None).norms[0], nn.Identity)


def test_gcnii_with_alpha_one_ignores_the_graph():
    torch.manual_seed(0)
    x, ei = ring_graph()
    other = torch.tensor([[0, 3], [3, 0]])
    only_x0 = GCNII(F_IN, HIDDEN, OUT, num_layers=3, alpha=1.0).eval()
    assert torch.allclose(only_x0(x, ei), only_x0(x, other))
    smooth = GCNII(F_IN, HIDDEN, OUT, num_layers=3, alpha=0.1).eval()
    assert not torch.allclose(smooth(x, ei), smooth(x, other))


@pytest.mark.parametrize("kwargs", [{}, {"shared_weights": False}, {"normalize": False},
                                    {"add_self_loops": False}])
def test_gcn2_layer_on_an_adjacency_equals_pyg_gcn2conv(kwargs):
    """Values and gradients equal PyG's GCN2Conv on edge_index (self loops and duplicates too)."""
    torch.manual_seed(0)
    ei = random_graph()
    ref = GCN2Conv(16, alpha=0.2, theta=0.5, layer=2, **kwargs)
    layer = GCN2Layer(16, alpha=0.2, theta=0.5, layer=2, **kwargs)
    layer.load_state_dict(ref.state_dict())
    x, x0 = torch.randn(40, 16), torch.randn(40, 16)
    results = []
    for conv, graph in ((ref, ei), (layer, Adjacency.from_edge_index(ei, 40))):
        xs = (x.clone().requires_grad_(), x0.clone().requires_grad_())
        out = conv(*xs, graph)
        out.square().sum().backward()
        results.append((out, *(t.grad for t in xs), *(p.grad for p in conv.parameters())))
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("kwargs, match", [
    ({"theta": 0.0}, "GCNII: theta must be > 0, got 0.0"),
    ({"alpha": -0.1}, r"GCNII: alpha .* must be in \[0, 1\]"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        GCNII(F_IN, HIDDEN, OUT, **kwargs)
