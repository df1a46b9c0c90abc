"""DGL interop: round trips HeteroData/Data <-> DGLGraph, GraphConv == GCNConv, the no-DGL error."""
from __future__ import annotations

import sys

import pytest
import torch
from torch_geometric.data import Data, HeteroData

from mmgraph.data import make_split, make_synthetic
from mmgraph.data.graph import RawList, homogeneous_view
from mmgraph.errors import ConfigError, DataError
from mmgraph.interop import from_dgl, to_dgl


def assert_same_store(a, b):
    """Same keys; tensors equal in value, dtype and shape; other values equal."""
    assert set(a.keys()) == set(b.keys())
    for key in a.keys():
        va, vb = a[key], b[key]
        if isinstance(va, torch.Tensor):
            assert isinstance(vb, torch.Tensor), key
            assert va.dtype == vb.dtype and va.shape == vb.shape, key
            assert torch.equal(va, vb), key
        else:
            assert va == vb, key
            assert type(va) is type(vb), key


def assert_same_hetero(a: HeteroData, b: HeteroData):
    assert a.node_types == b.node_types
    assert a.edge_types == b.edge_types
    for nt in a.node_types:
        assert a[nt].num_nodes == b[nt].num_nodes
        assert_same_store(a[nt], b[nt])
    for et in a.edge_types:
        assert_same_store(a[et], b[et])
    assert getattr(a, "meta", None) == getattr(b, "meta", None)


@pytest.fixture
def synthetic():
    data = make_synthetic(num_nodes=120, num_edges=600, text_dim=8, image_dim=6, seed=3)
    make_split(data, "magb")
    return data


def multi_type_graph() -> HeteroData:
    gen = torch.Generator().manual_seed(0)
    data = HeteroData()
    data.meta = {"name": "toy", "target": "paper", "class_names": ["a", "b", "c"]}
    data["paper"].num_nodes = 7
    data["paper"].x_text = torch.randn(7, 5, generator=gen)
    data["paper"].text_mask = torch.tensor([True] * 6 + [False])
    data["paper"].text = RawList([f"paper {i}" for i in range(6)] + [None])
    data["paper"].y = torch.tensor([0, 1, 2, 0, 1, -1, 2])
    data["paper"].train_mask = torch.tensor([1, 1, 1, 0, 0, 0, 0], dtype=torch.bool)
    data["paper"].centroids = torch.randn(3, 5, generator=gen)      # not per node
    data["author"].num_nodes = 4
    data["author"].x_image = torch.randn(4, 3, generator=gen).double()
    data["author"].image_mask = torch.ones(4, dtype=torch.bool)
    data["keyword"].num_nodes = 3                                    # no attributes
    data["venue"].num_nodes = 2                                      # no edges at all
    data["venue"].x = torch.arange(2.0).view(2, 1)
    data["author", "writes", "paper"].edge_index = torch.tensor([[0, 1, 1, 3, 2], [0, 0, 4, 6, 1]])
    data["author", "writes", "paper"].edge_weight = torch.tensor([0.5, 1.0, 2.0, 0.1, 0.3])
    data["author", "writes", "paper"].position = torch.tensor([1, 0, 0, 2, 1], dtype=torch.int32)
    data["paper", "cites", "paper"].edge_index = torch.tensor([[3, 0, 5, 2, 2, 6], [1, 1, 0, 6, 4, 3]])
    data["paper", "has", "keyword"].edge_index = torch.tensor([[0, 2, 4], [2, 2, 0]])
    data.note = "graph-level attribute"
    return data


# ----------------------------------------------------------------------------- round trips


def test_synthetic_round_trip(synthetic):
    pytest.importorskip("dgl")
    g = to_dgl(synthetic)
    assert g.ntypes == ["item"] and g.canonical_etypes == [("item", "links", "item")]
    assert g.num_nodes("item") == synthetic["item"].num_nodes
    assert g.num_edges() == synthetic["item", "links", "item"].edge_index.size(1)
    store = synthetic["item"]
    for key in ("x", "x_text", "x_image", "text_mask", "image_mask", "y", "train_mask",
                "val_mask", "test_mask"):
        assert g.nodes["item"].data[key] is store[key]               # shared, not copied
    assert "text" not in g.ndata and g.mmgraph["node"]["item"]["text"] == store.text
    assert g.mmgraph["meta"] == synthetic.meta
    src, dst = g.edges(order="eid")
    assert torch.equal(torch.stack([src, dst]), synthetic["item", "links", "item"].edge_index)

    back = from_dgl(g)
    assert isinstance(back, HeteroData)
    assert_same_hetero(synthetic, back)
    assert isinstance(back["item"].text, RawList) and back["item"].text == store.text
    assert list(back["item"].keys()) == list(store.keys())          # attribute order kept


def test_multi_type_round_trip():
    pytest.importorskip("dgl")
    data = multi_type_graph()
    g = to_dgl(data)
    assert sorted(g.ntypes) == sorted(data.node_types)
    assert {nt: g.num_nodes(nt) for nt in g.ntypes} == {"paper": 7, "author": 4, "keyword": 3, "venue": 2}
    assert {et: g.num_edges(et) for et in g.canonical_etypes} == {
        ("author", "writes", "paper"): 5, ("paper", "cites", "paper"): 6, ("paper", "has", "keyword"): 3}
    assert set(g.nodes["paper"].data.keys()) == {"x_text", "text_mask", "y", "train_mask"}
    assert g.nodes["author"].data["x_image"].dtype == torch.float64
    assert set(g.edges["writes"].data.keys()) == {"edge_weight", "position"}
    assert g.mmgraph["node"]["paper"]["centroids"].shape == (3, 5)
    assert g.mmgraph["graph"] == {"note": "graph-level attribute"}

    back = from_dgl(g)
    assert_same_hetero(data, back)
    assert back.note == data.note
    # every edge type keeps its edge order
    for et in data.edge_types:
        assert torch.equal(back[et].edge_index, data[et].edge_index)


def test_meta_kwarg_for_new_dgl_graphs(synthetic):
    dgl = pytest.importorskip("dgl")
    original = to_dgl(synthetic)
    g = dgl.add_self_loop(original)                  # a new graph (DGL copies g.mmgraph along)
    n = synthetic["item"].num_nodes
    back = from_dgl(g)                               # meta yes, per-node raw lists no
    assert back.meta == synthetic.meta
    assert "text" not in back["item"] and "image" not in back["item"]
    assert back["item", "links", "item"].edge_index.size(1) == synthetic["item", "links", "item"].num_edges + n
    assert torch.equal(back["item"].x, synthetic["item"].x)
    # extra= restores the raw lists too
    back = from_dgl(g, extra=original.mmgraph)
    assert back["item"].text == synthetic["item"].text
    # a graph that lost the attribute: meta= (e.g. after dgl.save_graphs / load_graphs)
    if hasattr(g, "mmgraph"):
        del g.mmgraph
    assert not hasattr(from_dgl(g), "meta")
    assert from_dgl(g, meta=synthetic.meta).meta == synthetic.meta
    # a subgraph: raw lists of the wrong length are dropped even when passed explicitly
    sub = dgl.node_subgraph(original, {"item": torch.arange(10)})
    back = from_dgl(sub, extra=original.mmgraph)
    assert back["item"].num_nodes == 10 and "text" not in back["item"]
    assert back.meta == synthetic.meta


def test_homogeneous_data_round_trip(synthetic):
    dgl = pytest.importorskip("dgl")
    view = homogeneous_view(synthetic)
    view.edge_weight = torch.rand(view.num_edges)
    view.meta = {"name": "view"}
    g = to_dgl(view)
    assert g.is_homogeneous and g.num_nodes() == view.num_nodes and g.num_edges() == view.num_edges
    assert set(g.ndata.keys()) == {k for k in view.keys() if k not in ("edge_index", "edge_weight", "meta", "num_nodes")}
    assert set(g.edata.keys()) == {"edge_weight"}
    back = from_dgl(g)
    assert isinstance(back, Data)
    assert_same_store(view, back)

    # a plain DGL graph (default type names) becomes a Data; as_data=False gives a HeteroData
    plain = dgl.graph((torch.tensor([0, 1, 2]), torch.tensor([1, 2, 0])), num_nodes=4)
    plain.ndata["feat"] = torch.ones(4, 2)
    d = from_dgl(plain)
    assert isinstance(d, Data) and d.num_nodes == 4 and d.feat.shape == (4, 2)
    h = from_dgl(plain, as_data=False)
    assert isinstance(h, HeteroData) and h["_N"].num_nodes == 4
    assert torch.equal(h["_N", "_E", "_N"].edge_index, torch.tensor([[0, 1, 2], [1, 2, 0]]))


def test_single_type_hetero_as_data(synthetic):
    pytest.importorskip("dgl")
    d = from_dgl(to_dgl(synthetic), as_data=True)
    assert isinstance(d, Data)
    assert torch.equal(d.edge_index, synthetic["item", "links", "item"].edge_index)
    assert torch.equal(d.x, synthetic["item"].x) and d.text == synthetic["item"].text
    assert d.meta == synthetic.meta
    with pytest.raises(DataError, match="one node type and one edge type"):
        from_dgl(to_dgl(multi_type_graph()), as_data=True)


def test_invalid_graphs():
    pytest.importorskip("dgl")
    empty = HeteroData()
    empty["a"].num_nodes = 3
    with pytest.raises(DataError, match="no edge type"):
        to_dgl(empty)
    bad = HeteroData()
    bad["a"].num_nodes = 2
    bad["a", "r", "a"].edge_index = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(DataError, match="outside its type"):
        to_dgl(bad)
    with pytest.raises(DataError, match="expects a dgl.DGLGraph"):
        from_dgl(bad)


# ----------------------------------------------------------------------------- numerics


def test_graphconv_equals_gcnconv(synthetic):
    dgl = pytest.importorskip("dgl")
    from dgl.nn import GraphConv
    from torch_geometric.nn import GCNConv

    view = homogeneous_view(synthetic)                 # undirected: in-degree == out-degree
    g = dgl.add_self_loop(to_dgl(view))
    torch.manual_seed(0)
    pyg = GCNConv(view.x.size(1), 7)
    ours = GraphConv(view.x.size(1), 7, norm="both", bias=True)
    with torch.no_grad():
        ours.weight.copy_(pyg.lin.weight.t())
        ours.bias.copy_(torch.randn(7))
        pyg.bias.copy_(ours.bias)
    out_pyg = pyg(view.x, view.edge_index)
    out_dgl = ours(g, g.ndata["x"])
    assert out_pyg.shape == out_dgl.shape == (view.num_nodes, 7)
    torch.testing.assert_close(out_dgl, out_pyg, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- without DGL


def test_without_dgl_one_line_error(monkeypatch, synthetic):
    monkeypatch.setitem(sys.modules, "dgl", None)        # makes `import dgl` raise ImportError
    for call in (lambda: to_dgl(synthetic), lambda: from_dgl(object())):
        with pytest.raises(ConfigError) as info:
            call()
        msg = str(info.value)
        assert "pip install 'mmgraph[dgl]'" in msg and "\n" not in msg
