import numpy as np
import pytest
import scipy.sparse as sp
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression

from mmgraph.data.graph import homogeneous_view
from mmgraph.data.synthetic import (EDGE_TYPE, SHAPES, TEXTURES, make_synthetic, parse_image_ref,
                                    render_image)
from mmgraph.errors import ConfigError, DataError

SMALL = dict(num_nodes=600, num_classes=4, num_edges=4000, text_dim=32, image_dim=32)


@pytest.fixture(scope="module")
def graph():
    return make_synthetic(**SMALL, seed=3)


def probe_accuracy(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Held-out accuracy of a linear probe, on the nodes where the modality is present."""
    keep = np.ones(len(y), dtype=bool) if mask is None else mask.numpy()
    x, y = x.numpy()[keep], y.numpy()[keep]
    order = np.random.default_rng(0).permutation(len(y))
    tr, te = order[: len(y) // 2], order[len(y) // 2:]
    return LogisticRegression(max_iter=1000).fit(x[tr], y[tr]).score(x[te], y[te])


def test_conventions(graph):
    store = graph["item"]
    n = SMALL["num_nodes"]
    assert graph.meta["name"] == "synthetic" and graph.meta["target"] == "item"
    assert graph.meta["class_names"] == ["class_0", "class_1", "class_2", "class_3"]
    assert store.num_nodes == n and store.y.dtype == torch.long
    assert torch.bincount(store.y).tolist() == [150] * 4          # balanced classes
    assert store.x_text.shape == (n, 32) and store.x_image.shape == (n, 32)
    assert torch.equal(store.x, torch.cat([store.x_text, store.x_image], dim=1))
    assert graph.meta["input"]["modalities"] == ["text", "image"]
    assert graph.meta["features"]["x_text"]["encoder"] == "synthetic-bag-of-words"
    assert graph.meta["features"]["x_image"]["encoder"] == "synthetic-image-attributes"
    assert graph.meta["features"]["x_text"]["spec"]["homophily"] == 0.8
    assert len(store.text) == n and len(store.image) == n
    # Raw values, masks and zero rows agree.
    for modality in ("text", "image"):
        mask, raw, x = store[f"{modality}_mask"], store[modality], store[f"x_{modality}"]
        assert [r is not None for r in raw] == mask.tolist()
        assert (x[~mask] == 0).all() and (x[mask].abs().sum(1) > 0).all()
    assert all(isinstance(t, str) and 8 <= len(t.split()) <= 24 for t in store.text if t)
    # RawList slicing keeps working through PyG's subgraph.
    sub = graph.subgraph({"item": torch.arange(10)})
    assert sub["item"].text == store.text[:10] and len(sub["item"].image) == 10


def test_deterministic_and_seed_dependent(graph):
    again = make_synthetic(**SMALL, seed=3)
    other = make_synthetic(**SMALL, seed=4)
    a, b, c = graph["item"], again["item"], other["item"]
    for key in ("y", "x_text", "x_image", "x", "text_mask", "image_mask"):
        assert torch.equal(a[key], b[key]), key
    assert torch.equal(graph[EDGE_TYPE].edge_index, again[EDGE_TYPE].edge_index)
    assert a.text == b.text and a.image == b.image
    assert graph.meta["features"] == again.meta["features"]
    assert not torch.equal(a.y, c.y)
    assert not torch.equal(a.x_text, c.x_text) and not torch.equal(a.x_image, c.x_image)
    assert a.text != c.text and a.image != c.image
    assert not torch.equal(graph[EDGE_TYPE].edge_index, other[EDGE_TYPE].edge_index)


def test_streams_are_independent():
    # Changing the graph's homophily must not change the texts or images.
    a = make_synthetic(**SMALL, homophily=0.8, seed=1)
    b = make_synthetic(**SMALL, homophily=0.3, seed=1)
    assert a["item"].text == b["item"].text and torch.equal(a["item"].x_image, b["item"].x_image)
    assert not torch.equal(a[EDGE_TYPE].edge_index, b[EDGE_TYPE].edge_index)


@pytest.mark.parametrize("homophily", [0.2, 0.85])
def test_edge_homophily_and_structure(homophily):
    data = make_synthetic(num_nodes=2000, num_classes=5, num_edges=16001, homophily=homophily,
                          text_dim=8, image_dim=8, seed=0)
    ei, y, n = data[EDGE_TYPE].edge_index, data["item"].y, 2000
    assert ei.dtype == torch.long and ei.shape == (2, 16000)  # 2 * (num_edges // 2)
    measured = (y[ei[0]] == y[ei[1]]).float().mean().item()
    assert abs(measured - homophily) < 0.05
    assert not (ei[0] == ei[1]).any()
    keys = ei[0] * n + ei[1]
    assert keys.unique().numel() == keys.numel()                  # no duplicates
    assert torch.equal(keys, keys.sort().values)                  # sorted like coalesce
    assert torch.equal((ei[1] * n + ei[0]).sort().values, keys)   # symmetric
    deg = torch.bincount(ei[0], minlength=n).float()
    assert deg.max() > 4 * deg.mean()                             # heavy-tailed propensities


def test_degree_power_none_gives_homogeneous_degrees():
    data = make_synthetic(num_nodes=2000, num_edges=16000, degree_power=None, text_dim=8,
                          image_dim=8)
    deg = torch.bincount(data[EDGE_TYPE].edge_index[0], minlength=2000).float()
    assert deg.max() < 2.5 * deg.mean()


def test_missing_modalities():
    data = make_synthetic(num_nodes=4000, num_classes=4, num_edges=8000, missing_rate=0.2,
                          text_dim=8, image_dim=8, seed=5)
    tm, im = data["item"].text_mask, data["item"].image_mask
    assert abs((~tm).float().mean().item() - 0.2) < 0.03
    assert abs((~im).float().mean().item() - 0.2) < 0.03
    assert (tm | im).all()                                        # never both missing
    full = make_synthetic(num_nodes=300, num_edges=1000, missing_rate=0.0, text_dim=8, image_dim=8)
    assert full["item"].text_mask.all() and full["item"].image_mask.all()


def test_graph_helps_at_high_homophily():
    # A two-hop mean of the features (SGC without training a GNN) beats the raw features.
    data = make_synthetic(num_nodes=1500, num_edges=15000, homophily=0.8, text_dim=32,
                          image_dim=32, seed=2)
    view = homogeneous_view(data)
    n, (src, dst) = view.num_nodes, view.edge_index.numpy()
    adj = sp.csr_matrix((np.ones(src.size), (dst, src)), shape=(n, n)) + sp.eye(n)
    adj = sp.diags(1.0 / np.asarray(adj.sum(1)).ravel()) @ adj
    smooth = torch.from_numpy(adj @ (adj @ view.x.numpy()))
    raw_acc, graph_acc = probe_accuracy(view.x, view.y), probe_accuracy(smooth, view.y)
    assert graph_acc > raw_acc + 0.1


def test_text_informativeness():
    acc = {}
    for p in (0.0, 0.1, 0.9):
        data = make_synthetic(num_nodes=1200, num_edges=2000, text_informativeness=p,
                              missing_rate=0.0, text_dim=32, image_dim=8, seed=1)
        acc[p] = probe_accuracy(data["item"].x_text, data["item"].y)
    chance = 1 / 6
    assert acc[0.0] < chance + 0.07                                # near chance
    assert acc[0.1] < acc[0.9] and acc[0.9] > 0.75


def test_image_informativeness():
    acc = {}
    for p in (0.0, 0.1, 0.9):
        data = make_synthetic(num_nodes=1200, num_edges=2000, image_informativeness=p,
                              missing_rate=0.0, text_dim=8, image_dim=32, seed=1)
        acc[p] = probe_accuracy(data["item"].x_image, data["item"].y)
    assert acc[0.0] < 1 / 6 + 0.07
    assert acc[0.1] < acc[0.9] and acc[0.9] > 0.75


def test_defaults_each_modality_informative_and_complementary():
    data = make_synthetic(num_nodes=2000, num_edges=4000, missing_rate=0.0, seed=0)
    s = data["item"]
    text, image, both = (probe_accuracy(s[k], s.y) for k in ("x_text", "x_image", "x"))
    assert 0.4 < text < 0.95 and 0.4 < image < 0.95
    assert both > max(text, image) + 0.05


def test_text_words_are_class_conditioned():
    data = make_synthetic(num_nodes=400, num_edges=1000, text_informativeness=1.0,
                          missing_rate=0.0, text_dim=8, image_dim=8)
    s = data["item"]
    vocab = [set(" ".join(t for t, c in zip(s.text, s.y.tolist()) if c == k).split())
             for k in range(6)]
    # Fully informative texts use only their own class's words: vocabularies are disjoint.
    assert all(not (vocab[i] & vocab[j]) for i in range(6) for j in range(i + 1, 6))
    assert all(w.isalpha() and w.islower() for w in vocab[0])


def test_image_refs_follow_prototypes():
    data = make_synthetic(num_nodes=600, num_edges=1000, image_informativeness=1.0,
                          missing_rate=0.0, text_dim=8, image_dim=8)
    s = data["item"]
    parsed = [parse_image_ref(r) for r in s.image]
    for k in range(6):
        members = [p for p, c in zip(parsed, s.y.tolist()) if c == k]
        assert len({p["shape"] for p in members}) == 1 and len({p["texture"] for p in members}) == 1
        hues = np.array([p["hue"] for p in members])
        assert abs(np.exp(2j * np.pi * hues).mean()) > 0.9           # tight (circular) hue
    assert len({(p["shape"], p["texture"]) for p in parsed}) == 6
    assert all(0 <= p["hue"] < 1 and 0.35 <= p["size"] <= 0.8 for p in parsed)


def test_render_image_deterministic_and_distinct():
    base = "synthetic:shape={};hue=0.3;texture={};size=0.7;x=0.5;y=0.5;rot=20;bg=0.2"
    img = render_image(base.format("star", "dots"), size=48)
    assert isinstance(img, Image.Image) and img.mode == "RGB" and img.size == (48, 48)
    assert np.array_equal(np.asarray(img), np.asarray(render_image(base.format("star", "dots"), 48)))
    shapes = [np.asarray(render_image(base.format(s, "solid"), 48)).astype(int) for s in SHAPES]
    textures = [np.asarray(render_image(base.format("square", t), 48)).astype(int) for t in TEXTURES]
    for group in (shapes, textures):
        for i in range(len(group)):
            for j in range(i + 1, len(group)):
                assert np.abs(group[i] - group[j]).mean() > 1.0
    red = np.asarray(render_image(base.format("square", "solid").replace("hue=0.3", "hue=0.0"), 48))
    assert red[24, 24, 0] > 200 and red[24, 24, 1] < 80             # hue 0 is red at the centre


def test_render_image_of_generated_refs(graph):
    refs = [r for r in graph["item"].image if r is not None][:5]
    imgs = [np.asarray(render_image(r, 32)) for r in refs]
    assert all(i.shape == (32, 32, 3) for i in imgs)
    assert len({i.tobytes() for i in imgs}) == 5


@pytest.mark.parametrize("ref", ["synthetic:shape=blob;hue=0.1;texture=solid",
                                 "synthetic:shape=star;texture=solid",
                                 "synthetic:shape=star;hue=abc;texture=dots",
                                 "not-synthetic"])
def test_render_image_rejects_bad_refs(ref):
    with pytest.raises(DataError):
        render_image(ref)


@pytest.mark.parametrize("kwargs, words", [
    (dict(homophily=1.5), "homophily must be in [0.0, 1.0]"),
    (dict(homophily=-0.1), "homophily"),
    (dict(num_classes=1), "num_classes must be >= 2"),
    (dict(num_nodes=3, num_classes=4), "num_nodes must be >= num_classes=4"),
    (dict(num_edges=-2), "num_edges must be >= 0"),
    (dict(num_nodes=50, num_edges=5000), "too dense"),
    (dict(missing_rate=0.6), "missing_rate must be in [0.0, 0.5]"),
    (dict(text_informativeness=2), "text_informativeness"),
    (dict(image_informativeness=float("nan")), "image_informativeness"),
    (dict(degree_power=1.0), "degree_power must be > 1"),
    (dict(text_length=(5, 2)), "text_length[1] must be >= 5"),
    (dict(text_length=7), "text_length must be a pair"),
    (dict(text_dim=0), "text_dim must be >= 1"),
    (dict(num_nodes=10.5), "num_nodes must be an integer"),
    (dict(clarity_concentration=0), "clarity_concentration"),
    (dict(seed=-1), "seed must be >= 0"),
])
def test_argument_validation(kwargs, words):
    with pytest.raises(ConfigError) as err:
        make_synthetic(**{"num_nodes": 100, "num_edges": 200, **kwargs})
    assert words in str(err.value) and "\n" not in str(err.value)


def test_edge_cases():
    data = make_synthetic(num_nodes=2, num_classes=2, num_edges=0, text_dim=4, image_dim=4)
    assert data[EDGE_TYPE].edge_index.shape == (2, 0)
    pure = make_synthetic(num_nodes=300, num_edges=2000, homophily=1.0, text_dim=4, image_dim=4)
    ei, y = pure[EDGE_TYPE].edge_index, pure["item"].y
    assert (y[ei[0]] == y[ei[1]]).all()
    equal = make_synthetic(num_nodes=300, num_edges=1000, clarity_concentration=float("inf"),
                           text_dim=4, image_dim=4)
    assert equal["item"].x.shape == (300, 8)
