"""What SGC, APPNP, GCNII, JKNet and RevGAT share: arguments, reset, dropout, one sparse path.

Each model's own behaviour is tested in ``test_<model>.py``.
"""
import copy

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from torch import nn
from torch_geometric.nn import APPNP as PyGAPPNP
from torch_geometric.nn import SGConv

import mmgraph.bench  # noqa: F401  (registers the data-root resolver)
from mmgraph.bench.runner import run
from mmgraph.errors import ConfigError
from mmgraph.nn import APPNP, GCNII, SGC, GNNBase, JKNet, RevGAT
from mmgraph.nn.sparse import Adjacency
from mmgraph.paths import config_dir
from tests.nn.common import F_IN, HIDDEN, OUT, N, assert_reset_is_seeded, csr_adj_t, ring_graph

# Small instances of every model (RevGAT: 12 = 3 heads x 2 groups x 2 channels).
FACTORIES = {
    "sgc": lambda **kw: SGC(F_IN, HIDDEN, OUT, **{"K": 2, **kw}),
    "sgc_mlp": lambda **kw: SGC(F_IN, HIDDEN, OUT, **{"K": 2, "num_layers": 2, **kw}),
    "appnp": lambda **kw: APPNP(F_IN, HIDDEN, OUT, **{"K": 4, **kw}),
    "gcnii": lambda **kw: GCNII(F_IN, HIDDEN, OUT, **{"num_layers": 4, **kw}),
    "jknet": lambda **kw: JKNet(F_IN, HIDDEN, OUT, **{"num_layers": 3, **kw}),
    "jknet_sage": lambda **kw: JKNet(F_IN, HIDDEN, OUT, **{"num_layers": 3, "conv": "sage", **kw}),
    "jknet_lstm": lambda **kw: JKNet(F_IN, HIDDEN, OUT, **{"num_layers": 3, "mode": "lstm", **kw}),
    "revgat": lambda **kw: RevGAT(F_IN, HIDDEN, OUT, **{"num_layers": 4, **kw}),
}
CLASSES = {"sgc": SGC, "appnp": APPNP, "gcnii": GCNII, "jknet": JKNet, "revgat": RevGAT}
CACHED = ["sgc", "sgc_mlp", "appnp", "gcnii", "jknet", "jknet_sage"]  # those with `cached`


def _training_kwargs(name):
    """Every source of randomness switched on: dropout, and APPNP's edge dropout."""
    return {"dropout": 0.3, "input_dropout": 0.2, **({"edge_dropout": 0.5} if name == "appnp" else {})}


def _loss_and_grads(model, x, graph, y, seed=1):
    model.zero_grad()
    x = x.clone().requires_grad_()
    torch.manual_seed(seed)  # the same dropout masks on every path
    out = model(x, graph)
    loss = F.cross_entropy(out, y)
    loss.backward()
    return out.detach(), x.grad, {n: p.grad.clone() for n, p in model.named_parameters()}


# ---------------------------------------------------------------- shared contract

@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_shapes_and_gradients_flow(name):
    torch.manual_seed(0)
    x, ei = ring_graph()
    model = FACTORIES[name]().train()
    x = x.clone().requires_grad_()
    out = model(x, ei)
    assert out.shape == (N, OUT)
    out.logsumexp(-1).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {pname}"
        assert torch.isfinite(p.grad).all(), pname
    assert model.eval()(x, ei).shape == (N, OUT)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_models_share_the_base(name):
    model = FACTORIES[name]()
    assert isinstance(model, GNNBase) and model.accepts_adjacency
    assert (model.in_channels, model.hidden_channels, model.out_channels) == (F_IN, HIDDEN, OUT)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_reset_parameters_is_a_seeded_reinitialisation(name):
    model = FACTORIES[name]()
    assert_reset_is_seeded(model)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_dropout_is_a_module_and_follows_train_eval(name):
    x, ei = ring_graph()
    model = FACTORIES[name](dropout=0.8, input_dropout=0.5)
    assert any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules())
    model.eval()
    assert torch.equal(model(x, ei), model(x, ei))
    model.train()
    assert not torch.equal(model(x, ei), model(x, ei))


@pytest.mark.parametrize("name", sorted(FACTORIES))
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_every_graph_form_gives_the_same_outputs_and_gradients(name, mode):
    """edge_index, Adjacency and sparse adj_t take one path: equal outputs and gradients, with
    every dropout (and APPNP's edge dropout) drawn alike under the same seed."""
    torch.manual_seed(0)
    x, ei = ring_graph()
    y = torch.arange(N) % OUT
    model = FACTORIES[name](**_training_kwargs(name)).train(mode == "train")
    ref_out, ref_x, ref_grads = _loss_and_grads(model, x, ei, y)
    for graph in (Adjacency.from_edge_index(ei, N), csr_adj_t(ei)):
        out, x_grad, grads = _loss_and_grads(model, x, graph, y)
        assert torch.allclose(out, ref_out, atol=1e-6)
        assert torch.allclose(x_grad, ref_x, atol=1e-6)
        for pname in ref_grads:
            assert torch.allclose(grads[pname], ref_grads[pname], atol=1e-6), pname


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_sparse_adjacency_trains(name):
    """A few steps on the Adjacency lower the loss, with the edge_index path's gradients."""
    torch.manual_seed(0)
    x, ei = ring_graph()
    y = (torch.arange(N) * OUT) // N  # arcs of the ring: the graph helps
    adj = Adjacency.from_edge_index(ei, N)
    model = FACTORIES[name](**_training_kwargs(name))
    twin = copy.deepcopy(model)  # trained on edge_index
    opts = [torch.optim.Adam(m.parameters(), lr=0.05) for m in (model, twin)]

    def eval_loss():
        with torch.no_grad():
            return F.cross_entropy(model.eval()(x, adj), y).item()

    before = eval_loss()
    for step in range(15):
        _, _, grads = _loss_and_grads(model.train(), x, adj, y, seed=step)
        _, _, twin_grads = _loss_and_grads(twin.train(), x, ei, y, seed=step)
        for pname in grads:
            assert torch.allclose(grads[pname], twin_grads[pname], atol=1e-5), (step, pname)
        for opt in opts:
            opt.step()
    after = eval_loss()
    assert after < 0.9 * before, f"{name}: loss {before:.3f} -> {after:.3f}"


@pytest.mark.parametrize("name", CACHED)
@pytest.mark.parametrize("form", ["edge_index", "adjacency"])
def test_cache_is_only_reused_for_the_same_graph(name, form):
    torch.manual_seed(0)
    x, ei = ring_graph()
    as_graph = ((lambda e, n=N: e) if form == "edge_index"
                else (lambda e, n=N: Adjacency.from_edge_index(e, n)))
    model = FACTORIES[name](cached=True).eval()
    fresh = FACTORIES[name](cached=False).eval()
    fresh.load_state_dict(model.state_dict())
    graph = as_graph(ei)
    assert torch.equal(model(x, graph), fresh(x, graph))
    assert torch.equal(model(x, graph), fresh(x, graph))  # from the cache
    other = as_graph(torch.tensor([[0, 1, 4], [1, 0, 9]]))
    assert torch.allclose(model(x, other), fresh(x, other))  # another graph is not served stale
    small = as_graph(torch.tensor([[0, 1], [1, 0]]), 6)
    assert torch.allclose(model(x[:6], small), fresh(x[:6], small))  # a smaller one
    assert torch.allclose(model(x + 1, graph), fresh(x + 1, graph))  # SGC also caches A^K X per x
    if form == "edge_index":  # a graph tensor changed in place is another graph
        model(x, ei)
        ei[1, 0] = 9
        assert torch.allclose(model(x, ei), fresh(x, ei))
    x.mul_(2.0)  # so are features changed in place
    assert torch.allclose(model(x, graph), fresh(x, graph))


@pytest.mark.parametrize("name", ["sgc", "appnp"])
def test_matches_pyg_reference_layers(name):
    """SGC and APPNP propagate with our own operators: they agree with PyG's layers."""
    torch.manual_seed(0)
    x, ei = ring_graph()
    if name == "sgc":
        model = SGC(F_IN, HIDDEN, OUT, K=3).eval()
        ref = SGConv(F_IN, OUT, K=3)
        ref.lin.load_state_dict(model.mlp.convs[0].lin.state_dict())
        expected = ref(x, ei)
    else:
        model = APPNP(F_IN, HIDDEN, OUT, K=6, alpha=0.15).eval()
        expected = PyGAPPNP(K=6, alpha=0.15)(model.mlp(x, ei), ei)
    assert torch.allclose(model(x, ei), expected, atol=1e-5)
    assert torch.allclose(model(x, Adjacency.from_edge_index(ei, N)), expected, atol=1e-5)


class _EdgeIndexAsIs(nn.Module):
    """Stands in for ToAdjacency: hands the layers the edge_index, i.e. PyG's own path."""

    def forward(self, graph, num_nodes):
        return graph


@pytest.mark.parametrize("name", ["gcnii", "jknet", "jknet_sage", "jknet_lstm", "revgat"])
def test_layers_agree_with_pyg_on_edge_index(name):
    """GCNII, JKNet and RevGAT on the Adjacency equal the same weights run through PyG's own
    ``GCN2Conv`` / ``GCNConv`` / ``SAGEConv`` / ``GATConv`` message passing on ``edge_index``."""
    torch.manual_seed(0)
    x, ei = ring_graph()
    y = torch.arange(N) % OUT
    model = FACTORIES[name](dropout=0.3)
    reference = copy.deepcopy(model)
    reference.to_adjacency = _EdgeIndexAsIs()
    for train in (True, False):
        out, x_grad, grads = _loss_and_grads(model.train(train), x, Adjacency.from_edge_index(ei, N), y)
        ref_out, ref_x, ref_grads = _loss_and_grads(reference.train(train), x, ei, y)
        assert torch.allclose(out, ref_out, atol=1e-5)
        assert torch.allclose(x_grad, ref_x, atol=1e-5)
        for pname in grads:
            assert torch.allclose(grads[pname], ref_grads[pname], atol=1e-4), pname


@pytest.mark.parametrize("cls", list(CLASSES.values()), ids=list(CLASSES))
@pytest.mark.parametrize("kwargs, match", [
    ({"num_layers": 0}, "num_layers must be an integer"),
    ({"num_layers": 2.5}, "num_layers must be an integer"),
    ({"hidden_channels": 0}, "hidden_channels must be a positive integer"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    ({"input_dropout": -0.1}, r"input_dropout must be in \[0, 1\)"),
    ({"norm": "group"}, "unknown norm 'group'"),
    ({"activation": "swish"}, "unknown activation 'swish'"),
])
def test_bad_common_arguments(cls, kwargs, match):
    args = {"in_channels": F_IN, "hidden_channels": HIDDEN, "out_channels": OUT, **kwargs}
    with pytest.raises(ConfigError, match=match) as err:
        cls(**args)
    assert "\n" not in str(err.value)
    if "num_layers" in kwargs or "hidden_channels" in kwargs:
        assert str(err.value).startswith(f"{cls.__name__}: ")


# ---------------------------------------------------------------- configs and learning

SMALL = ["dataset=synthetic", "dataset.loader.num_nodes=400", "dataset.loader.num_edges=3000",
         "dataset.loader.text_dim=16", "dataset.loader.image_dim=16", "trainer=fast",
         "trainer.max_epochs=40", "trainer.progress=false", "runs=1", "device=cpu",
         "model.module.hidden_channels=24"]


@pytest.mark.parametrize("model", ["sgc", "appnp", "gcnii", "jknet", "revgat"])
def test_config_builds_and_learns_the_synthetic_task(model, tmp_path):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"model={model}", *SMALL])
    assert cfg.model.name == model and cfg.model.module._target_.startswith("mmgraph.nn.")
    row = run(cfg, output_dir=tmp_path)
    acc = row["summary"]["test/accuracy"]["mean"]
    assert acc > 0.75, f"{model}: test accuracy {acc:.3f} (chance 1/6; MLP 0.75, GCN 0.96)"
