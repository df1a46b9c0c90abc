import numpy as np
import pytest
import torch
from torch_geometric.data import Data, HeteroData

from mmgraph.data.graph import RawList
from mmgraph.data.splits import (apply_split, group_ids, grouped_split, kshot_split, magb_split,
                                 make_split, normalised_text, planetoid_public_split)
from mmgraph.errors import ConfigError, DataError


def legacy_magb(num_nodes, train_ratio=0.6, val_ratio=0.2, labels=None, few_shot=None):
    """MAGB's protocol written with the legacy global RNG, as in their scripts."""
    state = np.random.get_state()
    try:
        np.random.seed(42)
        indices = np.random.permutation(num_nodes)
        if few_shot is None:
            train_size = int(num_nodes * train_ratio)
            val_size = int(num_nodes * val_ratio)
            return (indices[:train_size], indices[train_size:train_size + val_size],
                    indices[train_size + val_size:])
        train_ids = []
        for label in np.unique(labels):
            label_indices = np.where(labels == label)[0]
            np.random.shuffle(label_indices)
            train_ids.extend(label_indices[:few_shot])
        remaining = np.setdiff1d(indices, train_ids)
        np.random.shuffle(remaining)
        val_size = int(len(remaining) * val_ratio)
        return np.array(train_ids), remaining[:val_size], remaining[val_size:]
    finally:
        np.random.set_state(state)


def graph(n=20, num_classes=3, seed=0, target="item"):
    data = HeteroData()
    data.meta = {"name": "fake", "version": "0", "target": target, "features": {}}
    data[target].num_nodes = n
    data[target].y = torch.from_numpy(np.random.default_rng(seed).integers(0, num_classes, n))
    return data


@pytest.mark.parametrize("n,ratios", [(1000, (0.6, 0.2)), (997, (0.6, 0.2)), (123, (0.1, 0.1)),
                                      (16_743, (0.6, 0.2))])
def test_magb_plain_identical_to_legacy(n, ratios):
    ours = magb_split(n, *ratios)
    theirs = legacy_magb(n, *ratios)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)
    train, val, test = ours
    assert len(train) == int(n * ratios[0]) and len(val) == int(n * ratios[1])
    assert len(train) + len(val) + len(test) == n
    assert np.array_equal(np.sort(np.concatenate(ours)), np.arange(n))


@pytest.mark.parametrize("k,seed", [(1, 0), (5, 1), (10, 2)])
def test_magb_few_shot_identical_to_legacy(k, seed):
    n = 500
    labels = np.random.default_rng(seed).integers(0, 7, n)
    labels[labels == 6] = 8  # non-contiguous label ids
    ours = magb_split(n, labels=torch.from_numpy(labels), few_shot=k)
    theirs = legacy_magb(n, labels=labels, few_shot=k)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)
    train, val, test = ours
    counts = np.bincount(labels[train], minlength=9)
    assert all(counts[c] == min(k, (labels == c).sum()) for c in np.unique(labels))
    assert len(val) == int((n - len(train)) * 0.2)
    assert np.array_equal(np.sort(np.concatenate(ours)), np.arange(n))


def test_magb_few_shot_rejects_unlabelled_and_missing_labels():
    with pytest.raises(DataError, match="y < 0"):
        magb_split(10, labels=np.array([0, 1, -1, 0, 1, 0, 1, 0, 1, 0]), few_shot=1)
    with pytest.raises(ConfigError, match="labels"):
        magb_split(10, few_shot=1)
    with pytest.raises(ConfigError, match="ratios"):
        magb_split(10, train_ratio=0.9, val_ratio=0.2)


def test_kshot_counts_and_unlabelled_never_used():
    rng = np.random.default_rng(0)
    labels = rng.integers(-1, 4, 400)
    train, val, test = kshot_split(labels, k=5, seed=3)
    assert all((labels[train] == c).sum() == 5 for c in range(4))
    assert all((labels[val] == c).sum() == 5 for c in range(4))  # default val_per_class = k
    used = np.concatenate([train, val, test])
    assert (labels[used] >= 0).all()
    assert len(np.unique(used)) == len(used) == (labels >= 0).sum()
    again = kshot_split(labels, k=5, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    other = kshot_split(labels, k=5, seed=4)
    assert not np.array_equal(train, other[0])


def test_kshot_num_val_num_test_and_small_class():
    labels = np.array([0] * 50 + [1] * 50 + [2] * 2)
    with pytest.warns(UserWarning, match=r"\[2\]"):
        train, val, test = kshot_split(labels, k=3, num_val=10, num_test=20)
    assert (labels[train] == 2).sum() == 2 and (labels[train] == 0).sum() == 3
    assert len(val) == 10 and len(test) == 20
    assert not set(train) & set(val) and not set(val) & set(test) and not set(train) & set(test)
    with pytest.raises(ConfigError, match="not both"):
        kshot_split(labels, k=3, num_val=5, val_per_class=2)


def test_planetoid_public_split_cora_shape():
    n, test_index = 2708, np.arange(1708, 2708)[::-1].copy()
    train, val, test = planetoid_public_split(7, n, test_index)
    assert (len(train), len(val), len(test)) == (140, 500, 1000)
    np.testing.assert_array_equal(train, np.arange(140))
    np.testing.assert_array_equal(val, np.arange(140, 640))
    np.testing.assert_array_equal(test, test_index)
    data = Data(num_nodes=n)
    apply_split(data, train, val, test, "public", {})
    assert int(data.train_mask.sum()) == 140 and int(data.test_mask.sum()) == 1000
    with pytest.raises(DataError, match="needs"):
        planetoid_public_split(7, 600, test_index)


def test_apply_split_masks_and_meta():
    data = graph(10)
    apply_split(data, [0, 1, 2], np.array([3, 4]), torch.tensor([9, 8, 7]), "manual", {"a": 1})
    store = data["item"]
    assert store.train_mask.dtype == torch.bool and store.train_mask.shape == (10,)
    assert store.train_mask.nonzero().view(-1).tolist() == [0, 1, 2]
    assert store.test_mask.nonzero().view(-1).tolist() == [7, 8, 9]
    split = data.meta["split"]
    assert split["name"] == "manual" and split["params"] == {"a": 1}
    assert split["sizes"] == {"train": 3, "val": 2, "test": 3}
    fp = split["fingerprint"]
    apply_split(data, [2, 1, 0], [4, 3], [7, 8, 9], "other", {})  # order does not matter
    assert data.meta["split"]["fingerprint"] == fp
    apply_split(data, [0, 1], [3, 4, 2], [7, 8, 9], "other", {})
    assert data.meta["split"]["fingerprint"] != fp


@pytest.mark.parametrize("train,val,test,msg", [
    ([0, 1], [1, 2], [3], "train and val splits share 1"),
    ([0, 1], [2], [3, 0], "train and test"),
    ([0, 10], [2], [3], "train split index 10 is out of range"),
    ([0], [-1], [3], "val split index -1"),
    ([0, 0], [2], [3], "repeats 1"),
    ([0.0, 1.0], [2], [3], "integers"),
])
def test_apply_split_errors(train, val, test, msg):
    with pytest.raises(DataError, match=msg):
        apply_split(graph(10), train, val, test, "bad", {})


def test_apply_split_fast_on_a_million_nodes():
    import time
    train, val, test = magb_split(1_000_000)
    data = Data(num_nodes=1_000_000)
    start = time.perf_counter()
    apply_split(data, train, val, test, "magb", {})
    assert time.perf_counter() - start < 2.0
    assert data.meta["split"]["sizes"] == {"train": 600_000, "val": 200_000, "test": 200_000}


def test_make_split_magb_and_kshot():
    data = graph(50)
    make_split(data, "magb", few_shot=2, seed=42)
    labels = data["item"].y.numpy()
    expected = legacy_magb(50, labels=labels, few_shot=2)
    got = data["item"].train_mask.nonzero().view(-1).numpy()
    np.testing.assert_array_equal(got, np.sort(expected[0]))
    assert data.meta["split"]["name"] == "magb" and data.meta["split"]["params"]["few_shot"] == 2
    make_split(data, "magb")
    assert data.meta["split"]["sizes"] == {"train": 30, "val": 10, "test": 10}
    make_split(data, "kshot", k=2, seed=1)
    y_train = data["item"].y[data["item"].train_mask]
    assert torch.bincount(y_train).tolist() == [2, 2, 2]


def test_make_split_public_and_errors():
    data = graph(10)
    with pytest.raises(DataError, match="no train_mask"):
        make_split(data, "public")
    apply_split(data, [0, 1], [2], [3, 4], "dataset", {})
    make_split(data, "public")
    assert data.meta["split"]["name"] == "public"
    assert data.meta["split"]["sizes"] == {"train": 2, "val": 1, "test": 2}
    with pytest.raises(ConfigError, match="valid: magb, grouped, kshot, public"):
        make_split(data, "random")
    with pytest.raises(ConfigError, match="unknown parameter 'ratio'"):
        make_split(data, "magb", ratio=0.5)
    with pytest.raises(ConfigError, match="needs k"):
        make_split(data, "kshot")


def _parts(split, n):
    part = np.full(n, -1)
    for k, idx in enumerate(split):
        assert (part[idx] == -1).all()
        part[idx] = k
    assert (part >= 0).all()
    return part


@pytest.mark.parametrize("seed", [0, 42])
def test_grouped_split_keeps_groups_whole_near_the_ratios(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    groups = rng.integers(0, 1200, n)               # many small groups ...
    groups[:300] = np.repeat(np.arange(2000, 2010), 30)  # ... and ten of 30 nodes
    groups[rng.random(n) < 0.2] = -1                # nodes without a key: groups of their own
    labels = (groups * 7 + rng.integers(0, 2, n)) % 5
    split = grouped_split(groups, labels, 0.6, 0.2, seed=seed)
    part = _parts(split, n)
    for g in np.unique(groups[groups >= 0]):
        assert len(np.unique(part[groups == g])) == 1, f"group {g} split across parts"
    sizes = np.bincount(part, minlength=3) / n
    assert np.allclose(sizes, [0.6, 0.2, 0.2], atol=0.03), sizes
    for c in range(5):                              # stratified: each class near the ratios
        share = np.bincount(part[labels == c], minlength=3) / (labels == c).sum()
        assert np.allclose(share, [0.6, 0.2, 0.2], atol=0.08), (c, share)
    again = grouped_split(groups, labels, 0.6, 0.2, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip(split, again))
    other = grouped_split(groups, labels, 0.6, 0.2, seed=seed + 1)
    assert not np.array_equal(split[2], other[2])


def test_grouped_split_singletons_match_ratios_and_reject_bad_input():
    train, val, test = grouped_split(-np.ones(100, dtype=int), None, 0.6, 0.2, seed=1)
    assert (len(train), len(val), len(test)) == (60, 20, 20)
    with pytest.raises(ConfigError, match="ratios"):
        grouped_split(np.arange(10), None, 0.9, 0.2)
    with pytest.raises(DataError, match="integer group ids"):
        grouped_split(np.linspace(0, 1, 10))
    with pytest.raises(DataError, match="entries for"):
        grouped_split(np.arange(10), np.zeros(9, dtype=int))


def test_group_ids_of_text_image_and_attributes():
    data = graph(n=6)
    store = data["item"]
    store.text = RawList(["A  cat", "a cat", None, "  ", "dog", "Dog "])
    assert normalised_text(" A\tCat ") == "a cat" and normalised_text("  ") is None
    ids = group_ids(store, "text")
    assert ids[0] == ids[1] and ids[4] == ids[5] and ids[0] != ids[4]
    assert ids[2] < 0 and ids[3] < 0
    store.content_hash = RawList(["h1", "h2", "h1", "h3", "h2", None])
    ids = group_ids(store, "image")
    assert ids[0] == ids[2] and ids[1] == ids[4] and ids[5] < 0 and len(set(ids[:5])) == 3
    store.creator = torch.tensor([3, 3, -1, 5, 5, 3])
    assert group_ids(store, "creator").tolist() == [3, 3, -1, 5, 5, 3]
    store.emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [2.0, 2.0], [1.0, 0.0]])
    ids = group_ids(store, "emb")
    assert ids[0] == ids[1] == ids[5] and ids[2] == ids[3] and len(set(ids)) == 3
    with pytest.raises(DataError, match="no attribute 'missing'.*available:"):
        group_ids(store, "missing")
    with pytest.raises(DataError, match="content hash"):
        group_ids(graph(n=3)["item"], "image")


def test_make_split_grouped_keeps_test_texts_out_of_train():
    n = 400
    rng = np.random.default_rng(3)
    data = graph(n=n, num_classes=4)
    pool = [f"text {i}" for i in range(60)]
    data["item"].text = RawList(pool[i] if i < 60 else None for i in rng.integers(0, 80, n))
    make_split(data, "grouped", key="text", seed=5)
    st = data["item"]
    texts = list(st.text)
    train = {texts[i] for i in st.train_mask.nonzero().view(-1).tolist() if texts[i]}
    assert not any(texts[i] in train for i in st.test_mask.nonzero().view(-1).tolist())
    assert not any(texts[i] in train for i in st.val_mask.nonzero().view(-1).tolist())
    rec = data.meta["split"]
    assert rec["name"] == "grouped" and rec["params"]["key"] == "text" and rec["params"]["seed"] == 5
    assert rec["groups"]["count"] == len({t for t in texts if t}) + sum(t is None for t in texts)
    assert sum(rec["sizes"].values()) == n
    with pytest.raises(ConfigError, match="unknown parameter 'k'"):
        make_split(data, "grouped", k=3)
    with pytest.raises(ConfigError, match="stratify"):
        make_split(data, "grouped", stratify="yes")
