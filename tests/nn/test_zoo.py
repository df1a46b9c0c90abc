"""The model zoo (mmgraph.nn.zoo): GCNII, APPNP, SGC, JKNet, RevGAT."""
import warnings

import pytest
import torch
from hydra import compose, initialize_config_dir
from torch import nn
from torch_geometric.nn import GATConv, GCN2Conv, GCNConv, SAGEConv
from torch_geometric.utils import to_torch_csr_tensor

import mmgraph.bench  # noqa: F401  (registers the data-root resolver)
from mmgraph.bench.runner import run
from mmgraph.errors import ConfigError
from mmgraph.nn import APPNP, GCNII, SGC, JKNet, RevGAT
from mmgraph.paths import config_dir
from tests.nn.common import assert_reset_is_seeded

N, F_IN, HIDDEN, OUT = 10, 5, 12, 3

# Small instances of every model (RevGAT: 12 = 3 heads x 2 groups x 2 channels).
FACTORIES = {
    "sgc": lambda **kw: SGC(F_IN, HIDDEN, OUT, **{"K": 2, **kw}),
    "sgc_mlp": lambda **kw: SGC(F_IN, HIDDEN, OUT, **{"K": 2, "num_layers": 2, **kw}),
    "appnp": lambda **kw: APPNP(F_IN, HIDDEN, OUT, **{"K": 4, **kw}),
    "gcnii": lambda **kw: GCNII(F_IN, HIDDEN, OUT, **{"num_layers": 4, **kw}),
    "jknet": lambda **kw: JKNet(F_IN, HIDDEN, OUT, **{"num_layers": 3, **kw}),
    "jknet_lstm": lambda **kw: JKNet(F_IN, HIDDEN, OUT, **{"num_layers": 3, "mode": "lstm", **kw}),
    "revgat": lambda **kw: RevGAT(F_IN, HIDDEN, OUT, **{"num_layers": 4, **kw}),
}
CLASSES = {"sgc": SGC, "appnp": APPNP, "gcnii": GCNII, "jknet": JKNet, "revgat": RevGAT}


def _graph(seed=0):
    """A ring with two chords, both directions stored, as the runner passes it."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(N, F_IN, generator=gen)
    ring = torch.arange(N)
    ei = torch.cat([torch.stack([ring, (ring + 1) % N]), torch.tensor([[0, 2], [5, 7]])], 1)
    return x, torch.cat([ei, ei.flip(0)], 1)


def _adj_t(edge_index):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "sparse CSR support is in beta"
        return to_torch_csr_tensor(edge_index.flip(0), size=(N, N))


def _dense_a_hat(edge_index):
    a = torch.zeros(N, N)
    a[edge_index[1], edge_index[0]] = 1.0
    a = a + torch.eye(N)
    d = a.sum(1).pow(-0.5)
    return d[:, None] * a * d[None, :]


# ---------------------------------------------------------------- shared contract

@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_shapes_and_gradients_flow(name):
    torch.manual_seed(0)
    x, ei = _graph()
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
def test_reset_parameters_is_a_seeded_reinitialisation(name):
    model = FACTORIES[name]()
    assert_reset_is_seeded(model)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_dropout_is_a_module_and_follows_train_eval(name):
    x, ei = _graph()
    model = FACTORIES[name](dropout=0.8, input_dropout=0.5)
    assert any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules())
    model.eval()
    assert torch.equal(model(x, ei), model(x, ei))
    model.train()
    assert not torch.equal(model(x, ei), model(x, ei))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_sparse_adjacency_gives_the_same_output(name):
    torch.manual_seed(0)
    x, ei = _graph()
    model = FACTORIES[name]().eval()
    assert torch.allclose(model(x, ei), model(x, _adj_t(ei)), atol=1e-5)


@pytest.mark.parametrize("name", ["appnp", "revgat"])
def test_sparse_adjacency_trains(name):
    x, ei = _graph()
    model = FACTORIES[name](**({"edge_dropout": 0.5} if name == "appnp" else {})).train()
    model(x, _adj_t(ei)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("cls, kwargs, match", [
    (SGC, {"K": -1}, "SGC: K .* must be an integer >= 0, got -1"),
    (APPNP, {"alpha": 1.5}, r"APPNP: alpha .* must be in \[0, 1\], got 1.5"),
    (APPNP, {"edge_dropout": 1.0}, r"APPNP: edge_dropout must be in \[0, 1\), got 1.0"),
    (GCNII, {"theta": 0.0}, "GCNII: theta must be > 0, got 0.0"),
    (GCNII, {"alpha": -0.1}, r"GCNII: alpha .* must be in \[0, 1\]"),
    (JKNet, {"mode": "sum"}, "JKNet: unknown mode 'sum'; choose one of: cat, max, lstm"),
    (JKNet, {"conv": "gin"}, "JKNet: unknown conv 'gin'; choose one of: gcn, sage"),
    (RevGAT, {"num_layers": 1}, "RevGAT: num_layers must be an integer >= 2, got 1"),
    (RevGAT, {"num_groups": 1}, "RevGAT: num_groups must be an integer >= 2, got 1"),
    (RevGAT, {"heads": 5},
     r"RevGAT: hidden_channels \(12\) must be divisible by heads \* num_groups \(5 \* 2 = 10\)"),
    (RevGAT, {"attn_dropout": -0.5}, r"RevGAT: attn_dropout must be in \[0, 1\)"),
])
def test_bad_model_specific_arguments(cls, kwargs, match):
    with pytest.raises(ConfigError, match=match) as err:
        cls(F_IN, HIDDEN, OUT, **kwargs)
    assert "\n" not in str(err.value)


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


# ---------------------------------------------------------------- SGC

@pytest.mark.parametrize("K", [0, 1, 3])
def test_sgc_is_a_linear_model_on_the_propagated_features(K):
    torch.manual_seed(0)
    x, ei = _graph()
    model = SGC(F_IN, HIDDEN, OUT, num_layers=1, K=K, cached=True).eval()
    (lin,) = [m for m in model.modules() if isinstance(m, nn.Linear)]
    expected = torch.linalg.matrix_power(_dense_a_hat(ei), K) @ x @ lin.weight.T + lin.bias
    assert torch.allclose(model(x, ei), expected, atol=1e-5)
    assert torch.allclose(model(x, ei), expected, atol=1e-5)  # second call: from the cache
    adj = _adj_t(ei)
    assert torch.allclose(model(x, adj), expected, atol=1e-5)


@pytest.mark.parametrize("name", ["sgc", "sgc_mlp", "appnp", "gcnii", "jknet"])
def test_cache_is_only_reused_for_the_same_graph(name):
    torch.manual_seed(0)
    x, ei = _graph()
    model = FACTORIES[name](cached=True).eval()
    fresh = FACTORIES[name](cached=False).eval()
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(model(x, ei), fresh(x, ei))
    assert torch.equal(model(x, ei), fresh(x, ei))  # from the cache
    other = torch.tensor([[0, 1, 4], [1, 0, 9]])
    assert torch.allclose(model(x, other), fresh(x, other))  # another graph is not served stale
    assert torch.allclose(model(x[:6], other[:, :2]), fresh(x[:6], other[:, :2]))  # a smaller one
    assert torch.allclose(model(x + 1, ei), fresh(x + 1, ei))  # SGC also caches A^K X per x


def test_sgc_reset_clears_its_cache():
    x, ei = _graph()
    model = SGC(F_IN, HIDDEN, OUT, K=2, cached=True).eval()
    model(x, ei)
    assert model.prop._cache is not None
    model.reset_parameters()
    assert model.prop._cache is None and model.prop.normalised._cache is None


# ---------------------------------------------------------------- APPNP

def test_appnp_with_alpha_one_is_its_mlp():
    torch.manual_seed(0)
    x, ei = _graph()
    model = APPNP(F_IN, HIDDEN, OUT, K=5, alpha=1.0).eval()
    assert torch.equal(model(x, ei), model.mlp(x, ei))
    assert not torch.allclose(APPNP(F_IN, HIDDEN, OUT, K=5, alpha=0.1).eval()(x, ei),
                              model.mlp(x, ei))


def test_appnp_matches_dense_personalised_pagerank():
    torch.manual_seed(0)
    x, ei = _graph()
    model = APPNP(F_IN, HIDDEN, OUT, K=4, alpha=0.2).eval()
    h = model.mlp(x, ei)
    a_hat, z = _dense_a_hat(ei), h
    for _ in range(4):
        z = 0.8 * a_hat @ z + 0.2 * h
    assert torch.allclose(model(x, ei), z, atol=1e-5)


@pytest.mark.parametrize("sparse", [False, True])
def test_appnp_edge_dropout_is_drawn_afresh_at_every_step(sparse):
    x, ei = _graph()
    model = APPNP(F_IN, HIDDEN, OUT, K=5, edge_dropout=0.5).train()
    seen = []
    model.prop.edge_drop.register_forward_pre_hook(lambda mod, args: seen.append(args[0].clone()))
    model(x, _adj_t(ei) if sparse else ei)
    assert len(seen) == 5
    assert all(torch.equal(s, seen[0]) for s in seen)  # always the normalised weights
    assert (seen[0] > 0).all() and seen[0].max() <= 1.0


# ---------------------------------------------------------------- GCNII

def test_gcnii_layers_and_identity_mapping():
    model = GCNII(F_IN, HIDDEN, OUT, num_layers=3, theta=0.5, alpha=0.2, shared_weights=False)
    assert all(isinstance(c, GCN2Conv) for c in model.convs) and len(model.convs) == 3
    assert [c.beta for c in model.convs] == pytest.approx([torch.log(torch.tensor(0.5 / l + 1)).item()
                                                          for l in (1, 2, 3)])
    assert all(c.weight2 is not None and c.alpha == 0.2 for c in model.convs)  # GCNII*
    assert isinstance(GCNII(F_IN, HIDDEN, OUT, norm=None).norms[0], nn.Identity)


def test_gcnii_with_alpha_one_ignores_the_graph():
    torch.manual_seed(0)
    x, ei = _graph()
    other = torch.tensor([[0, 3], [3, 0]])
    only_x0 = GCNII(F_IN, HIDDEN, OUT, num_layers=3, alpha=1.0).eval()
    assert torch.allclose(only_x0(x, ei), only_x0(x, other))
    smooth = GCNII(F_IN, HIDDEN, OUT, num_layers=3, alpha=0.1).eval()
    assert not torch.allclose(smooth(x, ei), smooth(x, other))


# ---------------------------------------------------------------- JKNet

@pytest.mark.parametrize("mode, width", [("cat", 3 * HIDDEN), ("max", HIDDEN), ("lstm", HIDDEN)])
def test_jknet_modes(mode, width):
    torch.manual_seed(0)
    x, ei = _graph()
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
    assert all(type(c) is GCNConv for c in JKNet(F_IN, HIDDEN, OUT).convs)
    assert all(type(c) is SAGEConv for c in JKNet(F_IN, HIDDEN, OUT, conv="sage").convs)


# ---------------------------------------------------------------- RevGAT

def _revgat_pair(**kwargs):
    torch.manual_seed(0)
    rev = RevGAT(F_IN, HIDDEN, OUT, num_layers=4, dropout=0.3, **kwargs)
    plain = RevGAT(F_IN, HIDDEN, OUT, num_layers=4, dropout=0.3, reversible=False, **kwargs)
    plain.load_state_dict(rev.state_dict())
    return rev, plain


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_revgat_reversible_gradients_equal_plain_autograd(norm):
    x, ei = _graph()
    results = []
    for model in _revgat_pair(norm=norm):
        model.train()
        torch.manual_seed(1)  # same input dropout and same shared mask in both
        xg = x.clone().requires_grad_()
        model(xg, ei).pow(2).sum().backward()
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
    x, ei = _graph()
    for model, freed in zip(_revgat_pair(), (True, False)):
        seen = []
        model.rev_layers[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
        model.train()(x, ei)
        assert (seen[0].untyped_storage().nbytes() == 0) == freed


def test_revgat_inverse_reconstructs_the_inputs():
    torch.manual_seed(0)
    _, ei = _graph()
    model = RevGAT(F_IN, HIDDEN, OUT, num_layers=3, dropout=0.5).train()
    layer = model.rev_layers[0]
    h = torch.randn(N, HIDDEN)
    mask = model.mask_drop(torch.ones_like(h))
    assert (mask == 0).any()
    with torch.no_grad():
        y = layer(h.clone(), ei, mask)
        back = layer.inverse(y.clone(), ei, mask)
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
