"""SGC and its propagation (mmgraph.nn.sgc, mmgraph.nn.propagation)."""
import pytest
import torch
from torch import nn

from mmgraph.errors import ConfigError
from mmgraph.nn import SGC
from mmgraph.nn.sparse import Adjacency
from tests.nn.common import F_IN, HIDDEN, OUT, N, csr_adj_t, dense_a_hat, ring_graph


@pytest.mark.parametrize("K", [0, 1, 3])
def test_sgc_is_a_linear_model_on_the_propagated_features(K):
    torch.manual_seed(0)
    x, ei = ring_graph()
    model = SGC(F_IN, HIDDEN, OUT, num_layers=1, K=K, cached=True).eval()
    (lin,) = [m for m in model.modules() if isinstance(m, nn.Linear)]
    expected = torch.linalg.matrix_power(dense_a_hat(ei), K) @ x @ lin.weight.T + lin.bias
    assert torch.allclose(model(x, ei), expected, atol=1e-5)
    assert torch.allclose(model(x, ei), expected, atol=1e-5)  # second call: from the cache
    assert torch.allclose(model(x, csr_adj_t(ei)), expected, atol=1e-5)
    assert torch.allclose(model(x, Adjacency.from_edge_index(ei, N)), expected, atol=1e-5)


def test_sgc_caches_the_propagation_and_reset_clears_it():
    x, ei = ring_graph()
    model = SGC(F_IN, HIDDEN, OUT, K=2, cached=True).eval()
    model(x, ei)
    assert model.prop._cache is not None and model.prop.to_adjacency._cache is not None
    model.reset_parameters()
    assert model.prop._cache is None and model.prop.to_adjacency._cache is None


def test_sgc_does_not_cache_features_that_need_a_gradient():
    x, ei = ring_graph()
    model = SGC(F_IN, HIDDEN, OUT, K=2, cached=True)
    model(x.requires_grad_(), ei)
    assert model.prop._cache is None


def test_bad_hops():
    with pytest.raises(ConfigError, match="SGC: K .* must be an integer >= 0, got -1"):
        SGC(F_IN, HIDDEN, OUT, K=-1)
