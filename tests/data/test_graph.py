import pytest
import torch
import torch_geometric.transforms as T
from torch_geometric.nn import to_hetero

from mmgraph.data.graph import (RawList, add_feature, fingerprint, homogeneous_view, is_coalesced,
                                modalities, set_model_input, split_indices, tensor_digest)
from mmgraph.errors import DataError
from mmgraph.nn import GraphSAGE
from tests.conftest import fake_graph


def test_rawlist_indexing_like_pyg_needs():
    r = RawList(["a", "b", None, "d"])
    assert r[1] == "b" and r[-1] == "d"
    assert r[torch.tensor([3, 0])] == ["d", "a"]
    assert r[torch.tensor([True, False, True, False])] == ["a", None]
    assert isinstance(r[1:3], RawList) and r[1:3] == ["b", None]
    with pytest.raises(IndexError):
        r[torch.tensor([True, False])]


def test_conventions_of_fake_graph(graph):
    store = graph["item"]
    assert modalities(graph) == ["image", "text"]
    assert store.x.shape == (20, 12)
    assert graph.meta["input"]["modalities"] == ["text", "image"]
    assert set(graph.meta["features"]) == {"x_text", "x_image"}
    assert not store.text_mask[3] and store.text_mask.sum() == 19
    sizes = {k: v.numel() for k, v in split_indices(graph).items()}
    assert sizes == {"train": 10, "val": 5, "test": 5}


def test_subgraph_slices_raw_lists_and_masks(graph):
    sub = graph.subgraph({"item": torch.tensor([2, 3, 4])})
    assert sub["item"].text == [graph["item"].text[2], None, graph["item"].text[4]]
    assert sub["item"].x.shape == (3, 12)
    assert sub["item"].text_mask.tolist() == [True, False, True]


def test_pyg_transforms_work(graph):
    out = T.Compose([T.ToUndirected(), T.AddSelfLoops()])(graph.clone())
    assert out["item", "near", "item"].edge_index.size(1) > graph["item", "near", "item"].edge_index.size(1)
    assert T.NormalizeFeatures()(graph.clone())["item"].x.shape == (20, 12)


def test_to_hetero_runs_on_the_graph(graph):
    model = to_hetero(GraphSAGE((-1, -1), 16, 3, norm="batch"), graph.metadata())
    out = model(graph.x_dict, graph.edge_index_dict)
    assert out["item"].shape == (20, 3)


def test_homogeneous_view_merges_relations(graph):
    both = homogeneous_view(graph)
    near = homogeneous_view(graph, ["near"])
    assert near.edge_index.size(1) == 40
    assert both.edge_index.size(1) == 80  # the two rings share no edge for 3 classes
    assert torch.equal(both.x, graph["item"].x) and torch.equal(both.y, graph["item"].y)
    assert both.train_mask.sum() == 10
    with pytest.raises(DataError, match="unknown relation 'cites'.*near"):
        homogeneous_view(graph, ["cites"])


def test_is_coalesced_agrees_with_coalesce_and_the_view_shares_coalesced_edges(graph):
    from torch_geometric.utils import coalesce

    gen = torch.Generator().manual_seed(0)
    for m in (0, 1, 9, 200):
        raw = torch.randint(0, 12, (2, m), generator=gen)
        done = coalesce(raw, num_nodes=12)
        for chunk in (1, 2, 7, 1 << 20):  # chunk borders must not hide a step back
            assert is_coalesced(done, 12, chunk=chunk)
            assert is_coalesced(raw, 12, chunk=chunk) == torch.equal(raw, done)
    assert not is_coalesced(torch.tensor([[0, 0], [1, 1]]), 2, chunk=1)  # a duplicate
    assert not is_coalesced(torch.tensor([[0, 1, 0], [1, 0, 2]]), 3, chunk=2)
    # one relation already coalesced: the view shares its storage instead of copying it
    (et,) = [et for et in graph.edge_types if et[1] == "near"]
    graph[et].edge_index = coalesce(graph[et].edge_index, num_nodes=graph["item"].num_nodes)
    near = homogeneous_view(graph, ["near"])
    assert near.edge_index.data_ptr() == graph[et].edge_index.data_ptr()
    shuffled = graph[et].edge_index.flip(1)
    graph[et].edge_index = shuffled
    again = homogeneous_view(graph, ["near"])
    assert torch.equal(again.edge_index, near.edge_index) and not torch.equal(shuffled, near.edge_index)


def test_set_model_input_orders_and_errors(graph):
    set_model_input(graph, ["image"])
    assert graph["item"].x.shape == (20, 4)
    fp_image = graph.meta["input"]["fingerprint"]
    set_model_input(graph, ["image", "text"])
    assert torch.equal(graph["item"].x[:, :4], graph["item"].x_image)
    assert graph.meta["input"]["fingerprint"] != fp_image
    with pytest.raises(DataError, match="modality 'audio' has no features.*image, text"):
        set_model_input(graph, ["audio"])


def test_nan_features_become_a_counted_missing_modality(graph):
    x = torch.randn(20, 3)
    x[[1, 7]] = float("nan")
    with pytest.warns(UserWarning, match="2 of 20 rows of x_extra"):
        add_feature(graph, "extra", x, "enc")
    store = graph["item"]
    assert torch.isfinite(store.x_extra).all()
    assert store.extra_mask.tolist().count(False) == 2 and not store.extra_mask[7]


def test_add_feature_keeps_existing_mask_and_fingerprints_provenance(graph):
    fp1 = add_feature(graph, "text", torch.randn(20, 8), "enc-a", spec={"pool": "mean"})
    assert not graph["item"].text_mask[3]  # the missing text stays missing
    fp2 = add_feature(graph, "text", torch.randn(20, 8), "enc-a", spec={"pool": "cls"})
    assert fp1 != fp2
    with pytest.raises(DataError, match="must be"):
        add_feature(graph, "text", torch.randn(19, 8), "enc-a")


def test_fingerprints_are_stable():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert tensor_digest(torch.arange(5)) == tensor_digest(torch.arange(5))
    assert tensor_digest(torch.arange(5)) != tensor_digest(torch.arange(5).float())


def test_fake_graph_is_deterministic():
    a, b = fake_graph(seed=1), fake_graph(seed=1)
    assert torch.equal(a["item"].x, b["item"].x)
    assert a.meta["split"]["fingerprint"] == b.meta["split"]["fingerprint"]
