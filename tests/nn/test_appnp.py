"""APPNP and its personalised-PageRank propagation (mmgraph.nn.appnp, mmgraph.nn.propagation)."""
import pytest
import torch

from mmgraph.errors import ConfigError
from mmgraph.nn import APPNP
from mmgraph.nn.sparse import Adjacency
from tests.nn.common import F_IN, HIDDEN, OUT, N, csr_adj_t, dense_a_hat, ring_graph


def test_appnp_with_alpha_one_is_its_mlp():
    torch.manual_seed(0)
    x, ei = ring_graph()
    model = APPNP(F_IN, HIDDEN, OUT, K=5, alpha=1.0).eval()
    assert torch.equal(model(x, ei), model.mlp(x, ei))
    assert not torch.allclose(APPNP(F_IN, HIDDEN, OUT, K=5, alpha=0.1).eval()(x, ei),
                              model.mlp(x, ei))


def test_appnp_matches_dense_personalised_pagerank():
    torch.manual_seed(0)
    x, ei = ring_graph()
    model = APPNP(F_IN, HIDDEN, OUT, K=4, alpha=0.2).eval()
    h = model.mlp(x, ei)
    a_hat, z = dense_a_hat(ei), h
    for _ in range(4):
        z = 0.8 * a_hat @ z + 0.2 * h
    assert torch.allclose(model(x, ei), z, atol=1e-5)


@pytest.mark.parametrize("form", ["edge_index", "adjacency", "adj_t"])
def test_appnp_edge_dropout_is_drawn_afresh_at_every_step(form):
    x, ei = ring_graph()
    graph = {"edge_index": ei, "adjacency": Adjacency.from_edge_index(ei, N), "adj_t": csr_adj_t(ei)}[form]
    model = APPNP(F_IN, HIDDEN, OUT, K=5, edge_dropout=0.5).train()
    seen, dropped = [], []
    model.prop.edge_drop.register_forward_pre_hook(lambda mod, args: seen.append(args[0].clone()))
    model.prop.edge_drop.register_forward_hook(lambda mod, args, out: dropped.append(out == 0))
    model(x, graph)
    assert len(seen) == 5
    assert all(torch.equal(s, seen[0]) for s in seen)  # always the normalised weights
    assert (seen[0] > 0).all() and seen[0].max() <= 1.0
    assert not all(torch.equal(d, dropped[0]) for d in dropped)  # a new mask each step


@pytest.mark.parametrize("kwargs, match", [
    ({"K": -1}, "APPNP: K .* must be an integer >= 0, got -1"),
    ({"alpha": 1.5}, r"APPNP: alpha .* must be in \[0, 1\], got 1.5"),
    ({"edge_dropout": 1.0}, r"APPNP: edge_dropout must be in \[0, 1\), got 1.0"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        APPNP(F_IN, HIDDEN, OUT, **kwargs)
