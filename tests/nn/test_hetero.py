"""Heterogeneous GNNs (RGCN, HGT, to_hetero), the heterogeneous view and the runner path."""
import functools

import pytest
import torch
from torch_geometric.nn.to_hetero_transformer import key2str
from torch_geometric.utils import scatter

from mmgraph.data.graph import add_feature, new_graph, set_model_input
from mmgraph.data.hetero import hetero_view
from mmgraph.data.splits import apply_split
from mmgraph.data.synthetic import make_synthetic
from mmgraph.errors import ConfigError
from mmgraph.nn import GAT, GCN, HGT, MLP, RGCN, GATv2, GraphSAGE, ToHetero
from mmgraph.tasks import NodeClassification
from tests.nn.common import assert_reset_is_seeded

PAPER, WORD = "paper", "word"
CITES, HAS, IN = (PAPER, "cites", PAPER), (PAPER, "has", WORD), (WORD, "in", PAPER)
META = ([PAPER, WORD], [CITES, HAS, IN])
N_PAPER, N_WORD, D, C = 7, 4, 5, 3


def _inputs(seed=0):
    """Papers with features, featureless words, three relations (words reach every paper)."""
    g = torch.Generator().manual_seed(seed)
    x = {PAPER: torch.randn(N_PAPER, D, generator=g)}
    has = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 6], [0, 1, 2, 3, 0, 1, 2, 3]])
    ei = {CITES: torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6]]), HAS: has, IN: has.flip(0)}
    return x, ei


def _build(kind, **kw):
    common = dict(metadata=META, in_channels={PAPER: D, WORD: None}, out_channels=C, target=PAPER,
                  num_nodes={PAPER: N_PAPER, WORD: N_WORD}, hidden_channels=8)
    if kind == "rgcn":
        return RGCN(**common, num_bases=2, **kw)
    if kind == "rgcn_blocks":
        return RGCN(**common, num_blocks=2, **kw)
    if kind == "hgt":
        return HGT(**common, heads=2, **kw)
    inner = {"sage": GraphSAGE, "gat": functools.partial(GAT, heads=2),
             "gatv2": functools.partial(GATv2, heads=2)}[kind]
    return ToHetero(**common, model=functools.partial(inner, **kw) if kw else inner)


KINDS = ["rgcn", "rgcn_blocks", "hgt", "sage", "gat", "gatv2"]


@pytest.mark.parametrize("kind", KINDS)
def test_forward_backward_with_a_featureless_node_type(kind):
    torch.manual_seed(0)
    model = _build(kind)
    assert model.is_hetero
    x, ei = _inputs()
    out = model(x, ei)
    assert out.shape == (N_PAPER, C) and torch.isfinite(out).all()
    out.pow(2).sum().backward()
    assert model.encoders[WORD].weight.grad.abs().sum() > 0  # the word embeddings learn
    assert model.encoders[PAPER].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", KINDS)
def test_second_node_type_is_used(kind):
    torch.manual_seed(0)
    model = _build(kind).eval()
    x, ei = _inputs()
    full = model(x, ei)
    no_words = {**ei, HAS: ei[HAS][:, :0], IN: ei[IN][:, :0]}
    assert not torch.allclose(full, model(x, no_words))
    assert torch.allclose(model(x, {CITES: ei[CITES]}), model(x, no_words))  # missing = no edges
    # Changing a word's embedding changes exactly the papers it reaches in one hop (paper 6
    # gets words 2 and 3), for a one-layer model.
    one = _build(kind, num_layers=1).eval()
    before = one(x, ei)
    with torch.no_grad():
        one.encoders[WORD].weight[3] += 1.0
    changed = (one(x, ei) - before).abs().sum(1) > 1e-6
    assert changed.tolist() == [False, False, False, True, False, False, True]


@pytest.mark.parametrize("kind", KINDS)
def test_reset_parameters_is_a_seeded_reinitialisation(kind):
    model = _build(kind)
    assert_reset_is_seeded(model)


def test_to_hetero_sage_sums_one_sage_per_relation():
    torch.manual_seed(0)
    model = _build("sage", num_layers=1, norm=None).eval()
    x, ei = _inputs()
    h = model.encode(x)
    convs = model.gnn.convs[0]
    expect = torch.zeros(N_PAPER, C)
    for rel in (CITES, IN):  # the relations into papers
        conv = convs[key2str(rel)]
        mean = scatter(h[rel[0]][ei[rel][0]], ei[rel][1], dim=0, dim_size=N_PAPER, reduce="mean")
        expect += conv.lin_l(mean) + conv.lin_r(h[PAPER])
    assert torch.allclose(model(x, ei), expect, atol=1e-5)
    assert not torch.equal(convs[key2str(CITES)].lin_l.weight, convs[key2str(IN)].lin_l.weight)


def test_gat_keeps_self_loops_only_within_one_node_type():
    model = _build("gat")
    convs = model.gnn.convs[0]
    assert convs[key2str(CITES)].add_self_loops
    assert not convs[key2str(HAS)].add_self_loops and not convs[key2str(IN)].add_self_loops


@pytest.mark.parametrize("cls, match", [(GCN, "cannot convert GCN: its GCN"),
                                        (MLP, "MLP has no message-passing layer")])
def test_unconvertible_models_are_config_errors(cls, match):
    with pytest.raises(ConfigError, match=match):
        ToHetero(META, {PAPER: D, WORD: None}, C, PAPER, model=cls, num_nodes={PAPER: 7, WORD: 4},
                 hidden_channels=8)


def test_constructor_errors_are_config_errors():
    kw = dict(metadata=META, out_channels=C, target=PAPER, hidden_channels=8)
    with pytest.raises(ConfigError, match="needs num_nodes"):
        RGCN(in_channels={PAPER: D, WORD: None}, **kw)
    with pytest.raises(ConfigError, match="target node type 'author'"):
        RGCN(**{**kw, "target": "author"}, in_channels={PAPER: D, WORD: 3})
    with pytest.raises(ConfigError, match="divisible by heads"):
        HGT(in_channels={PAPER: D, WORD: 3}, heads=3, **kw)
    with pytest.raises(ConfigError, match="num_bases or num_blocks"):
        RGCN(in_channels={PAPER: D, WORD: 3}, num_bases=2, num_blocks=2, **kw)


# ----------------------------------------------------------------------------- data and task

def _graph_with_keywords():
    """8 labelled items (features carry nothing), keywords that carry the class."""
    data = new_graph("kw", "0", "item", ["a", "b"])
    n = 8
    data["item"].num_nodes = n
    data["item"].y = torch.arange(n) % 2
    add_feature(data, "text", torch.zeros(n, 3), "zero")
    data["keyword"].num_nodes = 2
    data["author"].num_nodes = 3                      # touched by no relation: dropped
    data["item", "near", "item"].edge_index = torch.tensor([[0, 1], [1, 0]])
    data["item", "far", "item"].edge_index = torch.tensor([[2, 3], [3, 2]])
    data["item", "has_keyword", "keyword"].edge_index = torch.stack([torch.arange(n), torch.arange(n) % 2])
    set_model_input(data, ["text"])
    apply_split(data, torch.arange(4), torch.arange(4, 6), torch.arange(6, 8), name="t")
    return data


def test_hetero_view_keeps_other_types_and_adds_reverses():
    data = _graph_with_keywords()
    view = hetero_view(data)
    assert view.node_types == ["item", "keyword"]
    assert "x" in view["item"] and "x" not in view["keyword"] and view["keyword"].num_nodes == 2
    assert set(view.edge_types) == {("item", "near", "item"), ("item", "far", "item"),
                                    ("item", "has_keyword", "keyword"),
                                    ("keyword", "rev_has_keyword", "item")}
    assert torch.equal(view["keyword", "rev_has_keyword", "item"].edge_index,
                       data["item", "has_keyword", "keyword"].edge_index.flip(0))
    # edge_types chooses among the item-item relations; relations to keywords stay
    chosen = hetero_view(data, ["near"])
    assert set(chosen.edge_types) == {("item", "near", "item"), ("item", "has_keyword", "keyword"),
                                      ("keyword", "rev_has_keyword", "item")}


def test_node_classification_trains_a_hetero_model_through_the_keywords():
    data = _graph_with_keywords()
    task = NodeClassification()
    task.setup(data, torch.device("cpu"))
    kw = task.model_kwargs(hetero=True)
    assert kw["target"] == "item" and kw["out_channels"] == 2
    assert kw["in_channels"] == {"item": 3, "keyword": None} and kw["num_nodes"]["keyword"] == 2
    torch.manual_seed(0)
    model = RGCN(**kw, hidden_channels=8, num_layers=1, dropout=0.0, norm=None)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(60):
        task.train_epoch(model, opt)
    metrics = task.evaluate(model)
    assert metrics["test"]["accuracy"] == 1.0  # only the keywords tell the classes apart
    assert task.describe()["hetero_edges"]["keyword__rev_has_keyword__item"] == 8


def test_synthetic_tags_are_off_by_default_and_class_related():
    plain = make_synthetic(num_nodes=60, num_edges=200, text_dim=4, image_dim=4)
    assert plain.node_types == ["item"] and "num_tags" not in plain.meta["generator"]
    tagged = make_synthetic(num_nodes=60, num_edges=200, text_dim=4, image_dim=4, num_tags=12,
                            tags_per_node=2, tag_informativeness=1.0)
    assert torch.equal(plain["item"].x, tagged["item"].x)   # nothing else changes
    ei = tagged["item", "has_tag", "tag"].edge_index
    assert tagged["tag"].num_nodes == 12 and ei.size(1) >= 60
    assert torch.equal(ei[1] % 6, tagged["item"].y[ei[0]])   # informativeness 1: own-class tags
    with pytest.raises(ConfigError, match="num_tags must be 0 or >= num_classes"):
        make_synthetic(num_nodes=60, num_edges=200, num_tags=3)


# ----------------------------------------------------------------------------- runner

@pytest.mark.parametrize("model", ["rgcn", "hgt", "hetero_sage"])
def test_runner_trains_hetero_models_from_the_tag_nodes_alone(model, tmp_path):
    from tests.bench.test_runner import compose_cfg
    from mmgraph.bench.runner import run

    # Text and images carry no class and there are no item-item edges: only the featureless
    # tag nodes (a second node type, with reverse relations) can lift accuracy above chance (1/6).
    cfg = compose_cfg(f"model={model}", "dataset=synthetic", "dataset.loader.num_nodes=300",
                      "dataset.loader.num_edges=0", "dataset.loader.text_dim=8",
                      "dataset.loader.image_dim=8", "dataset.loader.text_informativeness=0",
                      "dataset.loader.image_informativeness=0", "dataset.loader.num_tags=24",
                      "dataset.loader.tag_informativeness=0.9", "model.module.hidden_channels=16",
                      "trainer=fast", "trainer.max_epochs=40", "trainer.lr=0.02",
                      "trainer.progress=false", "runs=1")
    row = run(cfg, output_dir=tmp_path)
    assert row["model"] == model
    assert row["summary"]["test/accuracy"]["mean"] > 0.5


def test_hetero_model_with_link_prediction_is_a_config_error(tmp_path):
    from tests.bench.test_runner import SMALL, compose_cfg
    from mmgraph.bench.runner import run

    with pytest.raises(ConfigError, match="does not support heterogeneous models"):
        run(compose_cfg("model=rgcn", "task=link_prediction", *SMALL), tmp_path)
