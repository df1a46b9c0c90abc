import pytest
import torch
from torch import nn

from mmgraph.errors import ConfigError
from mmgraph.nn import GAT, GCN, MLP, GATv2, GraphSAGE
from tests.nn.common import assert_reset_is_seeded

MODELS = [MLP, GCN, GraphSAGE, GAT, GATv2]


def _graph():
    x = torch.randn(6, 5)
    ei = torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]])
    return x, torch.cat([ei, ei.flip(0)], 1)


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_shapes_and_layer_count(cls, num_layers):
    x, ei = _graph()
    model = cls(5, 12, 3, num_layers=num_layers, heads=3) if cls in (GAT, GATv2) else cls(5, 12, 3, num_layers=num_layers)
    assert model(x, ei).shape == (6, 3)
    assert len(model.convs) == num_layers and len(model.norms) == num_layers - 1


@pytest.mark.parametrize("cls", MODELS)
def test_reset_parameters_is_a_seeded_reinitialisation(cls):
    model = cls(5, 12, 3)
    assert_reset_is_seeded(model)


def test_mlp_ignores_the_graph_and_gnns_do_not():
    x, ei = _graph()
    for cls, uses_graph in [(MLP, False), (GCN, True), (GraphSAGE, True), (GAT, True), (GATv2, True)]:
        torch.manual_seed(0)
        model = cls(5, 12, 3, dropout=0.0).eval()
        other = torch.tensor([[0, 2], [3, 5]])
        changed = not torch.allclose(model(x, ei), model(x, other))
        assert changed == uses_graph, cls.__name__


def test_dropout_is_a_module_and_follows_train_eval():
    x, ei = _graph()
    model = GCN(5, 64, 3, dropout=0.9, input_dropout=0.5)
    assert isinstance(model.drop, nn.Dropout)
    model.eval()
    assert torch.equal(model(x, ei), model(x, ei))
    model.train()
    assert not torch.equal(model(x, ei), model(x, ei))


def test_options_are_honoured():
    model = GCN(5, 8, 3, norm="layer", activation="elu")
    assert isinstance(model.norms[0], nn.LayerNorm) and isinstance(model.act, nn.ELU)
    assert isinstance(GCN(5, 8, 3, norm=None).norms[0], nn.Identity)
    gat = GAT(5, 16, 3, heads=4, out_heads=2, attn_dropout=0.3)
    assert gat.convs[0].heads == 4 and gat.convs[0].out_channels == 4
    assert gat.convs[1].heads == 2 and not gat.convs[1].concat and gat.convs[1].dropout == 0.3


@pytest.mark.parametrize("kwargs, match", [
    ({"num_layers": 0}, "num_layers"),
    ({"dropout": 1.5}, "dropout"),
    ({"norm": "group"}, "unknown norm"),
    ({"activation": "swish"}, "unknown activation"),
])
def test_bad_options_raise_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        GCN(5, 8, 3, **kwargs)


def test_gat_heads_must_divide_hidden():
    with pytest.raises(ConfigError, match="divisible"):
        GAT(5, 10, 3, heads=3)


def test_gatv2_uses_dynamic_attention_layers():
    from torch_geometric.nn import GATConv, GATv2Conv

    model = GATv2(5, 12, 3, heads=3)
    assert all(type(c) is GATv2Conv for c in model.convs)
    assert all(isinstance(c, GATConv) and not isinstance(c, GATv2Conv) for c in GAT(5, 12, 3, heads=3).convs)


def test_gcn_cache_is_not_reused_for_another_graph():
    """``cached=True`` keeps PyG's normalisation only while called with the same graph."""
    x, ei = _graph()
    torch.manual_seed(0)
    model = GCN(5, 8, 3, cached=True).eval()
    fresh = GCN(5, 8, 3, cached=False).eval()
    fresh.load_state_dict(model.state_dict())
    assert torch.allclose(model(x, ei), fresh(x, ei))
    other = torch.tensor([[0, 2], [3, 5]])
    assert torch.allclose(model(x, other), fresh(x, other))
    ei[1, 0] = 3  # changed in place
    assert torch.allclose(model(x, ei), fresh(x, ei))


def test_common_arguments_are_checked_by_the_base_with_the_model_name():
    from mmgraph.nn import GNNBase

    assert all(issubclass(cls, GNNBase) for cls in MODELS)
    with pytest.raises(ConfigError, match="GraphSAGE: hidden_channels must be a positive integer"):
        GraphSAGE(5, 0, 3)
    with pytest.raises(ConfigError, match=r"MLP: input_dropout must be in \[0, 1\)"):
        MLP(5, 8, 3, input_dropout=1.0)
