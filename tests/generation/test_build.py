"""Generation examples from graphs: item graphs (openclipart, Tux Paint shape), the WikiWeb2M
union graph, the grouped split on the target and the overlap statistics."""
from __future__ import annotations

import warnings

import pytest
import torch

from mmgraph.data.graph import RawList, add_feature, new_graph
from mmgraph.data.splits import make_split
from mmgraph.data.wikiweb2m import load_wikiweb2m, union_graph
from mmgraph.errors import ConfigError, DataError
from mmgraph.generation.build import generation_set
from mmgraph.generation.examples import with_context
from mmgraph.tasks.generation import GenerationTask
from tests.data.test_wikiweb2m import _write


def item_graph(titles=("red star", "Red  Star", "blue car", "green tree", "", "old house")):
    """Six items on a path 0-1-2-3-4-5 (relation ``near``) plus a ``tag`` node linked to 0 and 5."""
    n = len(titles)
    data = new_graph("items", "v1", "item", [])
    st = data["item"]
    st.num_nodes = n
    st.title = RawList(t or None for t in titles)
    st.text = RawList(f"item {i}: {t}" for i, t in enumerate(titles))
    st.text_mask = torch.ones(n, dtype=torch.bool)
    st.image = RawList(f"{i}.png" for i in range(n))
    st.image_mask = torch.tensor([True] * (n - 1) + [False])   # the last item has no image
    src = torch.arange(n - 1)
    data["item", "near", "item"].edge_index = torch.stack([torch.cat([src, src + 1]), torch.cat([src + 1, src])])
    data["tag"].num_nodes = 1
    data["tag"].text = RawList(["a tag"])
    data["item", "tagged", "tag"].edge_index = torch.tensor([[0, 5], [0, 0]])
    gen = torch.Generator().manual_seed(0)
    add_feature(data, "text", torch.randn(n, 4, generator=gen), encoder="random")
    add_feature(data, "image", torch.randn(n, 3, generator=gen), encoder="random")
    add_feature(data, "text", torch.randn(1, 4, generator=gen), encoder="random", node_type="tag")
    masks = {"train": [0, 2, 4], "val": [1, 5], "test": [3]}
    for s, idx in masks.items():
        st[f"{s}_mask"] = torch.zeros(n, dtype=torch.bool).index_fill_(0, torch.tensor(idx), True)
    return data


def test_item_graph_examples():
    data = item_graph()
    gen = generation_set(data, "title", relations=["near", "tagged"], max_neighbors=2)
    assert gen.meta["empty_targets"] == 1                   # item 4 has no title
    ids = [e.id for e in gen.examples]
    assert ids == ["0", "1", "2", "3", "5"]
    by = {e.id: e for e in gen.examples}
    assert [by[i].split for i in ids] == ["train", "val", "train", "test", "val"]
    e0 = by["0"]
    # neighbours in relation order: item 1 (near), then the tag (tagged); capped at 2
    assert e0.num_nodes == 3
    assert [(it.modality, it.node, it.role) for it in e0.items] == [
        ("image", 0, "input"), ("text", 1, "context"), ("image", 1, "context"), ("text", 2, "context")]
    assert e0.items[1].text == "item 1: Red  Star" and e0.items[3].text == "a tag"
    # the tag's text row comes after the six item rows of the joint text table
    assert e0.items[3].row == 6 and gen.features["text"].shape == (7, 4)
    assert torch.equal(gen.features["text"][6], data["tag"].x_text[0])
    # edges 0-1 and 0-2 both ways
    assert sorted(map(tuple, e0.edge_index.t().tolist())) == [(0, 1), (0, 2), (1, 0), (2, 0)]
    # item 5's own image is masked: no input item; its text never an item of its own example
    e5 = by["5"]
    assert all(it.node != 0 for it in e5.items)
    assert e5.target == "old house" and e5.group == "old house"
    gen.check()


def test_own_image_and_context_levels():
    data = item_graph()
    gen = generation_set(data, "title", relations=["near"], own_image=False)
    e = next(x for x in gen.examples if x.id == "2")
    assert all(it.role == "context" for it in e.items)
    e = generation_set(data, "title", relations=["near"]).examples[1]
    assert [it.modality for it in with_context(e, "none").items] == ["image"]
    assert {it.modality for it in with_context(e, "text").items} == {"image", "text"}
    assert sum(it.modality == "image" for it in with_context(e, "text").items) == 1
    assert len(with_context(e, "multimodal").items) == len(e.items)
    with pytest.raises(ConfigError, match="context must be one of"):
        with_context(e, "everything")


def test_overlap_counts_seen_and_copyable_targets():
    data = item_graph()
    gen = generation_set(data, "title", relations=["near"])
    # val: item 1 "Red  Star" equals train item 0's title once normalised; item 5 is not seen
    assert gen.meta["overlap"]["val"]["target_in_train"] == 0.5
    # item 1's neighbour 0 has text "item 0: red star", which contains "red star"
    assert gen.meta["overlap"]["val"]["target_in_context_text"] == 0.5


def test_bad_fields_are_one_line_errors():
    data = item_graph()
    with pytest.raises(ConfigError, match="no field 'caption'"):
        generation_set(data, "caption")
    with pytest.raises(ConfigError, match="no relation 'knows'"):
        generation_set(data, "title", relations=["knows"])
    for s in ("train", "val", "test"):
        del data["item"][f"{s}_mask"]
    with pytest.raises(DataError, match="no split"):
        generation_set(data, "title")


def test_grouped_split_is_grouped_on_the_target():
    data = item_graph(("red star", "Red  Star", "red star", "blue car", "blue car", "green tree",
                       "old house", "Old House", "sun", "moon"))
    data["item"].text = RawList(f"item {i}" for i in range(10))     # every text distinct
    task = GenerationTask(target="title", relations=["near"], eval_sample=None)
    task.setup(data, torch.device("cpu"), split={"name": "grouped", "key": "text", "train_ratio": 0.5,
                                                 "val_ratio": 0.25, "seed": 1, "stratify": False})
    assert data.meta["split"]["params"]["key"] == "title"
    sides = {}
    for s in ("train", "val", "test"):
        for e in task.gen.split(s):
            sides.setdefault(e.group, set()).add(s)
    assert all(len(v) == 1 for v in sides.values())
    assert task.describe()["overlap"]["val"]["target_in_train"] == 0.0


def test_wikiweb2m_union_graph_gives_the_loader_examples(tmp_path):
    root = _write(tmp_path / "wikiweb2m")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        examples = load_wikiweb2m(root, progress=False)
    data = union_graph(examples)
    assert data.meta["target"] == "section"
    gen = torch.Generator().manual_seed(0)
    for nt in ("section", "page", "caption"):
        add_feature(data, "text", torch.randn(data[nt].num_nodes, 5, generator=gen), encoder="r", node_type=nt)
    add_feature(data, "image", torch.randn(data["image"].num_nodes, 3, generator=gen), encoder="r",
                node_type="image")
    assert set(data.meta["features"]) == {"x_text", "page/x_text", "caption/x_text", "image/x_image"}
    gs = generation_set(data, "target_text", input_field="input_text")
    assert len(gs.examples) == len(examples)
    for e, ex in zip(gs.examples, examples):
        assert e.split == ex.split
        assert e.target == ex["section"].target_text[0]
        assert e.input_text == ex["section"].input_text[0]
        n = sum(int(ex[t].num_nodes) for t in ("section", "page", "image", "caption"))
        assert e.num_nodes == n
        texts = [it.text for it in e.items if it.modality == "text"]
        want = ([t for t in ex["page"].text if t] + [t for t in ex["section"].text[1:] if t]
                + [t for t in ex["caption"].text if t])
        assert sorted(texts) == sorted(want)
        images = [it for it in e.items if it.modality == "image"]
        assert len(images) == int(ex["image"].image_mask.sum())
        # the local graph: the example's relations as distinct node pairs (node types in order)
        base, off = {}, 0
        for t in ("section", "page", "image", "caption"):
            base[t], off = off, off + int(ex[t].num_nodes)
        pairs = {(base[s] + a, base[d] + b) for s, _, d in ex.edge_types
                 for a, b in ex[s, _, d].edge_index.t().tolist()}
        assert set(map(tuple, e.edge_index.t().tolist())) == pairs
    gs.check()
