"""RevGAT (mmgraph.nn.revgat)."""
import pytest
import torch
from torch_geometric.nn import GATConv

from mmgraph.errors import ConfigError
from mmgraph.nn import RevGAT
from mmgraph.nn.sparse import Adjacency
from tests.nn.common import F_IN, HIDDEN, OUT, N, ring_graph

def _revgat_pair(**kwargs):
    torch.manual_seed(0)
    rev = RevGAT(F_IN, HIDDEN, OUT, num_layers=4, dropout=0.3, **kwargs)
    plain = RevGAT(F_IN, HIDDEN, OUT, num_layers=4, dropout=0.3, reversible=False, **kwargs)
    plain.load_state_dict(rev.state_dict())
    return rev, plain


@pytest.mark.parametrize("norm", ["batch", "layer"])
@pytest.mark.parametrize("form", ["edge_index", "adjacency"])
def test_revgat_reversible_gradients_equal_plain_autograd(norm, form):
    x, ei = ring_graph()
    graph = ei if form == "edge_index" else Adjacency.from_edge_index(ei, N)
    results = []
    for model in _revgat_pair(norm=norm):
        model.train()
        torch.manual_seed(1)  # same input dropout and same shared mask in both
        xg = x.clone().requires_grad_()
        model(xg, graph).pow(2).sum().backward()
        results.append(({n: p.grad for n, p in model.named_parameters()}, xg.grad,
                        {n: b.clone() for n, b in model.named_buffers()}))
    (g_rev, x_rev, b_rev), (g_plain, x_plain, b_plain) = results
    for name in g_plain:
        assert torch.allclose(g_rev[name], g_plain[name], rtol=1e-4, atol=1e-5), name
    assert torch.allclose(x_rev, x_plain, rtol=1e-4, atol=1e-5)
    # The backward recomputation does not update BatchNorm running statistics a second time.
    assert b_rev.keys() == b_plain.keys()
    for name in b_plain:
        assert torch.allclose(b_rev[name].float(), b_plain[name].float(), atol=1e-6), name


def test_revgat_frees_the_inputs_of_reversible_layers():
    x, ei = ring_graph()
    for model, freed in zip(_revgat_pair(), (True, False)):
        seen = []
        model.rev_layers[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
        model.train()(x, ei)
        assert (seen[0].untyped_storage().nbytes() == 0) == freed


def test_revgat_inverse_reconstructs_the_inputs():
    torch.manual_seed(0)
    _, ei = ring_graph()
    model = RevGAT(F_IN, HIDDEN, OUT, num_layers=3, dropout=0.5).train()
    layer = model.rev_layers[0]
    h = torch.randn(N, HIDDEN)
    mask = model.mask_drop(torch.ones_like(h))
    assert (mask == 0).any()
    for graph in (ei, Adjacency.from_edge_index(ei, N)):
        with torch.no_grad():
            y = layer(h.clone(), graph, mask)
            back = layer.inverse(y.clone(), graph, mask)
        assert not torch.allclose(y, h)
        assert torch.allclose(back, h, atol=1e-5)


def test_revgat_structure():
    model = RevGAT(F_IN, 24, OUT, num_layers=5, heads=3, num_groups=2, attn_dropout=0.2)
    assert len(model.rev_layers) == 3 and all(layer.num_groups == 2 for layer in model.rev_layers)
    block = model.rev_layers[0].convs[0]
    assert isinstance(block.conv, GATConv) and block.conv.heads == 3 and block.conv.out_channels == 4
    assert block.conv.dropout == 0.0  # reversible blocks must recompute identically
    assert model.conv_in.dropout == 0.2 and model.conv_out.dropout == 0.2
    assert model.conv_out.heads == 1 and not model.conv_out.concat
    assert len(RevGAT(F_IN, 24, OUT, num_layers=2).rev_layers) == 0



@pytest.mark.parametrize("kwargs, match", [
    ({"num_layers": 1}, "RevGAT: num_layers must be an integer >= 2, got 1"),
    ({"num_groups": 1}, "RevGAT: num_groups must be an integer >= 2, got 1"),
    ({"heads": 5}, r"RevGAT: hidden_channels \(12\) must be divisible by heads \* num_groups \(5 \* 2 = 10\)"),
    ({"attn_dropout": -0.5}, r"RevGAT: attn_dropout must be in \[0, 1\)"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match) as err:
        RevGAT(F_IN, HIDDEN, OUT, **kwargs)
    assert "\n" not in str(err.value)
