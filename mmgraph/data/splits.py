"""Node splits: MAGB's protocol, grouped splits, K-shot, Planetoid's public split, and the
masks they set.

A split function returns three integer index arrays ``(train, val, test)``;
:func:`apply_split` turns them into the ``train_mask``/``val_mask``/``test_mask`` of the
target node type and records the split in ``data.meta["split"]``. :func:`make_split` is
the name-based entry point used by the runner.
"""
from __future__ import annotations

import hashlib
import warnings
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData

from mmgraph.checks import boolean, integer, number
from mmgraph.data.graph import fingerprint
from mmgraph.errors import ConfigError, DataError

Split = tuple[np.ndarray, np.ndarray, np.ndarray]

SPLITS = ("magb", "grouped", "kshot", "public", "given")


def _as_numpy(values: Any, dtype=None) -> np.ndarray:
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values) if dtype is None else np.asarray(values, dtype=dtype)


def magb_split(num_nodes: int, train_ratio: float = 0.6, val_ratio: float = 0.2,
               labels: Any = None, few_shot: int | None = None, seed: int = 42) -> Split:
    """MAGB's node split, index for index.

    One ``RandomState(seed)`` (the same stream as MAGB's ``np.random.seed(42)``) draws a
    permutation of all nodes. Without ``few_shot``: train is its first
    ``int(N * train_ratio)`` entries, val the next ``int(N * val_ratio)``, test the rest.
    With ``few_shot=K``: for each label in ``np.unique(labels)`` the label's nodes are
    shuffled and the first ``K`` go to train (in that order); the other nodes, sorted and
    then shuffled, give val (the first ``int(len * val_ratio)``) and test (the rest).
    ``train_ratio`` is unused in the few-shot case, as in MAGB.

    Every node is assigned, labelled or not: MAGB's data sets label every node. Callers
    must ignore ``y < 0`` in losses and metrics if a graph has unlabelled nodes.

    Args:
        num_nodes: Number of nodes ``N``.
        train_ratio: Fraction of nodes for training (plain split only).
        val_ratio: Fraction of nodes (plain) or of the non-train nodes (few-shot) for val.
        labels: ``[N]`` labels; required with ``few_shot``.
        few_shot: Training nodes per class, or ``None`` for the ratio split.
        seed: Seed of the legacy NumPy generator (MAGB uses 42).

    Returns:
        ``(train, val, test)`` int64 index arrays, in MAGB's order.
    """
    num_nodes = int(num_nodes)
    if num_nodes <= 0:
        raise DataError(f"magb_split needs num_nodes > 0; got {num_nodes}")
    train_ratio = number("magb split train_ratio", train_ratio, 0.0, 1.0)
    val_ratio = number("magb split val_ratio", val_ratio, 0.0, 1.0)
    seed = integer("magb split seed", seed, 0)
    few_shot = integer("magb split few_shot", few_shot, 1, optional=True)
    if not (train_ratio + val_ratio <= 1 + 1e-9):
        raise ConfigError(f"magb split ratios must be >= 0 and sum to <= 1; "
                          f"got train_ratio={train_ratio}, val_ratio={val_ratio}")
    rng = np.random.RandomState(seed)
    indices = rng.permutation(num_nodes)
    if few_shot is None:
        train_size = int(num_nodes * train_ratio)
        val_size = int(num_nodes * val_ratio)
        return (indices[:train_size], indices[train_size:train_size + val_size],
                indices[train_size + val_size:])

    if labels is None:
        raise ConfigError("magb few-shot split needs labels")
    labels = _as_numpy(labels).reshape(-1)
    if labels.shape[0] != num_nodes:
        raise DataError(f"labels has {labels.shape[0]} entries for {num_nodes} nodes")
    if (labels < 0).any():
        # MAGB would treat -1 as a class and put unlabelled nodes into train.
        raise DataError(f"magb few-shot split needs every node labelled; "
                        f"{int((labels < 0).sum())} nodes have y < 0")
    k = few_shot
    train_ids: list = []
    for label in np.unique(labels):
        label_indices = np.where(labels == label)[0]
        rng.shuffle(label_indices)
        train_ids.extend(label_indices[:k])
    train = np.asarray(train_ids, dtype=np.int64)
    remaining = np.setdiff1d(indices, train)
    rng.shuffle(remaining)
    val_size = int(len(remaining) * val_ratio)
    return train, remaining[:val_size], remaining[val_size:]


def grouped_split(groups: Any, labels: Any = None, train_ratio: float = 0.6,
                  val_ratio: float = 0.2, seed: int = 42, stratify: bool = True) -> Split:
    """A seeded split in which nodes of one group always land on the same side.

    Use it when the same content (a text, an image, an entity) sits on several nodes: with a
    node-level split such copies fall on both sides and the test score partly measures lookup.
    Groups are drawn whole. With ``stratify`` and ``labels``, each group belongs to the class
    most of its labelled nodes have (ties: the smallest class id; groups without labelled nodes
    form a stratum of their own), and each class's groups are split separately, so class
    proportions follow the ratios as closely as whole groups allow. Within a stratum the groups
    are visited in a seeded random order and each goes to the part (train, val, test) furthest
    below its target ``ratio x stratum size`` (ties: train before val before test).

    Args:
        groups: ``[N]`` group ids (any integers); a negative id puts the node in a group of its
            own (e.g. a node without text).
        labels: ``[N]`` class labels (negative: unlabelled), used for stratification only.
        train_ratio: Target fraction of nodes in train.
        val_ratio: Target fraction of nodes in val; test takes the rest.
        seed: Seed of the ``numpy.random.Generator`` that orders the groups.
        stratify: Split each class's groups separately (needs ``labels``).

    Returns:
        ``(train, val, test)`` sorted int64 index arrays.
    """
    train_ratio = number("grouped split train_ratio", train_ratio, 0.0, 1.0)
    val_ratio = number("grouped split val_ratio", val_ratio, 0.0, 1.0)
    seed = integer("grouped split seed", seed, 0)
    stratify = boolean("grouped split stratify", stratify)
    if not (train_ratio + val_ratio <= 1 + 1e-9):
        raise ConfigError(f"grouped split ratios must be >= 0 and sum to <= 1; "
                          f"got train_ratio={train_ratio}, val_ratio={val_ratio}")
    groups = _as_numpy(groups).reshape(-1)
    n = groups.shape[0]
    if n == 0:
        raise DataError("grouped split needs at least one node")
    if not np.issubdtype(groups.dtype, np.integer):
        raise DataError(f"grouped split needs integer group ids; got dtype {groups.dtype}")
    groups = groups.astype(np.int64)
    alone = groups < 0                          # each such node is a group of its own
    groups = np.where(alone, groups.max(initial=0) + 1 + np.arange(n), groups)
    _, member = np.unique(groups, return_inverse=True)
    num_groups = int(member.max()) + 1
    size = np.bincount(member, minlength=num_groups)
    stratum = np.zeros(num_groups, dtype=np.int64)
    if stratify and labels is not None:
        labels = _as_numpy(labels).reshape(-1).astype(np.int64)
        if labels.shape[0] != n:
            raise DataError(f"labels has {labels.shape[0]} entries for {n} nodes")
        known = labels >= 0
        num_classes = int(labels.max(initial=-1)) + 1
        votes = np.zeros((num_groups, max(num_classes, 1)), dtype=np.int64)
        np.add.at(votes, (member[known], labels[known]), 1)
        stratum = np.where(votes.sum(1) > 0, votes.argmax(1), -1)
    rng = np.random.default_rng(seed)
    targets = np.array([train_ratio, val_ratio, max(0.0, 1.0 - train_ratio - val_ratio)])
    part = np.empty(num_groups, dtype=np.int64)
    for s in np.unique(stratum):
        ids = rng.permutation(np.flatnonzero(stratum == s))
        want = targets * size[ids].sum()
        have = np.zeros(3)
        for g in ids:
            k = int(np.argmax(want - have))     # first maximum: train, then val, then test
            part[g] = k
            have[k] += size[g]
    node_part = part[member]
    return tuple(np.flatnonzero(node_part == k).astype(np.int64) for k in range(3))  # type: ignore[return-value]


def normalised_text(text: Any) -> str | None:
    """The text a grouped split compares: whitespace collapsed, case folded; ``None`` when the
    text is missing or blank (such a node is a group of its own)."""
    if not isinstance(text, str):
        return None
    text = " ".join(text.split()).casefold()
    return text or None


def group_ids(store, key: str) -> np.ndarray:
    """``[N]`` integer group ids of a node store's ``key``, for :func:`grouped_split`.

    ``key`` is ``"text"`` (identical texts after :func:`normalised_text`), ``"image"`` (the
    nodes' ``content_hash`` of their image), or the name of any node attribute: a list of values
    (texts compared after :func:`normalised_text`; ``None`` or ``""``: a group of its own), or a tensor/array with one row per node (equal rows
    form a group; an integer vector is taken as given group ids, negative: a group of its own).
    """
    name = "content_hash" if key == "image" else key
    values = getattr(store, name, None)
    if values is None:
        extra = " (the image content hash the data set's loader records)" if key == "image" else ""
        attrs = sorted(k for k in store.keys() if not k.endswith("_mask"))
        raise DataError(f"grouped split: the nodes have no attribute {name!r}{extra}; "
                        f"available: {', '.join(attrs) or 'none'}")
    n = store.num_nodes
    if isinstance(values, (Tensor, np.ndarray)):
        arr = _as_numpy(values)
        if arr.shape[0] != n:
            raise DataError(f"grouped split: {name!r} has {arr.shape[0]} rows for {n} nodes")
        if arr.ndim == 1 and np.issubdtype(arr.dtype, np.integer):
            return arr.astype(np.int64)
        _, ids = np.unique(arr.reshape(n, -1), axis=0, return_inverse=True)
        return ids.reshape(-1).astype(np.int64)
    values = list(values)
    if len(values) != n:
        raise DataError(f"grouped split: {name!r} has {len(values)} entries for {n} nodes")
    values = [normalised_text(v) if isinstance(v, str) or key == "text" else v for v in values]
    index: dict = {}
    out = np.empty(n, dtype=np.int64)
    for i, v in enumerate(values):
        out[i] = -1 if v is None or v == "" else index.setdefault(v, len(index))
    return out


def kshot_split(labels: Any, k: int, num_val: int | None = None,
                val_per_class: int | None = None, num_test: int | None = None,
                seed: int = 0) -> Split:
    """``k`` training nodes per class; val and test drawn from the remaining labelled nodes.

    Only nodes with ``label >= 0`` are ever used. Val is ``val_per_class`` nodes per class,
    or ``num_val`` nodes drawn uniformly from the labelled non-train nodes; if neither is
    given, ``val_per_class = k`` (a validation set no larger than the training set, as is
    usual in few-shot evaluation). Test is every remaining labelled node, or ``num_test`` of
    them drawn uniformly. A class with at most ``k`` nodes puts all of them in train (with a
    warning).

    Args:
        labels: ``[N]`` integer labels, ``-1`` (any negative) for unlabelled nodes.
        k: Training nodes per class.
        num_val: Total validation nodes (exclusive with ``val_per_class``).
        val_per_class: Validation nodes per class (exclusive with ``num_val``).
        num_test: Test nodes; ``None`` for all remaining labelled nodes.
        seed: Seed of the ``numpy.random.Generator``.

    Returns:
        ``(train, val, test)`` sorted int64 index arrays.
    """
    k, seed = integer("kshot split k", k, 1), integer("kshot split seed", seed, 0)
    num_val = integer("kshot split num_val", num_val, 0, optional=True)
    val_per_class = integer("kshot split val_per_class", val_per_class, 0, optional=True)
    num_test = integer("kshot split num_test", num_test, 0, optional=True)
    if num_val is not None and val_per_class is not None:
        raise ConfigError("kshot split takes num_val or val_per_class, not both")
    if num_val is None and val_per_class is None:
        val_per_class = k
    labels = _as_numpy(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    train, val, short = [], [], []
    for label in np.unique(labels[labels >= 0]):
        members = rng.permutation(np.flatnonzero(labels == label))
        if len(members) <= k:
            short.append(int(label))
        train.append(members[:k])
        if val_per_class is not None:
            val.append(members[k:k + int(val_per_class)])
    if short:
        warnings.warn(f"kshot split: classes {short} have at most {k} labelled nodes; "
                      f"all of them are used for training", stacklevel=2)
    if not train:
        raise DataError("kshot split: no labelled nodes (every label is negative)")
    train_idx = np.concatenate(train)
    taken = np.zeros(labels.shape[0], dtype=bool)
    taken[train_idx] = True
    if val_per_class is not None:
        val_idx = np.concatenate(val)
    else:
        pool = rng.permutation(np.flatnonzero((labels >= 0) & ~taken))
        val_idx = pool[:int(num_val)]
    taken[val_idx] = True
    rest = np.flatnonzero((labels >= 0) & ~taken)
    test_idx = rest if num_test is None else np.sort(rng.permutation(rest)[:int(num_test)])
    return (np.sort(train_idx).astype(np.int64), np.sort(val_idx).astype(np.int64),
            test_idx.astype(np.int64))


def planetoid_public_split(num_classes: int, num_nodes: int, test_index: Any,
                           num_train_per_class: int = 20, num_val: int = 500) -> Split:
    """The public Planetoid split of Yang et al. (2016) as used by Kipf & Welling (2017).

    The raw Planetoid files order the labelled training nodes first, so train is the range
    ``[0, num_classes * num_train_per_class)``, val the next ``num_val`` nodes, and test the
    data set's given test indices (1,000 nodes for Cora, CiteSeer and PubMed). On Cora this
    gives 140 / 500 / 1,000.

    Args:
        num_classes: Number of classes.
        num_nodes: Number of nodes.
        test_index: The data set's test node indices (``ind.<name>.test.index``).
        num_train_per_class: Training nodes per class (20 in the public split).
        num_val: Validation nodes (500 in the public split).

    Returns:
        ``(train, val, test)`` int64 index arrays; test keeps the order it was given in.
    """
    n_train = int(num_classes) * int(num_train_per_class)
    if n_train + int(num_val) > int(num_nodes):
        raise DataError(f"public split needs {n_train} train + {num_val} val nodes; "
                        f"the graph has {num_nodes}")
    train = np.arange(n_train, dtype=np.int64)
    val = np.arange(n_train, n_train + int(num_val), dtype=np.int64)
    return train, val, _as_numpy(test_index, dtype=np.int64).reshape(-1)


def _store(data: HeteroData | Data, node_type: str | None):
    if isinstance(data, HeteroData):
        return data[node_type or data.meta["target"]]
    return data


def _digest(index: np.ndarray) -> str:
    return hashlib.blake2b(np.sort(index).astype("<i8").tobytes(), digest_size=16).hexdigest()


def apply_split(data: HeteroData | Data, train: Any, val: Any, test: Any, name: str,
                params: dict | None = None, node_type: str | None = None) -> HeteroData | Data:
    """Set the split masks on the target nodes and record the split in ``data.meta``.

    Args:
        data: A :class:`HeteroData` (masks go on ``node_type`` or the target type) or a
            homogeneous :class:`Data`.
        train, val, test: Node index arrays or tensors.
        name: The split's name (``"magb"``, ``"kshot"``, ...).
        params: The parameters that produced it.
        node_type: Node type to split; defaults to ``data.meta["target"]``.

    Returns:
        ``data``, with ``train_mask``, ``val_mask``, ``test_mask`` (``bool [N]``) and
        ``data.meta["split"] = {"name", "params", "fingerprint", "sizes"}``; the
        fingerprint hashes the three sorted index lists only.

    Raises:
        DataError: An index is out of range, repeated, or in more than one split.
    """
    store = _store(data, node_type)
    n = store.num_nodes
    if n is None:
        raise DataError("cannot apply a split: the node type has no num_nodes")
    parts = {"train": train, "val": val, "test": test}
    masks = {}
    for key, index in parts.items():
        index = _as_numpy(index).reshape(-1)
        if index.size and not np.issubdtype(index.dtype, np.integer):
            raise DataError(f"{key} split indices must be integers; got dtype {index.dtype}")
        index = index.astype(np.int64)
        if index.size and (index.min() < 0 or index.max() >= n):
            bad = index[(index < 0) | (index >= n)][0]
            raise DataError(f"{key} split index {bad} is out of range for {n} nodes")
        mask = np.zeros(n, dtype=bool)
        mask[index] = True
        if int(mask.sum()) != index.size:
            raise DataError(f"{key} split repeats {index.size - int(mask.sum())} node indices")
        parts[key] = index
        masks[key] = mask
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        overlap = int((masks[a] & masks[b]).sum())
        if overlap:
            raise DataError(f"{a} and {b} splits share {overlap} nodes")
    for key, mask in masks.items():
        store[f"{key}_mask"] = torch.from_numpy(mask)
    meta = getattr(data, "meta", None)
    if meta is None:
        meta = {}
        data.meta = meta
    meta["split"] = {
        "name": name,
        "params": dict(params or {}),
        "fingerprint": fingerprint({key: _digest(index) for key, index in parts.items()}),
        "sizes": {key: int(index.size) for key, index in parts.items()},
    }
    return data


def _check_params(name: str, params: dict, allowed: Sequence[str]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown parameter {unknown[0]!r} for split '{name}'; "
                          f"valid: {', '.join(allowed) or 'none'}")


def make_split(data: HeteroData | Data, name: str, node_type: str | None = None,
               **params) -> HeteroData | Data:
    """Split ``data`` by name and set its masks (see :func:`apply_split`).

    Names:
        ``"magb"``: :func:`magb_split` on the target nodes' ``y``; params ``train_ratio``,
        ``val_ratio``, ``few_shot``, ``seed``.
        ``"grouped"``: :func:`grouped_split` over :func:`group_ids` of ``key`` (default
        ``"text"``); params ``key``, ``train_ratio``, ``val_ratio``, ``seed``, ``stratify``.
        ``data.meta["split"]["groups"]`` records the number of groups and the largest's size.
        ``"kshot"``: :func:`kshot_split`; params ``k``, ``num_val``, ``val_per_class``,
        ``num_test``, ``seed``.
        ``"public"`` (alias ``"given"``): keep the masks the data set ships with (checked and
        recorded), e.g. Planetoid's public split or MM-GRAPH's ``split.pt``.

    Raises:
        ConfigError: Unknown split name or parameter.
        DataError: The split does not fit the data (e.g. ``"public"`` without masks).
    """
    store = _store(data, node_type)
    if name == "magb":
        _check_params(name, params, ("train_ratio", "val_ratio", "few_shot", "seed"))
        labels = getattr(store, "y", None) if params.get("few_shot") is not None else None
        if params.get("few_shot") is not None and labels is None:
            raise DataError("magb few-shot split needs labels y on the target nodes")
        train, val, test = magb_split(store.num_nodes, labels=labels, **params)
    elif name == "grouped":
        _check_params(name, params, ("key", "train_ratio", "val_ratio", "seed", "stratify"))
        params.setdefault("key", "text")
        groups = group_ids(store, str(params["key"]))
        train, val, test = grouped_split(
            groups, labels=getattr(store, "y", None),
            **{k: v for k, v in params.items() if k != "key"})
        _, size = np.unique(groups[groups >= 0], return_counts=True)
        apply_split(data, train, val, test, name, params, node_type=node_type)
        data.meta["split"]["groups"] = {"count": int(size.size + (groups < 0).sum()),
                                        "largest": int(size.max(initial=1))}
        return data
    elif name == "kshot":
        _check_params(name, params, ("k", "num_val", "val_per_class", "num_test", "seed"))
        if "k" not in params:
            raise ConfigError("split 'kshot' needs k (training nodes per class)")
        labels = getattr(store, "y", None)
        if labels is None:
            raise DataError("kshot split needs labels y on the target nodes")
        train, val, test = kshot_split(labels, **params)
    elif name in ("public", "given"):
        _check_params(name, params, ())
        missing = [k for k in ("train_mask", "val_mask", "test_mask")
                   if getattr(store, k, None) is None]
        if missing:
            raise DataError(f"split 'public' keeps the data set's own masks, but it has no "
                            f"{missing[0]}; use split 'magb' or 'kshot'")
        train, val, test = (store[f"{k}_mask"].nonzero().view(-1) for k in ("train", "val", "test"))
        prior = getattr(data, "meta", {}).get("split") if isinstance(getattr(data, "meta", None), dict) else None
        if name == "given" and prior:  # keep the loader's own name and parameters in the record
            name, params = prior.get("name", name), dict(prior.get("params", {}))
    else:
        raise ConfigError(f"unknown split {name!r}; valid: {', '.join(SPLITS)}")
    return apply_split(data, train, val, test, name, params, node_type=node_type)
